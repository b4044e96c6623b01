"""Playback limits: sessions and pending (not yet connected) sessions per user and per worker, and the
player's ICE candidates the server agrees to check (which networks, how many).

SessionManager on a real libx264 source with real aiortc players, plus the HTTP answers (429 +
Retry-After, 422 naming the limit) through the whole app in ``test_trickle_over_the_cap_is_422``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiortc import RTCIceCandidate

from tests.webrtc.conftest import Whep
from tests.webrtc.encoded_source import EncodedFeeds, StreamShape
from tests.webrtc.viewer import Viewer
from videohub.errors import InvalidField, RateLimited, Unavailable
from videohub.models import Camera, Streams, StreamSpec, User
from videohub.settings.webrtc import WebRTCSettings
from videohub.webrtc import SessionManager
from videohub.webrtc.candidates import CandidatePolicy
from videohub.webrtc.offer import TrickleFragment
from videohub.webrtc.session import WhepSession

pytestmark = pytest.mark.media

ALICE = User(username="alice", role="operator")
BOB = User(username="bob", role="operator")
CAROL = User(username="carol", role="admin")

HOSTILE = {
    # address, port, transport → why the server must never send it a STUN check
    ("8.8.8.8", 50000, "udp"): "public address outside the allowed networks",
    ("224.0.0.251", 50001, "udp"): "multicast",
    ("255.255.255.255", 50002, "udp"): "broadcast",
    ("0.0.0.0", 50003, "udp"): "unspecified",
    ("::", 50004, "udp"): "unspecified (IPv6)",
    ("ff02::1", 50005, "udp"): "multicast (IPv6)",
    ("192.168.7.7", 22, "udp"): "well-known port",
    ("scan.example.com", 50006, "udp"): "a DNS name the server would resolve",
    ("192.168.7.8", 50007, "tcp"): "TCP (aioice checks UDP only)",
}
ALLOWED = [("10.20.30.40", 50010), ("192.168.7.9", 50011), ("fd12:3456::7", 50012), ("127.0.0.1", 50013)]


def camera(cid: str = "cb") -> Camera:
    now = datetime.now(UTC)
    return Camera(
        id=cid,
        name=f"测试 {cid}",
        line="public_security",
        streams=Streams(main=StreamSpec(url="rtsp://127.0.0.1:8554/x")),
        created_at=now,
        updated_at=now,
    )


@pytest.fixture
async def feeds() -> AsyncIterator[EncodedFeeds]:
    f = EncodedFeeds(shapes={"cb": StreamShape(profile="baseline")})
    try:
        yield f
    finally:
        f.close()


async def manager_with(feeds: EncodedFeeds, **limits: object) -> SessionManager:
    m = SessionManager(WebRTCSettings.model_validate(limits), feeds)
    await m.start()
    return m


def remote_addresses(session: WhepSession) -> set[str]:
    """The player addresses the server's ICE agent holds as remote candidates (what it will check)."""
    ice = session.sender.transport.transport
    return {c.ip for c in ice.getRemoteCandidates()}


def candidate_line(i: int, host: str, port: int, transport: str = "udp") -> str:
    return f"a=candidate:{9000 + i} 1 {transport} 2122260223 {host} {port} typ host"


def with_candidates(offer: str, lines: list[str], *, end: bool = True) -> str:
    """The offer with ``lines`` added to its video section; without a=end-of-candidates unless ``end``."""
    offer = offer.replace("a=end-of-candidates\r\n", "")
    extra = "".join(f"{line}\r\n" for line in lines)
    return re.sub(r"(m=video[^\r\n]*\r\n)", lambda m: m.group(1) + extra, offer, count=1) + (
        "a=end-of-candidates\r\n" if end else ""
    )


