"""The app with WHEP on a real packet source, real Valkey, and logged-in users of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.apiclient import ADMIN_PASSWORD, PASSWORD, USERS, camera_body, login
from tests.conftest import make_settings
from tests.webrtc.encoded_source import EncodedFeeds, StreamShape
from tests.webrtc.viewer import Viewer
from videohub.api import sessions as sessions_api
from videohub.api import whep as whep_api
from videohub.app import build_app
from videohub.settings import Settings
from videohub.store import Store
from videohub.webrtc.manager import SessionManager
from videohub.webrtc.startup import whep_startup

SHAPES = {
    "cam-cb": StreamShape(profile="baseline", width=320, height=180),
    "cam-main": StreamShape(profile="main", width=352, height=288),
    "cam-high": StreamShape(profile="high", width=256, height=144),
    "cam-safety": StreamShape(profile="baseline", width=320, height=180),
}


@dataclass
class Whep:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    feeds: EncodedFeeds
    manager: SessionManager

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
        response = await self.post_offer(who, camera_id, await viewer.offer(), stream)
        assert response.status_code == 201, response.text
        await viewer.accept(response.text)
        return viewer, response.headers["Location"]

    async def live(self) -> list[dict[str, object]]:
        response = await self.client.get("/api/sessions", headers=self.auth("admin"))
        assert response.status_code == 200, response.text
        items: list[dict[str, object]] = response.json()
        return items


def whep_settings() -> Settings:
    return make_settings(admin_password=ADMIN_PASSWORD, webrtc__feed_start_timeout=1.5)


@pytest.fixture
async def whep(store: Store) -> AsyncIterator[Whep]:
    feeds = EncodedFeeds(shapes=dict(SHAPES), refuse={"cam-refused"}, silent={"cam-silent"})
    app = build_app(whep_settings(), store=store, startups=[whep_startup(feeds, rights_interval=0.5)])
    paths = {getattr(route, "path", None) for route in app.routes}
    # Until app.py includes them.
    if "/whep/{camera_id}" not in paths:
        app.include_router(whep_api.router)
    if "/api/sessions" not in paths:
        app.include_router(sessions_api.router)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://videohub.test")
    try:
        tokens = {"admin": await login(client, "admin", ADMIN_PASSWORD)}
        for name, spec in USERS.items():
            response = await client.post(
                "/api/users",
                json={"username": name, "password": PASSWORD, **spec},
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert response.status_code == 201, response.text
            tokens[name] = await login(client, name, PASSWORD)
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        for cid in (*SHAPES, "cam-refused", "cam-silent"):
            line = "safety" if cid == "cam-safety" else "public_security"
            response = await client.post("/api/cameras", json=camera_body(line=line, id=cid), headers=admin)
            assert response.status_code == 201, response.text
        manager = app.state.services.sessions
        assert isinstance(manager, SessionManager)
        yield Whep(client=client, tokens=tokens, feeds=feeds, manager=manager)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        feeds.close()
