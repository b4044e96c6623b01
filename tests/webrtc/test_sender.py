"""The passthrough RTP path: shared packetizing, sender reports and NACK repair, with real aiortc players."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, cast

import av
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from ingest.packet import Packet
from tests.webrtc.encoded_source import EncodedFeeds, StreamShape
from tests.webrtc.viewer import Viewer
from videohub.models import Camera, Streams, StreamSpec, User
from videohub.settings.webrtc import WebRTCSettings
from videohub.webrtc import SessionManager
from videohub.webrtc.packetizer import Packetizer
from videohub.webrtc.sender import PassthroughSender

OPERATOR = User(username="op", role="operator")


def camera(cid: str) -> Camera:
    now = datetime.now(UTC)
    return Camera(
        id=cid,
        name=cid,
        line="public_security",
        streams=Streams(main=StreamSpec(url="rtsp://127.0.0.1:8554/x")),
        created_at=now,
        updated_at=now,
    )


def unit(data: bytes) -> Packet:
    return Packet(data=data, pts=0, time_base=Fraction(1, 90_000), keyframe=True, received=0.0)


def test_packetizer_makes_aiortcs_payloads_once_per_access_unit() -> None:
    # SPS + PPS (aggregated in one STAP-A) and a 5 kB IDR slice (split in FU-A fragments).
    au = b"\x00\x00\x00\x01\x67\x42\xc0\x1f\xda" + b"\x00\x00\x01\x68\xce\x3c\x80"
    au += b"\x00\x00\x01\x65" + bytes(range(1, 251)) * 20
    reference = av.Packet(au)
    reference.pts, reference.time_base = 0, Fraction(1, 90_000)
    expected, _ = H264Encoder().pack(reference)
    packetizer = Packetizer(max_units=2)
    first = unit(au)
    payloads = packetizer.payloads(first)
    assert list(payloads) == expected and len(payloads) > 3
    assert packetizer.payloads(first) is payloads  # the second viewer gets the same bytes
    assert (packetizer.made, packetizer.shared) == (1, 1)
    others = [unit(au) for _ in range(3)]
    for other in others:
        packetizer.payloads(other)
    assert len(packetizer) == 2  # bounded
    assert packetizer.payloads(first) == payloads and packetizer.made == 5  # evicted: made again


@pytest.fixture
def feeds() -> Iterator[EncodedFeeds]:
    feeds = EncodedFeeds(shapes={"cam": StreamShape(profile="baseline", width=640, height=360, fps=15)})
    yield feeds
    feeds.close()


@pytest.fixture(params=[True, False], ids=["from-ingest-thread", "from-event-loop"])
async def manager(request: pytest.FixtureRequest, feeds: EncodedFeeds) -> AsyncIterator[SessionManager]:
    m = SessionManager(WebRTCSettings(send_from_ingest=request.param), feeds)
    await m.start()
    try:
        yield m
    finally:
        await m.close()


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.media
async def test_viewers_share_packetizing_and_receive_sender_reports(manager: SessionManager) -> None:
    viewers = [Viewer(), Viewer()]
    try:
        for viewer in viewers:
            session = await manager.create(OPERATOR, camera("cam"), "main", await viewer.offer())
            assert PassthroughSender.supported(session.sender)
            await viewer.accept(session.answer_sdp)
        for viewer in viewers:
            for _ in range(10):
                assert (await viewer.frame()).width == 640
        # Both players decoded the same access units, packetized once.
        assert manager.packetizer.shared > 0
        assert manager.packetizer.made < sum(s.track.frames_sent for s in manager.live())
        assert all(s.passthrough is not None for s in manager.live())

        async def reported() -> bool:
            # The player's view of our RTCP sender reports: packets and bytes the server sent.
            stats = await viewers[0].pc.getReceivers()[0].getStats()
            remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
            return bool(remote) and remote[0].packetsSent > 0 and remote[0].bytesSent > 0

        assert await until(reported)
    finally:
        for viewer in viewers:
            await viewer.close()


@pytest.mark.media
async def test_after_the_first_picture_the_ingest_thread_sends_without_waking_the_loop(
    feeds: EncodedFeeds,
) -> None:
    m = SessionManager(WebRTCSettings(), feeds)
    viewer = Viewer()
    try:
        session = await m.create(OPERATOR, camera("cam"), "main", await viewer.offer())
        await viewer.accept(session.answer_sdp)
        await viewer.frame()
        assert session.passthrough is not None

        async def direct() -> bool:
            return session.passthrough is not None and session.passthrough.direct

        assert await until(direct)
        feed = feeds.streams[("cam", "main")].feed
        wakeups, sent = feed._handoff.calls, session.track.frames_sent
        for _ in range(20):  # 20 more pictures, each sent by the encoder ("ingest") thread
            assert (await viewer.frame()).width == 640
        assert session.track.frames_sent >= sent + 20
        assert feed._handoff.calls == wakeups  # not one loop wake-up for them
    finally:
        await viewer.close()
        await m.close()


@pytest.mark.media
async def test_packets_lost_on_the_way_are_repaired(manager: SessionManager) -> None:
    viewer = Viewer()
    dropped: set[int] = set()
    repaired: set[int] = set()
    try:
        session = await manager.create(OPERATOR, camera("cam"), "main", await viewer.offer())
        await viewer.accept(session.answer_sdp)
        await viewer.frame()
        receiver = viewer.pc.getReceivers()[0]
        media_ssrc = session.sender._ssrc
        original = receiver._handle_rtp_packet

        async def lossy(packet: RtpPacket, arrival_time_ms: int) -> Any:
            # The network loses every 25th media packet once; the player NACKs, the server resends.
            if packet.ssrc == media_ssrc and packet.sequence_number % 25 == 0 and len(dropped) < 8:
                if packet.sequence_number not in dropped and packet.sequence_number not in repaired:
                    dropped.add(packet.sequence_number)
                    return None
            elif packet.ssrc == session.sender._rtx_ssrc:
                repaired.add(int.from_bytes(packet.payload[:2], "big"))
            return await original(packet, arrival_time_ms)

        setattr(receiver, "_handle_rtp_packet", lossy)  # noqa: B010

        async def all_repaired() -> bool:
            await viewer.frame()
            return len(dropped) >= 3 and dropped <= repaired

        assert await until(all_repaired, within=30)
    finally:
        await viewer.close()


def test_header_extensions_built_once_carry_each_frames_send_time() -> None:
    # The browser's bandwidth estimate reads abs-send-time from every packet, and the mid ties the
    # packets to the m-line: the block built once and patched per frame must equal a fresh one.
    hmap = HeaderExtensionsMap()
    hmap.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    stand_in = SimpleNamespace(_RTCRtpSender__rtp_header_extensions_map=hmap, _RTCRtpSender__mid="0")
    sender = PassthroughSender(cast(Any, stand_in), cast(Any, None), Packetizer())
    template = sender._extension_template()
    assert template is not None
    for ntp in (0, 1 << 14, 0x0123_4567_89AB_CDEF, (1 << 64) - 1):
        ext = template[0] + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + template[1]
        assert ext == sender._extensions(ntp)
        packet = RtpPacket.parse(struct.pack("!BBHLL", 0x90, 96, 1, 0, 1) + ext + b"\x65payload", hmap)
        assert packet.extensions.abs_send_time == (ntp >> 14) & 0xFFFFFF
        assert packet.extensions.mid == "0"
