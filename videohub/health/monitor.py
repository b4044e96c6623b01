"""The health monitor: stream stats and keyframe diagnosis in, held states, history and alerts out.

Pipeline: ingest stats (FeedManager) and the Feed's latest keyframe → ``HealthMonitor`` →
``StreamHealth`` per camera → transitions to the availability history and the live UI, and the
wanted alerts to the ``AlertService``. The monitor holds the cameras and applies observations; each
other job has its module:

- ``tracker``: what is kept per camera (``Tracked``) and the evaluator (``observe_stats``);
- ``alerting``: each camera's wanted alerts brought to the ``AlertService``;
- ``persistence``: the Redis records (state, transitions stream, history);
- ``sampler``: ``always_on`` cameras' keyframes, one per ``diagnosis_interval_seconds``, decoded
  (keyframes only) and diagnosed in a worker thread;
- ``prober``: ``on_demand`` cameras probed on a jittered schedule with bounded concurrency
  (connect, one keyframe, diagnose, disconnect). While someone watches one, its stats are used.

It hears of registry changes from ``videohub.hub.follower.RegistryFollower`` (``changed``/``resync``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from ingest.packet import Packet
from ingest.probe import ProbeResult
from ingest.stats import StatsSnapshot
from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.alerts.live import StreamFanout
from videohub.alerts.service import AlertService
from videohub.fence import Fence
from videohub.health.alerting import AlertReconciler
from videohub.health.availability import AvailabilityHistory
from videohub.health.diagnosis import Diagnosis, PictureDiagnoser
from videohub.health.persistence import HealthStore
from videohub.health.prober import PROBE_GRACE_SECONDS, Prober, ProbeScheduler, probed_stream
from videohub.health.sampler import KeyframeSampler
from videohub.health.state import Observed, StreamHealth, Transition
from videohub.health.tracker import Tracked, observe_stats
from videohub.hub.latest import PictureSink
from videohub.models import Camera, RegistryChange
from videohub.registry import CameraRegistry
from videohub.settings.health import HealthSettings
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)

__all__ = ["PROBE_GRACE_SECONDS", "HealthMonitor", "HubView", "Prober", "Tracked"]


class HubView(Protocol):
    """What the monitor needs from the Feed manager (``videohub.health.hubview`` adapts it)."""

    def stream_stats(self, camera_id: str) -> StatsSnapshot | None:
        """Stats of the camera's running ingest, None when it is not being pulled."""

    def latest_keyframe(self, camera_id: str) -> Packet | None:
        """The Feed's cached keyframe (H.264 Annex-B with SPS/PPS), None when it has none."""

    def viewers(self, camera_id: str) -> int:
        """Subscribers of the camera's feeds (WHEP viewers and others)."""

    def subscriber_drops(self, camera_id: str) -> int:
        """Packets the camera's feeds dropped for subscribers that fell behind."""


