"""The Feed hub's viewer-facing side: one Feed (and, while wanted, one ingest Source) per camera stream.

Wiring between the registry and the media path (registry → follower → ``StreamTable`` → runner →
Source → Feed). The desired streams live in ``videohub.hub.streams`` (``FeedManager.streams``, which the
``RegistryFollower`` tells of every change); the manager owns their lifecycle context and serves the
viewers: ``subscribe`` (an ``on_demand`` stream starts with its first subscriber and stops
``on_demand_idle`` seconds after the last one leaves, as go2rtc's Stream), ``feed``, ``stats`` and
``snapshot``. The Source checks the URL against the registry's network policy before every open.
"""

from __future__ import annotations

import asyncio
import logging

from ingest.handoff import Handoff
from ingest.netpolicy import NetworkPolicy
from videohub.aio import CloseOnce, Part, TaskOwner
from videohub.errors import FeedClosed, NoPicture, NotFound, Unavailable
from videohub.hub.feed import Feed, Subscription
from videohub.hub.follower import CameraDirectory
from videohub.hub.runner import FeedStats, RunnerContext, StreamRunner, source_options
from videohub.hub.snapshot import Snapshots
from videohub.hub.streams import STREAMS, CameraStreams, StreamGate, StreamTable
from videohub.models import Camera
from videohub.settings.ingest import IngestSettings

log = logging.getLogger(__name__)

__all__ = ["STREAMS", "CameraDirectory", "FeedManager", "FeedStats", "source_options"]


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
        gate: StreamGate | None = None,
    ) -> None:
        """``policy``: where URLs may point (the registry's); ``allow_files``: open file:// sources;
        ``gate``: which streams this worker may pull (cluster mode; None: all of them)."""
        self.settings = settings
        self._registry = registry
        self._policy = policy
        self._allow_files = allow_files
        self._tasks = TaskOwner("hub")
        self._closing = CloseOnce()
        self._snapshots = Snapshots(settings.snapshot_wait, settings.snapshot_cache_seconds)
        self._ctx: RunnerContext | None = None
        self.streams = StreamTable(settings, registry, lambda: self._ctx, self._snapshots.forget, gate)
        """The desired streams; the registry follower tells it of every change."""

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
        sources = self.streams.shutdown()
        # Every thread was told to stop above; now wait for them together, off the loop.
        await asyncio.gather(*(source.aclose() for source in sources))
        await self._tasks.drain()  # the joins of sources stopped earlier
        await self._tasks.close()

    # -- following the registry: the StreamTable (a RegistryListener) --------------------------------

    async def apply(self, camera_id: str) -> None:
        """Bring one camera's streams in line with the registry now (``StreamTable.apply``)."""
        await self.streams.apply(camera_id)

    # -- what viewers call -----------------------------------------------------------------------

    async def _runner(self, camera_id: str, stream: str) -> tuple[CameraStreams, StreamRunner]:
        if stream not in STREAMS:
            raise NotFound(f"unknown stream {stream!r} (main or sub)")
        if self._closed:
            raise Unavailable("the feed hub is stopping")
        entry = self.streams.get(camera_id)
        if entry is None:
            # Registered a moment ago: the change feed may not have told us yet.
            await self.streams.apply(camera_id)
            entry = self.streams.get(camera_id)
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
                    gate = self.streams.gate
                    if gate is not None:
                        await gate.claim(entry.camera.id, stream)
                    login = await self.streams.login(entry.camera, stream, runner.spec)
                except BaseException:
                    subscription.close()
                    raise
                if runner.source is None and not runner.feed.closed:
                    runner.start_source(login)
        return subscription

    def feed(self, camera_id: str, stream: str = "main") -> Feed | None:
        entry = self.streams.get(camera_id)
        runner = entry.runners.get(stream) if entry is not None else None
        return runner.feed if runner is not None else None

    def stats(self, camera_id: str) -> dict[str, FeedStats]:
        """Per-stream state and stats of one camera ({} when unknown or disabled)."""
        entry = self.streams.get(camera_id)
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
