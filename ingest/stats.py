"""Packet-level statistics of one camera stream: cheap counters updated by the ingest thread.

``StatsSnapshot`` is the one stream-stats model: the hub embeds it in its ``FeedStats``, health reads
it, and the API's schema is derived from it (pydantic reads the dataclass and its field docstrings),
so a new field or state is written here once. ``StreamState`` is its enum of states.

Written by exactly one ingest thread, read from the event loop through ``snapshot()``: every field
is a plain attribute assignment (atomic under the GIL), and rates are computed over short windows
at packet time, so a read never walks history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar

from ingest.errors import Reason
from ingest.reconnect import State

_WINDOW = 2.0
"""Seconds over which fps and bitrate are measured."""


class StreamState(StrEnum):
    """Where a camera stream is: the ingest's states (``ingest.reconnect.State``) plus the hub's idle."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"
    IDLE = "idle"
    """on_demand and nobody watching: no ingest runs (only the hub reports it)."""

    @classmethod
    def of(cls, state: State) -> StreamState:
        return cls(state.value)


ENDED = frozenset({StreamState.BACKING_OFF, StreamState.STOPPED})
"""States in which the ingest session has ended (no packets are coming)."""


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Packet-level stats of the current (or last) ingest session of one stream."""

    # The API's schema is this dataclass: pydantic takes each field's docstring as its description.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}

    state: StreamState
    reason: str | None
    """Why it is backing off or stopped: auth_failed, not_found, refused, unreachable, timeout,
    stalled, unsupported_codec, blocked (the URL was refused before opening), eof, error."""
    codec: str | None
    """The camera's codec (h264, hevc, mjpeg …)."""
    profile: str | None
    width: int | None
    height: int | None
    fps: float
    bitrate_kbps: float
    keyframe_interval: float | None
    """Seconds between the last two keyframes."""
    mode: str | None
    """passthrough or transcode."""
    output_codec: str
    packets: int
    bytes: int
    drops: int
    """Packets the ingest discarded (before the first keyframe, unreadable, fps cap, transcoder skips)."""
    reconnects: int
    failures: int
    """Consecutive failed sessions (drives the backoff)."""
    retry_in: float | None
    """Seconds until the next connection attempt while backing off."""
    last_packet_age: float | None
    """Seconds since the last packet (None before the first)."""
    last_error: str | None
    """The error's text (not shown to a line admin)."""
    last_error_reason: str | None
    """The last error's ``Reason`` value."""
    last_packet_at: float | None = None
    """Wall-clock time (Unix seconds) of the last packet."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StreamStats:
    """Counters of one stream; the ingest thread writes, anyone reads ``snapshot()``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.state = State.CONNECTING
        self.reason: Reason | None = None
        self.codec: str | None = None
        self.profile: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.mode: str | None = None
        self.output_codec = "h264"
        self.packets = 0
        self.bytes = 0
        self.drops = 0
        self.reconnects = 0
        self.failures = 0
        self.retry_at: float | None = None
        self.last_packet_at: float | None = None
        self.last_keyframe_at: float | None = None
        self.keyframe_interval: float | None = None
        self.last_error: str | None = None
        self.last_error_reason: Reason | None = None
        self.fps = 0.0
        self.bitrate_kbps = 0.0
        self._win_start: float | None = None
        self._win_packets = 0
        self._win_bytes = 0

    def on_packet(self, size: int, keyframe: bool, now: float) -> None:
        """One video packet from the camera (before normalizing)."""
        self.packets += 1
        self.bytes += size
        self.last_packet_at = now
        if keyframe:
            if self.last_keyframe_at is not None:
                self.keyframe_interval = now - self.last_keyframe_at
            self.last_keyframe_at = now
        if self._win_start is None:
            self._win_start = now
            self._win_packets = self._win_bytes = 0
            return
        self._win_packets += 1
        self._win_bytes += size
        elapsed = now - self._win_start
        if elapsed >= _WINDOW:
            self.fps = self._win_packets / elapsed
            self.bitrate_kbps = self._win_bytes * 8 / elapsed / 1000
            self._win_start = now
            self._win_packets = self._win_bytes = 0

    def on_error(self, reason: Reason, message: str) -> None:
        self.last_error = message
        self.last_error_reason = reason

    def session_ended(self) -> None:
        # Rates of a dead session must not linger as if the camera were still sending.
        self._win_start = None
        self.fps = 0.0
        self.bitrate_kbps = 0.0

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        age = None if self.last_packet_at is None else max(0.0, now - self.last_packet_at)
        retry_in = None if self.retry_at is None else max(0.0, self.retry_at - now)
        stale = age is None or age > _WINDOW * 2
        return StatsSnapshot(
            state=StreamState.of(self.state),
            reason=self.reason.value if self.reason is not None else None,
            codec=self.codec,
            profile=self.profile,
            width=self.width,
            height=self.height,
            fps=0.0 if stale else round(self.fps, 2),
            bitrate_kbps=0.0 if stale else round(self.bitrate_kbps, 1),
            keyframe_interval=None if self.keyframe_interval is None else round(self.keyframe_interval, 3),
            mode=self.mode,
            output_codec=self.output_codec,
            packets=self.packets,
            bytes=self.bytes,
            drops=self.drops,
            reconnects=self.reconnects,
            failures=self.failures,
            retry_in=None if retry_in is None else round(retry_in, 3),
            last_packet_age=None if age is None else round(age, 3),
            last_packet_at=None if age is None else round(time.time() - age, 3),
            last_error=self.last_error,
            last_error_reason=self.last_error_reason.value if self.last_error_reason else None,
        )
