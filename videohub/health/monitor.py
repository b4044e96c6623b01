"""The health monitor: stream stats and keyframe diagnosis in, held states, history and alerts out.

Pipeline: ingest stats (FeedManager) and the Feed's latest keyframe → ``HealthMonitor`` →
``StreamHealth`` per camera → transitions to the availability history and the live UI, and the
wanted alerts to the ``AlertService``.

- ``always_on`` cameras: stream stats every ``tick_seconds`` (offline ``offline_after_seconds``
  after the last packet; ``low_fps``), one keyframe per ``diagnosis_interval_seconds`` decoded
  (keyframes only) and diagnosed in a worker thread.
- ``on_demand`` cameras: probed on a jittered schedule with bounded concurrency (``prober``):
  connect, one keyframe, diagnose, disconnect. While someone watches one, its stats are used
  instead.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ingest.packet import Packet
from ingest.stats import StatsSnapshot
from videohub.aio import checkpoint
from videohub.alerts.live import StreamFanout
from videohub.alerts.service import AlertService
from videohub.alerts.store import entry_field
from videohub.health.availability import AvailabilityHistory
from videohub.health.diagnosis import Diagnosis, PictureDiagnoser
from videohub.health.keyframe import decode_keyframe_picture
from videohub.health.probe import SILENCE_SECONDS, ProbeResult, probe
from videohub.health.state import AlertKind, Observed, StreamHealth, Transition
from videohub.hub.latest import PictureSink
from videohub.models import Camera
from videohub.registry import CameraRegistry
from videohub.settings.health import HealthSettings
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)

Prober = Callable[[Camera, str], Awaitable[ProbeResult]]
"""Probe one camera given its stored URL (the prober adds the secrets); injectable for benchmarks."""


def _probed_stream(camera: Camera) -> str:
    return "sub" if camera.streams.sub is not None else "main"  # the sub stream is cheaper to open


PROBE_GRACE_SECONDS = SILENCE_SECONDS + 3.0
"""A probe ends by its deadline plus one read (``SILENCE_SECONDS``) and its close. One still running
this long after its deadline is wedged (a bug below PyAV): the camera gets a ``timeout`` verdict."""


class HubView(Protocol):
    """What the monitor needs from the Feed manager (``videohub.hub``)."""

    def stream_stats(self, camera_id: str) -> StatsSnapshot | None:
        """Stats of the camera's running ingest, None when it is not being pulled."""

    def latest_keyframe(self, camera_id: str) -> Packet | None:
        """The Feed's cached keyframe (H.264 Annex-B with SPS/PPS), None when it has none."""

    def viewers(self, camera_id: str) -> int:
        """Subscribers of the camera's feeds (WHEP viewers and others)."""

    def subscriber_drops(self, camera_id: str) -> int:
        """Packets the camera's feeds dropped for subscribers that fell behind."""


def parse_transition(fields: dict[Any, Any]) -> Transition:
    return Transition.from_dict(json.loads(entry_field(fields, "t")))


@dataclass
class Tracked:
    """Everything the monitor keeps about one camera."""

    camera: Camera
    health: StreamHealth
    diagnoser: PictureDiagnoser
    tracked_since: float
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


