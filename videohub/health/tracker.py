"""The tracker and evaluator: what the monitor keeps per camera, and the raw condition of a stream.

``Tracked`` is one camera's record inside the monitor; ``observe_stats`` turns its ingest stats and
its latest keyframe diagnosis into an observation (online, degraded, offline and the reasons) that
the camera's ``StreamHealth`` state machine then holds, debounces and turns into transitions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ingest.packet import Packet
from ingest.stats import ENDED, StatsSnapshot
from videohub.health.diagnosis import Diagnosis, PictureDiagnoser
from videohub.health.state import AlertKind, Observed, StreamHealth
from videohub.models import Camera
from videohub.settings.health import HealthSettings


@dataclass
class Tracked:
    """Everything the monitor keeps about one camera."""

    camera: Camera
    health: StreamHealth
    diagnoser: PictureDiagnoser
    tracked_since: float
    """When this worker began checking the camera: a stream with no packet yet is still connecting
    for ``offline_after_seconds`` from then."""
    checking: bool = False
    """Whether this worker checked the camera at its last tick (in a cluster, another may)."""
    diagnosis: Diagnosis | None = None
    diagnosed_at: float | None = None
    last_keyframe: Packet | None = None
    usual_fps: float | None = None
    reconciled: dict[AlertKind, tuple[str, ...]] | None = None
    probe: dict[str, Any] | None = None
    stats: StatsSnapshot | None = None
    probing: bool = False
    packet_marks: deque[tuple[float, int]] = field(default_factory=deque)
    """(time, packets received) at recent ticks: packets within the last offline_after seconds."""


def observe_stats(
    t: Tracked, stats: StatsSnapshot | None, s: HealthSettings, now: float
) -> tuple[Observed, tuple[str, ...]] | None:
    """The raw condition of a pulled stream from its stats and its latest diagnosis."""
    t.stats = stats
    age = None if stats is None else stats.last_packet_age
    if stats is not None and stats.state in ENDED:
        # The session ended (refused, EOF, auth …): no need to wait for the packet timeout.
        return "offline", (stats.reason or stats.last_error_reason or "error",)
    if stats is not None and age is not None:
        if t.packet_marks and stats.packets < t.packet_marks[-1][1]:
            t.packet_marks.clear()  # a new ingest source: its counters start again
        t.packet_marks.append((now, stats.packets))
        while len(t.packet_marks) > 2 and now - t.packet_marks[1][0] >= s.offline_after_seconds:
            t.packet_marks.popleft()
        since, count = t.packet_marks[0]
        if now - since >= s.offline_after_seconds and stats.packets - count < 2:
            # A straggler packet (seen from FFmpeg's RTSP reader during a stall) must not
            # restart the clock: fewer than 2 packets in the whole window is no stream.
            age = max(age, now - since)
    if age is None or age > s.offline_after_seconds:
        if age is None and now - t.tracked_since < s.offline_after_seconds:
            return None  # still connecting: no verdict yet
        reason = (stats.reason if stats else None) or ("stalled" if age is not None else "no_packets")
        return "offline", (reason,)
    reasons: list[str] = []
    if stats is not None and stats.fps > 0:
        if stats.fps < s.min_fps or (t.usual_fps is not None and stats.fps < s.low_fps_ratio * t.usual_fps):
            reasons.append("low_fps")
    if t.diagnosis is not None and t.diagnosed_at is not None:
        fresh = now - t.diagnosed_at <= 3 * s.diagnosis_interval_seconds + s.offline_after_seconds
        if fresh:
            reasons.extend(t.diagnosis.reasons)
    if stats is not None and stats.fps > 0 and "low_fps" not in reasons:
        # Learn the usual rate from healthy periods only.
        t.usual_fps = stats.fps if t.usual_fps is None else 0.95 * t.usual_fps + 0.05 * stats.fps
    return ("degraded", tuple(reasons)) if reasons else ("online", ())
