"""Probes cannot wedge: every probe ends by its deadline, whatever the camera does, and frees its thread.

Against cameras that misbehave on purpose (``FaultyCamera``: audio but no video, video without a
keyframe, an accepted connection that says nothing, a DESCRIBE answered and then silence) and a
stalled simulator mount. Each probe must come back with a reason and let go of its connection; a
pool of two threads must get through more such probes than it has threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import pytest
import redis.asyncio as aioredis

from ingest.probe import ProbeResult, probe
from tests.faults.rtsp_double import Fault, FaultyCamera
from tests.fixtures.camsim import CameraSimulator
from videohub.aio import cancel_and_wait
from videohub.alerts.service import AlertService
from videohub.health.monitor import HealthMonitor
from videohub.models import CameraCreate, Streams, StreamSpec
from videohub.registry import CameraRegistry
from videohub.settings.health import HealthSettings

DEADLINE = 2.0
"""Seconds each probe here may take (the smallest probe_timeout_seconds allowed is 1)."""
GUARD = 60.0
"""How long a test waits for probes before calling them hung: far beyond any deadline."""


@pytest.fixture
def faulty() -> Iterator[Callable[[Fault], FaultyCamera]]:
    started: list[FaultyCamera] = []

    def start(fault: Fault) -> FaultyCamera:
        camera = FaultyCamera(fault)
        started.append(camera)
        return camera

    try:
        yield start
    finally:
        # Also what lets hung probe threads of a failing test end (their sessions are dropped).
        for camera in started:
            camera.close()


def probe_all(urls: list[str], threads: int) -> list[ProbeResult]:
    """Probe every URL through a pool of ``threads``; fails if any probe is still running after GUARD."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="probe-test")
    try:
        futures: list[Future[ProbeResult]] = [pool.submit(probe, url, timeout=DEADLINE) for url in urls]
        _, running = wait(futures, timeout=GUARD)
        assert not running, f"{len(running)} of {len(urls)} probes still running after {GUARD:.0f} s"
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def sessions_closed(camera: FaultyCamera) -> bool:
    """Whether every client has hung up (the camera notices a closed connection within ~0.1 s)."""
    give_up = time.monotonic() + 10
    while camera.open_connections and time.monotonic() < give_up:
        time.sleep(0.05)
    return camera.open_connections == 0


def test_audio_only_camera_times_out_with_no_video_and_frees_its_thread(
    faulty: Callable[[Fault], FaultyCamera],
) -> None:
    camera = faulty("audio_only")
    # Five probes through two threads: each thread must come back for the next camera.
    results = probe_all([f"{camera.url}?cam={i}" for i in range(5)], threads=2)
    assert [r.error for r in results] == ["no_video"] * 5
    assert all(r.frame is None for r in results)
    assert sessions_closed(camera)  # every probe closed its session


def test_video_without_a_keyframe_times_out(faulty: Callable[[Fault], FaultyCamera]) -> None:
    camera = faulty("no_keyframe")
    (result,) = probe_all([camera.url], threads=1)
    assert result.error == "timeout" and result.frame is None
    assert sessions_closed(camera)


@pytest.mark.parametrize("fault", ["silent", "describe_then_stall"])
def test_a_camera_that_stops_answering_times_out(
    faulty: Callable[[Fault], FaultyCamera], fault: Fault
) -> None:
    camera = faulty(fault)
    (result,) = probe_all([camera.url], threads=1)
    assert result.error == "timeout" and result.frame is None


@pytest.mark.media
def test_a_stalled_simulator_mount_times_out(camsim: CameraSimulator) -> None:
    mount = camsim.fresh_mount("audio=pcma")
    # Watched once before it hangs: the simulator stalls for ~20 s, every mount with it, when its
    # first client ever arrives at a mount that is already stalled (its media never prerolls).
    assert probe(camsim.rtsp_url(mount), timeout=10).ok
    camsim.stall(mount)
    try:
        (result,) = probe_all([camsim.rtsp_url(mount)], threads=1)
    finally:
        camsim.stop_mount(mount)
    assert result.error == "timeout" and result.frame is None


async def test_the_monitor_probes_more_audio_only_cameras_than_it_has_threads(
    redis: aioredis.Redis, faulty: Callable[[Fault], FaultyCamera]
) -> None:
    """The real probe schedule and pool: five on_demand cameras that send only audio, two probe threads.

    Every camera ends offline with reason no_video, and once the monitor stops no probe thread is left.
    """
    camera = faulty("audio_only")
    registry = CameraRegistry(redis, ["public_security"], allow_test_sources=True)
    ids = [f"audio{i}" for i in range(5)]
    for cam_id in ids:
        await registry.create(
            CameraCreate(
                id=cam_id,
                name=cam_id,
                line="public_security",
                streams=Streams(main=StreamSpec(url=f"{camera.url}?cam={cam_id}")),
                mode="on_demand",
            )
        )
    settings = HealthSettings(
        probe_concurrency=2,
        probe_timeout_seconds=DEADLINE,
        probe_interval_seconds=5,
        offline_hold_seconds=0,
    )
    alerts = AlertService(redis)
    monitor = HealthMonitor(settings, registry, alerts, redis)
    task = asyncio.create_task(monitor.run())
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + GUARD
        cameras = monitor.cameras
        while len(cameras) < len(ids) or any(t.health.state == "unknown" for t in cameras.values()):
            assert loop.time() < deadline, f"only {monitor.probes_done} of {len(ids)} probes came back"
            await asyncio.sleep(0.2)
        states = {c: (t.health.state, t.health.reasons) for c, t in cameras.items()}
        assert states == {c: ("offline", ("no_video",)) for c in ids}
    finally:
        assert await cancel_and_wait(task)
        await alerts.close()
    active = {(a.camera, a.kind, tuple(a.reasons)) for a in await alerts.store.active()}
    assert active == {(c, "offline", ("no_video",)) for c in ids}
    # Stopped, the monitor leaves no probe thread behind and no session open at the camera.
    deadline = loop.time() + GUARD
    while camera.open_connections or any(t.name.startswith("probe_") for t in threading.enumerate()):
        assert loop.time() < deadline, "probe threads or sessions left after the monitor stopped"
        await asyncio.sleep(0.2)
