"""Live events for the UI: an in-process fan-out fed by tailing a Redis stream.

Used for alert events (``alerts:events``) and health transitions (``health:events``). Tailing the
stream rather than publishing locally means a UI connected to one worker also sees what another
worker sharing the Redis raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from videohub.aio import checkpoint
from videohub.alerts.models import AlertEvent
from videohub.alerts.store import parse_event, text
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)

T = TypeVar("T")


class Subscription(Generic[T]):
    """One subscriber's bounded queue: a stalled WebSocket drops its oldest events, counted."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(size)
        self.dropped = 0

    def put(self, event: T) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[T]:
        while True:
            yield await self.queue.get()


class StreamFanout(Generic[T]):
    """Pushes every entry of one Redis stream (from now on) to the subscribers in this process."""

    def __init__(
        self, redis: aioredis.Redis, stream: str, parse: Callable[[dict[Any, Any]], T], buffer: int = 256
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.parse = parse
        self.buffer = buffer
        self._subs: set[Subscription[T]] = set()
        self._outage = OutageLog(log, f"live {stream}")

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription[T]]:
        """``async with fanout.subscribe() as sub: async for event in sub: ...``"""
        sub: Subscription[T] = Subscription(self.buffer)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._subs)

    def publish(self, event: T) -> None:
        for sub in list(self._subs):
            sub.put(event)

    async def run(self) -> None:
        """Tail the stream from now on until cancelled; after an outage, go on from the last entry seen.

        "From now on" is the id of the stream's newest entry when the tail starts, never ``$`` in the
        loop: each ``XREAD $`` would miss what was added between two reads.
        """
        last: str | None = None
        while True:
            checkpoint()
            try:
                if last is None:
                    newest = await self.redis.xrevrange(self.stream, count=1)
                    last = text(newest[0][0]) if newest else "0-0"
                rows = await self.redis.xread({self.stream: last}, count=100, block=1000)
            except OUTAGE as exc:
                self._outage.failed(exc)
                await asyncio.sleep(1.0)
                continue
            except RedisError as exc:
                log.warning("live %s: xread refused: %s", self.stream, exc)
                await asyncio.sleep(1.0)
                continue
            self._outage.ok()
            for _stream, entries in rows:
                for entry_id, fields in entries:
                    last = text(entry_id)
                    try:
                        self.publish(self.parse(fields))
                    except ValueError:
                        log.exception("live %s: bad entry %s", self.stream, last)


class LiveAlerts(StreamFanout[AlertEvent]):
    """Alert events (opened, updated, acknowledged, resolved) for the /ws endpoint."""

    def __init__(self, redis: aioredis.Redis, stream: str, buffer: int = 256) -> None:
        super().__init__(redis, stream, parse_event, buffer)
