"""SessionManager alone, on a real libx264 packet source (no RTSP), with a real aiortc player.

The end-to-end tests (simulator → ingest → hub → HTTP) are in test_whep_api.py; these cover the
manager's own edges cheaply: the audit hook, mDNS-only offers, the session limit, close().
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiortc.sdp import SessionDescription

from tests.webrtc.encoded_source import EncodedFeeds, StreamShape
from tests.webrtc.viewer import Viewer
from videohub.errors import Unavailable
from videohub.models import Camera, Streams, StreamSpec, User
from videohub.settings.webrtc import WebRTCSettings
from videohub.webrtc import SessionManager, SessionRecord

pytestmark = pytest.mark.media


def camera(cid: str) -> Camera:
    now = datetime.now(UTC)
    return Camera(
        id=cid,
        name=f"测试 {cid}",
        line="public_security",
        streams=Streams(main=StreamSpec(url="rtsp://127.0.0.1:8554/x")),
        created_at=now,
        updated_at=now,
    )


OPERATOR = User(username="op", role="operator")


@pytest.fixture
async def feeds() -> AsyncIterator[EncodedFeeds]:
    f = EncodedFeeds(
        shapes={
            "cb": StreamShape(profile="baseline"),
            "main": StreamShape(profile="main", width=352, height=288),
            "high": StreamShape(profile="high", width=256, height=144),
        }
    )
    try:
        yield f
    finally:
        f.close()


@pytest.fixture
async def ended() -> list[SessionRecord]:
    return []


@pytest.fixture
async def manager(feeds: EncodedFeeds, ended: list[SessionRecord]) -> AsyncIterator[SessionManager]:
    async def on_end(record: SessionRecord) -> None:
        ended.append(record)

    m = SessionManager(WebRTCSettings(), feeds, on_session_end=on_end)
    await m.start()
    try:
        yield m
    finally:
        await m.close()


@pytest.mark.parametrize(("cid", "size"), [("high", (256, 144))])
async def test_session_plays_and_its_end_reaches_the_hook(
    manager: SessionManager, ended: list[SessionRecord], cid: str, size: tuple[int, int]
) -> None:
    viewer = Viewer()
    try:
        session = await manager.create(OPERATOR, camera(cid), "main", await viewer.offer(), "127.0.0.1")
        assert "H264/90000" in session.answer_sdp
        assert "VP8" not in session.answer_sdp
        await viewer.accept(session.answer_sdp)
        for _ in range(5):
            frame = await viewer.frame()
            assert (frame.width, frame.height) == size
        # A real PLI over the wire: passthrough cannot honour it, but it is counted and harmless.
        await viewer.pc.getReceivers()[0]._send_rtcp_pli(session.sender._ssrc)
        for _ in range(50):
            if session.info().keyframe_requests:
                break
            await asyncio.sleep(0.1)
        assert session.info().keyframe_requests == 1
        assert (await viewer.frame()).width == size[0]
    finally:
        await viewer.close()
    await manager.close()
    assert len(ended) == 1
    assert ended[0].camera_id == cid and ended[0].user == "op" and ended[0].bytes_sent > 0


async def test_offer_with_only_mdns_candidates_still_plays(manager: SessionManager) -> None:
    # Browsers hide their addresses behind mDNS names; dropping those, ICE connects through the
    # player's own checks (peer-reflexive candidates).
    viewer = Viewer()
    try:
        offer = re.sub(
            r"(a=candidate:\S+ \d+ udp \d+ )(\S+)( \d+ typ host)",
            lambda m: f"{m.group(1)}{uuid.uuid4()}.local{m.group(3)}",
            await viewer.offer(),
        )
        assert ".local" in offer
        session = await manager.create(OPERATOR, camera("cb"), "main", offer)
        await viewer.accept(session.answer_sdp)
        assert (await viewer.frame()).width == 320
    finally:
        await viewer.close()


async def test_full_worker_answers_unavailable_and_close_is_idempotent(feeds: EncodedFeeds) -> None:
    m = SessionManager(WebRTCSettings(max_sessions=1), feeds)
    await m.start()
    first, second = Viewer(), Viewer()
    try:
        await m.create(OPERATOR, camera("cb"), "main", await first.offer())
        with pytest.raises(Unavailable):
            await m.create(OPERATOR, camera("cb"), "main", await second.offer())
        assert len(m) == 1
    finally:
        await m.close()
        await m.close()
        await first.close()
        await second.close()
    assert len(m) == 0
    assert feeds.streams[("cb", "main")].subscribers == 0


async def test_player_that_never_connects_is_freed(feeds: EncodedFeeds, ended: list[SessionRecord]) -> None:
    async def on_end(record: SessionRecord) -> None:
        ended.append(record)

    m = SessionManager(WebRTCSettings(connect_timeout=2.0), feeds, on_session_end=on_end)
    await m.start()
    viewer = Viewer()
    try:
        await m.create(OPERATOR, camera("cb"), "main", await viewer.offer())
        await viewer.close()  # gone before it ever applied the answer
        for _ in range(100):
            if ended:
                break
            await asyncio.sleep(0.1)
        assert [r.end_reason for r in ended] == ["connect_timeout"]
        assert len(m) == 0 and feeds.streams[("cb", "main")].subscribers == 0
    finally:
        await m.close()


async def test_offer_with_audio_too_plays_video(manager: SessionManager) -> None:
    # Generic WHEP players offer audio and video; cameras' audio is not carried (yet): it is inactive.
    viewer = Viewer()
    try:
        viewer.pc.addTransceiver("audio", direction="recvonly")
        offer = await viewer.offer()
        assert "m=audio" in offer
        session = await manager.create(OPERATOR, camera("cb"), "main", offer)
        assert "a=inactive" in session.answer_sdp.split("m=video")[0]
        await viewer.accept(session.answer_sdp)
        assert (await viewer.frame()).width == 320
    finally:
        await viewer.close()


async def test_camera_pause_longer_than_grace_keeps_the_viewer(feeds: EncodedFeeds) -> None:
    # The player still sends RTCP while no video comes: it is there, and the picture resumes.
    m = SessionManager(WebRTCSettings(disconnect_grace_seconds=2.0), feeds)
    await m.start()
    viewer = Viewer()
    try:
        await m.create(OPERATOR, camera("cb"), "main", await viewer.offer())
        session = m.live()[0]
        await viewer.accept(session.answer_sdp)
        await viewer.frame()
        stream = feeds.streams[("cb", "main")]
        stream.paused = True
        await asyncio.sleep(4.5)
        assert m.live() == [session]
        stream.paused = False
        assert (await viewer.frame()).width == 320
    finally:
        await viewer.close()
        await m.close()


async def test_close_during_an_answer_leaves_nothing_behind(feeds: EncodedFeeds) -> None:
    m = SessionManager(WebRTCSettings(), feeds)
    await m.start()
    viewer = Viewer()
    try:
        # A camera that has not sent its first picture yet: the answer waits for it.
        probe = await feeds.subscribe(camera("cb"), "main")
        stream = feeds.streams[("cb", "main")]
        stream.paused = True
        probe.close()
        pending = asyncio.create_task(m.create(OPERATOR, camera("cb"), "main", await viewer.offer()))
        await asyncio.sleep(0.3)
        assert not pending.done()
        await m.close()
        stream.paused = False  # the picture arrives after close() began
        with pytest.raises(Unavailable):
            await pending
        assert len(m) == 0 and feeds.streams[("cb", "main")].subscribers == 0
    finally:
        await viewer.close()


CHROME_OFFER = (Path(__file__).parent / "data" / "chrome_offer.sdp").read_text().replace("\n", "\r\n")


@pytest.mark.parametrize(("cid", "payload_type"), [("cb", 106), ("main", 127), ("high", 112)])
async def test_answer_to_a_chrome_shaped_offer(manager: SessionManager, cid: str, payload_type: int) -> None:
    # An offer in the shape Chrome sends (many codecs, mDNS host candidate, audio too): the answer
    # names the H.264 entry with the feed's own profile, and nothing we cannot send.
    session = await manager.create(OPERATOR, camera(cid), "main", CHROME_OFFER)
    video = SessionDescription.parse(session.answer_sdp).media[0]
    assert video.kind == "video" and video.direction == "sendonly"
    assert video.rtp.codecs[0].payloadType == payload_type
    assert {c.mimeType for c in video.rtp.codecs} <= {"video/H264", "video/rtx"}
    assert video.ice_candidates and ".local" not in session.answer_sdp