async def test_sessions_per_user_are_capped_with_429(feeds: EncodedFeeds) -> None:
    m = await manager_with(feeds, max_sessions_per_user=2)
    viewers = [Viewer() for _ in range(4)]
    try:
        for viewer in viewers[:2]:
            session = await m.create(ALICE, camera(), "main", await viewer.offer())
            await viewer.accept(session.answer_sdp)
            assert (await viewer.frame()).width > 0
        with pytest.raises(RateLimited) as refused:
            await m.create(ALICE, camera(), "main", await viewers[2].offer())
        assert refused.value.status == 429 and refused.value.retry_after >= 1
        assert "webrtc.max_sessions_per_user" in refused.value.message
        # Another user is not affected.
        session = await m.create(BOB, camera(), "main", await viewers[3].offer())
        await viewers[3].accept(session.answer_sdp)
        assert (await viewers[3].frame()).width > 0
    finally:
        await m.close()
        for viewer in viewers:
            await viewer.close()


async def test_pending_sessions_are_capped_per_user_and_in_total(feeds: EncodedFeeds) -> None:
    m = await manager_with(feeds, max_pending_per_user=2, max_pending=3, connect_timeout=2.0)
    # Players that post offers and never apply the answer: they never complete ICE.
    viewers = [Viewer() for _ in range(6)]
    try:
        for viewer in viewers[:2]:
            await m.create(ALICE, camera(), "main", await viewer.offer())
        with pytest.raises(RateLimited) as refused:
            await m.create(ALICE, camera(), "main", await viewers[2].offer())
        assert refused.value.retry_after == 1 and "webrtc.max_pending_per_user" in refused.value.message
        await m.create(BOB, camera(), "main", await viewers[3].offer())
        with pytest.raises(Unavailable) as full:  # the worker's pending slots are all taken
            await m.create(CAROL, camera(), "main", await viewers[4].offer())
        assert "webrtc.max_pending" in full.value.message
        # connect_timeout frees them: a player that really connects gets in.
        for _ in range(60):
            if len(m) == 0:
                break
            await asyncio.sleep(0.1)
        assert len(m) == 0
        session = await m.create(ALICE, camera(), "main", await viewers[5].offer())
        await viewers[5].accept(session.answer_sdp)
        assert (await viewers[5].frame()).width > 0
        assert not session.pending
    finally:
        await m.close()
        for viewer in viewers:
            await viewer.close()


async def test_offer_candidates_outside_allowed_networks_are_never_checked(feeds: EncodedFeeds) -> None:
    m = await manager_with(feeds)
    viewer = Viewer()
    try:
        hostile = [candidate_line(i, h, p, t) for i, (h, p, t) in enumerate(HOSTILE)]
        allowed = [candidate_line(100 + i, h, p) for i, (h, p) in enumerate(ALLOWED)]
        allowed += [candidate_line(201, "198.51.100.7", 50021)]
        offer = with_candidates(await viewer.offer(), hostile + allowed)
        # 198.51.100.7 is the address the WHEP request came from: the player itself.
        session = await m.create(ALICE, camera(), "main", offer, "198.51.100.7")
        checked = remote_addresses(session)
        for (host, _, _), why in HOSTILE.items():
            assert host not in checked, f"{host} ({why}) would get STUN checks"
        assert {"10.20.30.40", "192.168.7.9", "fd12:3456::7", "127.0.0.1"} <= checked
        assert "198.51.100.7" in checked
        # The player still connects (through its own allowed candidates or its checks).
        await viewer.accept(session.answer_sdp)
        assert (await viewer.frame()).width > 0
    finally:
        await m.close()
        await viewer.close()


async def test_offer_with_too_many_candidates_is_refused(feeds: EncodedFeeds) -> None:
    m = await manager_with(feeds, max_remote_candidates=4)
    viewer = Viewer()
    try:
        many = [candidate_line(i, f"10.0.0.{i + 1}", 50000 + i) for i in range(5)]
        offer = re.sub(r"a=candidate:[^\r\n]*\r\n", "", await viewer.offer())
        with pytest.raises(InvalidField) as refused:
            await m.create(ALICE, camera(), "main", with_candidates(offer, many))
        assert refused.value.status == 422 and "webrtc.max_remote_candidates" in refused.value.message
        assert len(m) == 0
    finally:
        await m.close()
        await viewer.close()


