"""At-least-once delivery of alert events to per-line webhooks, and parking of what they refuse.

Each configured webhook has its own Redis consumer group on the alert event stream, named after the
webhook. A worker reads an event, POSTs it (JSON, HMAC-SHA256 signed) and acknowledges it (XACK)
once the receiver answers 2xx. A failed attempt is retried with capped exponential backoff, in
stream order, until the receiver takes it or the event is given up: after ``webhook_max_attempts``
attempts, once it is ``webhook_give_up_after_seconds`` old (counted from when it was raised), or at
once for an answer a retry cannot change (``webhook_park_statuses``: 400, 401, 403, 404, 410, 422).
A given-up event is parked in the webhook's dead-letter stream (``videohub.alerts.deadletter``) and
acknowledged in one transaction, so the events after it flow again; maintenance staff re-send or
delete parked events from the health page.

An event read but not acknowledged stays pending in Redis, so a receiver outage, a Redis outage or
a service restart loses nothing: the worker re-sends its own pending events first whenever it
(re)connects, and takes over events another (dead) worker left pending for
``webhook_claim_idle_seconds``. While it retries one event for long, it keeps that event claimed.
Receivers may see an event twice and should de-duplicate on ``X-Videohub-Delivery``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from videohub.aio import checkpoint
from videohub.alerts.deadletter import DeadLetters, Failure
from videohub.alerts.models import AlertEvent, EventType
from videohub.alerts.store import parse_event, text
from videohub.settings.health import AlertSettings, WebhookSettings
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Videohub-Signature"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC of the raw body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def failure_text(exc: BaseException) -> str:
    """What went wrong, safe for logs, the API and the UI: a webhook URL often carries a token
    (``?access_token=…``), so any URL in the message is cut out."""
    message = _URL.sub("<url>", str(exc)).strip()
    return f"{type(exc).__name__}: {message}"[:200] if message else type(exc).__name__


def group_name(hook: WebhookSettings) -> str:
    return f"webhook:{hook.name}"


async def ensure_group(redis: aioredis.Redis, stream: str, hook: WebhookSettings) -> None:
    """Create the webhook's consumer group at the stream's end (new hooks get no old history)."""
    try:
        await redis.xgroup_create(stream, group_name(hook), id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class WebhookStats:
    delivered: int = 0
    failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_status: int | None = None
    retrying: bool = False
    parked: int = 0
    """Events this worker parked (the dead-letter stream's length is the count that matters)."""


class WebhookDelivery:
    """Delivers one webhook's events in stream order; owned by the ``AlertService``'s task group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str,
        hook: WebhookSettings,
        settings: AlertSettings,
        consumer: str,
        client: httpx.AsyncClient,
        dead: DeadLetters,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.hook = hook
        self.settings = settings
        self.consumer = consumer
        self.client = client
        self.dead = dead
        self.group = group_name(hook)
        self.secret = hook.secret_bytes()
        self.stats = WebhookStats()
        self._outage = OutageLog(log, f"webhook {hook.name}")

    def wants(self, event: AlertEvent) -> bool:
        return not self.hook.lines or event.alert.line in self.hook.lines

    async def run(self) -> None:
        reconnected = True
        while True:
            checkpoint()
            try:
                if reconnected:
                    await ensure_group(self.redis, self.stream, self.hook)
                    # Events this consumer read but never got acknowledged (before a restart, or
                    # when Redis went away mid-delivery) come first.
                    await self._drain("0")
                    reconnected = False
                await self._claim_stale()
                rows = await self.redis.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=50, block=1000
                )
                self._outage.ok()
                for _stream, entries in rows:
                    for entry_id, fields in entries:
                        await self._deliver(text(entry_id), fields)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group vanished (Redis flushed or restarted without its data).
                log.warning("webhook %s: consumer group missing; recreating", self.hook.name)
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

    async def attempt(self, delivery: str, event: EventType, body: bytes) -> Failure | None:
        """POST one event once; None when the receiver took it (2xx)."""
        headers = {
            "Content-Type": "application/json",
            "X-Videohub-Event": event,
            "X-Videohub-Delivery": delivery,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            response = await self.client.post(
                self.hook.url, content=body, headers=headers, timeout=self.settings.webhook_timeout_seconds
            )
        except httpx.HTTPError as exc:
            return Failure(failure_text(exc))
        self.stats.last_status = response.status_code
        if 200 <= response.status_code < 300:
            return None
        return Failure(f"HTTP {response.status_code}", response.status_code)

    def _give_up(self, entry_id: str, attempts: int, failure: Failure) -> bool:
        s = self.settings
        if failure.status is not None and failure.status in s.webhook_park_statuses:
            return True
        raised_at = int(entry_id.split("-", 1)[0]) / 1000  # stream ids are Redis's clock in ms
        return (
            attempts >= s.webhook_max_attempts or time.time() - raised_at >= s.webhook_give_up_after_seconds
        )

    async def _deliver(self, entry_id: str, fields: dict[Any, Any]) -> None:
        event = parse_event(fields)
        if not self.wants(event):
            self.stats.skipped += 1
            await self.redis.xack(self.stream, self.group, entry_id)
            return
        body = json.dumps({"delivery": entry_id, **event.body()}, ensure_ascii=False).encode()
        delay = self.settings.webhook_backoff_initial_seconds
        attempts = 0
        claimed_at = time.monotonic()
        while True:
            checkpoint()
            attempts += 1
            failure = await self.attempt(entry_id, event.event, body)
            if failure is None:
                break
            self.stats.failures += 1
            self.stats.retrying = True
            if self._give_up(entry_id, attempts, failure):
                await self.dead.park(
                    self.hook.name,
                    entry_id,
                    body,
                    event.event,
                    attempts,
                    failure,
                    stream=self.stream,
                    group=self.group,
                )
                self.stats.parked += 1
                self.stats.retrying = False
                self.stats.last_error = failure.error
                log.warning(
                    "webhook %s: delivery %s parked after %d attempts (%s)",
                    self.hook.name,
                    entry_id,
                    attempts,
                    failure.error,
                )
                return
            if self.stats.last_error != failure.error:
                log.warning(
                    "webhook %s: delivery %s failed (%s); retrying", self.hook.name, entry_id, failure.error
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
            log.info("webhook %s: delivery %s taken over by another worker", self.hook.name, entry_id)
            self.stats.retrying = False
            return False
        await self.redis.xclaim(self.stream, self.group, self.consumer, 0, [entry_id], justid=True)
        return True
