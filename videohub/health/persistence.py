"""Health in Redis: each camera's current state, the transitions stream and the availability history.

Written by the monitor (``videohub.health.monitor``), read by the health API (``videohub.health.report``,
for cameras other workers watch) and by /ws (``live``: the transitions as they happen).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from videohub.alerts.live import StreamFanout
from videohub.alerts.store import entry_field
from videohub.health.availability import AvailabilityHistory
from videohub.health.state import Transition

EVENTS_MAXLEN = 10_000


def parse_transition(fields: dict[Any, Any]) -> Transition:
    return Transition.from_dict(json.loads(entry_field(fields, "t")))


class HealthStore:
    """The monitor's Redis records: ``state_key`` (hash camera → state), ``events_stream`` (transitions,
    fanned out live to /ws) and ``history`` (availability windows)."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "vh:") -> None:
        self.redis = redis
        self.history = AvailabilityHistory(redis, prefix)
        self.state_key = f"{prefix}health:state"
        self.events_stream = f"{prefix}health:events"
        self.live: StreamFanout[Transition] = StreamFanout(redis, self.events_stream, parse_transition)

    async def record(self, transition: Transition) -> None:
        """One transition: into the history and onto the live stream."""
        await self.history.record(transition)
        await self.redis.xadd(
            self.events_stream,
            {"t": json.dumps(transition.as_dict())},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )

    async def save_state(self, camera_id: str, state: dict[str, Any]) -> None:
        await self.redis.hset(self.state_key, camera_id, json.dumps(state))

    async def forget(self, camera_id: str) -> None:
        await self.redis.hdel(self.state_key, camera_id)

    async def states(self, camera_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored state of each camera that has one (cameras other workers watch)."""
        if not camera_ids:
            return {}
        rows = await self.redis.hmget(self.state_key, list(camera_ids))
        return {cid: json.loads(raw) for cid, raw in zip(camera_ids, rows, strict=True) if raw is not None}
