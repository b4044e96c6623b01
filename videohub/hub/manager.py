"""The Feed hub: one Feed and (while wanted) one ingest Source per registered camera stream.

Wiring between the registry and the media path (registry → **FeedManager** → Source → Feed). It reads
settings, starts ``always_on`` streams at ``start()``, starts ``on_demand`` streams with their first
subscriber and stops them ``on_demand_idle`` seconds after the last one leaves (go2rtc's Stream:
the first consumer starts the producer). It follows ``registry.changes()`` so adding, editing,
disabling or deleting a camera takes effect without a restart, with a periodic resync as a safety
net. Each stream's secrets are read from the registry each time a source starts and handed to it as a
``Login`` bound to the endpoint they were given for, never kept in a URL; the Source checks the URL
against the registry's network policy before every open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from ingest.handoff import Handoff
from ingest.netpolicy import NetworkPolicy
from ingest.normalize import Ceiling, StreamInfo
from ingest.packet import Packet
from ingest.reconnect import BackoffPolicy, State, Transition
from ingest.source import Login, Source, SourceOptions
from ingest.stats import StatsSnapshot
from ingest.url import PLACEHOLDER, redact
from videohub.aio import CloseOnce, Part, TaskOwner, cancel_and_wait, checkpoint
from videohub.errors import NotFound, Unavailable
from videohub.hub.feed import Feed, FeedClosed, FeedInfo, Subscription
from videohub.hub.snapshot import NoPicture, SnapshotCache
from videohub.models import Camera, CameraStream
from videohub.registry import RegistryChange
from videohub.settings.ingest import IngestSettings
from videohub.store import OUTAGE, OutageLog
from videohub.stream_secrets import StreamSecrets

log = logging.getLogger(__name__)

STREAMS = ("main", "sub")


class CameraSource(Protocol):
    """What the hub needs of the registry (``videohub.registry.CameraRegistry`` provides it)."""

    async def get(self, camera_id: str) -> Camera | None: ...
    async def all(self) -> list[Camera]: ...
    async def secrets(self, camera: Camera, stream: str) -> StreamSecrets | None: ...
    def changes(self) -> AsyncIterator[RegistryChange]: ...


@dataclass(frozen=True, slots=True)
class FeedStats:
    """One camera stream as the API shows it: the feed's side and the ingest's stats."""

    stream: str
    url: str
    """Stream URL without credentials."""
    transport: str
    state: str
    """connecting, streaming, backing_off (ingest states), idle (on_demand, nobody watching)."""
    reason: str | None
    always_on: bool
    subscribers: int
    subscriber_drops: int
    gop_packets: int
    """Packets a new viewer receives at once (since the last keyframe)."""
    ingest: StatsSnapshot | None
    """Stats of the current (or, when idle, the last) ingest session."""


def source_options(
    settings: IngestSettings,
    transport: str,
    policy: NetworkPolicy | None = None,
    *,
    allow_files: bool = True,
) -> SourceOptions:
    transcode = settings.transcode
    return SourceOptions(
        policy=policy,
        allow_files=allow_files,
        transport="udp" if transport == "udp" else "tcp",
        open_timeout=settings.open_timeout,
        read_timeout=settings.read_timeout,
        stall_timeout=settings.stall_timeout,
        analyzeduration_us=settings.analyzeduration_us,
        probesize=settings.probesize,
        ceiling=Ceiling(
            max_height=transcode.max_height,
            max_fps=transcode.max_fps,
            max_bitrate_kbps=transcode.max_bitrate_kbps,
            gop_seconds=transcode.gop_seconds,
        ),
        backoff=BackoffPolicy(
            initial=settings.backoff_initial,
            maximum=settings.backoff_max,
            reset_after=settings.backoff_reset_after,
        ),
    )


@dataclass(eq=False)
class _Runner:
    """One camera stream inside the hub: its Feed, its Source while running, its idle timer."""

    feed: Feed
    spec: CameraStream
    always_on: bool
    source: Source | None = None
    login: Login | None = None
    idle: asyncio.TimerHandle | None = None
    last_stats: StatsSnapshot | None = None


@dataclass(eq=False)
class _Entry:
    camera: Camera
    runners: dict[str, _Runner] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FeedManager(Part):
    """Owns every Feed and ingest thread of this worker: ``async with FeedManager(...)`` (or
    ``start()``/``close()``); its background tasks live in one ``TaskOwner``."""

    def __init__(
        self,
        settings: IngestSettings,
        registry: CameraSource,
        *,
        policy: NetworkPolicy | None = None,
        allow_files: bool = True,
    ) -> None:
        """``policy``: where URLs may point (the registry's); ``allow_files``: open file:// sources."""
        self.settings = settings
        self._registry = registry
        self._policy = policy
        self._allow_files = allow_files
        self._cameras: dict[str, _Entry] = {}
        self._tasks = TaskOwner("hub")
        self._loops: list[asyncio.Task[None]] = []
        self._closing = CloseOnce()
        self._snapshots = SnapshotCache(settings.snapshot_cache_seconds)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handoff: Handoff | None = None
        self._started = False
        self._follow_outage = OutageLog(log, "registry change feed")
        self._resync_outage = OutageLog(log, "registry resync")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the registry and start every always_on camera. Idempotent."""
        if self._started or self._closing.started:
            return
        self._started = True
        await self._tasks.start()
        self._loop = asyncio.get_running_loop()
        # One handoff for every ingest thread: packets arriving together share a loop wake-up.
        self._handoff = Handoff(self._loop)
        # Follow changes first, so a camera added while the initial load runs is not missed.
        self._loops.append(self._tasks.spawn(self._follow(), name="hub-follow"))
        await asyncio.sleep(0)
        await self._resync()
        self._loops.append(self._tasks.spawn(self._resync_loop(), name="hub-resync"))

    async def close(self) -> None:
        """Stop every ingest thread and end every Feed (subscribers get FeedClosed). Safe to call twice;
        a concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    @property
    def _closed(self) -> bool:
        return self._closing.started

    async def _close(self) -> None:
        await asyncio.gather(*(cancel_and_wait(task) for task in self._loops))
        sources: list[Source] = []
        for entry in self._cameras.values():
            for runner in entry.runners.values():
                if runner.idle is not None:
                    runner.idle.cancel()
                if runner.source is not None:
                    runner.source.stop()
                    sources.append(runner.source)
                    runner.source = None
                runner.feed.close("the service is stopping")
        self._cameras.clear()
        # Every thread was told to stop above; now wait for them together, off the loop.
        await asyncio.gather(*(source.aclose() for source in sources))
        await self._tasks.drain()  # the joins of sources stopped earlier
        await self._tasks.close()

    # -- following the registry ----------------------------------------------------------------

    async def _follow(self) -> None:
        # Running feeds never wait for Redis: while it is away they go on, and changes made
        # meanwhile are picked up by the resync that follows the resubscribe.
        resync = False
        while True:
            checkpoint()
            try:
                if resync:
                    await self._resync()
                    resync = False
                    self._follow_outage.ok()
                async for change in self._registry.changes():
                    self._follow_outage.ok()
                    await self.apply(change.id)
                    checkpoint()
            except asyncio.CancelledError:
                raise
            except OUTAGE as exc:  # Redis restarting: resubscribe, then resync to cover the gap
                self._follow_outage.failed(exc)
                resync = True
                await asyncio.sleep(1.0)
            except Exception as exc:
                log.warning("registry change feed failed (%s); resubscribing", type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _resync_loop(self) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.settings.resync_interval)
            try:
                await self._resync()
                self._resync_outage.ok()
                checkpoint()
            except asyncio.CancelledError:
                raise
            except OUTAGE as exc:
                self._resync_outage.failed(exc)
            except Exception as exc:
                log.warning("registry resync failed: %s", type(exc).__name__)

    async def _resync(self) -> None:
        cameras = await self._registry.all()
        seen = set()
        for camera in cameras:
            seen.add(camera.id)
            entry = self._entry(camera)
            async with entry.lock:
                await self._update(entry, camera)
        for camera_id in [cid for cid in self._cameras if cid not in seen]:
            await self.apply(camera_id)

    def _entry(self, camera: Camera) -> _Entry:
        entry = self._cameras.get(camera.id)
        if entry is None:
            entry = _Entry(camera)
            self._cameras[camera.id] = entry
        return entry

    async def apply(self, camera_id: str) -> None:
        """Bring one camera's feeds in line with the registry (called for each registry change)."""
        if self._closed:
            return
        camera = await self._registry.get(camera_id)
        if camera is None:
            entry = self._cameras.pop(camera_id, None)
            if entry is not None:
                async with entry.lock:
                    for name in list(entry.runners):
                        self._drop_runner(entry, name, "the camera was deleted")
                self._snapshots.forget(camera_id)
            return
        entry = self._entry(camera)
        async with entry.lock:
            await self._update(entry, camera)

    async def _update(self, entry: _Entry, camera: Camera) -> None:
        if self._closed:
            return
        entry.camera = camera
        if not camera.enabled:
            for name in list(entry.runners):
                self._drop_runner(entry, name, "the camera was disabled")
            return
        for name in STREAMS:
            spec: CameraStream | None = getattr(camera.streams, name)
            runner = entry.runners.get(name)
            if spec is None:
                if runner is not None:
                    self._drop_runner(entry, name, f"the camera no longer has a {name} stream")
                continue
            always_on = camera.mode == "always_on" and name in self.settings.always_on_streams
            if runner is None:
                runner = self._new_runner(camera.id, name, spec, always_on)
                entry.runners[name] = runner
            login = await self._login(camera, name, spec)
            changed = spec != runner.spec or login != runner.login
            runner.spec, runner.always_on = spec, always_on
            if runner.source is not None and changed:
                log.info("%s: stream settings changed, reconnecting", runner.feed.key)
                self._restart_source(runner, login)
            wanted = always_on or runner.feed.subscribers > 0
            if wanted and runner.source is None:
                self._start_source(runner, login)
            elif not wanted and runner.source is not None and runner.idle is None:
                self._schedule_idle(runner)

    async def _login(self, camera: Camera, name: str, spec: CameraStream) -> Login | None:
        """The stream's secrets, bound to their endpoint (no Redis read for a stream without any)."""
        if not spec.has_credentials and PLACEHOLDER not in spec.url:
            return None
        found = await self._registry.secrets(camera, name)
        return found.login() if found is not None else None

    def _options(self, runner: _Runner) -> SourceOptions:
        return source_options(
            self.settings, runner.spec.transport, self._policy, allow_files=self._allow_files
        )

    def _new_runner(self, camera_id: str, name: str, spec: CameraStream, always_on: bool) -> _Runner:
        buffer = self.settings.subscriber_buffer
        feed = Feed(
            camera_id,
            name,
            max_packets=buffer.max_packets,
            max_bytes=buffer.max_bytes,
            gop_max_bytes=self.settings.gop_cache_max_bytes,
            handoff=self._handoff,
        )
        runner = _Runner(feed=feed, spec=spec, always_on=always_on)
        feed.on_idle = lambda _feed: self._on_idle(runner)
        return runner

    def _drop_runner(self, entry: _Entry, name: str, reason: str) -> None:
        runner = entry.runners.pop(name)
        if runner.idle is not None:
            runner.idle.cancel()
            runner.idle = None
        self._stop_source(runner)
        runner.feed.close(reason)
        log.info("%s: feed closed: %s", runner.feed.key, reason)

    # -- sources ---------------------------------------------------------------------------------

    def _start_source(self, runner: _Runner, login: Login | None) -> None:
        assert self._loop is not None, "FeedManager.start() was not called"
        feed = runner.feed
        feed.reset()
        runner.login = login
        source: Source

        def on_info(info: StreamInfo) -> None:
            if runner.source is source:
                feed.set_info(FeedInfo(info.codec, info.width, info.height, info.mode))

        def on_state(transition: Transition) -> None:
            # A session that ended leaves no live picture: newcomers must not start from a stale GOP.
            if runner.source is source and transition.state in (State.BACKING_OFF, State.STOPPED):
                feed.reset()

        source = Source(
            feed.key,
            runner.spec.url,
            loop=self._loop,
            on_packet=feed.publish,
            on_state=on_state,
            on_info=on_info,
            login=login,
            options=self._options(runner),
            handoff=self._handoff,
            # Feed.publish is thread-safe: packets nobody watches never wake the loop.
            packets_in_thread=True,
        )
        runner.source = source
        source.start()
        log.info("%s: ingest started (%s)", feed.key, redact(runner.spec.url))

    def _restart_source(self, runner: _Runner, login: Login | None) -> None:
        """New URL, transport or credentials: the same thread moves to a new generation."""
        assert runner.source is not None
        runner.login = login
        runner.feed.reset()
        runner.source.restart(runner.spec.url, login, self._options(runner))

    def _stop_source(self, runner: _Runner) -> None:
        source = runner.source
        if source is None:
            return
        runner.source = None
        runner.last_stats = source.stats.snapshot()
        source.stop()
        runner.feed.reset()
        self._tasks.spawn(self._join(source), name=f"hub-join-{source.name}")

    async def _join(self, source: Source) -> None:
        if not await source.aclose():
            log.warning("%s: ingest thread did not end in time", source.name)

    def _on_idle(self, runner: _Runner) -> None:
        if not runner.always_on and runner.source is not None and runner.idle is None:
            self._schedule_idle(runner)

    def _schedule_idle(self, runner: _Runner) -> None:
        assert self._loop is not None

        def fire() -> None:
            runner.idle = None
            if runner.feed.subscribers == 0 and not runner.always_on and not runner.feed.closed:
                log.info("%s: no viewers for %.0f s, stopping ingest", runner.feed.key, delay)
                self._stop_source(runner)

        delay = self.settings.on_demand_idle
        runner.idle = self._loop.call_later(delay, fire)

    # -- what viewers call -----------------------------------------------------------------------

    async def _runner(self, camera: str | Camera, stream: str) -> tuple[_Entry, _Runner]:
        camera_id = camera if isinstance(camera, str) else camera.id
        if stream not in STREAMS:
            raise NotFound(f"unknown stream {stream!r} (main or sub)")
        if self._closed:
            raise Unavailable("the feed hub is stopping")
        entry = self._cameras.get(camera_id)
        if entry is None:
            # Registered a moment ago: the change feed may not have told us yet.
            await self.apply(camera_id)
            entry = self._cameras.get(camera_id)
            if entry is None:
                raise NotFound(f"camera {camera_id!r} not found")
        if not entry.camera.enabled:
            raise Unavailable("the camera is disabled")
        runner = entry.runners.get(stream)
        if runner is None:
            raise NotFound(f"camera {camera_id!r} has no {stream} stream")
        return entry, runner

    async def subscribe(self, camera: str | Camera, stream: str = "main") -> Subscription:
        """Join a camera stream's feed, starting its ingest if needed.

        The subscription's first packet is a keyframe with SPS/PPS (from the GOP cache when there is
        one). Raises NotFound (unknown camera or stream) or Unavailable (disabled, hub stopping).
        """
        entry, runner = await self._runner(camera, stream)
        async with entry.lock:
            if runner.feed.closed:
                raise FeedClosed("the feed has ended")
            subscription = runner.feed.subscribe()
            if runner.idle is not None:
                runner.idle.cancel()
                runner.idle = None
            if runner.source is None:
                try:
                    login = await self._login(entry.camera, stream, runner.spec)
                except BaseException:
                    subscription.close()
                    raise
                if runner.source is None and not runner.feed.closed:
                    self._start_source(runner, login)
        return subscription

    def feed(self, camera_id: str, stream: str = "main") -> Feed | None:
        entry = self._cameras.get(camera_id)
        runner = entry.runners.get(stream) if entry is not None else None
        return runner.feed if runner is not None else None

    def camera_ids(self) -> list[str]:
        return sorted(self._cameras)

    def stats(self, camera_id: str) -> dict[str, FeedStats]:
        """Per-stream state and stats of one camera ({} when unknown or disabled)."""
        entry = self._cameras.get(camera_id)
        if entry is None:
            return {}
        return {name: self._feed_stats(name, runner) for name, runner in entry.runners.items()}

    def all_stats(self) -> dict[str, dict[str, FeedStats]]:
        return {camera_id: self.stats(camera_id) for camera_id in sorted(self._cameras)}

    def _feed_stats(self, name: str, runner: _Runner) -> FeedStats:
        source = runner.source
        ingest = source.stats.snapshot() if source is not None else runner.last_stats
        if source is not None:
            state = ingest.state if ingest is not None else State.CONNECTING.value
            reason = ingest.reason if ingest is not None else None
        else:
            state, reason = "idle", None
        return FeedStats(
            stream=name,
            url=redact(runner.spec.url),
            transport=runner.spec.transport,
            state=state,
            reason=reason,
            always_on=runner.always_on,
            subscribers=runner.feed.subscribers,
            subscriber_drops=runner.feed.subscriber_drops,
            gop_packets=runner.feed.gop_packets,
            ingest=ingest,
        )

    async def snapshot(self, camera_id: str, stream: str = "main") -> bytes:
        """JPEG of the stream's latest keyframe. Raises NoPicture (503) with a reason when there is
        none: a stopped on_demand stream is started and given ``snapshot_wait`` seconds."""
        try:
            _, runner = await self._runner(camera_id, stream)
        except Unavailable as exc:
            raise NoPicture(exc.message, "disabled") from None
        keyframe = runner.feed.last_keyframe
        if keyframe is None:
            stats = runner.source.stats.snapshot() if runner.source is not None else None
            if stats is not None and stats.state == State.BACKING_OFF.value:
                raise NoPicture(f"the camera is not streaming ({stats.reason})", stats.reason or "error")
            keyframe = await self._wait_keyframe(camera_id, stream, runner)
        return await self._snapshots.get(runner.feed.key, keyframe)

    async def _wait_keyframe(self, camera_id: str, stream: str, runner: _Runner) -> Packet:
        subscription = await self.subscribe(camera_id, stream)
        try:
            async with asyncio.timeout(self.settings.snapshot_wait):
                return await runner.feed.keyframe()
        except TimeoutError:
            stats = runner.source.stats.snapshot() if runner.source is not None else None
            reason = (stats.reason or stats.last_error_reason) if stats is not None else None
            raise NoPicture(
                f"the camera delivered no picture within {self.settings.snapshot_wait:g} s"
                + (f" ({reason})" if reason else ""),
                reason or "not_streaming",
            ) from None
        except FeedClosed as exc:
            raise NoPicture(f"the feed ended: {exc.reason}", "not_streaming") from None
        finally:
            subscription.close()
