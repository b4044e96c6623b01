"""Who is in the cluster: each worker's heartbeat record, and the live set every worker reads.

Each worker writes ``vh:cluster:worker:<id>`` (its ``WorkerInfo`` as JSON, expiring after the heartbeat
TTL) and its last beat into the ``vh:cluster:workers`` sorted set, once a second; in the same turn it
reads every live record, so ``WorkerDirectory.alive`` is at most one beat old. A worker whose record
expired is gone (its sorted-set entry is pruned). A worker leaving cleanly deletes its record first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.settings.cluster import ClusterSettings
from videohub.store import OUTAGE, PREFIX, OutageLog

log = logging.getLogger(__name__)

WORKERS = f"{PREFIX}cluster:workers"


def worker_key(worker_id: str) -> str:
    return f"{PREFIX}cluster:worker:{worker_id}"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker as the others see it (its heartbeat record)."""

    id: str
    role: str
    host: str
    pid: int
    address: str
    """Internal HTTP base URL (the same app and auth as the public port)."""
    media_host: str
    capacity: float
    started_at: float
    heartbeat_at: float = 0.0
    cameras: int = 0
    """Camera streams it ingests (holds a lease for)."""
    viewers: int = 0
    """Its live WHEP sessions."""
    cpu: float = 0.0
    """Percent of one core over the last heartbeat interval."""
    draining: bool = False
    """Stopping: handing its streams over; nothing new is placed on it."""

    @property
    def ingests(self) -> bool:
        return self.role != "api"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: str) -> WorkerInfo | None:
        try:
            data = json.loads(raw)
            return cls(
                id=str(data["id"]),
                role=str(data["role"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                address=str(data["address"]),
                media_host=str(data["media_host"]),
                capacity=float(data["capacity"]),
                started_at=float(data["started_at"]),
                heartbeat_at=float(data.get("heartbeat_at", 0.0)),
                cameras=int(data.get("cameras", 0)),
                viewers=int(data.get("viewers", 0)),
                cpu=float(data.get("cpu", 0.0)),
                draining=bool(data.get("draining", False)),
            )
        except (ValueError, KeyError, TypeError):
            return None


def default_worker_id() -> str:
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower()).strip("-") or "host"
    return f"{host[:20]}-{os.getpid()}"


def identity(settings: ClusterSettings, address: str) -> WorkerInfo:
    """This process's static record (counters start at zero)."""
    return WorkerInfo(
        id=settings.worker_id or default_worker_id(),
        role=settings.role,
        host=socket.gethostname(),
        pid=os.getpid(),
        address=address,
        media_host=settings.advertise_host,
        capacity=settings.capacity,
        started_at=time.time(),
    )


Counters = Callable[[], tuple[int, int]]
"""(cameras, viewers) of this worker now."""


class CpuMeter:
    """This process's CPU use since the last reading, in percent of one core."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def read(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used = (cpu - self._cpu) / max(wall - self._wall, 1e-6)
        self._cpu, self._wall = cpu, wall
        return round(100.0 * used, 1)


class WorkerDirectory(Part):
    """Beats this worker's record and reads the live ones; ``on_change`` hears when the set changes."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: ClusterSettings,
        me: WorkerInfo,
        counters: Counters,
        *,
        interval: float | None = None,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self.me = me
        self._counters = counters
        self.interval = interval if interval is not None else min(1.0, settings.heartbeat_ttl_ms / 3000)
        self._alive: dict[str, WorkerInfo] = {}
        self._listeners: list[Callable[[], None]] = []
        self._gone_listeners: list[Callable[[WorkerInfo], None]] = []
        self._cpu = CpuMeter()
        self._tasks = TaskOwner("cluster-workers")
        self._closing = CloseOnce()
        self._outage = OutageLog(log, "cluster heartbeat")
        self.beating = asyncio.Event()
        """Set once a beat reached Redis."""

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def on_gone(self, listener: Callable[[WorkerInfo], None]) -> None:
        """Told of each worker that was alive at the previous beat and is not now."""
        self._gone_listeners.append(listener)

    @property
    def alive(self) -> list[WorkerInfo]:
        """Live workers as of the last beat, sorted by id (this one included while it beats)."""
        return [self._alive[k] for k in sorted(self._alive)]

    def get(self, worker_id: str) -> WorkerInfo | None:
        return self._alive.get(worker_id)

    async def start(self) -> None:
        await self._tasks.start()
        try:
            await self.beat()
        except OUTAGE as exc:
            self._outage.failed(exc)
        self._tasks.spawn(self._loop(), name="cluster-heartbeat")

    async def close(self) -> None:
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()
        try:  # leaving cleanly: the others see it gone at their next beat, not after the TTL
            async with asyncio.timeout(2.0):
                await self._redis.delete(worker_key(self.me.id))
                await self._redis.zrem(WORKERS, self.me.id)
        except OUTAGE as exc:  # TimeoutError is an OSError
            log.warning("cluster: could not remove this worker's record (%s); it expires by itself", exc)

    async def _loop(self) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.interval)
            try:
                async with asyncio.timeout(max(self.interval * 2, 1.0)):
                    await self.beat()
                self._outage.ok()
            except OUTAGE as exc:  # TimeoutError is an OSError
                self._outage.failed(exc)

    async def announce_draining(self) -> None:
        """Beat at once with ``draining`` set, so the others stop placing streams here."""
        self.me = replace(self.me, draining=True)
        try:
            async with asyncio.timeout(2.0):
                await self.beat()
        except OUTAGE as exc:  # TimeoutError is an OSError
            self._outage.failed(exc)

    async def beat(self) -> None:
        """Write this worker's record, then read every live one."""
        cameras, viewers = self._counters()
        now = time.time()
        self.me = replace(self.me, heartbeat_at=now, cameras=cameras, viewers=viewers, cpu=self._cpu.read())
        ttl = self._settings.heartbeat_ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(worker_key(self.me.id), json.dumps(self.me.to_json()), px=ttl)
            pipe.zadd(WORKERS, {self.me.id: int(now * 1000)})
            pipe.zrange(WORKERS, 0, -1)
            results = await pipe.execute()
        ids: list[str] = results[2]
        raws = await self._redis.mget([worker_key(i) for i in ids]) if ids else []
        alive: dict[str, WorkerInfo] = {}
        gone: list[str] = []
        for worker_id, raw in zip(ids, raws, strict=True):
            info = WorkerInfo.from_json(raw) if raw else None
            if info is None:
                gone.append(worker_id)
            else:
                alive[worker_id] = info
        alive[self.me.id] = self.me  # this worker's own record is the one it just wrote
        if gone:  # expired records: prune only entries older than the TTL (one may be writing now)
            await self._redis.zremrangebyscore(WORKERS, 0, int(now * 1000) - 2 * ttl)
        changed = set(alive) != set(self._alive)
        left = [info for worker_id, info in self._alive.items() if worker_id not in alive]
        self._alive = alive
        self.beating.set()
        if changed:
            log.info("cluster: workers %s", ", ".join(sorted(alive)) or "none")
            for listener in self._listeners:
                listener()
            for info in left:
                for gone_listener in self._gone_listeners:
                    gone_listener(info)
