"""Which streams this worker pulls: the placement loop, hand-over, drain, and the hub's gate.

Between the cluster's leases (``leases.LeaseTable``) and the hub's desired streams
(``videohub.hub.streams.StreamTable``). Every quarter second ``Ownership.step`` walks the
``always_on`` streams: the ones placed here (``placement.assign``, bounded loads over the live
ingesting workers) whose lease is free, or names this worker, are taken and started; a held one
placed elsewhere now (a worker joined or left) is moved: stopped here first, then taken by its new
owner (``move``: never pulled twice, a gap of about a second for its viewers). An ``on_demand``
stream is claimed by its first viewer (``claim``) and released once its ingest has stopped. A lost
lease stops the stream at once (``StreamTable.revoke``: its viewers' sessions end and their players
reconnect to the new owner).

Hand-over (``handover``, for a drain): the lease is moved to the new owner with a new token; this
worker keeps pulling until the new owner has its first keyframe (it sets
``vh:cluster:live:<stream>``), or until ``handover_timeout_seconds``, then ends its feed. That keeps
the picture gap of a SIGTERM below a second, and it is the only time two workers pull one stream.
``drain`` hands over every held stream, a few at a time, when the worker is told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.cluster.leases import LeaseTable, holder_of, lease_key
from videohub.cluster.placement import assign, choose, stream_key
from videohub.cluster.workers import WorkerDirectory, WorkerInfo
from videohub.errors import NotOwner
from videohub.fence import Fence
from videohub.hub.streams import StreamTable
from videohub.models import Camera
from videohub.settings.cluster import ClusterSettings
from videohub.store import OUTAGE, PREFIX, OutageLog

log = logging.getLogger(__name__)

STEP_SECONDS = 0.25
DRAIN_PARALLEL = 4
_LIVE_TTL_MS = 30_000


def live_key(stream: str) -> str:
    return f"{PREFIX}cluster:live:{stream}"


def split(stream: str) -> tuple[str, str]:
    camera_id, _, name = stream.rpartition(":")
    return camera_id, name


class Ownership(Part):
    """The hub's ``StreamGate`` in cluster mode, and the loop that places the ``always_on`` streams."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: ClusterSettings,
        directory: WorkerDirectory,
        leases: LeaseTable,
    ) -> None:
        self._redis = redis
        self.settings = settings
        self.directory = directory
        self.leases = leases
        self._streams: StreamTable | None = None
        self._handing: dict[str, str] = {}
        """Streams being handed over: stream → new owner (pulled here until it has a picture)."""
        self.draining = False
        self._wake = asyncio.Event()
        self._tasks = TaskOwner("cluster-ownership")
        self._closing = CloseOnce()
        self._outage = OutageLog(log, "cluster placement")
        self._placed: tuple[tuple[str, ...], dict[str, str | None]] = ((), {})
        self._placed_keys: frozenset[str] = frozenset()
        directory.on_change(self._wake.set)

    def attach(self, streams: StreamTable) -> None:
        self._streams = streams

    @property
    def me(self) -> str:
        return self.directory.me.id

    def placement_pool(self) -> list[WorkerInfo]:
        """The workers streams may be placed on: live, ingesting, not draining."""
        return [w for w in self.directory.alive if w.ingests and not w.draining]

    def _always_on(self) -> frozenset[str]:
        """Every enabled camera's always_on streams (every worker knows the whole registry)."""
        streams = self._streams
        if streams is None:
            return frozenset()
        return frozenset(
            stream_key(entry.camera.id, name)
            for entry in streams
            if entry.camera.enabled
            for name, runner in entry.runners.items()
            if runner.always_on
        )

    def refresh_placement(self) -> None:
        """Recompute the assignment when the pool or the always_on streams changed (once per step)."""
        pool = self.placement_pool()
        ids = tuple(w.id for w in pool)
        always_on = self._always_on()
        if self._placed[0] != ids or self._placed_keys != always_on:
            self._placed = (ids, dict(assign(always_on, pool)))
            self._placed_keys = always_on

    def target(self, stream: str) -> WorkerInfo | None:
        """Where the stream belongs: the bounded-load assignment of the always_on streams over the
        placement pool (``placement.assign``, as of the last step), or plain rendezvous for an
        on_demand one."""
        pool = self.placement_pool()
        if self._placed[0] != tuple(w.id for w in pool):
            self.refresh_placement()
        cache = self._placed[1]
        if stream not in cache:
            chosen = choose(stream, pool)
            cache[stream] = chosen.id if chosen is not None else None
        found = cache[stream]
        return self.directory.get(found) if found is not None else None

    # -- the hub's gate ------------------------------------------------------------------------

    def may_pull(self, camera_id: str, stream: str) -> bool:
        key = stream_key(camera_id, stream)
        return self.leases.holds(key) or key in self._handing

    async def claim(self, camera_id: str, stream: str) -> None:
        """A first viewer of a stream not pulled here: take its lease, or raise NotOwner."""
        key = stream_key(camera_id, stream)
        if self.may_pull(camera_id, stream):
            return
        if self.draining:
            raise NotOwner("this worker is stopping", self.target(key))
        granted, holder = await self.leases.acquire(key)
        if not granted:
            owner = self.directory.get(holder) if holder is not None else None
            raise NotOwner(f"camera stream {key} is served by worker {holder}", owner)

    def responsible(self, camera: Camera) -> bool:
        """Whether this worker checks the camera's health: it pulls one of its streams, or (an
        on_demand camera nobody pulls here) its probes are placed here."""
        if any(self.leases.holds(stream_key(camera.id, name)) for name in ("main", "sub")):
            return True
        if camera.mode == "always_on":
            return False
        target = self.target(stream_key(camera.id, "main"))
        return target is not None and target.id == self.me

    def fence(self, camera: Camera) -> Fence | None:
        """The lease this worker's writes about the camera are fenced by (its pulled stream's)."""
        for name in ("main", "sub"):
            found = self.leases.fence(stream_key(camera.id, name))
            if found is not None:
                return found
        return None

    def lost(self, stream: str) -> None:
        """``LeaseTable.on_lost``: stop pulling it now."""
        if self._streams is not None and stream not in self._handing:
            camera_id, name = split(stream)
            self._streams.revoke(camera_id, name, "this worker lost the camera's lease")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._tasks.start()
        self._tasks.spawn(self._loop(), name="cluster-placement")

    async def close(self) -> None:
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self.drain()
        await self._tasks.close()

    async def _loop(self) -> None:
        while True:
            checkpoint()
            try:
                async with asyncio.timeout(5.0):
                    await self.step()
                self._outage.ok()
            except OUTAGE as exc:  # TimeoutError is an OSError
                self._outage.failed(exc)
            self._wake.clear()
            try:
                async with asyncio.timeout(STEP_SECONDS):
                    await self._wake.wait()
            except TimeoutError:
                pass

    # -- placement -----------------------------------------------------------------------------

    async def step(self) -> None:
        """One pass: take what is placed here and free, hand over what moved, release idle leases."""
        streams = self._streams
        if streams is None or self.draining or self.directory.get(self.me) is None:
            return  # not beating: this worker's view of the others is stale
        self.refresh_placement()
        wanted: list[str] = []
        known: set[str] = set()
        for entry in streams:
            if not entry.camera.enabled:
                continue
            for name, runner in list(entry.runners.items()):
                key = stream_key(entry.camera.id, name)
                known.add(key)
                if not runner.always_on:
                    if self.leases.holds(key) and runner.source is None and runner.feed.subscribers == 0:
                        await self.leases.release(key)  # an on_demand stream that stopped
                    continue
                target = self.target(key)
                if self.leases.holds(key):
                    if target is not None and target.id != self.me and key not in self._handing:
                        await self.move(key, target)
                elif target is not None and target.id == self.me and key not in self._handing:
                    wanted.append(key)
        for key in [k for k in self.leases.held() if k not in known and k not in self._handing]:
            await self.leases.release(key)  # deleted or disabled camera
        if not wanted:
            return
        holders = await self.leases.holders(wanted)
        started: set[str] = set()
        for key, holder in holders.items():
            if holder is not None and holder != self.me:
                continue  # still held by its previous owner: it hands over, or the lease lapses
            granted, _ = await self.leases.acquire(key)
            if granted:
                camera_id, name = split(key)
                log.info("cluster: took %s", key)
                if camera_id not in started:
                    started.add(camera_id)
                    await streams.apply(camera_id)
                self._tasks.spawn(self._announce_live(key), name=f"live-{key}")

    async def _announce_live(self, key: str) -> None:
        """Tell a previous owner handing this stream over that the picture is here now."""
        streams = self._streams
        camera_id, name = split(key)
        deadline = time.monotonic() + self.settings.handover_timeout_seconds * 2
        while time.monotonic() < deadline and self.leases.holds(key):
            entry = streams.get(camera_id) if streams is not None else None
            runner = entry.runners.get(name) if entry is not None else None
            if runner is not None and runner.source is not None and runner.feed.last_keyframe is not None:
                try:
                    await self._redis.set(live_key(key), self.me, px=_LIVE_TTL_MS)
                except OUTAGE as exc:
                    self._outage.failed(exc)
                return
            await asyncio.sleep(0.02)

    async def move(self, key: str, target: WorkerInfo) -> None:
        """Rebalance one held stream to ``target`` (a worker joined or left): stop here first, then
        the target takes it at its next step, so the camera is never pulled twice. Its viewers
        reconnect to the target (a gap of about a second; ``handover`` is for a drain)."""
        streams = self._streams
        camera_id, name = split(key)
        if streams is not None:
            streams.revoke(camera_id, name, f"moved to worker {target.id}")
        if await self.leases.transfer(key, target.id):
            log.info("cluster: moved %s to %s", key, target.id)

    async def handover(self, key: str, target: WorkerInfo) -> None:
        """Move one held stream to ``target``; pull it here until the target has its first picture."""
        streams = self._streams
        if streams is None or key in self._handing:
            return
        self._handing[key] = target.id
        camera_id, name = split(key)
        started = time.monotonic()
        try:
            await self._redis.delete(live_key(key))
            if not await self.leases.transfer(key, target.id):
                return
            deadline = started + self.settings.handover_timeout_seconds
            while time.monotonic() < deadline:
                if await self._redis.get(live_key(key)) == target.id:
                    break
                await asyncio.sleep(0.02)
            else:
                log.warning(
                    "cluster: %s: %s had no picture after %.1f s; letting go anyway",
                    key,
                    target.id,
                    self.settings.handover_timeout_seconds,
                )
        except OUTAGE as exc:
            self._outage.failed(exc)
        finally:
            self._handing.pop(key, None)
            streams.revoke(camera_id, name, f"moved to worker {target.id}")
        log.info("cluster: handed %s to %s in %.2f s", key, target.id, time.monotonic() - started)

    async def drain(self) -> None:
        """Hand every held stream to its next owner, a few at a time; release what has none."""
        if self.draining:
            return
        self.draining = True
        await self.directory.announce_draining()
        held = self.leases.held()
        if not held:
            return
        log.info("cluster: draining %d streams", len(held))
        slots = asyncio.Semaphore(DRAIN_PARALLEL)

        async def one(key: str) -> None:
            async with slots:
                target = self.target(key)
                try:
                    if target is not None and target.id != self.me:
                        await self.handover(key, target)
                    else:
                        await self.leases.release(key)
                except OUTAGE as exc:
                    self._outage.failed(exc)

        await asyncio.gather(*(one(key) for key in held))

    async def owner(self, camera_id: str, stream: str = "main") -> WorkerInfo | None:
        """The lease holder when it is alive, else the placement choice."""
        key = stream_key(camera_id, stream)
        if self.may_pull(camera_id, stream):
            return self.directory.me
        holder = holder_of(await self._redis.get(lease_key(key)))
        if holder is not None:
            found = self.directory.get(holder)
            if found is not None:
                return found
        return self.target(key)
