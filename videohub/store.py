"""State in Redis: the one client every part of the service shares, and what an outage looks like.

The client runs on a blocking pool of ``store.max_connections``: a burst waits up to
``store.pool_timeout_seconds`` for a free connection instead of failing at once. It is built by
``videohub.redisurl.open_client`` from a plain URL or a ``redis+sentinel://`` one (which follows a
primary failover). With no ``redis_url`` the service starts an embedded Valkey (``videohub.valkey``)
and supervises it.

A Redis outage (refused, reset, timed out, still loading its AOF, no free connection) raises one of
``OUTAGE``. The API answers those with 503 and ``Retry-After``; background loops wait and retry,
logging through an ``OutageLog`` so an outage of minutes is a few log lines, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from videohub.redisurl import close_client, dedicated_client, discover_replicas, open_client
from videohub.settings.store import StoreSettings
from videohub.valkey import EmbeddedValkey, Watchdog

log = logging.getLogger(__name__)

PREFIX = "vh:"

OUTAGE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
"""What a Redis outage raises. ``BusyLoadingError`` (the AOF still loading after a restart), "no
connection available" from the pool and, behind Sentinels, ``MasterNotFoundError`` (no primary
during a failover) are ``ConnectionError``s. ``ReadOnlyError`` is the one ``ResponseError`` here: a
write that reached a primary just demoted to a replica. Any other ``ResponseError`` (a command Redis
refused) is a bug or bad data, not an outage."""


def key(*parts: str) -> str:
    """A Redis key in videohub's namespace: key("cam", id) -> "vh:cam:<id>"."""
    return PREFIX + ":".join(parts)


class OutageLog:
    """Warnings of one loop about a Redis outage, without a flood.

    The first failure is logged at once; while it lasts, one line per ``every`` seconds says how many
    failures there were; the first success after failures logs that Redis is back. A caller that
    never sees a success (an API request only fails) starts a new outage after ``every`` seconds
    without failures.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.clock = clock
        self.failing_since: float | None = None
        self.failures = 0
        self._last_logged = 0.0
        self._last_failure = 0.0

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        if self.failing_since is not None and now - self._last_failure >= self.every:
            self.failing_since, self.failures = None, 0  # a new outage
        self._last_failure = now
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = self._last_logged = now
            self.logger.warning("%s: redis unavailable (%s)", self.what, _describe(exc))
        elif now - self._last_logged >= self.every:
            self._last_logged = now
            self.logger.warning(
                "%s: redis still unavailable after %.0f s (%d failures; %s)",
                self.what,
                now - self.failing_since,
                self.failures,
                _describe(exc),
            )

    def ok(self) -> None:
        if self.failing_since is None:
            return
        self.logger.info(
            "%s: redis back after %.0f s (%d failures)",
            self.what,
            self.clock() - self.failing_since,
            self.failures,
        )
        self.failing_since = None
        self.failures = 0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Store:
    """Owns the Redis client (and the embedded Valkey when there is no external Redis)."""

    def __init__(self, redis: aioredis.Redis, embedded: EmbeddedValkey | None = None) -> None:
        self.redis = redis
        self.embedded = embedded
        self.watchdog: Watchdog | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, redis_url: str | None, data_dir: Path, settings: StoreSettings | None = None
    ) -> Store:
        s = settings or StoreSettings()
        embedded: EmbeddedValkey | None = None
        if redis_url is None:
            embedded = EmbeddedValkey(data_dir)
            redis_url = await asyncio.to_thread(embedded.start)
        client = open_client(redis_url, s)
        store = cls(client, embedded)
        try:
            await store.redis.ping()
        except RedisError:
            await store.close()
            raise
        await discover_replicas(store.redis)
        return store

    def dedicated(self) -> aioredis.Redis:
        """A client with its own single connection and no retries, for a long-lived pub/sub.

        It does not take a connection from the shared pool, and a lost connection surfaces at once
        instead of being re-established silently (messages published meanwhile would be missed).
        """
        return dedicated_client(self.redis)

    def supervised(self, interval: float) -> AbstractAsyncContextManager[None]:
        """Run the embedded Valkey's watchdog for the block (nothing to do for an external Redis)."""
        return self._supervise(interval)

    @asynccontextmanager
    async def _supervise(self, interval: float) -> AsyncIterator[None]:
        if self.embedded is None:
            yield
            return
        async with Watchdog(self.embedded, interval) as watchdog:
            self.watchdog = watchdog
            yield

    @property
    def restarts(self) -> int:
        """How often the watchdog restarted the embedded Valkey."""
        return self.watchdog.restarts if self.watchdog is not None else 0

    def down_for(self) -> float:
        """Seconds the embedded Valkey has been dead without a successful restart (0 while it runs)."""
        watchdog = self.watchdog
        if watchdog is None or watchdog.down_since is None:
            return 0.0
        return watchdog.clock() - watchdog.down_since

    async def ping(self, within: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(within):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        """Close the client and stop the embedded server. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RedisError, OSError):
            await close_client(self.redis)
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
