"""Live alert events for the UI: an in-process fan-out fed by tailing the Redis event stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from videohub.alerts.models import AlertEvent
from videohub.alerts.store import parse_event

log = logging.getLogger(__name__)


class Subscription:
    """One subscriber's bounded queue: a stalled WebSocket drops its oldest events, counted."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[AlertEvent] = asyncio.Queue(size)
        self.dropped = 0

    def put(self, event: AlertEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[AlertEvent]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[AlertEvent]:
        while True:
            yield await self.queue.get()


class LiveAlerts:
    """Pushes every alert event (from any worker) to the subscribers in this process (the /ws endpoint).

    Tailing the stream rather than publishing locally means a UI connected to one worker also sees
    alerts raised by another worker sharing the Redis.
    """

    def __init__(self, redis: aioredis.Redis, stream: str, buffer: int = 256) -> None:
        self.redis = redis
        self.stream = stream
        self.buffer = buffer
        self._subs: set[Subscription] = set()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """``async with live.subscribe() as sub: async for event in sub: ...``"""
        sub = Subscription(self.buffer)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._subs)

    def publish(self, event: AlertEvent) -> None:
        for sub in list(self._subs):
            sub.put(event)

    async def run(self) -> None:
        """Tail the stream from now on until cancelled."""
        last = "$"
        while True:
            try:
                rows = await self.redis.xread({self.stream: last}, count=100, block=1000)
            except (RedisConnectionError, OSError) as exc:
                log.warning("live alerts: redis unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in rows:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    try:
                        self.publish(parse_event(fields))
                    except ValueError:
                        log.exception("live alerts: bad event %s", last)
