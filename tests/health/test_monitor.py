"""The health monitor's decisions with a stats double and an injected clock, on a real Valkey.

The real Feed manager and camera simulator are used in ``test_integration.py``; here a small double
stands in for the ingest stats so hold times and reasons can be stepped through deterministically.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from ingest.packet import Packet
from ingest.probe import ProbeResult
from ingest.stats import StatsSnapshot, StreamState
from videohub.alerts.service import AlertService
from videohub.health.monitor import PROBE_GRACE_SECONDS, HealthMonitor
from videohub.models import Camera, CameraCreate, Streams, StreamSpec
from videohub.registry import CameraRegistry
from videohub.settings.health import HealthSettings

LINES = ["public_security", "work_safety"]

STATS = StatsSnapshot(
    state=StreamState.STREAMING,
    reason=None,
    codec="h264",
    profile="main",
    width=640,
    height=360,
    fps=10.0,
    bitrate_kbps=400.0,
    keyframe_interval=1.0,
    mode="passthrough",
    output_codec="h264",
    packets=100,
    bytes=10_000,
    drops=0,
    reconnects=0,
    failures=0,
    retry_in=None,
    last_packet_age=0.1,
    last_error=None,
    last_error_reason=None,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Hub:
    def __init__(self) -> None:
        self.stats: dict[str, StatsSnapshot] = {}
        self.packets = 100

    def streaming(self, camera: str, **changes: Any) -> None:
        """The camera sends: its packet counter moves on (10 fps, ticks of up to 1 s)."""
        self.packets += 10
        self.stats[camera] = replace(STATS, packets=self.packets, **changes)

    def stream_stats(self, camera_id: str) -> StatsSnapshot | None:
        return self.stats.get(camera_id)

    def latest_keyframe(self, camera_id: str) -> Packet | None:
        return None

    def viewers(self, camera_id: str) -> int:
        return 0

    def subscriber_drops(self, camera_id: str) -> int:
        return 0


async def add(registry: CameraRegistry, cam_id: str, mode: str = "always_on") -> Camera:
    return await registry.create(
        CameraCreate(
            id=cam_id,
            name=cam_id,
            line="public_security",
            streams=Streams(main=StreamSpec(url=f"rtsp://127.0.0.1:1/{cam_id}")),
            mode=mode,
        )
    )


async def test_stopped_camera_raises_one_offline_alert_and_resolves_when_back(redis: aioredis.Redis) -> None:
    clock, hub = Clock(), Hub()
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis, clock=clock)
    settings = HealthSettings(recover_hold_seconds=5)
    monitor = HealthMonitor(settings, registry, alerts, redis, hub=hub, clock=clock)
    await add(registry, "cam1")
    await monitor.load()
    hub.streaming("cam1")
    await monitor.tick()
    assert monitor.cameras["cam1"].health.state == "online"
    for _ in range(10):  # packets stop; later ticks see the same outage
        clock.now += 1
        hub.stats["cam1"] = replace(STATS, last_packet_age=hub.stats["cam1"].last_packet_age + 1)  # type: ignore[operator]
        await monitor.tick()
    active = await alerts.store.active()
    assert [(a.camera, a.kind, a.reasons) for a in active] == [("cam1", "offline", ["stalled"])]
    hub.stats["cam1"] = replace(STATS, last_packet_age=None, reason="refused")
    await monitor.tick()
    assert [a.reasons for a in await alerts.store.active()] == [["refused"]]  # same alert, new reason
    hub.streaming("cam1")
    await monitor.tick()
    assert len(await alerts.store.active()) == 1  # not yet healthy for the hold time
    for _ in range(6):
        clock.now += 1
        hub.streaming("cam1")
        await monitor.tick()
    assert await alerts.store.active() == []
    history = await alerts.store.query()
    assert [(a.kind, a.state, a.resolved_by) for a in history] == [("offline", "resolved", "auto")]
    states = [t.new for t in reversed(await monitor.history.recent("cam1"))]
    assert states == ["online", "offline", "online"]
    await alerts.close()


async def test_low_fps_is_degraded(redis: aioredis.Redis) -> None:
    clock, hub = Clock(), Hub()
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis, clock=clock)
    monitor = HealthMonitor(
        HealthSettings(degraded_hold_seconds=2), registry, alerts, redis, hub=hub, clock=clock
    )
    await add(registry, "cam1")
    await monitor.load()
    for _ in range(5):
        hub.streaming("cam1")
        await monitor.tick()
        clock.now += 1
    for _ in range(4):
        hub.streaming("cam1", fps=2.0)
        await monitor.tick()
        clock.now += 1
    assert [(a.kind, a.reasons) for a in await alerts.store.active()] == [("degraded", ["low_fps"])]
    await alerts.close()


async def test_on_demand_camera_is_probed_and_diagnosed(redis: aioredis.Redis) -> None:
    clock, hub = Clock(), Hub()
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis, clock=clock)
    answers = {
        "cam-black": ProbeResult(np.zeros((90, 160, 3), np.uint8), None, 0.1),
        "cam-down": ProbeResult(None, "refused", 0.01),
    }

    async def prober(camera: Camera, url: str) -> ProbeResult:
        return answers[camera.id]

    settings = HealthSettings(degraded_hold_seconds=0)
    monitor = HealthMonitor(settings, registry, alerts, redis, hub=hub, clock=clock, prober=prober)
    await add(registry, "cam-black", "on_demand")
    await add(registry, "cam-down", "on_demand")
    await monitor.load()
    await monitor.tick()  # not pulled: stats say nothing about on_demand cameras
    assert {t.health.state for t in monitor.cameras.values()} == {"unknown"}
    for t in monitor.cameras.values():
        await monitor.probe_once(t)
    active = {a.camera: (a.kind, a.reasons) for a in await alerts.store.active()}
    assert active == {"cam-black": ("degraded", ["black"]), "cam-down": ("offline", ["refused"])}
    snap = monitor.snapshot("cam-black")
    assert snap is not None and snap["diagnosis"]["reasons"] == ["black"]
    await alerts.close()


async def test_a_straggler_packet_during_a_stall_does_not_keep_the_camera_online(
    redis: aioredis.Redis,
) -> None:
    clock, hub = Clock(), Hub()
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis, clock=clock)
    monitor = HealthMonitor(HealthSettings(tick_seconds=0.5), registry, alerts, redis, hub=hub, clock=clock)
    await add(registry, "cam1")
    await monitor.load()
    packets = 100
    for _ in range(10):  # streaming at 10 fps
        packets += 5
        hub.stats["cam1"] = replace(STATS, packets=packets, last_packet_age=0.05)
        await monitor.tick()
        clock.now += 0.5
    for i in range(8):  # stalled, but one late packet arrives 2.9 s in
        age = 0.1 if i == 6 else (i + 1) * 0.5
        hub.stats["cam1"] = replace(STATS, packets=packets + (1 if i >= 6 else 0), last_packet_age=age)
        await monitor.tick()
        clock.now += 0.5
    assert monitor.cameras["cam1"].health.state == "offline"
    assert [(a.kind, a.reasons) for a in await alerts.store.active()] == [("offline", ["stalled"])]
    await alerts.close()


async def test_a_flapping_camera_gets_one_flapping_alert_instead_of_a_storm(redis: aioredis.Redis) -> None:
    clock, hub = Clock(), Hub()
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis, clock=clock)
    settings = HealthSettings(recover_hold_seconds=2, flapping_transitions=4, flapping_window_seconds=300)
    monitor = HealthMonitor(settings, registry, alerts, redis, hub=hub, clock=clock)
    await add(registry, "cam1")
    await monitor.load()
    for _ in range(10):  # a loose cable: refused, back, refused, back …
        for _ in range(3):
            hub.streaming("cam1")
            await monitor.tick()
            clock.now += 1
        hub.stats["cam1"] = replace(STATS, state=StreamState.BACKING_OFF, reason="refused")
        await monitor.tick()
        clock.now += 1
    history = await alerts.store.query(limit=1000)
    kinds = [a.kind for a in reversed(history)]
    # Two offline alerts before the camera counts as flapping, then a single flapping alert.
    assert kinds == ["offline", "offline", "flapping"]
    assert [a.kind for a in await alerts.store.active()] == ["flapping"]
    await alerts.close()


async def test_a_wedged_probe_gets_a_timeout_verdict_and_keeps_its_slot(redis: aioredis.Redis) -> None:
    """A probe thread that never comes back (a bug below PyAV) still gives the camera its verdict.

    The probe's slot stays taken until the thread returns: the pool is never asked for more probes
    than it has threads.
    """
    registry = CameraRegistry(redis, LINES, allow_test_sources=True)
    alerts = AlertService(redis)
    release = asyncio.Event()

    async def wedged(camera: Camera, url: str) -> ProbeResult:
        await release.wait()
        return ProbeResult(None, "refused", 99.0)

    settings = HealthSettings(probe_timeout_seconds=1, offline_hold_seconds=0)
    monitor = HealthMonitor(settings, registry, alerts, redis, prober=wedged)
    await add(registry, "cam1", "on_demand")
    await monitor.load()
    tracked = monitor.cameras["cam1"]
    probing = asyncio.create_task(monitor.probe_once(tracked))
    loop = asyncio.get_running_loop()
    give_up = loop.time() + settings.probe_timeout_seconds + PROBE_GRACE_SECONDS + 30
    while tracked.health.state == "unknown":
        assert loop.time() < give_up, "no verdict for a wedged probe"
        await asyncio.sleep(0.1)
    assert (tracked.health.state, tracked.health.reasons) == ("offline", ("timeout",))
    assert [(a.kind, a.reasons) for a in await alerts.store.active()] == [("offline", ["timeout"])]
    assert monitor.probes_overrun == 1
    await asyncio.sleep(0.5)
    assert not probing.done()  # the slot is held while the thread is out
    release.set()
    await probing
    assert tracked.health.reasons == ("timeout",)  # the late answer does not overwrite the verdict
    await alerts.close()
