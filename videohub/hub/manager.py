"""The Feed hub's viewer-facing side: one Feed (and, while wanted, one ingest Source) per camera stream.

Wiring between the registry and the media path (registry → follower → **FeedManager** → runner →
Source → Feed). ``videohub.hub.follower.RegistryFollower`` tells it of every registry change
(``changed``) and to ``resync``; it turns each camera into its wanted streams and keeps one
``StreamRunner`` (``videohub.hub.runner``) per stream: ``always_on`` streams run from the first
resync, ``on_demand`` ones start with their first subscriber and stop ``on_demand_idle`` seconds
after the last one leaves (go2rtc's Stream). Viewers call ``subscribe``, ``feed``, ``stats`` and
``snapshot``. Each stream's secrets are read from the registry each time a source starts and handed
to it as a ``Login`` bound to the endpoint they were given for, never kept in a URL; the Source checks
the URL against the registry's network policy before every open.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from ingest.handoff import Handoff
from ingest.netpolicy import NetworkPolicy
from ingest.source import Login, Source
from ingest.url import PLACEHOLDER
from videohub.aio import CloseOnce, Part, TaskOwner
from videohub.errors import FeedClosed, NoPicture, NotFound, Unavailable
from videohub.hub.feed import Feed, Subscription
from videohub.hub.follower import CameraDirectory
from videohub.hub.runner import FeedStats, RunnerContext, StreamRunner, source_options
from videohub.hub.snapshot import Snapshots
from videohub.models import Camera, CameraStream, RegistryChange
from videohub.settings.ingest import IngestSettings

log = logging.getLogger(__name__)

STREAMS: tuple[Literal["main", "sub"], ...] = ("main", "sub")

__all__ = ["STREAMS", "CameraDirectory", "FeedManager", "FeedStats", "source_options"]


@dataclass(eq=False)
class _Entry:
    camera: Camera
    runners: dict[str, StreamRunner] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FeedManager(Part):
    """Owns every Feed and ingest thread of this worker: ``async with FeedManager(...)`` (or
    ``start()``/``close()``); the joins of stopped sources live in its ``TaskOwner``. It follows the
    registry through a ``RegistryFollower`` entered after it."""

    def __init__(
        self,
        settings: IngestSettings,
        registry: CameraDirectory,
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
        self._closing = CloseOnce()
        self._snapshots = Snapshots(settings.snapshot_wait, settings.snapshot_cache_seconds)
        self._ctx: RunnerContext | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Ready to run streams (the follower's first resync starts the always_on ones). Idempotent."""
        if self._ctx is not None or self._closing.started:
            return
        await self._tasks.start()
        loop = asyncio.get_running_loop()
        # One handoff for every ingest thread: packets arriving together share a loop wake-up.
        self._ctx = RunnerContext(
            self.settings, self._policy, self._allow_files, loop, Handoff(loop), self._tasks
        )

    @property
    def _closed(self) -> bool:
        return self._closing.started

    async def close(self) -> None:
        """Stop every ingest thread and end every Feed (subscribers get FeedClosed). Safe to call twice;
        a concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        sources: list[Source] = []
        for entry in self._cameras.values():
            for runner in entry.runners.values():
                source = runner.shutdown()
                if source is not None:
                    sources.append(source)
        self._cameras.clear()
        # Every thread was told to stop above; now wait for them together, off the loop.
        await asyncio.gather(*(source.aclose() for source in sources))
        await self._tasks.drain()  # the joins of sources stopped earlier
        await self._tasks.close()

    # -- following the registry (a RegistryListener) -----------------------------------------------

    async def changed(self, change: RegistryChange) -> None:
        await self.apply(change.id)

    async def resync(self, *, missed: bool) -> None:
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
                        entry.runners.pop(name).drop("the camera was deleted")
                self._snapshots.forget(camera_id)
            return
        entry = self._entry(camera)
        async with entry.lock:
            await self._update(entry, camera)

    async def _update(self, entry: _Entry, camera: Camera) -> None:
        if self._closed:
            return
        assert self._ctx is not None, "FeedManager.start() was not called"
        entry.camera = camera
        if not camera.enabled:
            for name in list(entry.runners):
                entry.runners.pop(name).drop("the camera was disabled")
            return
        for name in STREAMS:
            spec = camera.streams.main if name == "main" else camera.streams.sub
            runner = entry.runners.get(name)
            if spec is None:
                if runner is not None:
                    entry.runners.pop(name).drop(f"the camera no longer has a {name} stream")
                continue
            always_on = camera.mode == "always_on" and name in self.settings.always_on_streams
            if runner is None:
                runner = StreamRunner(self._ctx, camera.id, name, spec, always_on)
                entry.runners[name] = runner
            login = await self._login(camera, name, spec)
            changed = spec != runner.spec or login != runner.login
            runner.spec, runner.always_on = spec, always_on
            if runner.source is not None and changed:
                log.info("%s: stream settings changed, reconnecting", runner.feed.key)
                runner.restart_source(login)
            if runner.wanted and runner.source is None:
                runner.start_source(login)
            elif not runner.wanted and runner.source is not None and runner.idle is None:
                runner.schedule_idle()

    async def _login(self, camera: Camera, name: str, spec: CameraStream) -> Login | None:
        """The stream's secrets, bound to their endpoint (no Redis read for a stream without any)."""
        if not spec.has_credentials and PLACEHOLDER not in spec.url:
            return None
        found = await self._registry.secrets(camera, name)
        return found.login() if found is not None else None

    # -- what viewers call -----------------------------------------------------------------------

    async def _runner(self, camera_id: str, stream: str) -> tuple[_Entry, StreamRunner]:
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

    async def subscribe(self, camera: Camera | str, stream: str = "main") -> Subscription:
        """Join a camera stream's feed, starting its ingest if needed.

        The subscription's first packet is a keyframe with SPS/PPS (from the GOP cache when there is
        one). Raises NotFound (unknown camera or stream) or Unavailable (disabled, hub stopping).
        """
        entry, runner = await self._runner(camera if isinstance(camera, str) else camera.id, stream)
        async with entry.lock:
            if runner.feed.closed:
                raise FeedClosed("the feed has ended")
            subscription = runner.feed.subscribe()
            runner.cancel_idle()
            if runner.source is None:
                try:
                    login = await self._login(entry.camera, stream, runner.spec)
                except BaseException:
                    subscription.close()
                    raise
                if runner.source is None and not runner.feed.closed:
                    runner.start_source(login)
        return subscription

    def feed(self, camera_id: str, stream: str = "main") -> Feed | None:
        entry = self._cameras.get(camera_id)
        runner = entry.runners.get(stream) if entry is not None else None
        return runner.feed if runner is not None else None

    def stats(self, camera_id: str) -> dict[str, FeedStats]:
        """Per-stream state and stats of one camera ({} when unknown or disabled)."""
        entry = self._cameras.get(camera_id)
        if entry is None:
            return {}
        return {name: runner.stats() for name, runner in entry.runners.items()}

    async def snapshot(self, camera_id: str, stream: str = "main") -> bytes:
        """JPEG of the stream's latest keyframe. Raises NoPicture (503) with a reason when there is
        none: a stopped on_demand stream is started and given ``snapshot_wait`` seconds."""
        try:
            _, runner = await self._runner(camera_id, stream)
        except Unavailable as exc:
            raise NoPicture(exc.message, "disabled") from None
        return await self._snapshots.take(runner, lambda: self.subscribe(camera_id, stream))
