"""One WHEP viewing session: the peer connection, its track and Feed subscription, and its record."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender
from pydantic import BaseModel, Field

from videohub.users import TokenRef
from videohub.webrtc.candidates import CandidateKey
from videohub.webrtc.feeds import FeedSubscription
from videohub.webrtc.offer import TrickleFragment
from videohub.webrtc.sender import PassthroughSender
from videohub.webrtc.track import FeedTrack

log = logging.getLogger(__name__)

_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
"""aiortc 1.16's (name-mangled) count of packets its DTLS transport received."""


@dataclass
class SessionRecord:
    """What the audit hook receives when a session ends (and what the sessions API shows live)."""

    id: str
    user: str
    camera_id: str
    stream: str
    started_at: datetime
    ended_at: datetime | None = None
    bytes_sent: int = 0
    frames_sent: int = 0
    drops: int = 0
    keyframe_requests: int = 0
    end_reason: str | None = None
    remote: str | None = None
    """The player's address as the HTTP server saw it."""
    token: TokenRef | None = None
    """The token that started the session (its digest and login, never the token): the session ends
    with that login. Kept out of the audit trail and the sessions API."""

    @property
    def duration_seconds(self) -> float:
        end = self.ended_at or datetime.now(UTC)
        return max(0.0, (end - self.started_at).total_seconds())

    def audit_dict(self) -> dict[str, Any]:
        """The record for the audit trail; the session id (a capability to end it) is hashed."""
        return {
            "session": session_ref(self.id),
            "user": self.user,
            "camera": self.camera_id,
            "stream": self.stream,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": round(self.duration_seconds, 1),
            "bytes": self.bytes_sent,
            "frames": self.frames_sent,
            "drops": self.drops,
            "end_reason": self.end_reason,
            "remote": self.remote,
        }


