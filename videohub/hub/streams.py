"""Desired streams: the registry's cameras turned into the streams this worker runs.

Between the registry follower and the runners (registry → follower → **StreamTable** → runner →
Source → Feed). ``videohub.hub.follower.RegistryFollower`` tells it of every registry change
(``changed``) and to ``resync``; for each camera it keeps one ``StreamRunner`` per stream and decides
whether it runs: ``always_on`` streams from the first resync, ``on_demand`` ones only while a viewer
holds them (``FeedManager.subscribe`` starts them; the runner stops them ``on_demand_idle`` seconds
after the last one leaves). Each stream's secrets are read from the registry each time a source starts
and handed to it as a ``Login`` bound to the endpoint they were given for, never kept in a URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ingest.source import Login, Source
from ingest.url import PLACEHOLDER
from videohub.hub.follower import CameraDirectory
from videohub.hub.runner import RunnerContext, StreamRunner
from videohub.models import Camera, CameraStream, RegistryChange
from videohub.settings.ingest import IngestSettings

log = logging.getLogger(__name__)

STREAMS: tuple[Literal["main", "sub"], ...] = ("main", "sub")


class StreamGate(Protocol):
    """Whether this worker may pull a stream (``videohub.cluster.ownership.Ownership``: it holds the
    stream's lease). Without a gate, a single process pulls every stream."""

    def may_pull(self, camera_id: str, stream: str) -> bool: ...

    async def claim(self, camera_id: str, stream: str) -> None:
        """Take the stream for a first viewer here; raises ``videohub.errors.NotOwner``."""


@dataclass(eq=False)
class CameraStreams:
    """One camera's runners, changed under its lock."""

    camera: Camera
    runners: dict[str, StreamRunner] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StreamTable:
    """The cameras this worker knows and their wanted streams (a ``RegistryListener``)."""

    def __init__(
        self,
        settings: IngestSettings,
        registry: CameraDirectory,
        context: Callable[[], RunnerContext | None],
        on_deleted: Callable[[str], None],
        gate: StreamGate | None = None,
    ) -> None:
        """``context``: the runners' context once the hub has started; ``on_deleted``: told the id of
        each camera that was deleted (the hub drops its snapshot cache); ``gate``: which streams this
        worker may pull (cluster mode)."""
        self.settings = settings
        self._registry = registry
        self._context = context
        self._on_deleted = on_deleted
        self.gate = gate
        self._cameras: dict[str, CameraStreams] = {}
        self.closed = False

    def get(self, camera_id: str) -> CameraStreams | None:
        return self._cameras.get(camera_id)

    def __iter__(self) -> Iterator[CameraStreams]:
        return iter(list(self._cameras.values()))

    def shutdown(self) -> list[Source]:
        """Stop following and stop every runner; the sources still to be joined are returned."""
        self.closed = True
        sources: list[Source] = []
        for entry in self._cameras.values():
            for runner in entry.runners.values():
                source = runner.shutdown()
                if source is not None:
                    sources.append(source)
        self._cameras.clear()
        return sources

    def may_pull(self, camera_id: str, stream: str) -> bool:
        return self.gate is None or self.gate.may_pull(camera_id, stream)

    def revoke(self, camera_id: str, name: str, reason: str) -> None:
        """This worker may no longer pull the stream: stop it now and end its feed (its viewers'
        sessions end, and their players reconnect to the new owner); an idle runner takes its place."""
        entry = self._cameras.get(camera_id)
        runner = entry.runners.pop(name, None) if entry is not None else None
        if runner is None or self.closed:
            return
        runner.drop(reason)
        ctx = self._context()
        if ctx is not None and entry is not None:
            entry.runners[name] = StreamRunner(ctx, camera_id, runner.name, runner.spec, runner.always_on)

    # -- following the registry ------------------------------------------------------------------

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

    def _entry(self, camera: Camera) -> CameraStreams:
        entry = self._cameras.get(camera.id)
        if entry is None:
            entry = CameraStreams(camera)
            self._cameras[camera.id] = entry
        return entry

    async def apply(self, camera_id: str) -> None:
        """Bring one camera's streams in line with the registry (called for each registry change)."""
        if self.closed:
            return
        camera = await self._registry.get(camera_id)
        if camera is None:
            entry = self._cameras.pop(camera_id, None)
            if entry is not None:
                async with entry.lock:
                    for name in list(entry.runners):
                        entry.runners.pop(name).drop("the camera was deleted")
                self._on_deleted(camera_id)
            return
        entry = self._entry(camera)
        async with entry.lock:
            await self._update(entry, camera)

    async def _update(self, entry: CameraStreams, camera: Camera) -> None:
        if self.closed:
            return
        ctx = self._context()
        assert ctx is not None, "FeedManager.start() was not called"
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
                runner = StreamRunner(ctx, camera.id, name, spec, always_on)
                entry.runners[name] = runner
            login = await self.login(camera, name, spec)
            changed = spec != runner.spec or login != runner.login
            runner.spec, runner.always_on = spec, always_on
            if not self.may_pull(camera.id, name):
                if runner.source is not None:
                    runner.stop_source()
                continue
            if runner.source is not None and changed:
                log.info("%s: stream settings changed, reconnecting", runner.feed.key)
                runner.restart_source(login)
            if runner.wanted and runner.source is None:
                runner.start_source(login)
            elif not runner.wanted and runner.source is not None and runner.idle is None:
                runner.schedule_idle()

    async def login(self, camera: Camera, name: str, spec: CameraStream) -> Login | None:
        """The stream's secrets, bound to their endpoint (no Redis read for a stream without any)."""
        if not spec.has_credentials and PLACEHOLDER not in spec.url:
            return None
        found = await self._registry.secrets(camera, name)
        return found.login() if found is not None else None
