"""WHEP over HTTP: real aiortc players decode what the app sends; sessions end when they should."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiortc.sdp import SessionDescription

from tests.webrtc.conftest import Whep
from tests.webrtc.viewer import Viewer

pytestmark = pytest.mark.media


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within} s: {what}")


def answered_profile(answer: str) -> str:
    media = SessionDescription.parse(answer).media[0]
    h264 = [c for c in media.rtp.codecs if c.mimeType == "video/H264"]
    return str(h264[0].parameters["profile-level-id"])


@pytest.mark.parametrize(
    ("camera_id", "size", "profile"),
    [
        ("cam-cb", (320, 180), "42e01f"),
        ("cam-main", (352, 288), "4d001f"),
        ("cam-high", (256, 144), "64001f"),
    ],
)
async def test_player_decodes_each_h264_profile(
    whep: Whep, camera_id: str, size: tuple[int, int], profile: str
) -> None:
    viewer = Viewer()
    try:
        response = await whep.post_offer("operator", camera_id, await viewer.offer())
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        assert response.headers["location"].startswith("/whep/sessions/")
        assert len(response.headers["location"].rsplit("/", 1)[1]) >= 32
        assert response.headers["etag"]
        assert "a=candidate:" in response.text and "VP8" not in response.text
        assert answered_profile(response.text) == profile
        await viewer.accept(response.text)
        for _ in range(5):
            frame = await viewer.frame()
            assert (frame.width, frame.height) == size
    finally:
        await viewer.close()


async def test_two_viewers_share_one_ingest_and_delete_frees(whep: Whep) -> None:
    first, first_url = await whep.play("operator", "cam-cb")
    second, _ = await whep.play("maintenance", "cam-cb")
    try:
        assert (await first.frame()).width == 320
        assert (await second.frame()).width == 320
        assert list(whep.feeds.streams) == [("cam-cb", "main")]
        assert whep.feeds.streams[("cam-cb", "main")].subscribers == 2

        live = await whep.live()
        assert sorted(str(s["user"]) for s in live) == ["maintenance", "operator"]
        assert all(s["camera_id"] == "cam-cb" and s["stream"] == "main" for s in live)
        assert first_url.rsplit("/", 1)[1] not in str(live)  # the list never leaks session secrets

        response = await whep.client.delete(first_url, headers=whep.auth("operator"))
        assert response.status_code == 200
        assert await first.frames_until_end(within=10)
        assert [s["user"] for s in await whep.live()] == ["maintenance"]
        assert whep.feeds.streams[("cam-cb", "main")].subscribers == 1
        assert (await second.frame()).width == 320  # the other viewer keeps playing
        response = await whep.client.delete(first_url, headers=whep.auth("operator"))
        assert response.status_code == 404
    finally:
        await first.close()
        await second.close()

    audit = await whep.client.get("/api/audit?action=whep.session", headers=whep.auth("admin"))
    entries = audit.json()["items"]
    assert entries and entries[0]["actor"] == "operator" and entries[0]["target"] == "cam-cb"
    assert entries[0]["after"]["end_reason"] == "deleted" and entries[0]["after"]["bytes"] > 0


async def test_sub_stream_falls_back_to_main_without_one(whep: Whep) -> None:
    viewer, _ = await whep.play("operator", "cam-main", stream="sub")
    try:
        assert (await viewer.frame()).height == 288
        assert [s["stream"] for s in await whep.live()] == ["main"]
    finally:
        await viewer.close()


async def test_feed_end_and_camera_deletion_end_sessions(whep: Whep) -> None:
    viewer, _ = await whep.play("operator", "cam-cb")
    other, _ = await whep.play("operator", "cam-high")
    try:
        await viewer.frame()
        await other.frame()
        whep.feeds.end("cam-cb")  # the Feed closes (camera disabled in the hub)
        assert await viewer.frames_until_end(within=10)
        response = await whep.client.delete("/api/cameras/cam-high", headers=whep.auth("admin"))
        assert response.status_code == 204
        assert await other.frames_until_end(within=10)
        await eventually(lambda: _empty(whep), 10, "sessions freed")
    finally:
        await viewer.close()
        await other.close()


async def _empty(whep: Whep) -> bool:
    return not await whep.live()


async def test_rights_revoked_ends_session(whep: Whep) -> None:
    viewer, _ = await whep.play("ps_admin", "cam-cb")
    try:
        await viewer.frame()
        moved = await whep.client.patch(
            "/api/cameras/cam-cb", json={"line": "safety"}, headers=whep.auth("admin")
        )
        assert moved.status_code == 200, moved.text
        assert await viewer.frames_until_end(within=10)
    finally:
        await viewer.close()


async def test_close_for_user_and_camera(whep: Whep) -> None:
    a, _ = await whep.play("operator", "cam-cb")
    b, _ = await whep.play("maintenance", "cam-main")
    try:
        await a.frame()
        await b.frame()
        assert await whep.manager.close_for_user("operator") == 1
        assert await whep.manager.close_for_camera("cam-main") == 1
        assert await a.frames_until_end(within=10)
        assert await b.frames_until_end(within=10)
        assert await whep.live() == []
    finally:
        await a.close()
        await b.close()
