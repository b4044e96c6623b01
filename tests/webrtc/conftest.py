"""The whole media path for WHEP tests: camera simulator (real RTSP) → ingest → Feed hub → WHEP,
on real Valkey, with logged-in users of each role and cameras on the simulator's mounts."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.apiclient import ADMIN_PASSWORD, api_session, camera_body
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from tests.webrtc.viewer import Viewer
from videohub.hub.manager import FeedManager
from videohub.services import Parts
from videohub.store import Store
from videohub.webrtc.manager import SessionManager

# camera id → simulator mount (the `test` preset: 640x360, 10 fps, 1 s GOP).
MOUNTS = {
    "cam-cb": "cb",
    "cam-main": "main",
    "cam-high": "high",
    "cam-h265": "h265",
    "cam-safety": "cb",
}
SIZE = (640, 360)


@dataclass
class Whep:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    hub: FeedManager
    manager: SessionManager
    camsim: CameraSimulator

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def post_offer(
        self, who: str, camera_id: str, sdp: str, stream: str = "main", content_type: str = "application/sdp"
    ) -> httpx.Response:
        headers = {**self.auth(who), "Content-Type": content_type} if who else {"Content-Type": content_type}
        return await self.client.post(f"/whep/{camera_id}?stream={stream}", content=sdp, headers=headers)

    async def play(self, who: str, camera_id: str, stream: str = "main") -> tuple[Viewer, str]:
        """A player that has started watching; returns it and its session URL."""
        viewer = Viewer()
        try:
            response = await self.post_offer(who, camera_id, await viewer.offer(), stream)
            assert response.status_code == 201, response.text
            await viewer.accept(response.text)
        except BaseException:
            await viewer.close()
            raise
        return viewer, response.headers["Location"]

    async def live(self) -> list[dict[str, object]]:
        response = await self.client.get("/api/sessions", headers=self.auth("admin"))
        assert response.status_code == 200, response.text
        items: list[dict[str, object]] = response.json()
        return items

    async def add_camera(self, camera_id: str, url: str, line: str = "public_security") -> None:
        body = camera_body(line=line, id=camera_id, mode="on_demand")
        body["streams"] = {"main": {"url": url}}
        response = await self.client.post("/api/cameras", json=body, headers=self.auth("admin"))
        assert response.status_code == 201, response.text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def whep(store: Store, camsim: CameraSimulator) -> AsyncIterator[Whep]:
    settings = make_settings(admin_password=ADMIN_PASSWORD, webrtc__feed_start_timeout=5.0)
    async with api_session(settings, store, parts=Parts(hub=True, whep=True, rights_interval=0.5)) as session:
        services = session.app.state.services
        assert isinstance(services.hub, FeedManager) and isinstance(services.sessions, SessionManager)
        w = Whep(
            client=session.client,
            tokens=session.tokens,
            hub=services.hub,
            manager=services.sessions,
            camsim=camsim,
        )
        for camera_id, mount in MOUNTS.items():
            line = "safety" if camera_id == "cam-safety" else "public_security"
            # A query string makes each camera's URL unique while sharing the mount's one encoder.
            await w.add_camera(camera_id, camsim.rtsp_url(mount, {"cam": camera_id}), line)
        await w.add_camera("cam-refused", f"rtsp://127.0.0.1:{closed_port()}/live")
        await w.add_camera("cam-missing", camsim.rtsp_url("no-such-mount"))
        yield w
