"""WHEP end to end: simulator → ingest → Feed hub → WHEP → real aiortc players that decode.

Sessions end when they should: DELETE, camera deleted or disabled, rights revoked, close_for_*.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiortc.sdp import SessionDescription

from tests.webrtc.conftest import SIZE, Whep
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
    ("camera_id", "profile"),
    [("cam-cb", "42e01f"), ("cam-main", "4d001f"), ("cam-high", "64001f"), ("cam-h265", None)],
)
async def test_player_decodes_every_camera_kind(whep: Whep, camera_id: str, profile: str | None) -> None:
    # cb/main/high pass through untouched (answered with their own profile); h265 is transcoded to
    # H.264 once by ingest.
    viewer = Viewer()
    try:
        response = await whep.post_offer("operator", camera_id, await viewer.offer())
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        location = response.headers["location"]
        assert location.startswith("/whep/sessions/") and len(location.rsplit("/", 1)[1]) >= 32
        assert response.headers["etag"]
        assert "a=candidate:" in response.text and "VP8" not in response.text
        if profile is not None:
            assert answered_profile(response.text) == profile
        await viewer.accept(response.text)
        for _ in range(5):
            frame = await viewer.frame(within=30)
            assert (frame.width, frame.height) == SIZE
        assert (await whep.client.delete(location, headers=whep.auth("operator"))).status_code == 200
    finally:
        await viewer.close()


async def test_two_viewers_share_one_ingest_and_delete_frees(whep: Whep) -> None:
    first, first_url = await whep.play("operator", "cam-cb")
    second, second_url = await whep.play("maintenance", "cam-cb")
    try:
        assert (await first.frame(within=30)).width == SIZE[0]
        assert (await second.frame(within=30)).width == SIZE[0]
        feed = whep.hub.feed("cam-cb")
        assert feed is not None and feed.subscribers == 2  # one ingest, two viewers
        assert list(whep.hub.stats("cam-cb")) == ["main"]

        live = await whep.live()
        assert sorted(str(s["user"]) for s in live) == ["maintenance", "operator"]
        assert all(s["camera_id"] == "cam-cb" and s["stream"] == "main" for s in live)
        assert first_url.rsplit("/", 1)[1] not in str(live)  # the list never shows session secrets

        assert (await whep.client.delete(first_url, headers=whep.auth("operator"))).status_code == 200
        assert await first.frames_until_end(within=10)
        assert [s["user"] for s in await whep.live()] == ["maintenance"]
        assert feed.subscribers == 1
        assert (await second.frame()).width == SIZE[0]  # the other viewer keeps playing
        assert (await whep.client.delete(first_url, headers=whep.auth("operator"))).status_code == 404
        assert (await whep.client.delete(second_url, headers=whep.auth("maintenance"))).status_code == 200
    finally:
        await first.close()
        await second.close()
    assert await whep.live() == []
    audit = await whep.client.get("/api/audit?action=whep.session", headers=whep.auth("admin"))
    entries = audit.json()["items"]
    assert sorted(e["actor"] for e in entries) == ["maintenance", "operator"]
    assert all(e["target"] == "cam-cb" and e["after"]["end_reason"] == "deleted" for e in entries)
    assert all(e["after"]["bytes"] > 0 and e["after"]["duration_s"] >= 0 for e in entries)


async def test_sub_stream_falls_back_to_main_without_one(whep: Whep) -> None:
    viewer, url = await whep.play("operator", "cam-main", stream="sub")
    try:
        assert (await viewer.frame(within=30)).height == SIZE[1]
        assert [s["stream"] for s in await whep.live()] == ["main"]
        assert (await whep.client.delete(url, headers=whep.auth("operator"))).status_code == 200
    finally:
        await viewer.close()


async def _no_sessions(whep: Whep) -> bool:
    return not await whep.live()


@pytest.mark.parametrize("change", ["disable", "delete"])
async def test_disabling_or_deleting_the_camera_ends_its_sessions(whep: Whep, change: str) -> None:
    viewer, _ = await whep.play("operator", "cam-main")
    other, other_url = await whep.play("operator", "cam-high")
    try:
        await viewer.frame(within=30)
        await other.frame(within=30)
        if change == "disable":
            response = await whep.client.patch(
                "/api/cameras/cam-main", json={"enabled": False}, headers=whep.auth("admin")
            )
            assert response.status_code == 200
        else:
            response = await whep.client.delete("/api/cameras/cam-main", headers=whep.auth("admin"))
            assert response.status_code == 204
        assert await viewer.frames_until_end(within=15)
        await eventually(lambda: _only_camera(whep, "cam-high"), 10, "the deleted camera's session is freed")
        assert (await other.frame()).width == SIZE[0]  # another camera's viewer is untouched
        assert (await whep.client.delete(other_url, headers=whep.auth("operator"))).status_code == 200
    finally:
        await viewer.close()
        await other.close()


async def _only_camera(whep: Whep, camera_id: str) -> bool:
    return [s["camera_id"] for s in await whep.live()] == [camera_id]


async def test_rights_revoked_ends_session(whep: Whep) -> None:
    # The camera moves to another line: its line admin may no longer watch it.
    viewer, _ = await whep.play("ps_admin", "cam-cb")
    # The viewer's account is deleted.
    gone, _ = await whep.play("operator", "cam-high")
    try:
        await viewer.frame(within=30)
        await gone.frame(within=30)
        moved = await whep.client.patch(
            "/api/cameras/cam-cb", json={"line": "safety"}, headers=whep.auth("admin")
        )
        assert moved.status_code == 200, moved.text
        deleted = await whep.client.delete("/api/users/operator", headers=whep.auth("admin"))
        assert deleted.status_code == 204, deleted.text
        assert await viewer.frames_until_end(within=10)
        assert await gone.frames_until_end(within=10)
        await eventually(lambda: _no_sessions(whep), 10, "sessions freed")
        audit = await whep.client.get("/api/audit?action=whep.session", headers=whep.auth("admin"))
        reasons = {e["actor"]: e["after"]["end_reason"] for e in audit.json()["items"]}
        assert reasons["ps_admin"] == "rights_revoked"
        assert reasons["operator"] in ("rights_revoked", "user_removed")  # API call or sweep, first wins
    finally:
        await viewer.close()
        await gone.close()


async def test_close_for_user_and_camera(whep: Whep) -> None:
    a, _ = await whep.play("operator", "cam-cb")
    b, _ = await whep.play("maintenance", "cam-high")
    try:
        await a.frame(within=30)
        await b.frame(within=30)
        assert await whep.manager.close_for_user("operator") == 1
        assert await whep.manager.close_for_camera("cam-high") == 1
        assert await a.frames_until_end(within=30)
        assert await b.frames_until_end(within=30)
        assert await whep.live() == []
    finally:
        await a.close()
        await b.close()