class HealthMonitor(Part):
    """Owns the per-camera health of this worker's cameras: ``async with monitor:`` (or ``run()``
    until cancelled) runs its loops in one ``TaskOwner``."""

    def __init__(
        self,
        settings: HealthSettings,
        registry: CameraRegistry,
        alerts: AlertService,
        redis: aioredis.Redis,
        *,
        hub: HubView | None = None,
        prefix: str = "vh:",
        clock: Callable[[], float] = time.time,
        prober: Prober | None = None,
        pictures: PictureSink | None = None,
        responsible: Callable[[Camera], bool] | None = None,
        fence: Callable[[Camera], Fence | None] | None = None,
    ) -> None:
        """``responsible``: in a cluster, whether this worker checks a camera (it pulls it, or probes
        are placed here); without it every camera is this worker's. ``fence``: the lease a camera's
        alert writes are fenced by (a paused former owner cannot raise or resolve its alerts)."""
        self.settings = settings
        self.responsible = responsible
        self.registry = registry
        self.alerts = alerts
        self.reconciler = AlertReconciler(alerts, fence)
        self.hub = hub
        self.clock = clock
        self.store = HealthStore(redis, prefix)
        self.cameras: dict[str, Tracked] = {}
        self._redis_slots = asyncio.Semaphore(16)
        # Keyframes decoded here also give the wall its latest picture (``videohub.hub.latest``).
        self.pictures = pictures
        self.sampler = KeyframeSampler(settings.diagnosis.width, clock, pictures)
        self.probes = ProbeScheduler(
            settings,
            registry,
            clock,
            prober=prober,
            redis_slots=self._redis_slots,
            picture_width=pictures.width if pictures is not None else None,
        )
        self._tasks = TaskOwner("health")
        self._closing = CloseOnce()
        # One per kind of Redis work: an outage is a few lines each, not one per camera and tick.
        self._write_outage = OutageLog(log, "health: state and history writes")
        self._loop_outage = OutageLog(log, "health: checks")

    @property
    def history(self) -> AvailabilityHistory:
        return self.store.history

    @property
    def live(self) -> StreamFanout[Transition]:
        return self.store.live

    @property
    def probes_done(self) -> int:
        return self.probes.probes_done

    @property
    def probes_overrun(self) -> int:
        return self.probes.probes_overrun

    # -- cameras ------------------------------------------------------------------------------

    def track(self, camera: Camera) -> None:
        """Start (or update) watching a camera; disabled cameras are forgotten."""
        if not camera.enabled:
            self.cameras.pop(camera.id, None)
            return
        existing = self.cameras.get(camera.id)
        if existing is not None:
            existing.camera = camera
        else:
            now = self.clock()
            self.cameras[camera.id] = Tracked(
                camera=camera,
                health=StreamHealth(camera.id, self.settings, self.clock),
                diagnoser=PictureDiagnoser(self.settings.diagnosis),
                tracked_since=now,
            )
        if camera.mode == "on_demand" and (existing is None or existing.camera.mode != "on_demand"):
            self.probes.schedule_first(camera.id)

    async def untrack(self, camera_id: str) -> None:
        """A deleted or disabled camera: forget it and resolve its alerts."""
        tracked = self.cameras.pop(camera_id, None)
        line = tracked.camera.line if tracked else ""
        await self.reconciler.resolve(camera_id, line)
        await self.store.forget(camera_id)

    async def load(self) -> None:
        """Track every registered camera; resolve alerts of cameras deleted while we were away."""
        cameras = await self.registry.all()
        for camera in cameras:
            self.track(camera)
        known = {c.id for c in cameras if c.enabled}
        for camera_id, _kind in await self.alerts.store.unresolved():
            if camera_id not in known:
                await self.reconciler.resolve(camera_id, "")

    # -- following the registry (a RegistryListener of videohub.hub.follower) ----------------------

    async def changed(self, change: RegistryChange) -> None:
        camera = await self.registry.get(change.id) if change.op == "put" else None
        if camera is None or not camera.enabled:
            await self.untrack(change.id)
        else:
            self.track(camera)

    async def resync(self, *, missed: bool) -> None:
        if missed:  # after an outage: changes made meanwhile were not heard
            await self.load()

    # -- evaluation ---------------------------------------------------------------------------

    def observe_stats(
        self, t: Tracked, stats: StatsSnapshot | None
    ) -> tuple[Observed, tuple[str, ...]] | None:
        """The raw condition of a pulled stream (``videohub.health.tracker.observe_stats``)."""
        return observe_stats(t, stats, self.settings, self.clock())

    async def apply(self, t: Tracked, status: Observed, reasons: tuple[str, ...]) -> Transition | None:
        """Feed one observation to the camera's state machine; record, publish and reconcile."""
        previous = (t.health.state, t.health.reasons, t.health.flapping)
        transition = t.health.observe(status, reasons)
        if transition is not None:
            if transition.new == "offline":
                t.diagnoser.reset()
                t.diagnosis = None
            log.info(
                "camera %s: %s -> %s %s",
                t.camera.id,
                transition.old,
                transition.new,
                ",".join(transition.reasons),
            )
        # Bounded: hundreds of probes finishing together must not exhaust the Redis connection pool.
        async with self._redis_slots:
            try:
                if transition is not None:
                    await self.store.record(transition)
                if (t.health.state, t.health.reasons, t.health.flapping) != previous:
                    await self.store.save_state(t.camera.id, t.health.snapshot())
                self._write_outage.ok()
            except OUTAGE as exc:
                # Lost for the history; the live state goes on and is written with its next change.
                self._write_outage.failed(exc)
            await self.reconciler.reconcile(t)
        return transition

    def mine(self, t: Tracked) -> bool:
        return self.responsible is None or self.responsible(t.camera)

    def _pulled(self, t: Tracked) -> StatsSnapshot | None:
        return self.hub.stream_stats(t.camera.id) if self.hub is not None else None

    async def tick(self) -> None:
        """One pass over the pulled cameras' stats."""
        for t in list(self.cameras.values()):
            if not self.mine(t):
                t.checking = False
                continue  # another worker checks it
            if not t.checking:
                await self._begin_checking(t)
            stats = self._pulled(t)
            if t.camera.mode == "on_demand" and (stats is None or stats.last_packet_age is None):
                # Not being watched: the probe schedule covers it; only retry a failed alert update.
                if self.reconciler.pending(t):
                    async with self._redis_slots:
                        await self.reconciler.reconcile(t)
                continue
            observation = self.observe_stats(t, stats)
            if observation is not None:
                await self.apply(t, *observation)

    async def _begin_checking(self, t: Tracked) -> None:
        """This worker checks the camera from now on (its first tick, or it took the camera over
        from another worker): the stream it just started gets its connecting time, and in a cluster
        the state the previous checker stored is carried on, so a failover or a rebalancing move
        reports no outage of its own (the camera did not fail; a worker did)."""
        t.checking = True
        t.tracked_since = self.clock()
        t.packet_marks.clear()
        if self.responsible is None:
            return
        try:
            async with self._redis_slots:
                stored = (await self.store.states([t.camera.id])).get(t.camera.id)
        except OUTAGE as exc:
            self._write_outage.failed(exc)
            return
        if stored is not None:
            t.health.adopt(stored)

    async def sample(self) -> None:
        """Diagnose the newest keyframe of every pulled camera that has a new one."""
        if self.hub is not None:
            await self.sampler.sample([t for t in self.cameras.values() if self.mine(t)], self.hub)

    async def diagnose_packet(self, t: Tracked, packet: Packet) -> Diagnosis | None:
        return await self.sampler.diagnose_packet(t, packet)

    # -- probing ------------------------------------------------------------------------------

    async def probe_once(self, t: Tracked) -> None:
        """Probe one on_demand camera and apply the verdict."""

        async def verdict(result: ProbeResult) -> None:
            await self._apply_probe(t, result)

        await self.probes.probe(t.camera, verdict)

    async def _apply_probe(self, t: Tracked, result: ProbeResult) -> None:
        t.probe = {
            "at": self.clock(),
            "ok": result.ok,
            "error": result.error,
            "seconds": round(result.seconds, 3),
        }
        if result.frame is None:
            await self.apply(t, "offline", (result.error or "error",))
            return
        if self.pictures is not None:
            await self.pictures.probed(t.camera, probed_stream(t.camera), result.jpeg)
        diagnosis = await self.sampler.diagnose_frame(t, result.frame)
        await self.apply(t, "degraded" if diagnosis.reasons else "online", diagnosis.reasons)

    async def _probe_loop(self) -> None:
        slots = asyncio.Semaphore(self.settings.probe_concurrency)
        while True:
            checkpoint()  # next_due's wait_for may swallow a cancel on 3.11 (see videohub.aio)
            camera_id = await self.probes.next_due()
            t = self.cameras.get(camera_id)
            if t is None or t.camera.mode != "on_demand" or t.probing:
                continue
            if not self.mine(t):  # placed on another worker now; it may come back here later
                self.probes.reschedule(t)
                continue
            await slots.acquire()
            t.probing = True
            self._tasks.spawn(self._probe_and_reschedule(t, slots), name=f"health-probe-{camera_id}")

    async def _probe_and_reschedule(self, t: Tracked, slots: asyncio.Semaphore) -> None:
        try:
            stats = self._pulled(t)
            if stats is None or stats.last_packet_age is None:  # watched cameras are covered by stats
                await self.probe_once(t)
        except OUTAGE as exc:  # its credentials could not be read: probed again next round
            self._loop_outage.failed(exc)
        except Exception:
            log.exception("probe of %s failed", t.camera.id)
        finally:
            t.probing = False
            slots.release()
        if t.camera.id in self.cameras:
            self.probes.reschedule(t)

    # -- loops --------------------------------------------------------------------------------

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]], name: str) -> None:
        while True:
            try:
                await step()
            except OUTAGE as exc:
                self._loop_outage.failed(exc)
            except Exception:
                log.exception("health %s failed", name)
            checkpoint()
            await asyncio.sleep(seconds)

    async def _trim(self) -> None:
        cutoff = self.clock() - self.settings.history_retention_days * 86400
        await self.history.trim(list(self.cameras), cutoff)

    async def start(self) -> None:
        """Load every registered camera, then watch them until ``close()``."""
        if self._closing.started or self._tasks.started:
            return
        await self.alerts.setup()
        await self.load()
        s = self.settings
        await self._tasks.start()
        spawn = self._tasks.spawn
        spawn(self.live.run(), name="health-live")
        spawn(self._every(s.tick_seconds, self.tick, "tick"), name="health-tick")
        spawn(self._every(s.diagnosis_interval_seconds, self.sample, "diagnosis"), name="health-diagnosis")
        spawn(self._probe_loop(), name="health-probes")
        spawn(self._every(3600, self._trim, "trim"), name="health-trim")

    async def run(self) -> None:
        """``start()``, then watch until cancelled, then ``close()``."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every loop and probe. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()
        self.probes.close()

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self, camera_id: str) -> dict[str, Any] | None:
        """Current health of a camera this worker watches (with live stats and checks); None for one
        it does not (another worker's, in a cluster: read its stored state instead)."""
        t = self.cameras.get(camera_id)
        if t is None or not self.mine(t):
            return None
        out = t.health.snapshot()
        stats = t.stats
        out["line"] = t.camera.line
        out["mode"] = t.camera.mode
        out["fps"] = stats.fps if stats else None
        out["bitrate_kbps"] = stats.bitrate_kbps if stats else None
        out["last_packet_age"] = stats.last_packet_age if stats else None
        out["reconnects"] = stats.reconnects if stats else 0
        out["drops"] = stats.drops if stats else 0
        out["last_error"] = stats.last_error if stats else None
        out["diagnosis"] = t.diagnosis.as_dict() if t.diagnosis else None
        out["diagnosed_at"] = t.diagnosed_at
        out["probe"] = t.probe
        out["viewers"] = self.hub.viewers(camera_id) if self.hub is not None else 0
        out["subscriber_drops"] = self.hub.subscriber_drops(camera_id) if self.hub is not None else 0
        return out
