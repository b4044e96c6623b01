"""H.264 negotiation for passthrough: which profile the feed carries, and which codec to answer with.

aiortc 1.16 only knows Constrained Baseline/Baseline (``42e01f``/``42001f``) in its codec table, so an
offer's Main or High entries never match and the answer always claims Constrained Baseline, whatever
the camera sends. Browsers decode the higher profiles anyway, but the answer should tell the truth when
the player offers the feed's profile: ``register_h264_profiles`` appends Main, Constrained High and High
(packetization-mode=1 only: aiortc's packetizer emits FU-A/STAP-A) to aiortc's codec table, once.
"""

from __future__ import annotations

from aiortc import RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpSender
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.sdp import H264Profile, parse_h264_profile_level_id

# Extra entries (profile-level-id at level 3.1; the level does not take part in matching).
_EXTRA_PROFILES = ("4d001f", "640c1f", "64001f")
_NAL_SPS = 7

# Fallback order when the player does not offer the feed's profile: the richer the profile a player
# offers, the likelier its decoder copes with what the camera really sends.
_RANK = {
    H264Profile.PROFILE_HIGH: 5,
    H264Profile.PROFILE_CONSTRAINED_HIGH: 4,
    H264Profile.PROFILE_MAIN: 3,
    H264Profile.PROFILE_BASELINE: 2,
    H264Profile.PROFILE_CONSTRAINED_BASELINE: 1,
}


def iter_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex-B access unit into NAL units (without start codes)."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        end = len(data) if nxt == -1 else nxt
        unit = data[begin:end]
        if nxt != -1 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a 4-byte start code
        if unit:
            units.append(unit)
        start = nxt
    return units


def profile_level_id(access_unit: bytes) -> str | None:
    """The ``profile-level-id`` (6 hex digits) of the first SPS in an Annex-B access unit, if any."""
    for unit in iter_nal_units(access_unit):
        if unit[0] & 0x1F == _NAL_SPS and len(unit) >= 4:
            return unit[1:4].hex()
    return None


def _profile(plid: str) -> H264Profile | None:
    try:
        return parse_h264_profile_level_id(plid)[0]
    except ValueError:
        return None


def register_h264_profiles() -> None:
    """Append Main/Constrained High/High H.264 to aiortc's codec table (idempotent).

    Payload types continue after aiortc's own; each entry gets its RTX twin like aiortc's.
    """
    video = CODECS["video"]
    known = {str(c.parameters.get("profile-level-id")) for c in video if c.mimeType == "video/H264"}
    for plid in _EXTRA_PROFILES:
        if plid in known:
            continue
        pt = max(c.payloadType for c in video if c.payloadType is not None) + 1
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=pt,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                    RTCRtcpFeedback(type="goog-remb"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": plid,
                },
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=pt + 1, parameters={"apt": pt}
            )
        )


def h264_preferences(feed_plid: str | None) -> list[RTCRtpCodecCapability]:
    """Codec preferences for a passthrough sender: H.264 only (never VP8), the feed's profile first.

    Given to ``setCodecPreferences`` before ``setRemoteDescription``; aiortc keeps the offered codecs
    that match, in this order, and sends with the first.
    """
    feed = _profile(feed_plid) if feed_plid else None
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [
        c
        for c in caps
        if c.mimeType == "video/H264" and str(c.parameters.get("packetization-mode", "0")) == "1"
    ]

    def order(cap: RTCRtpCodecCapability) -> tuple[int, int]:
        profile = _profile(str(cap.parameters.get("profile-level-id", "42e01f")))
        exact = 0 if feed is not None and profile == feed else 1
        return (exact, -_RANK.get(profile, 0) if profile is not None else 0)

    rtx = [c for c in caps if c.mimeType == "video/rtx"]
    return sorted(h264, key=order) + rtx
