"""Offer cleaning and checks, trickle fragments, H.264 profile choice, the RTP clock, the settings."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest
from pydantic import ValidationError

from ingest.packet import Packet
from videohub.errors import InvalidOffer
from videohub.settings.webrtc import WebRTCSettings
from videohub.webrtc.h264 import h264_preferences, profile_level_id, register_h264_profiles
from videohub.webrtc.offer import clean_offer, parse_sdpfrag
from videohub.webrtc.track import RtpClock

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 102\r\n"
    "a=candidate:1 1 udp 2122260223 3e1bd5a2-8c5e-4b84-b5c1-7e9f1f3c0d44.local 53120 typ host\r\n"
    "a=candidate:2 1 udp 2122260223 192.168.1.20 53121 typ host\r\n"
    "a=end-of-candidates\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=candidate:3 1 udp 2122260223 abc.local 53122 typ host\r\n"
    "a=end-of-candidates\r\n"
)


def test_mdns_candidates_are_dropped() -> None:
    cleaned = clean_offer(OFFER)
    assert ".local" not in cleaned
    assert "192.168.1.20 53121" in cleaned
    video, audio = cleaned.split("m=audio")
    # Video keeps its end-of-candidates (a real candidate is left); audio lost all of them, so
    # ICE must wait for the player's checks instead of failing on an empty list.
    assert "a=end-of-candidates" in video
    assert "a=end-of-candidates" not in audio


def test_trickle_fragment() -> None:
    frag = parse_sdpfrag(
        "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
        "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n"
        "a=candidate:3 1 udp 2122260223 abc.local 61765 typ host\r\na=end-of-candidates\r\n"
    )
    assert frag.ufrag == "EsAw" and frag.end_of_candidates
    assert [(c.ip, c.port, c.sdpMid) for c in frag.candidates] == [("192.0.2.1", 61764, "0")]
    with pytest.raises(InvalidOffer):
        parse_sdpfrag("a=candidate:nonsense\r\n")


SPS = {  # first bytes of the SPS libx264 writes for each profile
    "baseline": b"\x00\x00\x00\x01\x67\x42\xc0\x16\xda",
    "main": b"\x00\x00\x00\x01\x67\x4d\x40\x16\xda",
    "high": b"\x00\x00\x01\x67\x64\x00\x16\xac",
}


def test_profile_from_sps_and_preferences() -> None:
    register_h264_profiles()
    register_h264_profiles()  # idempotent
    assert profile_level_id(SPS["baseline"] + b"\x00\x00\x01\x68\xce") == "42c016"
    assert profile_level_id(b"\x00\x00\x01\x41\x9a") is None  # a P-frame carries no SPS
    first = {
        name: str(h264_preferences(profile_level_id(sps))[0].parameters["profile-level-id"])
        for name, sps in SPS.items()
    }
    assert first == {"baseline": "42e01f", "main": "4d001f", "high": "64001f"}
    prefs = h264_preferences(None)
    assert {c.mimeType for c in prefs} == {"video/H264", "video/rtx"}
    assert all(str(c.parameters["packetization-mode"]) == "1" for c in prefs if c.mimeType == "video/H264")


def packet(pts: int | None, received: float, keyframe: bool = False) -> Packet:
    return Packet(data=b"", pts=pts, time_base=Fraction(1, 1000), keyframe=keyframe, received=received)


def test_rtp_clock_follows_pts_and_compresses_the_gop_backlog() -> None:
    clock = RtpClock(backlog=0.15)
    # A GOP cache burst: received up to 3 s ago at 10 fps, sent now → 1 ms apart.
    burst = [clock.map(packet(i * 100, 100.0 + i * 0.1, i == 0), now=103.0) for i in range(20)]
    assert burst[0] == 0
    assert [b - a for a, b in pairwise(burst)] == [90] * 19
    # Live packets: spaced by their pts (100 ms = 9000 ticks).
    live = [clock.map(packet(2000 + i * 100, 103.0 + i * 0.1), now=103.0 + i * 0.1) for i in range(3)]
    assert [b - a for a, b in pairwise([burst[-1], *live])] == [9000, 9000, 9000]
    # No pts: spacing from the arrival clock. A pts jump back (camera reconnect) never goes backwards.
    t = clock.map(packet(None, 103.5), now=103.5)
    assert t - live[-1] == 27000
    t2 = clock.map(packet(10, 103.54), now=103.54)
    assert t2 - t == 3600
    t3 = clock.map(packet(50, 103.58), now=103.58)
    assert t3 - t2 == 3600


def test_settings_defaults_and_bounds() -> None:
    s = WebRTCSettings()
    assert s.ice_servers == []  # never a public STUN server by default
    with pytest.raises(ValidationError):
        WebRTCSettings(disconnect_grace_seconds=60)
    with pytest.raises(ValidationError):
        WebRTCSettings(ice_servrs=[])  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        WebRTCSettings.model_validate({"ice_servers": [{"urls": ["http://x"]}]})
    with pytest.raises(ValidationError):
        WebRTCSettings.model_validate({"ice_servers": [{"urls": ["stun:a:3478"]}, {"urls": ["stun:b:3478"]}]})
    with pytest.raises(ValidationError):
        WebRTCSettings.model_validate({"ice_servers": [{"urls": ["turn:t:3478"]}]})
    ok = WebRTCSettings.model_validate(
        {
            "ice_servers": [
                {"urls": ["turn:t:3478?transport=udp"], "username": "u", "credential": "s3cr3t-turn"}
            ]
        }
    )
    assert "s3cr3t-turn" not in repr(ok)
