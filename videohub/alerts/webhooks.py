"""At-least-once delivery of alert events to per-line webhooks.

Each configured webhook has its own Redis consumer group on the alert event stream, named after the
webhook. A worker reads an event, POSTs it (JSON, HMAC-SHA256 signed), retries with capped
exponential backoff until the receiver answers 2xx, and only then acknowledges it (XACK). An event
read but not acknowledged stays pending in Redis, so a receiver outage or a service restart loses
nothing: on start the worker first re-sends its own pending events, and takes over events another
(dead) worker left pending for ``webhook_claim_idle_seconds``. Receivers may see an event twice and
should de-duplicate on ``X-Videohub-Delivery``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from videohub.aio import checkpoint
from videohub.alerts.models import AlertEvent
from videohub.alerts.store import parse_event, text
from videohub.settings.health import AlertSettings, WebhookSettings
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Videohub-Signature"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC of the raw body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


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
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.hook = hook
        self.settings = settings
        self.consumer = consumer
        self.client = client
        self.group = group_name(hook)
        self.secret = hook.secret_bytes()
        self.stats = WebhookStats()
        self._outage = OutageLog(log, f"webhook {hook.name}")

    def wants(self, event: AlertEvent) -> bool:
        return not self.hook.lines or event.alert.line in self.hook.lines

    async def run(self) -> None:
        await ensure_group(self.redis, self.stream, self.hook)
        # Events this consumer read before a restart but never got acknowledged come first.
        await self._drain("0")
        missing_group = False
        while True:
            checkpoint()
            try:
                if missing_group:
                    await ensure_group(self.redis, self.stream, self.hook)
                    missing_group = False
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
                missing_group = True
            except OUTAGE as exc:
                # An event delivered but not acknowledged stays pending: it is sent again (at least once).
                self._outage.failed(exc)
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

    async def _deliver(self, entry_id: str, fields: dict[Any, Any]) -> None:
        event = parse_event(fields)
        if not self.wants(event):
            self.stats.skipped += 1
            await self.redis.xack(self.stream, self.group, entry_id)
            return
        body = json.dumps({"delivery": entry_id, **event.body()}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Videohub-Event": event.event,
            "X-Videohub-Delivery": entry_id,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        delay = self.settings.webhook_backoff_initial_seconds
        while True:
            checkpoint()
            try:
                response = await self.client.post(
                    self.hook.url,
                    content=body,
                    headers=headers,
                    timeout=self.settings.webhook_timeout_seconds,
                )
                self.stats.last_status = response.status_code
                if 200 <= response.status_code < 300:
                    break
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.stats.failures += 1
            self.stats.retrying = True
            if self.stats.last_error != error:
                log.warning("webhook %s: delivery %s failed (%s); retrying", self.hook.name, entry_id, error)
            self.stats.last_error = error
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.webhook_backoff_max_seconds)
        self.stats.retrying = False
        self.stats.delivered += 1
        await self.redis.xack(self.stream, self.group, entry_id)
