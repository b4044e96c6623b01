"""The registry change follower: one subscription to the registry's change feed for the whole process.

Sits between the registry and the parts that keep per-camera state (the Feed hub turns cameras into
desired streams; the health monitor tracks them). Each listener hears every put/delete
(``changed``) and is told to ``resync`` when changes may have been missed (after a Redis outage:
pub/sub keeps nothing for an absent subscriber) or periodically as a safety net. Running feeds and
checks never wait for Redis: while it is away they go on, and the resync after the resubscribe covers
the gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.models import Camera, RegistryChange
from videohub.store import OUTAGE, OutageLog
from videohub.stream_secrets import StreamSecrets

log = logging.getLogger(__name__)


class CameraDirectory(Protocol):
    """What the hub and the follower need of the registry (``videohub.registry.CameraRegistry``)."""

    async def get(self, camera_id: str) -> Camera | None: ...
    async def all(self) -> list[Camera]: ...
    async def secrets(self, camera: Camera, stream: str) -> StreamSecrets | None: ...
    def changes(
        self, subscribed: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[RegistryChange]: ...


class RegistryListener(Protocol):
    """A part that keeps per-camera state in line with the registry."""

    async def changed(self, change: RegistryChange) -> None:
        """One camera was put or deleted."""
        ...

    async def resync(self, *, missed: bool) -> None:
        """Re-read the registry: ``missed`` after an outage (changes were lost), else the periodic check."""
        ...


class RegistryFollower(Part):
    """Follows ``registry.changes()`` and tells every listener, in order; resyncs them every
    ``resync_interval`` seconds and after each outage. Enter it after its listeners have started."""

    def __init__(
        self, registry: CameraDirectory, listeners: Sequence[RegistryListener], *, resync_interval: float
    ) -> None:
        self.registry = registry
        self.listeners = list(listeners)
        self.resync_interval = resync_interval
        self._tasks = TaskOwner("registry-follower")
        self._closing = CloseOnce()
        self._follow_outage = OutageLog(log, "registry change feed")
        self._resync_outage = OutageLog(log, "registry resync")

    async def start(self) -> None:
        """Subscribe, then resync every listener once, so a change made meanwhile is not missed."""
        if self._tasks.started or self._closing.started:
            return
        await self._tasks.start()
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks.spawn(self._follow(first), name="registry-follow")
        await first  # the first resync, made once subscribed; raises what it raised
        self._tasks.spawn(self._resync_loop(), name="registry-resync")

    async def close(self) -> None:
        """Stop following. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._tasks.close)

    async def _resync(self, *, missed: bool) -> None:
        for listener in self.listeners:
            await listener.resync(missed=missed)

    async def _follow(self, first: asyncio.Future[None]) -> None:
        resync = True  # the first subscription resyncs too: that is start()'s resync

        async def subscribed() -> None:
            # Resync only once subscribed: a change made between the resync and the resubscribe
            # would otherwise be missed until the next periodic resync.
            nonlocal resync
            if resync:
                await self._resync(missed=True)
                resync = False
                self._follow_outage.ok()
            if not first.done():
                first.set_result(None)

        while True:
            checkpoint()
            try:
                async for change in self.registry.changes(subscribed):
                    self._follow_outage.ok()
                    for listener in self.listeners:
                        await listener.changed(change)
                    checkpoint()
            except asyncio.CancelledError:
                raise
            except OUTAGE as exc:  # Redis restarting: resubscribe, then resync to cover the gap
                if not first.done():  # start() fails as its own resync would have
                    first.set_exception(exc)
                self._follow_outage.failed(exc)
                resync = True
                await asyncio.sleep(1.0)
            except Exception as exc:  # a refused command or a listener's bug: resubscribe and resync
                if not first.done():
                    first.set_exception(exc)
                log.warning("registry change feed failed (%s); resubscribing", type(exc).__name__)
                resync = True
                await asyncio.sleep(1.0)

    async def _resync_loop(self) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.resync_interval)
            try:
                await self._resync(missed=False)
                self._resync_outage.ok()
                checkpoint()
            except asyncio.CancelledError:
                raise
            except OUTAGE as exc:
                self._resync_outage.failed(exc)
            except Exception as exc:
                log.warning("registry resync failed: %s", type(exc).__name__)
