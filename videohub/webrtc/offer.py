"""Checking and cleaning a player's SDP offer before aiortc sees it, and parsing trickle-ICE fragments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCIceCandidate
from aiortc.sdp import SessionDescription, candidate_from_sdp

from videohub.errors import InvalidOffer

MAX_SDP_BYTES = 64 * 1024


def _is_mdns_candidate(line: str) -> bool:
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    parts = line.split()
    return len(parts) >= 6 and parts[4].lower().endswith(".local")


def clean_offer(sdp: str, keep: Callable[[str], bool] | None = None) -> str:
    """Drop ``.local`` (mDNS) candidates, and every ``a=candidate:`` line that ``keep`` refuses.

    Resolving an mDNS name costs aioice about a second per offer. Browsers hide host addresses behind
    mDNS names; without them ICE still connects through the player's checks (peer-reflexive
    candidates). ``keep`` is the candidate policy (``videohub/webrtc/candidates.py``). When a media
    section loses all its candidates, its ``a=end-of-candidates`` goes too, otherwise aioice would
    give up before those checks arrive.
    """
    lines = sdp.replace("\r\n", "\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out: list[str] = []
    for section in sections:
        had = any(line.startswith("a=candidate:") for line in section)
        kept = [
            line
            for line in section
            if not line.startswith("a=candidate:")
            or (not _is_mdns_candidate(line) and (keep is None or keep(line)))
        ]
        left = any(line.startswith("a=candidate:") for line in kept)
        if had and not left:
            kept = [line for line in kept if line.strip() != "a=end-of-candidates"]
        out.extend(kept)
    text = "\r\n".join(line for line in out if line != "")
    return text + "\r\n"


def validate_offer(sdp: str) -> SessionDescription:
    """Parse the offer; InvalidOffer unless it is SDP with a video section the player can receive."""
    if len(sdp) > MAX_SDP_BYTES:
        raise InvalidOffer("SDP offer too large")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidOffer("body is not an SDP offer (must start with v=0)")
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise InvalidOffer(f"unparsable SDP offer: {type(exc).__name__}") from None
    video = [m for m in description.media if m.kind == "video"]
    if not video:
        raise InvalidOffer("the offer has no video m-line")
    first = video[0]
    if first.port == 0:
        raise InvalidOffer("the offer's video m-line is disabled (port 0)")
    if first.direction not in (None, "recvonly", "sendrecv"):
        raise InvalidOffer(f"the offer's video m-line is {first.direction}: a WHEP player must receive")
    if first.ice is None or not first.ice.usernameFragment or not first.ice.password or first.dtls is None:
        raise InvalidOffer("the offer lacks ICE credentials or a DTLS fingerprint")
    if not any(
        c.mimeType.lower() == "video/h264" and str(c.parameters.get("packetization-mode", "0")) == "1"
        for c in first.rtp.codecs
    ):
        raise InvalidOffer("the player offers no H.264 with packetization-mode=1")
    return description


@dataclass
class TrickleFragment:
    """A parsed ``application/trickle-ice-sdpfrag`` body (RFC 8840)."""

    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[RTCIceCandidate] = field(default_factory=list)
    end_of_candidates: bool = False


def parse_sdpfrag(body: str) -> TrickleFragment:
    frag = TrickleFragment()
    mid: str | None = None
    mline = -1
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("a=ice-ufrag:"):
            frag.ufrag = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            frag.pwd = line.split(":", 1)[1]
        elif line.startswith("m="):
            mline += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line.split(":", 1)[1]
        elif line == "a=end-of-candidates":
            frag.end_of_candidates = True
        elif line.startswith("a=candidate:"):
            if _is_mdns_candidate(line):
                continue
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:") :])
            except (AssertionError, ValueError, IndexError):
                raise InvalidOffer("unparsable candidate in the trickle fragment") from None
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = max(mline, 0)
            frag.candidates.append(candidate)
        elif line and not line.startswith(("a=", "m=", "c=")):
            raise InvalidOffer("not a trickle-ice-sdpfrag body")
    return frag
