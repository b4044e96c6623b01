"""End to end: camera simulator (real RTSP) → ingest → Feed hub → WHEP → aiortc player that decodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.apiclient import ADMIN_PASSWORD, PASSWORD, USERS, camera_body, login
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from tests.webrtc.viewer import Viewer
from videohub.api import sessions as sessions_api
from videohub.api import whep as whep_api
from videohub.app import build_app
from videohub.hub.manager import FeedManager
from videohub.hub.startup import hub_startup
from videohub.store import Store
from videohub.webrtc.startup import whep_startup

pytestmark = pytest.mark.media

MOUNTS = ("cb", "main", "high", "h265")


@dataclass
class Live:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    hub: FeedManager

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def play(self, who: str, camera_id: str) -> tuple[Viewer, str]:
        viewer = Viewer()
        headers = {**self.auth(who), "Content-Type": "application/sdp"}
        response = await self.client.post(f"/whep/{camera_id}", content=await viewer.offer(), headers=headers)
        assert response.status_code == 201, response.text
        await viewer.accept(response.text)
        return viewer, response.headers["Location"]


@pytest.fixture
async def live(store: Store, camsim: CameraSimulator) -> AsyncIterator[Live]:
    settings = make_settings(admin_password=ADMIN_PASSWORD)
    app = build_app(settings, store=store, startups=[hub_startup, whep_startup()])
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/whep/{camera_id}" not in paths:  # until app.py includes them
        app.include_router(whep_api.router)
    if "/api/sessions" not in paths:
        app.include_router(sessions_api.router)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://videohub.test")
    try:
        tokens = {"admin": await login(client, "admin", ADMIN_PASSWORD)}
        for name in ("operator", "maintenance"):
            response = await client.post(
                "/api/users",
                json={"username": name, "password": PASSWORD, **USERS[name]},
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert response.status_code == 201, response.text
            tokens[name] = await login(client, name, PASSWORD)
        for mount in MOUNTS:
            body = camera_body(id=f"sim-{mount}", mode="on_demand")
            # A query string makes each camera's URL unique while sharing the mount's one encoder.
            body["streams"] = {"main": {"url": camsim.rtsp_url(mount, {"cam": f"webrtc-{mount}"})}}
            response = await client.post(
                "/api/cameras", json=body, headers={"Authorization": f"Bearer {tokens['admin']}"}
            )
            assert response.status_code == 201, response.text
        hub = app.state.services.hub
        assert isinstance(hub, FeedManager)
        yield Live(client=client, tokens=tokens, hub=hub)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize("mount", MOUNTS)
async def test_player_decodes_every_camera_kind(live: Live, mount: str) -> None:
    # cb/main/high pass through untouched; h265 is transcoded once by ingest to H.264.
    viewer, url = await live.play("operator", f"sim-{mount}")
    try:
        for _ in range(5):
            frame = await viewer.frame(within=30)
            assert (frame.width, frame.height) == (640, 360)
    finally:
        assert (await live.client.delete(url, headers=live.auth("operator"))).status_code == 200
        await viewer.close()


async def test_two_viewers_share_one_ingest(live: Live) -> None:
    first, first_url = await live.play("operator", "sim-cb")
    second, second_url = await live.play("maintenance", "sim-cb")
    try:
        assert (await first.frame(within=30)).width == 640
        assert (await second.frame(within=30)).width == 640
        feed = live.hub.feed("sim-cb")
        assert feed is not None and feed.subscribers == 2
        assert len(live.hub.stats("sim-cb")) == 1  # one ingest for the camera's stream
        assert (await live.client.delete(first_url, headers=live.auth("operator"))).status_code == 200
        assert await first.frames_until_end(within=10)
        assert feed.subscribers == 1
        assert (await second.frame()).width == 640
        assert (await live.client.delete(second_url, headers=live.auth("maintenance"))).status_code == 200
    finally:
        await first.close()
        await second.close()
    response = await live.client.get("/api/sessions", headers=live.auth("admin"))
    assert response.json() == []


async def test_deleting_the_camera_ends_its_sessions(live: Live) -> None:
    viewer, _ = await live.play("operator", "sim-main")
    try:
        await viewer.frame(within=30)
        response = await live.client.delete("/api/cameras/sim-main", headers=live.auth("admin"))
        assert response.status_code == 204
        assert await viewer.frames_until_end(within=15)
        for _ in range(50):
            sessions = (await live.client.get("/api/sessions", headers=live.auth("admin"))).json()
            if not sessions:
                break
            await asyncio.sleep(0.2)
        assert sessions == []
    finally:
        await viewer.close()
