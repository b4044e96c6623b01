"""The alert service: what the health monitor, the API and the lifespan talk to."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import redis.asyncio as aioredis

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.alerts.channels import Directory, build_channels
from videohub.alerts.deadletter import DeadLetters
from videohub.alerts.delivery import ChannelDelivery, ensure_group
from videohub.alerts.live import LiveAlerts
from videohub.alerts.models import Alert, ParkedEvent, ResendResult
from videohub.alerts.store import AlertStore, Clock, text
from videohub.errors import NotFound
from videohub.fence import Fence
from videohub.settings.alerts import AlertSettings
from videohub.store import OUTAGE

log = logging.getLogger(__name__)

HEALTH_KINDS = ("offline", "degraded", "flapping")
RESEND_BATCH = 200
"""Parked events one re-send-all request sends at most (the page repeats it while some remain)."""


class AlertService(Part):
    """Owns alert lifecycle and delivery: the Redis records (``store``), the live UI fan-out (``live``)
    one ``ChannelDelivery`` per configured webhook and channel (WeCom, DingTalk, mail), and their
    parked events (``dead``). ``directory`` is where messages look up camera and line names.

    Sits after the health monitor (which calls ``reconcile`` when a camera's wanted alerts change) and
    before the API (``store`` for listing, ``acknowledge``/``resolve``) and /ws (``live.subscribe``).
    ``async with service:`` (or ``start()``/``close()``) runs the delivery tasks in its ``TaskOwner``;
    ``run()`` does the same until cancelled.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: AlertSettings | None = None,
        *,
        prefix: str = "vh:",
        consumer: str | None = None,
        clock: Clock | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.settings = settings or AlertSettings()
        self.redis = redis
        self.clock = clock or time.time
        self.store = AlertStore(
            redis, prefix=prefix, clock=self.clock, stream_maxlen=self.settings.stream_maxlen
        )
        self.live = LiveAlerts(redis, self.store.stream, self.settings.live_buffer)
        # A stable consumer name per host: after a restart the same consumer finds its pending events.
        self.consumer = consumer or os.environ.get("VIDEOHUB_WORKER_ID") or socket.gethostname()
        self._client = httpx.AsyncClient()
        self.dead = DeadLetters(redis, prefix=prefix, maxlen=self.settings.webhook_dead_maxlen)
        channels = build_channels(self.settings, directory or Directory(), self._client)
        self.deliveries = [
            ChannelDelivery(redis, self.store.stream, channel, self.settings, self.consumer, self.dead)
            for channel in channels
        ]
        self._resending = {d.name: asyncio.Lock() for d in self.deliveries}
        self._groups_ready = False
        self._group_lock = asyncio.Lock()
        self._tasks = TaskOwner("alerts")
        self._closing = CloseOnce()

    async def setup(self) -> None:
        """Create the channels' consumer groups before the first event is written (idempotent)."""
        async with self._group_lock:
            if self._groups_ready:
                return
            for delivery in self.deliveries:
                await ensure_group(self.redis, self.store.stream, delivery.group)
            self._groups_ready = True

    async def reconcile(
        self,
        camera: str,
        line: str,
        desired: Mapping[Any, Sequence[str]],
        fence: Fence | None = None,
    ) -> list[Alert]:
        """Make the camera's unresolved health alerts match ``desired`` (kind → reasons).

        Opens the missing ones, updates reasons, auto-resolves the ones no longer wanted. Returns the
        alerts that changed. With ``fence`` (cluster mode: the lease of the camera's stream), each write
        happens only while that lease is the caller's; ``videohub.fence.Fenced`` otherwise.
        """
        await self.setup()
        fields = [f"{camera}|{kind}" for kind in HEALTH_KINDS]
        ids = await self.redis.hmget(self.store.open_key, fields)
        changed: list[Alert] = []
        for kind, raw_id in zip(HEALTH_KINDS, ids, strict=True):
            if kind in desired:
                before = await self.store.get(text(raw_id)) if raw_id is not None else None
                alert = await self.store.open(camera, line, kind, desired[kind], fence)
                if before is None or before.reasons != alert.reasons:
                    changed.append(alert)
            elif raw_id is not None:
                changed.append(await self.store.resolve(text(raw_id), "auto", fence=fence))
        return changed

    async def acknowledge(self, alert_id: str, user: str, note: str | None = None) -> Alert:
        await self.setup()
        return await self.store.acknowledge(alert_id, user, note)

    async def resolve(self, alert_id: str, user: str, note: str | None = None) -> Alert:
        await self.setup()
        return await self.store.resolve(alert_id, user, note)

    # -- parked events ---------------------------------------------------------------------

    def delivery(self, hook: str) -> ChannelDelivery:
        for delivery in self.deliveries:
            if delivery.name == hook:
                return delivery
        raise NotFound(f"webhook or channel {hook!r} not found")

    async def parked(self, hook: str, entry_id: str) -> ParkedEvent:
        kind = self.delivery(hook).channel.kind
        stored = await self.dead.get(hook, entry_id)
        if stored is None:
            raise NotFound(f"parked event {entry_id} of {hook!r} not found")
        return stored.public(hook, kind)

    async def resend(self, hook: str, entry_id: str) -> ResendResult:
        """Send one parked event again now; it leaves the dead-letter stream once the channel takes it."""
        delivery = self.delivery(hook)
        kind = delivery.channel.kind
        async with self._resending[hook]:  # two clicks on this worker send it once
            stored = await self.dead.get(hook, entry_id)
            if stored is None:
                raise NotFound(f"parked event {entry_id} of {hook!r} not found")
            failure = await delivery.resend(stored)
            if failure is None:
                await self.dead.remove(hook, entry_id)
                return ResendResult(resent=1, remaining=await self.dead.count(hook))
            again = await self.dead.refused_again(hook, stored, failure)
            return ResendResult(
                resent=0, failed=again.public(hook, kind), remaining=await self.dead.count(hook)
            )

    async def resend_all(self, hook: str) -> ResendResult:
        """Send the channel's parked events again, oldest first, up to ``RESEND_BATCH``; stop at the
        first refusal (the receiver is still broken: hammering it with the rest would not help), and
        when a robot's rate limit is reached (the page asks again for the rest)."""
        delivery = self.delivery(hook)
        kind = delivery.channel.kind
        resent = 0
        async with self._resending[hook]:
            for stored in await self.dead.oldest(hook, RESEND_BATCH):
                checkpoint()
                if delivery.at_limit():
                    break
                failure = await delivery.resend(stored)
                if failure is not None:
                    again = await self.dead.refused_again(hook, stored, failure)
                    return ResendResult(
                        resent=resent, failed=again.public(hook, kind), remaining=await self.dead.count(hook)
                    )
                await self.dead.remove(hook, stored.id)
                resent += 1
        return ResendResult(resent=resent, remaining=await self.dead.count(hook))

    async def delete_parked(self, hook: str, entry_id: str) -> ParkedEvent:
        parked = await self.parked(hook, entry_id)
        await self.dead.remove(hook, entry_id)
        return parked

    async def start(self) -> None:
        """Live fan-out, channel deliveries and history trimming, until ``close()``."""
        if self._closing.started or self._tasks.started:
            return
        await self.setup()
        await self._tasks.start()
        self._tasks.spawn(self.live.run(), name="alerts-live")
        for delivery in self.deliveries:
            self._tasks.spawn(delivery.run(), name=f"{delivery.channel.kind}-{delivery.name}")
        self._tasks.spawn(self._trim_loop(), name="alerts-trim")

    async def run(self) -> None:
        """``start()``, then wait until cancelled, then ``close()``."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _trim_loop(self) -> None:
        while True:
            try:
                removed = await self.store.trim(self.settings.retention_days * 86400)
                if removed:
                    log.info("alerts: trimmed %d resolved alerts", removed)
            except OUTAGE as exc:  # tried again in an hour
                log.warning("alerts: trimming skipped, redis unavailable (%s)", type(exc).__name__)
            except Exception:
                log.exception("alerts: trimming failed")
            checkpoint()
            await asyncio.sleep(3600)

    async def close(self) -> None:
        """Stop the tasks, then release the HTTP client and the channels. Safe to call twice; a
        concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()
        await self._client.aclose()
        for delivery in self.deliveries:
            await delivery.channel.aclose()