async def test_trickled_candidates_are_filtered_and_capped(feeds: EncodedFeeds) -> None:
    m = await manager_with(feeds)  # webrtc.max_remote_candidates: 16
    viewer = Viewer()
    try:
        offer = re.sub(r"a=candidate:[^\r\n]*\r\n", "", await viewer.offer())
        offer = with_candidates(offer, [candidate_line(1, "10.0.0.1", 50001)], end=False)
        session = await m.create(ALICE, camera(), "main", offer)

        def frag(*addresses: tuple[str, int, str]) -> TrickleFragment:
            return TrickleFragment(
                candidates=[
                    RTCIceCandidate(
                        component=1,
                        foundation=str(i),
                        ip=host,
                        port=port,
                        priority=1,
                        protocol=transport,
                        type="host",
                        sdpMid="0",
                    )
                    for i, (host, port, transport) in enumerate(addresses)
                ]
            )

        await m.trickle(session, frag(*HOSTILE))
        assert remote_addresses(session) == {"10.0.0.1"}
        await m.trickle(session, frag(("10.0.0.2", 50002, "udp"), ("10.0.0.1", 50001, "udp")))
        assert remote_addresses(session) == {"10.0.0.1", "10.0.0.2"}
        # 14 new ones make 16 (the cap); 15 make 17: refused whole, none added.
        with pytest.raises(InvalidField) as refused:
            await m.trickle(session, frag(*((f"10.0.1.{i}", 50100 + i, "udp") for i in range(15))))
        assert "more than 16 ICE candidates" in refused.value.message
        assert remote_addresses(session) == {"10.0.0.1", "10.0.0.2"}
        await m.trickle(session, frag(*((f"10.0.1.{i}", 50100 + i, "udp") for i in range(14))))
        assert len(remote_addresses(session)) == 16
    finally:
        await m.close()
        await viewer.close()


def test_candidate_policy_rules() -> None:
    policy = CandidatePolicy.create(["203.0.113.0/24", "2001:db8::/32"], max_candidates=16)
    for host, port, transport in HOSTILE:
        assert not policy.allows(transport, host, port), host
    for host, port in ALLOWED:
        assert policy.allows("udp", host, port), host
    assert policy.allows("UDP", "203.0.113.9", 40000) and policy.allows("udp", "2001:db8::5", 40000)
    assert policy.allows("udp", "::ffff:192.168.1.2", 40000)  # IPv4-mapped: judged as its IPv4
    assert not policy.allows("udp", "::ffff:8.8.8.8", 40000)
    assert not policy.allows("udp", "198.51.100.1", 40000)
    assert policy.allows("udp", "198.51.100.1", 40000, client="198.51.100.1")
    assert not policy.allows("udp", "224.0.0.1", 40000, client="224.0.0.1")
    assert not policy.allows("udp", "x.local", 40000)


async def test_trickle_over_the_cap_is_422_naming_the_limit(whep: Whep) -> None:
    viewer = Viewer()
    try:
        offer = re.sub(r"a=candidate:[^\r\n]*\r\na=end-of-candidates\r\n", "", await viewer.offer())
        offer = re.sub(r"a=candidate:[^\r\n]*\r\n", "", offer)
        response = await whep.post_offer("operator", "cam-cb", offer)
        assert response.status_code == 201, response.text
        url = response.headers["Location"]
        body = "".join(
            f"a=candidate:{i} 1 udp 2122260223 10.9.0.{i} {50000 + i} typ host\r\n" for i in range(1, 18)
        )
        headers = {**whep.auth("operator"), "Content-Type": "application/trickle-ice-sdpfrag"}
        patched = await whep.client.patch(url, content="a=mid:0\r\n" + body, headers=headers)
        assert patched.status_code == 422, patched.text
        detail = patched.json()["detail"][0]
        assert detail["loc"] == ["body"] and "16" in detail["msg"]
        assert "webrtc.max_remote_candidates" in detail["msg"]
        ok = await whep.client.patch(url, content="a=mid:0\r\n" + body.split("\r\n", 1)[0], headers=headers)
        assert ok.status_code == 204, ok.text
    finally:
        await viewer.close()
