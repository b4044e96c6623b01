"""The viewer's video track: encoded H.264 access units from a Feed subscription, never decoded.

``PassthroughSender`` (sender.py) reads ``next_unit()``: the Feed's packet and its RTP timestamp, and
packetizes it through the shared ``Packetizer``. ``recv()`` keeps aiortc's own contract as a
fallback: aiortc's ``RTCRtpSender`` hands an ``av.Packet`` straight to ``H264Encoder.pack()`` (no
decode, no re-encode). Either way there is no ``MediaRelay``: the Feed's bounded subscription does
the fan-out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from ingest.packet import Packet
from videohub.errors import DeliveryFailed, FeedClosed
from videohub.hub.feed import Sink
from videohub.webrtc.feeds import FeedSubscription

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000
RTP_TIME_BASE = Fraction(1, CLOCK_RATE)


def to_rtp_ticks(pts: int, time_base: Fraction) -> int:
    """``int(pts * time_base * 90000)`` in integer arithmetic (Fraction math, per frame and viewer,
    showed up in the fan-out profile)."""
    if time_base.numerator == 1 and time_base.denominator == CLOCK_RATE:
        return pts
    ticks = pts * time_base.numerator * CLOCK_RATE
    quotient = abs(ticks) // time_base.denominator
    return quotient if ticks >= 0 else -quotient


class RtpClock:
    """Maps one viewer's packets onto the 90 kHz RTP clock.

    Spacing comes from the packets' own pts (in their time_base), or from ``received`` when the
    camera gave no pts or its pts jumped (reconnect, wrap). Packets that waited in the Feed's GOP cache
    (older than ``backlog`` seconds when sent) get timestamps 1 ms apart: the player decodes that
    burst at once and shows the live picture, instead of replaying the cached GOP at camera speed and
    staying seconds behind for the whole session.
    """

    BURST_STEP = CLOCK_RATE // 1000
    DEFAULT_STEP = CLOCK_RATE // 25

    def __init__(self, backlog: float = 0.15, max_gap: float = 5.0) -> None:
        self._backlog = backlog
        self._max_gap = int(max_gap * CLOCK_RATE)
        self._ts: int | None = None
        self._last_pts: int | None = None
        self._last_received = 0.0

    def map(self, packet: Packet, now: float) -> int:
        pts = None if packet.pts is None else to_rtp_ticks(packet.pts, packet.time_base)
        if self._ts is None:
            ts = 0
        else:
            by_clock = round((packet.received - self._last_received) * CLOCK_RATE)
            step = pts - self._last_pts if pts is not None and self._last_pts is not None else by_clock
            if not 0 < step <= self._max_gap:
                step = by_clock if 0 < by_clock <= self._max_gap else self.DEFAULT_STEP
            if now - packet.received > self._backlog:
                step = min(step, self.BURST_STEP)
            ts = self._ts + max(step, 1)
        self._ts = ts
        self._last_pts = pts
        self._last_received = packet.received
        return ts


class FeedTrack(MediaStreamTrack):
    """A ``kind == "video"`` track for one WHEP session; owns the session's Feed subscription.

    ``first`` is the keyframe the session manager already read (to learn the profile) and is sent
    first. When the feed ends, ``on_feed_end`` is told and aiortc's sender stops on MediaStreamError.
    """

    kind = "video"

    def __init__(
        self,
        subscription: FeedSubscription,
        first: Packet | None,
        on_feed_end: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._subscription = subscription
        self._pending = first
        self._on_feed_end = on_feed_end
        self._now = clock
        self._rtp = RtpClock()
        self.bytes_sent = 0
        self.frames_sent = 0
        self.keyframe_requests = 0
        self.first_sent_at: float | None = None

    async def next_unit(self) -> tuple[Packet, int]:
        """The next access unit and its RTP timestamp (before the sender's random offset).

        Raises MediaStreamError once the track or its feed has ended.
        """
        if self.readyState != "live":
            raise MediaStreamError
        if self._pending is not None:
            packet, self._pending = self._pending, None
        else:
            try:
                packet = await self._subscription.get()
            except asyncio.CancelledError:
                raise
            except FeedClosed as exc:  # camera deleted or disabled, hub stopping, or our sink raised
                log.debug("feed ended for track %s: %s", self.id, exc.reason)
                self._on_feed_end("send_failed" if isinstance(exc, DeliveryFailed) else "feed_closed")
                self.stop()
                raise MediaStreamError from None
            except Exception:  # any other source failing for good ends the session the same way
                log.exception("feed failed for track %s", self.id)
                self._on_feed_end("feed_error")
                self.stop()
                raise MediaStreamError from None
        return packet, self.stamp(packet)

    def stamp(self, packet: Packet) -> int:
        """Count ``packet`` as sent and give its RTP timestamp (before the sender's random offset).

        Called by the sender for every access unit: on the loop, then from the ingest thread once
        the track is direct (``go_direct``); never from both at once.
        """
        self.bytes_sent += packet.size
        self.frames_sent += 1
        now = self._now()
        if self.first_sent_at is None:
            self.first_sent_at = now
        return self._rtp.map(packet, now)

    def go_direct(self, sink: Sink) -> bool:
        """Have the ingest thread call ``sink`` with each new packet from now on (see ``Feed``).

        False while anything is still to be read here (the first keyframe, the GOP burst, packets
        that arrived meanwhile).
        Once direct, ``next_unit()`` returns nothing more: it waits for the feed's end.
        """
        if self._pending is not None or self.readyState != "live":
            return False
        return self._subscription.direct(sink)

    async def recv(self) -> av.Packet[Any]:
        """For aiortc's own sender loop (used only where ``PassthroughSender`` cannot be installed)."""
        packet, timestamp = await self.next_unit()
        out = av.Packet(packet.data)
        out.pts = timestamp
        out.time_base = RTP_TIME_BASE
        return out

    def request_keyframe(self) -> None:
        """A PLI/FIR from the player. Passthrough cannot make the camera send a keyframe now; the
        picture recovers at the camera's next keyframe (one GOP at most). Counted for the sessions API.
        """
        self.keyframe_requests += 1

    def stop(self) -> None:
        super().stop()
        self._subscription.close()
