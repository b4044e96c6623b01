"""Playback and live events end with the token: logout, expiry, password change (API or CLI).

A real ``videohub serve`` plays a simulator camera to a real aiortc viewer and keeps a /ws open; when
the token that started them ends, the viewer's track ends and /ws closes with 4401 within the rights
sweep's few seconds. A token renewed by ``POST /api/auth/refresh`` carries its sessions over: they
end with the last token of that login, not with the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import USER_PASSWORD, VideohubService
from tests.webrtc.viewer import Viewer

pytestmark = pytest.mark.media

# The sweep runs every few seconds; an ended token's sessions are gone within this.
END_WITHIN = 8.0
CLI = [sys.executable, "-m", "videohub.cli"]


@dataclass
class Watched:
    """A playing viewer whose frames are read continuously (aiortc queues frames nobody reads)."""

    viewer: Viewer
    frames: int = 0
    ended_at: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def run(self) -> None:
        while True:
            try:
                await self.viewer.frame(within=30)
            except MediaStreamError:
                self.ended_at = time.monotonic()
                return
            self.frames += 1

    async def playing(self) -> bool:
        """Still receiving pictures: more frames arrive within two seconds."""
        before = self.frames
        await asyncio.sleep(2.0)
        return self.ended_at is None and self.frames > before

    async def ends_within(self, seconds: float) -> bool:
        assert self.task is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), seconds)
        return self.ended_at is not None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.viewer.close()


async def play(client: httpx.AsyncClient, token: str, camera_id: str) -> Watched:
    viewer = Viewer()
    try:
        response = await client.post(
            f"/whep/{camera_id}",
            content=await viewer.offer(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
        )
        assert response.status_code == 201, response.text
        await viewer.accept(response.text)
        await viewer.frame(within=30)
    except BaseException:
        await viewer.close()
        raise
    watched = Watched(viewer)
    watched.task = asyncio.create_task(watched.run())
    return watched


async def live_socket(svc: VideohubService, token: str) -> ClientConnection:
    ws = await connect(svc.base_url.replace("http://", "ws://") + "/ws")
    await ws.send(json.dumps({"type": "auth", "token": token}))
    await ws.send(json.dumps({"type": "subscribe", "topics": ["presets"]}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
        pass
    return ws


async def closed_with(ws: ClientConnection, within: float) -> int | None:
    """The close code the server sends within ``within`` seconds (None: still open)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        return None


def _service(factory: Callable[..., VideohubService], **env: str) -> VideohubService:
    return factory(env={"VIDEOHUB_DEMO__ALLOW_TEST_SOURCES": "true", **env})


def _camera(svc: VideohubService, camsim: CameraSimulator) -> str:
    camera_id = f"t{uuid.uuid4().hex[:8]}"
    svc.create_camera(camera_id, camsim.rtsp_url("cb", {"cam": camera_id}), mode="on_demand")
    return camera_id


def _passwd_cli(svc: VideohubService, username: str) -> None:
    result = subprocess.run(
        [*CLI, "user", "passwd", username, "--password-stdin", "--data-dir", str(svc.data_dir)],
        input="another-pass-9\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("ending", ["logout", "password_api", "password_cli"])
async def test_playback_and_live_events_end_with_the_token(
    videohub_service_factory: Callable[..., VideohubService], camsim: CameraSimulator, ending: str
) -> None:
    svc = _service(videohub_service_factory)
    camera_id = _camera(svc, camsim)
    token = svc.create_user("viewer1", "operator")
    bystander = svc.create_user("viewer2", "operator")
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=30.0) as client:
        watched = await play(client, token, camera_id)
        other = await play(client, bystander, camera_id)
        ws = await live_socket(svc, token)
        try:
            assert await watched.playing()
            if ending == "logout":
                out = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
                assert out.status_code == 204
            elif ending == "password_api":
                await asyncio.to_thread(
                    svc.call,
                    "PUT",
                    "/api/users/viewer1/password",
                    json={"password": "another-pass-9"},
                    expect=204,
                )
            else:
                await asyncio.to_thread(_passwd_cli, svc, "viewer1")
            assert await watched.ends_within(END_WITHIN), f"still playing {END_WITHIN} s after {ending}"
            assert await closed_with(ws, END_WITHIN) == 4401
            assert await other.playing(), "another user's session ended too"
        finally:
            await ws.close()
            await watched.close()
            await other.close()
    ended = svc.call("GET", "/api/audit", params={"action": "whep.session"})["items"]
    assert [e["after"]["end_reason"] for e in ended if e["actor"] == "viewer1"] == ["token_ended"]


@pytest.mark.timeout(240)
async def test_expiry_ends_sessions_and_a_renewed_login_carries_them_over(
    videohub_service_factory: Callable[..., VideohubService], camsim: CameraSimulator
) -> None:
    # Tokens live 60 s (the shortest lifetime allowed). "plain" never renews its token; "wall"
    # renews it like the wall pages do (at half its lifetime).
    svc = _service(videohub_service_factory, VIDEOHUB_AUTH__TOKEN_TTL_SECONDS="60")
    camera_id = _camera(svc, camsim)
    svc.create_user("plain", "operator")
    svc.create_user("wall", "operator")
    plain_token = svc.login("plain", USER_PASSWORD)
    wall_token = svc.login("wall", USER_PASSWORD)
    logged_in = time.monotonic()

    async def renew(token: str) -> str:
        response = await client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        renewed: str = response.json()["access_token"]
        return renewed

    async with httpx.AsyncClient(base_url=svc.base_url, timeout=30.0) as client:
        plain = await play(client, plain_token, camera_id)
        wall = await play(client, wall_token, camera_id)
        plain_ws = await live_socket(svc, plain_token)
        wall_ws = await live_socket(svc, wall_token)
        try:
            newer = await renew(wall_token)
            await asyncio.sleep(max(0.0, logged_in + 30 - time.monotonic()))
            newest = await renew(newer)
            # The first token of each login has expired by now (at 60 s, plus the sweep's interval).
            assert await plain.ends_within(logged_in + 60 + END_WITHIN - time.monotonic()), (
                "plays after expiry"
            )
            assert time.monotonic() - logged_in > 55, "ended long before the token expired"
            assert await closed_with(plain_ws, END_WITHIN) == 4401
            assert await wall.playing(), "the renewed login's session ended with its first token"
            assert await closed_with(wall_ws, 0.1) is None, "the renewed login's /ws closed"
            out = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {newest}"})
            assert out.status_code == 204
            assert await wall.ends_within(END_WITHIN), "plays after logout of the renewed token"
            assert await closed_with(wall_ws, END_WITHIN) == 4401
        finally:
            for ws in (plain_ws, wall_ws):
                await ws.close()
            await plain.close()
            await wall.close()
