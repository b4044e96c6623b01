"""Availability history: state transitions kept in Redis, and uptime % / MTTR computed from them.

Two ratios, as maintenance departments report them:
- ``availability`` (在线率): share of the known time the stream was not offline (online or degraded);
- ``healthy`` (完好率): share of the known time it was online with a good picture.
Time in ``unknown`` (before the first check, or while the service was down) counts for neither.
An *incident* is a run of non-online time; MTTR is the mean length of the incidents that ended
(back online) within the window, clipped to the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from videohub.health.state import State, Transition

WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}


@dataclass(frozen=True, slots=True)
class Availability:
    known_seconds: float
    online_seconds: float
    degraded_seconds: float
    offline_seconds: float
    incidents: int
    """Incidents that ended within the window."""
    repair_seconds: float
    """Summed length of those incidents (for combining MTTR over cameras)."""

    @property
    def availability(self) -> float | None:
        if self.known_seconds <= 0:
            return None
        return (self.online_seconds + self.degraded_seconds) / self.known_seconds

    @property
    def healthy(self) -> float | None:
        return None if self.known_seconds <= 0 else self.online_seconds / self.known_seconds

    @property
    def mttr_seconds(self) -> float | None:
        return None if self.incidents == 0 else self.repair_seconds / self.incidents

    def as_dict(self) -> dict[str, Any]:
        def pct(value: float | None) -> float | None:
            return None if value is None else round(100.0 * value, 3)

        return {
            "availability_pct": pct(self.availability),
            "healthy_pct": pct(self.healthy),
            "mttr_seconds": None if self.mttr_seconds is None else round(self.mttr_seconds, 1),
            "incidents": self.incidents,
            "known_seconds": round(self.known_seconds, 1),
            "offline_seconds": round(self.offline_seconds, 1),
            "degraded_seconds": round(self.degraded_seconds, 1),
        }


def compute(
    transitions: Sequence[Transition], start: float, end: float, initial: State = "unknown"
) -> Availability:
    """Time per state in ``[start, end]`` given the state at ``start`` and the transitions after it."""
    seconds: dict[State, float] = {"unknown": 0.0, "online": 0.0, "degraded": 0.0, "offline": 0.0}
    state, at = initial, start
    incident_start: float | None = start if initial in ("degraded", "offline") else None
    incidents, repair = 0, 0.0
    for t in sorted(transitions, key=lambda t: t.at):
        if t.at <= start:
            state = t.new
            incident_start = start if state in ("degraded", "offline") else None
            continue
        if t.at >= end:
            break
        seconds[state] += t.at - at
        state, at = t.new, t.at
        if state in ("degraded", "offline"):
            if incident_start is None:
                incident_start = at
        elif incident_start is not None:
            if state == "online":
                incidents += 1
                repair += at - incident_start
            incident_start = None
    seconds[state] += max(0.0, end - at)
    known = seconds["online"] + seconds["degraded"] + seconds["offline"]
    return Availability(known, seconds["online"], seconds["degraded"], seconds["offline"], incidents, repair)


def combine(items: Iterable[Availability]) -> Availability:
    """A line's availability: time-weighted over its cameras; MTTR over all their incidents."""
    known = online = degraded = offline = repair = 0.0
    incidents = 0
    for a in items:
        known += a.known_seconds
        online += a.online_seconds
        degraded += a.degraded_seconds
        offline += a.offline_seconds
        incidents += a.incidents
        repair += a.repair_seconds
    return Availability(known, online, degraded, offline, incidents, repair)


class AvailabilityHistory:
    """Per-camera transition history in Redis sorted sets (``vh:health:tr:<camera>``, score = time).

    Written by the ``HealthMonitor`` on every transition, read by the health API; trimmed by age.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str = "vh:") -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, camera: str) -> str:
        return f"{self.prefix}health:tr:{camera}"

    async def record(self, t: Transition) -> None:
        await self.redis.zadd(self._key(t.camera), {json.dumps(t.as_dict(), sort_keys=True): t.at})

    async def last(self, camera: str) -> Transition | None:
        rows = await self.redis.zrevrange(self._key(camera), 0, 0)
        return Transition.from_dict(json.loads(rows[0])) if rows else None

    async def window(self, cameras: Sequence[str], start: float, end: float) -> dict[str, Availability]:
        """Availability of each camera over ``[start, end]`` (one round trip for all of them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for camera in cameras:
                pipe.zrevrangebyscore(self._key(camera), start, "-inf", start=0, num=1)
                pipe.zrangebyscore(self._key(camera), f"({start}", end)
            rows = await pipe.execute()
        out: dict[str, Availability] = {}
        for i, camera in enumerate(cameras):
            before, inside = rows[2 * i], rows[2 * i + 1]
            initial: State = json.loads(before[0])["new"] if before else "unknown"
            transitions = [Transition.from_dict(json.loads(r)) for r in inside]
            out[camera] = compute(transitions, start, end, initial)
        return out

    async def recent(self, camera: str, limit: int = 50) -> list[Transition]:
        rows = await self.redis.zrevrange(self._key(camera), 0, limit - 1)
        return [Transition.from_dict(json.loads(r)) for r in rows]

    async def trim(self, cameras: Iterable[str], before: float) -> None:
        """Drop transitions older than ``before``, keeping the last one (it gives the state then)."""
        for camera in cameras:
            key = self._key(camera)
            keep = await self.redis.zrevrangebyscore(key, before, "-inf", start=0, num=1)
            if keep:
                await self.redis.zremrangebyscore(key, "-inf", f"({json.loads(keep[0])['at']}")

    async def forget(self, camera: str) -> None:
        await self.redis.delete(self._key(camera))
