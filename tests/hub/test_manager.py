"""The Feed hub with the real registry (Valkey) and the real camera simulator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from ingest.h264 import has_parameter_sets
from tests.fixtures.camsim import CameraSimulator
from videohub.errors import NotFound, Unavailable
from videohub.hub import FeedClosed, FeedManager, NoPicture
from videohub.hub.follower import RegistryFollower
from videohub.models import CameraCreate, CameraPatch, CredentialsIn, Streams, StreamSpec
from videohub.registry import CameraRegistry
from videohub.settings import IngestSettings
from videohub.store import Store

pytestmark = pytest.mark.media


async def until(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        await asyncio.sleep(0.05)


def ingest_threads(camera_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"ingest-{camera_id}/")]


@pytest.fixture
def registry(store: Store) -> CameraRegistry:
    return CameraRegistry(store.redis, ["public_security", "safety"], allow_test_sources=True)


@pytest.fixture
async def make_hub(registry: CameraRegistry) -> AsyncIterator[Callable[..., Any]]:
    hubs: list[tuple[FeedManager, RegistryFollower]] = []
    before = set(threading.enumerate())

    async def make(**settings: Any) -> FeedManager:
        hub = FeedManager(IngestSettings(**settings), registry)
        follower = RegistryFollower(registry, [hub.streams], resync_interval=hub.settings.resync_interval)
        hubs.append((hub, follower))
        await hub.start()
        await follower.start()
        return hub

    yield make
    for hub, follower in hubs:
        await follower.close()
        await hub.close()
        await hub.close()  # idempotent
    left = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("ingest-")]
    assert not left, f"ingest threads left after close: {left}"


async def add(
    registry: CameraRegistry, camera_id: str, url: str, *, mode: str = "always_on", **extra: Any
) -> None:
    await registry.create(
        CameraCreate(
            id=camera_id,
            name=camera_id,
            line="public_security",
            streams=Streams(main=StreamSpec(url=url)),
            mode=mode,
            **extra,
        )
    )


def state(hub: FeedManager, camera_id: str, stream: str = "main") -> str | None:
    stats = hub.stats(camera_id).get(stream)
    return stats.state if stats is not None else None


async def test_a_registered_camera_streams_within_3_s(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub()
    await add(registry, "gate", camsim.rtsp_url("cb", {"cam": "gate"}))
    await until(lambda: state(hub, "gate") == "streaming", 3.0, "streaming")
    stats = hub.stats("gate")["main"]
    assert stats.always_on and stats.url.endswith("/cb?cam=gate")
    await until(lambda: hub.stats("gate")["main"].gop_packets > 0, 3.0, "a cached GOP")


async def test_cameras_registered_before_start_are_started(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    await add(registry, "early", camsim.rtsp_url("cb", {"cam": "early"}))
    await add(registry, "lazy", camsim.rtsp_url("cb", {"cam": "lazy"}), mode="on_demand")
    hub = await make_hub()
    await until(lambda: state(hub, "early") == "streaming", 3.0, "always_on streaming")
    assert state(hub, "lazy") == "idle" and not ingest_threads("lazy")


async def test_new_subscriber_starts_at_once_with_a_keyframe_carrying_sps_pps(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    # A 4 s GOP: without the GOP cache the first picture would wait up to 4 s for the next keyframe.
    mount = await asyncio.to_thread(camsim.fresh_mount, "gop=4")
    hub = await make_hub()
    await add(registry, "longgop", camsim.rtsp_url(mount))
    await until(lambda: hub.stats("longgop").get("main") is not None, 3.0, "known")
    await until(lambda: hub.stats("longgop")["main"].gop_packets >= 5, 8.0, "a keyframe and 5 packets")
    subscribed_at = time.monotonic()
    sub = await hub.subscribe("longgop")
    first = await asyncio.wait_for(sub.get(), 2.0)
    assert first.keyframe and has_parameter_sets(first.data)
    assert first.received < subscribed_at, "served from the GOP cache, not from the camera's next keyframe"
    assert sub.info is not None and (sub.info.codec, sub.info.width, sub.info.height) == ("h264", 640, 360)
    sub.close()


async def test_a_subscriber_that_never_reads_does_not_slow_another(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub(subscriber_buffer={"max_packets": 12, "max_bytes": 1_000_000})
    await add(registry, "shared", camsim.rtsp_url("cb", {"cam": "shared"}))
    stalled = await hub.subscribe("shared")
    reader = await hub.subscribe("shared")
    got = [await asyncio.wait_for(reader.get(), 3.0) for _ in range(40)]  # 4 s at 10 fps
    assert got[0].keyframe and reader.drops == 0
    assert stalled.queued <= 12 and stalled.queued_bytes <= 1_000_000
    assert stalled.drops > 0
    assert hub.stats("shared")["main"].subscriber_drops == stalled.drops
    stalled.close()
    reader.close()


async def test_deleting_a_camera_stops_its_ingest_and_ends_subscriptions(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub()
    await add(registry, "gone", camsim.rtsp_url("cb", {"cam": "gone"}))
    sub = await hub.subscribe("gone")
    await asyncio.wait_for(sub.get(), 3.0)
    await registry.delete("gone")
    with pytest.raises(FeedClosed, match="deleted"):
        while True:
            await asyncio.wait_for(sub.get(), 3.0)
    await until(lambda: not ingest_threads("gone"), 5.0, "ingest thread ended")
    assert hub.stats("gone") == {}
    with pytest.raises(NotFound):
        await hub.subscribe("gone")


async def test_disabling_closes_feeds_and_enabling_restarts(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub()
    await add(registry, "toggle", camsim.rtsp_url("cb", {"cam": "toggle"}))
    sub = await hub.subscribe("toggle")
    await registry.update("toggle", CameraPatch(enabled=False))
    with pytest.raises(FeedClosed, match="disabled"):
        while True:
            await asyncio.wait_for(sub.get(), 3.0)
    with pytest.raises(Unavailable):
        await hub.subscribe("toggle")
    await registry.update("toggle", CameraPatch(enabled=True))
    await until(lambda: state(hub, "toggle") == "streaming", 3.0, "streaming again")


async def test_editing_the_url_reconnects_without_a_restart(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub()
    await add(registry, "moved", camsim.rtsp_url("nonexistent-mount"))
    await until(lambda: hub.stats("moved").get("main") is not None, 3.0, "known")
    await until(lambda: hub.stats("moved")["main"].reason == "not_found", 3.0, "not_found")
    sub = await hub.subscribe("moved")
    new_url = camsim.rtsp_url("cb", {"cam": "moved"})
    await registry.update("moved", CameraPatch(streams=Streams(main=StreamSpec(url=new_url))))
    first = await asyncio.wait_for(sub.get(), 5.0)  # the same subscription now gets the new camera
    assert first.keyframe
    assert hub.stats("moved")["main"].url == new_url
    sub.close()


async def test_on_demand_starts_with_a_viewer_and_stops_after_the_idle_time(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub(on_demand_idle=0.5)
    await add(registry, "ondemand", camsim.rtsp_url("cb", {"cam": "ondemand"}), mode="on_demand")
    await until(lambda: state(hub, "ondemand") == "idle", 3.0, "idle")
    sub = await hub.subscribe("ondemand")
    assert (await asyncio.wait_for(sub.get(), 3.0)).keyframe
    assert state(hub, "ondemand") == "streaming"
    sub.close()
    await until(lambda: state(hub, "ondemand") == "idle", 3.0, "idle after the last viewer")
    await until(lambda: not ingest_threads("ondemand"), 5.0, "thread ended")


async def test_credentials_come_from_the_registry(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub()
    url = camsim.auth_url("digest", credentials=False)
    creds = CredentialsIn(username="admin", password=SecretStr("not-the-password"))
    await add(registry, "locked", url, credentials=creds)
    await until(lambda: hub.stats("locked").get("main") is not None, 3.0, "known")
    await until(lambda: hub.stats("locked")["main"].reason == "auth_failed", 3.0, "auth_failed")
    good = CredentialsIn(username="admin", password=SecretStr(camsim.auth_password))
    await registry.update("locked", CameraPatch(credentials=good))
    await until(lambda: state(hub, "locked") == "streaming", 5.0, "streaming with the new password")
    text = repr(hub.stats("locked"))
    assert camsim.auth_password not in text and "not-the-password" not in text


async def test_snapshot_is_a_jpeg_and_no_picture_gives_a_reason(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub(snapshot_wait=4.0)
    await add(registry, "snap", camsim.rtsp_url("cb", {"cam": "snap"}))
    await add(registry, "dark", camsim.rtsp_url("no-such-mount"))
    await add(registry, "lazysnap", camsim.rtsp_url("cb", {"cam": "lazysnap"}), mode="on_demand")
    await until(lambda: state(hub, "snap") == "streaming", 3.0, "streaming")
    jpeg = await hub.snapshot("snap")
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    assert await hub.snapshot("snap") is jpeg  # cached
    lazy = await hub.snapshot("lazysnap")  # an idle on_demand camera is started for it
    assert lazy.startswith(b"\xff\xd8")
    await until(lambda: state(hub, "dark") == "backing_off", 3.0, "backing off")
    with pytest.raises(NoPicture) as info:
        await hub.snapshot("dark")
    assert info.value.reason == "not_found"


async def test_32_always_on_cameras_run_at_once(
    camsim: CameraSimulator, registry: CameraRegistry, make_hub: Callable[..., Any]
) -> None:
    hub = await make_hub(backoff_max=2.0)
    ids = [f"many-{i:02d}" for i in range(32)]
    for camera_id in ids:
        await add(registry, camera_id, camsim.rtsp_url("cb", {"cam": camera_id}))
    await until(lambda: all(state(hub, i) == "streaming" for i in ids), 20.0, "all 32 streaming")
    await until(lambda: all(hub.stats(i)["main"].gop_packets > 0 for i in ids), 10.0, "a GOP each")
    assert len([t for t in threading.enumerate() if t.name.startswith("ingest-many-")]) == 32
