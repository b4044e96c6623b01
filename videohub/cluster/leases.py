"""Camera stream leases: one owner per stream, renewed, fenced, lost at once when renewal fails.

``vh:cluster:lease:<camera>:<stream>`` holds ``"<worker_id> <token>"`` and expires after the lease TTL.
A grant is ``SET NX PX`` done in a script that first takes the next token from
``vh:cluster:fence:<camera>:<stream>`` (``INCR``), so every grant of a stream has a larger token than
the one before: a write that checks the token (``Fence``) from an old owner that was paused past its
lease fails. Renewal (every third of the TTL, all of a worker's leases in one script call) extends only
leases whose value is still this worker's; release and hand-over compare the value first too.

The local deadline of a lease is taken *before* the command that granted or renewed it was sent, plus
the TTL minus a margin, so this worker always believes it lost a lease before Redis lets it lapse: the
``LeaseTable`` watchdog tells ``on_lost`` the moment a deadline passes, whether or not Redis answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.fence import Fence
from videohub.store import OUTAGE, PREFIX, OutageLog

log = logging.getLogger(__name__)

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ' ' .. token
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
return {1, value}
"""

_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_TRANSFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[2] .. ' ' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return value
"""

LEASE_PREFIX = f"{PREFIX}cluster:lease:"


def lease_key(stream: str) -> str:
    """``stream`` is ``<camera>:<stream>`` (``placement.stream_key``)."""
    return f"{LEASE_PREFIX}{stream}"


def fence_key(stream: str) -> str:
    return f"{PREFIX}cluster:fence:{stream}"


def holder_of(value: str | None) -> str | None:
    return value.split(" ", 1)[0] if value else None


@dataclass(slots=True)
class Held:
    stream: str
    value: str
    deadline: float
    """Monotonic time by which this worker must consider the lease lost without a renewal."""

    @property
    def fence(self) -> Fence:
        return Fence(lease_key(self.stream), self.value)


class LeaseTable(Part):
    """This worker's leases: grant, renew (one script call per turn), release, hand over, watch deadlines.

    ``on_lost(stream)`` is called (on the loop, at most once per grant) when a lease is found taken
    by another worker at renewal, or when its local deadline passes without a renewal.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        worker_id: str,
        ttl_ms: int,
        on_lost: Callable[[str], None],
    ) -> None:
        self._redis = redis
        self.worker_id = worker_id
        self.ttl_ms = ttl_ms
        self._on_lost = on_lost
        self._held: dict[str, Held] = {}
        self._tasks = TaskOwner("cluster-leases")
        self._closing = CloseOnce()
        self._outage = OutageLog(log, "cluster leases")
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._transfer = redis.register_script(_TRANSFER)

    # -- what the rest reads --------------------------------------------------------------------

    @property
    def ttl(self) -> float:
        return self.ttl_ms / 1000

    @property
    def margin(self) -> float:
        """Seconds before Redis's expiry at which this worker counts a lease lost (clock skew, scheduling)."""
        return min(1.0, self.ttl / 4)

    def holds(self, stream: str) -> bool:
        held = self._held.get(stream)
        return held is not None and held.deadline > time.monotonic()

    def held(self) -> list[str]:
        return list(self._held)

    def fence(self, stream: str) -> Fence | None:
        held = self._held.get(stream)
        return held.fence if held is not None else None

    def __len__(self) -> int:
        return len(self._held)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._tasks.start()
        self._tasks.spawn(self._renew_loop(), name="lease-renew")
        self._tasks.spawn(self._watchdog(), name="lease-watchdog")

    async def close(self) -> None:
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()

    # -- operations ----------------------------------------------------------------------------

    async def acquire(self, stream: str) -> tuple[bool, str | None]:
        """Take a free lease: (True, None) granted, or (False, holder id) when another worker holds it.
        A lease this worker holds already counts as granted; one naming this worker that it does not
        hold (handed over to it, or left by this worker's previous process) is adopted."""
        if self.holds(stream):
            return True, None
        sent = time.monotonic()
        granted, value = await self._acquire(
            keys=[lease_key(stream), fence_key(stream)], args=[self.worker_id, self.ttl_ms]
        )
        value = str(value)
        if not int(granted):
            if holder_of(value) != self.worker_id:
                return False, holder_of(value)
            # Ours by name: handed over to this worker, or left by its previous process (ids are unique).
            renewed = await self._renew(keys=[lease_key(stream)], args=[self.ttl_ms, value])
            if not renewed or not int(renewed[0]):
                return False, None
        self._held[stream] = Held(stream, value, sent + self.ttl - self.margin)
        return True, None

    async def release(self, stream: str) -> None:
        """Let go of a lease (another worker may take it at once). Forgotten locally first."""
        held = self._held.pop(stream, None)
        if held is not None:
            await self._release(keys=[lease_key(stream)], args=[held.value])

    async def transfer(self, stream: str, to_worker: str) -> bool:
        """Hand a held lease to ``to_worker`` (a new token), keeping nothing here. False when it was
        no longer this worker's."""
        held = self._held.pop(stream, None)
        if held is None:
            return False
        moved = await self._transfer(
            keys=[lease_key(stream), fence_key(stream)], args=[held.value, to_worker, self.ttl_ms]
        )
        return moved is not None

    def forget(self, stream: str) -> None:
        """Stop renewing without touching Redis (the lease lapses by itself)."""
        self._held.pop(stream, None)

    async def holders(self, streams: list[str]) -> dict[str, str | None]:
        """Who holds each stream's lease now (None: free)."""
        if not streams:
            return {}
        values = await self._redis.mget([lease_key(s) for s in streams])
        return {s: holder_of(v) for s, v in zip(streams, values, strict=True)}

    async def renew(self) -> None:
        """Renew every held lease in one call; the ones another worker holds now are lost."""
        held = list(self._held.values())
        if not held:
            return
        sent = time.monotonic()
        results = await self._renew(
            keys=[lease_key(h.stream) for h in held], args=[self.ttl_ms, *(h.value for h in held)]
        )
        for h, ok in zip(held, results, strict=True):
            if self._held.get(h.stream) is not h:
                continue  # released or handed over meanwhile
            if int(ok):
                h.deadline = sent + self.ttl - self.margin
            else:
                self._lose(h, "taken by another worker")

    def _lose(self, held: Held, why: str) -> None:
        if self._held.get(held.stream) is held:
            del self._held[held.stream]
            log.warning("cluster: lease of %s lost (%s); stopping it", held.stream, why)
            self._on_lost(held.stream)

    async def _renew_loop(self) -> None:
        interval = self.ttl / 3
        while True:
            checkpoint()
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(interval * 2):
                    await self.renew()
                self._outage.ok()
            except OUTAGE as exc:  # TimeoutError is an OSError
                self._outage.failed(exc)

    async def _watchdog(self) -> None:
        step = min(0.1, self.ttl / 20)
        while True:
            checkpoint()
            await asyncio.sleep(step)
            now = time.monotonic()
            for held in [h for h in self._held.values() if h.deadline <= now]:
                self._lose(held, "not renewed in time: Redis unreachable?")
