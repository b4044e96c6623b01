"""The Feed hub's part of the app lifespan: start the FeedManager, stop it at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack

from videohub.hub.latest import LatestPictures
from videohub.hub.manager import FeedManager
from videohub.hub.warm import WarmHolds
from videohub.services import Services


async def hub_startup(svc: Services, stack: AsyncExitStack) -> None:
    """Start ingesting (always_on cameras now, on_demand ones when watched); sets ``svc.hub``."""
    manager = FeedManager(
        svc.settings.ingest,
        svc.registry,
        policy=svc.registry.network_policy,
        allow_files=svc.settings.demo.allow_test_sources,
    )
    stack.push_async_callback(manager.close)
    await manager.start()
    svc.hub = manager
    # Issue 16: warm-up holds on feeds (tours, presets); ended before the hub closes.
    holds = WarmHolds(manager)
    stack.push_async_callback(holds.close)
    svc.extra["warm"] = holds


async def pictures_startup(svc: Services, stack: AsyncExitStack) -> None:
    """The latest pictures in Redis (``svc.pictures``): written by health and snapshots, read by the wall."""
    svc.pictures = LatestPictures(svc.store.redis)
