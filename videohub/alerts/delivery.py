"""At-least-once delivery of alert events to each channel, and parking of what a channel refuses.

The same for every channel (``videohub.alerts.channels``: webhook, WeCom, DingTalk, mail). Each has
its own Redis consumer group on the alert event stream (``<kind>:<name>``; ``webhook:<name>`` for
webhooks). A worker reads an event, has the channel render it and send it, and acknowledges it
(XACK) once the channel took it. A failed attempt is retried with capped exponential backoff, in
stream order, until the channel takes it or the event is given up: after ``webhook_max_attempts``
attempts, once it is ``webhook_give_up_after_seconds`` old (counted from when it was raised), or at
once for an answer a retry cannot change (``Failure.final``: for HTTP channels an answer in
``webhook_park_statuses``; for robots an errcode such as a bad key or sign; for mail an SMTP 5xx).
A given-up event is parked in the channel's dead-letter stream (``videohub.alerts.deadletter``) and
acknowledged in one transaction, so the events after it flow again; maintenance staff re-send or
delete parked events from the health page. A channel with a rate limit (the robots: 20 a minute)
is paced (``videohub.alerts.pace``) instead of being refused.

An event read but not acknowledged stays pending in Redis, so a receiver outage, a Redis outage or
a service restart loses nothing: the worker re-sends its own pending events first whenever it
(re)connects, and takes over events another (dead) worker left pending for
``webhook_claim_idle_seconds``. While it retries one event for long, it keeps that event claimed.
Receivers may see an event twice (webhooks should de-duplicate on ``X-Videohub-Delivery``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from videohub.aio import checkpoint
from videohub.alerts.channels.base import Channel
from videohub.alerts.deadletter import DeadLetters, Failure, Stored
from videohub.alerts.models import AlertEvent
from videohub.alerts.store import parse_event, text
from videohub.settings.alerts import AlertSettings
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create a channel's consumer group at the stream's end (new channels get no old history)."""
    try:
        await redis.xgroup_create(stream, group, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class DeliveryStats:
    """What this worker's delivery of one channel did (``/metrics`` shows it)."""

    delivered: int = 0
    failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_status: int | None = None
    """HTTP status of the last failed attempt (None after a success, or without an answer)."""
    retrying: bool = False
    parked: int = 0
    """Events this worker parked (the dead-letter stream's length is the count that matters)."""


class ChannelDelivery:
    """Delivers one channel's events in stream order; owned by the ``AlertService``'s task group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        channel: Channel,
        settings: AlertSettings,
        consumer: str,
        dead: DeadLetters,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.channel = channel
        self.name = channel.name
        self.settings = settings
        self.consumer = consumer
        self.dead = dead
        self.group = channel.group
        self.stats = DeliveryStats()
        self._outage = OutageLog(log, f"{channel.kind} {channel.name}")
        # A paced channel takes new events one at a time, once its rate allows one: events waiting
        # for the rate stay unread in the stream, not pending (and idle) in this worker's name,
        # where another worker would take them over as if this one had died.
        self.batch = 50 if channel.pace is None else 1

    async def _free_slot(self) -> None:
        if self.channel.pace is not None:
            await self.channel.pace.free()

    async def run(self) -> None:
        reconnected = True
        while True:
            checkpoint()
            try:
                if reconnected:
                    await ensure_group(self.redis, self.stream, self.group)
                    # Events this consumer read but never got acknowledged (before a restart, or
                    # when Redis went away mid-delivery) come first.
                    await self._drain("0")
                    reconnected = False
                await self._claim_stale()
                await self._free_slot()
                rows = await self.redis.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=1000
                )
                self._outage.ok()
                for _stream, entries in rows:
                    for entry_id, fields in entries:
                        await self._deliver(text(entry_id), fields)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group vanished (Redis flushed or restarted without its data).
                log.warning("%s %s: consumer group missing; recreating", self.channel.kind, self.name)
                reconnected = True
            except OUTAGE as exc:
                # The event under way stays pending in Redis and is sent again once it is back.
                self._outage.failed(exc)
                reconnected = True
                await asyncio.sleep(1.0)

    async def _drain(self, start: str) -> None:
        last = start
        while True:
            checkpoint()
            rows = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: last}, count=50)
            entries = rows[0][1] if rows else []
            if not entries:
                return
            for entry_id, fields in entries:
                last = text(entry_id)
                if fields:  # an entry trimmed from the stream while pending comes back empty
                    await self._deliver(last, fields)
                else:
                    await self.redis.xack(self.stream, self.group, last)

    async def _claim_stale(self) -> None:
        idle_ms = int(self.settings.webhook_claim_idle_seconds * 1000)
        result = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=idle_ms, start_id="0-0", count=50
        )
        claimed = result[1] if len(result) > 1 else []
        for entry_id, fields in claimed:
            if fields:
                await self._deliver(text(entry_id), fields)
            else:
                await self.redis.xack(self.stream, self.group, entry_id)

    async def attempt(self, delivery: str, event: AlertEvent, payload: bytes) -> Failure | None:
        """Send one rendered event once (paced if the channel has a limit); None when it was taken."""
        if self.channel.pace is not None:
            await self.channel.pace.acquire()
        failure = await self.channel.send(delivery, event.event, payload)
        self.stats.last_status = None if failure is None else failure.status
        return failure

    def at_limit(self) -> bool:
        """True when the channel's rate limit allows no send right now."""
        pace = self.channel.pace
        return pace is not None and pace.wait_seconds() > 0

    async def resend(self, stored: Stored) -> Failure | None:
        """Send a parked event again now: its stored payload (rendered afresh if it never rendered)."""
        event = stored.alert_event()
        payload = stored.body or await self._render(stored.delivery, event)
        if isinstance(payload, Failure):
            return payload
        if self.channel.pace is not None:
            self.channel.pace.note()
        return await self.channel.send(stored.delivery, event.event, payload)

    async def _render(self, entry_id: str, event: AlertEvent) -> bytes | Failure:
        try:
            return await self.channel.render(entry_id, event)
        except OUTAGE:
            raise
        except Exception as exc:  # a bug or an unexpected record must not stop the channel's other events
            log.exception("%s %s: delivery %s could not be rendered", self.channel.kind, self.name, entry_id)
            return Failure(f"render failed: {type(exc).__name__}", final=True)

    def _give_up(self, entry_id: str, attempts: int, failure: Failure) -> bool:
        s = self.settings
        if failure.final:
            return True
        raised_at = int(entry_id.split("-", 1)[0]) / 1000  # stream ids are Redis's clock in ms
        return (
            attempts >= s.webhook_max_attempts or time.time() - raised_at >= s.webhook_give_up_after_seconds
        )

    async def _deliver(self, entry_id: str, fields: dict[Any, Any]) -> None:
        event = parse_event(fields)
        if not self.channel.wants(event):
            self.stats.skipped += 1
            await self.redis.xack(self.stream, self.group, entry_id)
            return
        rendered = await self._render(entry_id, event)
        delay = self.settings.webhook_backoff_initial_seconds
        attempts = 0
        claimed_at = time.monotonic()
        while True:
            checkpoint()
            attempts += 1
            failure: Failure | None
            if isinstance(rendered, Failure):  # final: parked at once, rendered again on re-send
                body, failure = b"", rendered
            else:
                body = rendered
                failure = await self.attempt(entry_id, event, body)
            if failure is None:
                break
            self.stats.failures += 1
            self.stats.retrying = True
            if self._give_up(entry_id, attempts, failure):
                await self.dead.park(
                    self.name,
                    entry_id,
                    body,
                    event,
                    attempts,
                    failure,
                    stream=self.stream,
                    group=self.group,
                )
                self.stats.parked += 1
                self.stats.retrying = False
                self.stats.last_error = failure.error
                log.warning(
                    "%s %s: delivery %s parked after %d attempts (%s)",
                    self.channel.kind,
                    self.name,
                    entry_id,
                    attempts,
                    failure.error,
                )
                return
            if self.stats.last_error != failure.error:
                log.warning(
                    "%s %s: delivery %s failed (%s); retrying",
                    self.channel.kind,
                    self.name,
                    entry_id,
                    failure.error,
                )
            self.stats.last_error = failure.error
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.webhook_backoff_max_seconds)
            if time.monotonic() - claimed_at >= self.settings.webhook_claim_idle_seconds / 3:
                if not await self._keep_claimed(entry_id):
                    return
                claimed_at = time.monotonic()
        self.stats.retrying = False
        self.stats.delivered += 1
        await self.redis.xack(self.stream, self.group, entry_id)

    async def _keep_claimed(self, entry_id: str) -> bool:
        """Reset the event's idle time, so no other worker takes it over while this one retries.

        False when another worker has taken it over already (it thought this one dead): it goes on
        from there, and this one lets go.
        """
        pending = await self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        if not pending or text(pending[0]["consumer"]) != self.consumer:
            log.info(
                "%s %s: delivery %s taken over by another worker", self.channel.kind, self.name, entry_id
            )
            self.stats.retrying = False
            return False
        await self.redis.xclaim(self.stream, self.group, self.consumer, 0, [entry_id], justid=True)
        return True