class HealthMonitor:
    """Owns the per-camera health of this worker's cameras; ``run()`` until cancelled."""

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
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.alerts = alerts
        self.redis = redis
        self.hub = hub
        self.clock = clock
        self.history = AvailabilityHistory(redis, prefix)
        self.state_key = f"{prefix}health:state"
        self.events_stream = f"{prefix}health:events"
        self.live: StreamFanout[Transition] = StreamFanout(redis, self.events_stream, parse_transition)
        self.cameras: dict[str, Tracked] = {}
        self.prober: Prober = prober or self._probe_camera
        self._probe_heap: list[tuple[float, str]] = []
        self._probe_wakeup = asyncio.Event()
        self._decode_slots = asyncio.Semaphore(2)
        self._redis_slots = asyncio.Semaphore(16)
        self.probes_done = 0
        self.probes_overrun = 0
        self._probe_pool: ThreadPoolExecutor | None = None
        # One per kind of Redis work: an outage is a few lines each, not one per camera and tick.
        self._registry_outage = OutageLog(log, "health: registry change feed")
        self._write_outage = OutageLog(log, "health: state and history writes")
        self._alert_outage = OutageLog(log, "health: alert updates")
        self._loop_outage = OutageLog(log, "health: checks")
        # Issue 16: keyframes decoded here also give the wall its latest picture (set by the startup).
        self.pictures: PictureSink | None = None

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
            # Spread the first probes over one interval so 10,000 cameras do not start at once.
            self._schedule_probe(
                camera.id, self.clock() + random.uniform(0, self.settings.probe_interval_seconds)
            )

    async def untrack(self, camera_id: str) -> None:
        """A deleted or disabled camera: forget it and resolve its alerts."""
        tracked = self.cameras.pop(camera_id, None)
        line = tracked.camera.line if tracked else ""
        await self.alerts.reconcile(camera_id, line, {})
        await self.redis.hdel(self.state_key, camera_id)

    async def load(self) -> None:
        """Track every registered camera; resolve alerts of cameras deleted while we were away."""
        cameras = await self.registry.all()
        for camera in cameras:
            self.track(camera)
        known = {c.id for c in cameras if c.enabled}
        for camera_id, _kind in await self.alerts.store.unresolved():
            if camera_id not in known:
                await self.alerts.reconcile(camera_id, "", {})

    async def _registry_loop(self) -> None:
        reload = False
        while True:
            checkpoint()
            try:
                if reload:  # after an outage: changes made meanwhile were not heard
                    await self.load()
                    reload = False
                    self._registry_outage.ok()
                async for change in self.registry.changes():
                    self._registry_outage.ok()
                    camera = await self.registry.get(change.id) if change.op == "put" else None
                    if camera is None or not camera.enabled:
                        await self.untrack(change.id)
                    else:
                        self.track(camera)
                    checkpoint()
            except OUTAGE as exc:
                # Redis restarting: resubscribe and reload, so no change is missed for long.
                self._registry_outage.failed(exc)
                reload = True
                await asyncio.sleep(1.0)
            except RedisError as exc:  # a refused command: resubscribe and reload too
                log.warning("health: registry change feed failed (%s); resubscribing", type(exc).__name__)
                reload = True
                await asyncio.sleep(1.0)

    # -- evaluation ---------------------------------------------------------------------------

    def observe_stats(
        self, t: Tracked, stats: StatsSnapshot | None
    ) -> tuple[Observed, tuple[str, ...]] | None:
        """The raw condition of a pulled stream from its stats and its latest diagnosis."""
        s = self.settings
        now = self.clock()
        t.stats = stats
        age = None if stats is None else stats.last_packet_age
        if stats is not None and stats.state in ("backing_off", "stopped"):
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
            if stats.fps < s.min_fps or (
                t.usual_fps is not None and stats.fps < s.low_fps_ratio * t.usual_fps
            ):
                reasons.append("low_fps")
        if t.diagnosis is not None and t.diagnosed_at is not None:
            fresh = now - t.diagnosed_at <= 3 * s.diagnosis_interval_seconds + s.offline_after_seconds
            if fresh:
                reasons.extend(t.diagnosis.reasons)
        if stats is not None and stats.fps > 0 and "low_fps" not in reasons:
            # Learn the usual rate from healthy periods only.
            t.usual_fps = stats.fps if t.usual_fps is None else 0.95 * t.usual_fps + 0.05 * stats.fps
        return ("degraded", tuple(reasons)) if reasons else ("online", ())

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
                    await self.history.record(transition)
                    await self.redis.xadd(
                        self.events_stream,
                        {"t": json.dumps(transition.as_dict())},
                        maxlen=10_000,
                        approximate=True,
                    )
                if (t.health.state, t.health.reasons, t.health.flapping) != previous:
                    await self.redis.hset(self.state_key, t.camera.id, json.dumps(t.health.snapshot()))
                self._write_outage.ok()
            except OUTAGE as exc:
                # Lost for the history; the live state goes on and is written with its next change.
                self._write_outage.failed(exc)
            await self._reconcile(t)
        return transition

    async def _reconcile(self, t: Tracked) -> None:
        """Bring the camera's alerts in line with its state; a failure is retried by the next tick."""
        if t.health.state == "unknown":
            return
        desired = t.health.desired_alerts()
        if desired == t.reconciled:
            return
        try:
            await self.alerts.reconcile(t.camera.id, t.camera.line, desired)
        except OUTAGE as exc:
            self._alert_outage.failed(exc)  # retried by the next tick
            return
        self._alert_outage.ok()
        t.reconciled = dict(desired)

    def _pulled(self, t: Tracked) -> StatsSnapshot | None:
        return self.hub.stream_stats(t.camera.id) if self.hub is not None else None

    async def tick(self) -> None:
        """One pass over the pulled cameras' stats."""
        for t in list(self.cameras.values()):
            stats = self._pulled(t)
            if t.camera.mode == "on_demand" and (stats is None or stats.last_packet_age is None):
                # Not being watched: the probe schedule covers it; only retry a failed alert update.
                if t.health.state != "unknown" and t.health.desired_alerts() != t.reconciled:
                    async with self._redis_slots:
                        await self._reconcile(t)
                continue
            observation = self.observe_stats(t, stats)
            if observation is not None:
                await self.apply(t, *observation)

    async def sample(self) -> None:
        """Diagnose the newest keyframe of every pulled camera that has a new one."""
        if self.hub is None:
            return
        for t in list(self.cameras.values()):
            packet = self.hub.latest_keyframe(t.camera.id)
            if packet is None or packet is t.last_keyframe:
                continue
            t.last_keyframe = packet
            await self.diagnose_packet(t, packet)

    async def diagnose_packet(self, t: Tracked, packet: Packet) -> Diagnosis | None:
        width = self.settings.diagnosis.width
        pictures = self.pictures
        picture_width = pictures.width if pictures and pictures.wants_keyframe(t.camera.id) else None
        jpeg: bytes | None = None

        def work() -> Diagnosis | None:
            nonlocal jpeg
            frame, jpeg = decode_keyframe_picture(packet, width, picture_width)
            return None if frame is None else t.diagnoser.diagnose(frame)

        async with self._decode_slots:
            result = await asyncio.to_thread(work)
        if result is not None:
            t.diagnosis, t.diagnosed_at = result, self.clock()
        if pictures is not None and jpeg is not None:
            await pictures.keyframe(t.camera, jpeg, packet.received)
        return result

    # -- probing ------------------------------------------------------------------------------

    def _schedule_probe(self, camera_id: str, at: float) -> None:
        heapq.heappush(self._probe_heap, (at, camera_id))
        self._probe_wakeup.set()

    async def _probe_camera(self, camera: Camera, url: str) -> ProbeResult:
        s = self.settings
        if self._probe_pool is None:
            # Its own pool: the loop's default executor has only a few threads (cores + 4), and a
            # probe mostly waits on the network, so probe_concurrency threads are what scale.
            self._probe_pool = ThreadPoolExecutor(s.probe_concurrency, thread_name_prefix="probe")
        name = _probed_stream(camera)
        async with self._redis_slots:
            found = await self.registry.secrets(camera, name)
        login = found.login() if found is not None else None
        # The probe checks the URL as ingest does (form, network policy, credentials' host) first.
        call = functools.partial(
            probe,
            url,
            transport=getattr(camera.streams, name).transport,
            timeout=s.probe_timeout_seconds,
            width=s.diagnosis.width,
            login=login,
            policy=self.registry.network_policy,
            allow_files=self.registry.allow_test_sources,
            picture_width=self.pictures.width if self.pictures is not None else None,
        )
        return await asyncio.get_running_loop().run_in_executor(self._probe_pool, call)

    async def probe_once(self, t: Tracked) -> None:
        """Probe one on_demand camera and apply the verdict."""
        camera = t.camera
        spec = getattr(camera.streams, _probed_stream(camera))
        running = asyncio.ensure_future(self.prober(camera, spec.url))
        try:
            result = await self._within_deadline(camera, running)
            self.probes_done += 1
            await self._apply_probe(t, result)
            if not running.done():
                # The verdict is given; this probe's slot stays taken until its thread is really
                # back, so the pool never runs more probes than probe_concurrency threads.
                await asyncio.wait({running})
        except asyncio.CancelledError:
            running.cancel()
            raise

    async def _within_deadline(self, camera: Camera, running: asyncio.Future[ProbeResult]) -> ProbeResult:
        limit = self.settings.probe_timeout_seconds + PROBE_GRACE_SECONDS
        done, _ = await asyncio.wait({running}, timeout=limit)
        if done:
            return running.result()
        self.probes_overrun += 1
        log.error("camera %s: probe still running after %.0f s; its thread is held", camera.id, limit)
        return ProbeResult(None, "timeout", limit)

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
            await self.pictures.probed(t.camera, _probed_stream(t.camera), result.jpeg)
        frame = result.frame
        async with self._decode_slots:
            diagnosis = await asyncio.to_thread(t.diagnoser.diagnose, frame)
        t.diagnosis, t.diagnosed_at = diagnosis, self.clock()
        await self.apply(t, "degraded" if diagnosis.reasons else "online", diagnosis.reasons)

    async def _probe_loop(self) -> None:
        slots = asyncio.Semaphore(self.settings.probe_concurrency)
        async with asyncio.TaskGroup() as tg:
            while True:
                checkpoint()  # the wait_for below may swallow a cancel on 3.11 (see videohub.aio)
                now = self.clock()
                if not self._probe_heap:
                    self._probe_wakeup.clear()
                    await self._probe_wakeup.wait()
                    continue
                at, camera_id = self._probe_heap[0]
                if at > now:
                    self._probe_wakeup.clear()
                    try:
                        await asyncio.wait_for(self._probe_wakeup.wait(), timeout=min(at - now, 1.0))
                    except TimeoutError:
                        pass
                    continue
                heapq.heappop(self._probe_heap)
                t = self.cameras.get(camera_id)
                if t is None or t.camera.mode != "on_demand" or t.probing:
                    continue
                await slots.acquire()
                t.probing = True
                tg.create_task(self._probe_and_reschedule(t, slots))

    async def _probe_and_reschedule(self, t: Tracked, slots: asyncio.Semaphore) -> None:
        s = self.settings
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
        interval = s.probe_interval_seconds * (1 + random.uniform(-s.probe_jitter, s.probe_jitter))
        if t.health.observed != t.health.state:
            # A change waits for its hold time: look again soon rather than a whole interval later.
            interval = min(interval, max(s.degraded_hold_seconds, s.recover_hold_seconds, 1.0) + 1.0)
        if t.camera.id in self.cameras:
            self._schedule_probe(t.camera.id, self.clock() + interval)

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

    async def run(self) -> None:
        """Watch every registered camera until cancelled."""
        await self.alerts.setup()
        await self.load()
        s = self.settings
        try:
            await self._run_tasks(s)
        finally:
            if self._probe_pool is not None:
                # Probes still running finish on their own, by probe_timeout_seconds + SILENCE_SECONDS.
                self._probe_pool.shutdown(wait=False, cancel_futures=True)
                self._probe_pool = None

    async def _run_tasks(self, s: HealthSettings) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._registry_loop(), name="health-registry")
            tg.create_task(self.live.run(), name="health-live")
            tg.create_task(self._every(s.tick_seconds, self.tick, "tick"), name="health-tick")
            tg.create_task(
                self._every(s.diagnosis_interval_seconds, self.sample, "diagnosis"), name="health-diagnosis"
            )
            tg.create_task(self._probe_loop(), name="health-probes")
            tg.create_task(self._every(3600, self._trim, "trim"), name="health-trim")

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self, camera_id: str) -> dict[str, Any] | None:
        """Current health of a camera this worker watches (with live stats and checks)."""
        t = self.cameras.get(camera_id)
        if t is None:
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
