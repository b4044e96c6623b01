"""The prober: on_demand cameras probed on a jittered schedule, with bounded concurrency.

Beside the monitor, for cameras nobody watches (decision 6): connect, one keyframe, disconnect
(``ingest.probe``, in its own thread pool), at most ``probe_concurrency`` at once, each with
one deadline. A verdict is given by the deadline plus ``PROBE_GRACE_SECONDS`` whatever the camera
does; a probe's slot stays taken until its thread is really back.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from ingest.probe import SILENCE_SECONDS, ProbeResult, probe
from videohub.health.tracker import Tracked
from videohub.models import Camera
from videohub.registry import CameraRegistry
from videohub.settings.health import HealthSettings

log = logging.getLogger(__name__)

Prober = Callable[[Camera, str], Awaitable[ProbeResult]]
"""Probe one camera given its stored URL (the prober adds the secrets); injectable for benchmarks."""

PROBE_GRACE_SECONDS = SILENCE_SECONDS + 3.0
"""A probe ends by its deadline plus one read (``SILENCE_SECONDS``) and its close. One still running
this long after its deadline is wedged (a bug below PyAV): the camera gets a ``timeout`` verdict."""


def probed_stream(camera: Camera) -> str:
    return "sub" if camera.streams.sub is not None else "main"  # the sub stream is cheaper to open


class ProbeScheduler:
    """The probe heap (when each on_demand camera is due), its pool and its counters."""

    def __init__(
        self,
        settings: HealthSettings,
        registry: CameraRegistry,
        clock: Callable[[], float],
        *,
        prober: Prober | None = None,
        redis_slots: asyncio.Semaphore | None = None,
        picture_width: int | None = None,
    ) -> None:
        self.settings = settings
        self.picture_width = picture_width
        """With a width, probes also return their keyframe as a JPEG (the wall's latest picture)."""
        self.registry = registry
        self.clock = clock
        self.prober: Prober = prober or self.probe_camera
        self.probes_done = 0
        self.probes_overrun = 0
        self._heap: list[tuple[float, str]] = []
        self._wakeup = asyncio.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._redis_slots = redis_slots or asyncio.Semaphore(16)

    def schedule(self, camera_id: str, at: float) -> None:
        heapq.heappush(self._heap, (at, camera_id))
        self._wakeup.set()

    def schedule_first(self, camera_id: str) -> None:
        # Spread the first probes over one interval so 10,000 cameras do not start at once.
        self.schedule(camera_id, self.clock() + random.uniform(0, self.settings.probe_interval_seconds))

    def reschedule(self, t: Tracked) -> None:
        s = self.settings
        interval = s.probe_interval_seconds * (1 + random.uniform(-s.probe_jitter, s.probe_jitter))
        if t.health.observed != t.health.state:
            # A change waits for its hold time: look again soon rather than a whole interval later.
            interval = min(interval, max(s.degraded_hold_seconds, s.recover_hold_seconds, 1.0) + 1.0)
        self.schedule(t.camera.id, self.clock() + interval)

    async def next_due(self) -> str:
        """Wait until the next camera is due and return its id."""
        while True:
            now = self.clock()
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            at, camera_id = self._heap[0]
            if at > now:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=min(at - now, 1.0))
                except TimeoutError:
                    pass
                continue
            heapq.heappop(self._heap)
            return camera_id

    async def probe_camera(self, camera: Camera, url: str) -> ProbeResult:
        s = self.settings
        if self._pool is None:
            # Its own pool: the loop's default executor has only a few threads (cores + 4), and a
            # probe mostly waits on the network, so probe_concurrency threads are what scale.
            self._pool = ThreadPoolExecutor(s.probe_concurrency, thread_name_prefix="probe")
        name = probed_stream(camera)
        async with self._redis_slots:
            found = await self.registry.secrets(camera, name)
        login = found.login() if found is not None else None
        spec = camera.streams.sub if name == "sub" else camera.streams.main
        assert spec is not None
        # The probe checks the URL as ingest does (form, network policy, credentials' host) first.
        call = functools.partial(
            probe,
            url,
            transport=spec.transport,
            timeout=s.probe_timeout_seconds,
            width=s.diagnosis.width,
            login=login,
            policy=self.registry.network_policy,
            allow_files=self.registry.allow_test_sources,
            picture_width=self.picture_width,
        )
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def probe(self, camera: Camera, verdict: Callable[[ProbeResult], Awaitable[None]]) -> None:
        """Probe one camera and hand the result to ``verdict`` by the deadline."""
        name = probed_stream(camera)
        spec = camera.streams.sub if name == "sub" else camera.streams.main
        assert spec is not None
        running = asyncio.ensure_future(self.prober(camera, spec.url))
        try:
            result = await self._within_deadline(camera, running)
            self.probes_done += 1
            await verdict(result)
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

    def close(self) -> None:
        if self._pool is not None:
            # Probes still running finish on their own, by probe_timeout_seconds + SILENCE_SECONDS.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