def session_ref(session_id: str) -> str:
    """A short reference to a session that, unlike its id, does not allow ending it."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class SessionInfo(BaseModel):
    """A live session as ``GET /api/sessions`` shows it."""

    ref: str = Field(description="Short reference (not the session URL's secret id).")
    camera_id: str
    camera_name: str
    line: str
    stream: str
    user: str
    remote: str | None
    state: str = Field(description="WebRTC connection state: new, connecting, connected.")
    started_at: datetime
    duration_seconds: float
    bytes_sent: int
    frames_sent: int
    drops: int
    keyframe_requests: int
    sending_from: str = Field(
        description="Who sends the RTP: ingest (the camera's ingest thread, after the first picture), "
        "loop (the event loop: the first picture, TURN relays, webrtc.send_from_ingest off) or aiortc "
        "(aiortc's own loop, when its internals differ from what videohub expects)."
    )


class WhepSession:
    """Sits between the Feed (one subscription) and one player (one RTCPeerConnection).

    Owns both and closes both. The manager creates it, watches its liveness and ends it; ``close`` is
    idempotent and returns the final record.
    """

    def __init__(
        self,
        *,
        record: SessionRecord,
        camera_name: str,
        line: str,
        pc: RTCPeerConnection,
        track: FeedTrack,
        sender: RTCRtpSender,
        subscription: FeedSubscription,
        answer_sdp: str,
        etag: str,
        passthrough: PassthroughSender | None = None,
    ) -> None:
        self.record = record
        self.camera_name = camera_name
        self.line = line
        self.pc = pc
        self.track = track
        self.sender = sender
        self.subscription = subscription
        self.passthrough = passthrough
        """videohub's RTP sender (None where aiortc's own loop sends)."""
        self.answer_sdp = answer_sdp
        self.etag = etag
        self.created = time.monotonic()
        self.connected_at: float | None = None
        self.last_report_at: float | None = None
        self._packets_received = -1
        self._closed = False
        self.remote_candidates: set[CandidateKey] = set()
        """The player's candidates the server checks (offer and trickle), as the policy kept them."""

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> bool:
        """Answered, but the player has not completed ICE and DTLS yet (it holds a pending slot)."""
        return self.connected_at is None and self.pc.connectionState != "connected"

    def _refresh_record(self) -> None:
        self.record.bytes_sent = self.track.bytes_sent
        self.record.frames_sent = self.track.frames_sent
        self.record.keyframe_requests = self.track.keyframe_requests
        try:
            self.record.drops = int(self.subscription.drops)
        except Exception:  # a closed subscription may not answer; keep the last count
            pass

    def info(self) -> SessionInfo:
        self._refresh_record()
        r = self.record
        return SessionInfo(
            ref=session_ref(r.id),
            camera_id=r.camera_id,
            camera_name=self.camera_name,
            line=self.line,
            stream=r.stream,
            user=r.user,
            remote=r.remote,
            state=self.pc.connectionState,
            started_at=r.started_at,
            duration_seconds=round(r.duration_seconds, 1),
            bytes_sent=r.bytes_sent,
            frames_sent=r.frames_sent,
            drops=r.drops,
            keyframe_requests=r.keyframe_requests,
            sending_from=(
                "aiortc" if self.passthrough is None else "ingest" if self.passthrough.direct else "loop"
            ),
        )

    async def check_alive(self, now: float, connect_timeout: float, grace: float) -> str | None:
        """The reason to end this session now, or None while the player is there.

        aiortc has no "disconnected" state and its ICE consent checks give up only after ~30 s, so
        liveness is judged from what the player sends: browsers and aiortc send RTCP (receiver
        reports, REMB) about once a second even while the camera sends nothing, so no packet from
        the player for ``grace`` seconds means it is gone.
        """
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            return state
        if state != "connected":
            if self.connected_at is None and now - self.created > connect_timeout:
                return "connect_timeout"
            return None
        if self.connected_at is None:
            self.connected_at = now
        received = await self._packets_from_player()
        if received != self._packets_received:
            self._packets_received = received
            self.last_report_at = now
        last = self.last_report_at if self.last_report_at is not None else self.connected_at
        if now - last > grace:
            return "disconnected"
        return None

    async def _packets_from_player(self) -> int:
        """Packets the DTLS transport has received from the player (RTCP, DTLS; media never).

        Read from the transport's counter, which is what ``getStats()`` reports as the transport's
        ``packetsReceived``: ``getStats()`` builds datetimes and a whole stats report for every
        session every second (a visible share of one viewer's cost in the fan-out profile).
        """
        counter = getattr(self.sender.transport, _RX_PACKETS, None)
        if isinstance(counter, int):
            return counter
        for stat in (await self.sender.getStats()).values():  # another aiortc: the public way
            if getattr(stat, "type", None) == "transport":
                return int(stat.packetsReceived)
        return -1

    async def add_remote_candidates(self, frag: TrickleFragment) -> None:
        """Trickled player candidates (the ICE transport ignores them once its checks are over)."""
        mid = self.sender_mid()
        for candidate in frag.candidates:
            if candidate.sdpMid is None:
                candidate.sdpMid = mid
            try:
                await self.pc.addIceCandidate(candidate)
            except ValueError:
                # After end-of-candidates aioice refuses more; a late candidate is simply not needed.
                log.debug("session %s: late trickle candidate ignored", session_ref(self.id))

    def sender_mid(self) -> str | None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender is self.sender:
                mid: str | None = transceiver.mid
                return mid
        return None

    def remote_ufrag(self) -> str | None:
        description = self.pc.remoteDescription
        if description is None:
            return None
        for line in description.sdp.splitlines():
            if line.startswith("a=ice-ufrag:"):
                return line.split(":", 1)[1].strip()
        return None

    async def close(self, reason: str) -> SessionRecord:
        if self._closed:
            return self.record
        self._closed = True
        self._refresh_record()
        self.record.end_reason = reason
        self.record.ended_at = datetime.now(UTC)
        self.track.stop()  # also closes the subscription
        try:
            await self.pc.close()
        except Exception:  # closing must finish whatever state aiortc is in
            log.exception("session %s: error closing the peer connection", session_ref(self.id))
        return self.record
