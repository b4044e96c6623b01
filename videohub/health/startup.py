"""Health and alerts in the app lifespan, and the view of the Feed hub the monitor reads.

``health_startup`` must run after the hub's startup (it reads ``svc.hub``); it sets
``svc.alerts`` (``AlertService``) and ``svc.health`` (``HealthMonitor``), runs their background
tasks and stops them (in reverse order) when the lifespan's exit stack unwinds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from ingest.packet import Packet
from ingest.stats import StatsSnapshot
from videohub.aio import cancel_and_wait
from videohub.alerts.channels import Directory
from videohub.alerts.service import AlertService
from videohub.health.monitor import HealthMonitor
from videohub.hub.latest import PictureSink
from videohub.services import Services
from videohub.store import PREFIX

log = logging.getLogger(__name__)


class FeedManagerView:
    """Adapts ``videohub.hub.manager.FeedManager`` to the monitor's ``HubView``.

    Health follows the stream the hub pulls continuously (``ingest.always_on_streams``, main by
    default); for an on_demand camera it follows whichever stream someone is watching, and says
    "not pulled" (None) otherwise so the probe schedule covers it.
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def _pick(self, camera_id: str) -> tuple[str, StatsSnapshot | None] | None:
        streams = self.manager.stats(camera_id)
        if not streams:
            return None
        for name, fs in streams.items():
            if fs.always_on:
                return name, fs.ingest
        for name, fs in streams.items():
            if fs.state != "idle":
                return name, fs.ingest
        return None

    def sampled_stream(self, camera_id: str) -> str | None:
        """The stream whose keyframes ``latest_keyframe`` gives (None when none is pulled)."""
        picked = self._pick(camera_id)
        return None if picked is None else picked[0]

    def stream_stats(self, camera_id: str) -> StatsSnapshot | None:
        picked = self._pick(camera_id)
        return None if picked is None else picked[1]

    def latest_keyframe(self, camera_id: str) -> Packet | None:
        picked = self._pick(camera_id)
        if picked is None:
            return None
        feed = self.manager.feed(camera_id, picked[0])
        packet: Packet | None = feed.last_keyframe if feed is not None else None
        return packet

    def viewers(self, camera_id: str) -> int:
        return sum(int(fs.subscribers) for fs in self.manager.stats(camera_id).values())

    def subscriber_drops(self, camera_id: str) -> int:
        return sum(int(fs.subscriber_drops) for fs in self.manager.stats(camera_id).values())


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())


def _spawn(coro: Coroutine[Any, Any, None], name: str, stack: AsyncExitStack) -> None:
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report)
    stack.push_async_callback(_cancel, task)


async def _cancel(task: asyncio.Task[None]) -> None:
    await cancel_and_wait(task)


async def health_startup(svc: Services, stack: AsyncExitStack) -> None:
    """Start alert delivery, then the health monitor (if enabled)."""
    redis = svc.store.redis
    directory = Directory.from_settings(svc.settings, svc.registry)  # camera and line names for messages
    alerts = AlertService(redis, svc.settings.alerts, prefix=PREFIX, directory=directory)
    await alerts.setup()
    stack.push_async_callback(alerts.close)
    _spawn(alerts.run(), "alerts", stack)
    svc.alerts = alerts
    hub = FeedManagerView(svc.hub) if svc.hub is not None else None
    monitor = HealthMonitor(svc.settings.health, svc.registry, alerts, redis, hub=hub, prefix=PREFIX)
    if svc.pictures is not None:  # issue 16: probes and samples keep the wall's latest picture
        monitor.pictures = PictureSink(svc.pictures, hub)
    svc.health = monitor
    if svc.settings.health.enabled:
        _spawn(monitor.run(), "health", stack)
