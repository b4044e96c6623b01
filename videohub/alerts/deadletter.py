"""Parked events: per channel (webhook, robot, mail), a bounded dead-letter stream of the events it
kept refusing.

Keys (prefix ``vh:``): ``alerts:dead:<name>``, a stream with one entry per parked event:
``delivery`` (the event's id in the alert stream, sent as ``X-Videohub-Delivery``), ``body`` (the
exact payload that was sent: a webhook's JSON, a robot's JSON message, a whole mail; a re-send is
byte for byte the same), ``alert`` (the event itself, JSON: what the API shows; entries parked
before channels existed have only the webhook body, which holds it), ``event``, ``attempts``,
``last_error``, ``last_status`` and ``parked_at``. The stream is trimmed to about
``webhook_dead_maxlen`` entries, the oldest first. No secret is stored: robot URLs are built per
attempt, and error texts are cleaned by the channel.

Parking is one transaction with the XACK in the channel's consumer group, so an event is either
still pending (and retried) or parked: never lost, never both.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from videohub.alerts.models import Alert, AlertEvent, ChannelKind, EventType, ParkedEvent
from videohub.alerts.store import entry_field, text

log = logging.getLogger(__name__)

EVENTS: tuple[EventType, ...] = ("opened", "updated", "acknowledged", "resolved")

ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
"""A Redis stream entry id: what the API accepts as a parked event's id."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one delivery attempt failed: text safe to show (no URL, no secret) and the HTTP status, if
    any; ``final`` when a retry cannot change the answer (the event is parked at once)."""

    error: str
    status: int | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class Stored:
    """One dead-letter entry as stored."""

    id: str
    delivery: str
    body: bytes
    event: EventType
    attempts: int
    last_error: str
    last_status: int | None
    parked_at: float
    alert: str | None = None
    """The event as JSON (None in entries parked before channels: their body is the event)."""

    def alert_event(self) -> AlertEvent:
        if self.alert is not None:
            return AlertEvent.model_validate_json(self.alert)
        body = json.loads(self.body)
        return AlertEvent(event=self.event, alert=Alert.model_validate(body["alert"]))

    def public(self, hook: str, channel: ChannelKind = "webhook") -> ParkedEvent:
        alert = self.alert_event().alert
        return ParkedEvent(
            id=self.id,
            hook=hook,
            channel=channel,
            delivery=self.delivery,
            event=self.event,
            alert=alert,
            attempts=self.attempts,
            last_error=self.last_error,
            last_status=self.last_status,
            parked_at=datetime.fromtimestamp(self.parked_at, UTC),
        )


def _fields(
    delivery: str, body: bytes, event: EventType, attempts: int, failure: Failure, alert: str | None
) -> dict[str, str | int | float]:
    fields: dict[str, str | int | float] = {} if alert is None else {"alert": alert}
    return fields | {
        "delivery": delivery,
        "body": body.decode(),
        "event": event,
        "attempts": attempts,
        "last_error": failure.error,
        "last_status": "" if failure.status is None else failure.status,
        "parked_at": f"{time.time():.3f}",
    }


def _stored(entry_id: Any, fields: dict[Any, Any]) -> Stored:
    status = entry_field(fields, "last_status")
    name = entry_field(fields, "event")
    event = next((e for e in EVENTS if e == name), None)
    if event is None:
        raise ValueError(f"unknown event {name!r}")
    return Stored(
        id=text(entry_id),
        delivery=entry_field(fields, "delivery"),
        body=entry_field(fields, "body").encode(),
        event=event,
        attempts=int(entry_field(fields, "attempts")),
        last_error=entry_field(fields, "last_error"),
        last_status=int(status) if status else None,
        parked_at=float(entry_field(fields, "parked_at")),
        alert=entry_field(fields, "alert") if "alert" in fields or b"alert" in fields else None,
    )


class DeadLetters:
    """Owns the channels' dead-letter streams: park, list, take out."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "vh:", maxlen: int = 10_000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.maxlen = maxlen

    def key(self, hook: str) -> str:
        return f"{self.prefix}alerts:dead:{hook}"

    async def park(
        self,
        hook: str,
        delivery: str,
        body: bytes,
        event: AlertEvent,
        attempts: int,
        failure: Failure,
        *,
        stream: str,
        group: str,
    ) -> str:
        """Park the event and acknowledge it in the channel's consumer group, atomically."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.key(hook),
                _fields(delivery, body, event.event, attempts, failure, event.model_dump_json()),
                maxlen=self.maxlen,
                approximate=True,
            )
            pipe.xack(stream, group, delivery)
            added, _acked = await pipe.execute()
        return text(added)

    async def get(self, hook: str, entry_id: str) -> Stored | None:
        rows = await self.redis.xrange(self.key(hook), entry_id, entry_id, count=1)
        return _stored(*rows[0]) if rows else None

    def _valid(self, hook: str, rows: Iterable[tuple[Any, dict[Any, Any]]]) -> list[Stored]:
        out: list[Stored] = []
        for entry_id, fields in rows:
            try:
                out.append(_stored(entry_id, fields))
            except (ValueError, KeyError) as exc:  # not ours, or hand-edited: shown nowhere, kept
                log.warning("alerts %s: dead-letter entry %s unreadable (%s)", hook, text(entry_id), exc)
        return out

    async def newest(self, hook: str, limit: int = 100) -> list[Stored]:
        return self._valid(hook, await self.redis.xrevrange(self.key(hook), "+", "-", count=limit))

    async def oldest(self, hook: str, limit: int = 100) -> list[Stored]:
        return self._valid(hook, await self.redis.xrange(self.key(hook), "-", "+", count=limit))

    async def list(self, hook: str, limit: int = 100, channel: ChannelKind = "webhook") -> list[ParkedEvent]:
        """The channel's parked events, newest first."""
        out: list[ParkedEvent] = []
        for stored in await self.newest(hook, limit):
            try:
                out.append(stored.public(hook, channel))
            except (ValueError, ValidationError) as exc:
                log.warning("alerts %s: dead-letter entry %s unreadable (%s)", hook, stored.id, exc)
        return out

    async def remove(self, hook: str, entry_id: str) -> bool:
        return int(await self.redis.xdel(self.key(hook), entry_id)) == 1

    async def refused_again(self, hook: str, stored: Stored, failure: Failure) -> Stored:
        """A re-send failed: the entry is replaced by one with the attempt and error counted."""
        fields = _fields(
            stored.delivery, stored.body, stored.event, stored.attempts + 1, failure, stored.alert
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key(hook), fields, maxlen=self.maxlen, approximate=True)
            pipe.xdel(self.key(hook), stored.id)
            added, _deleted = await pipe.execute()
        return Stored(
            id=text(added),
            delivery=stored.delivery,
            body=stored.body,
            event=stored.event,
            attempts=stored.attempts + 1,
            last_error=failure.error,
            last_status=failure.status,
            parked_at=float(fields["parked_at"]),
            alert=stored.alert,
        )

    async def count(self, hook: str) -> int:
        return int(await self.redis.xlen(self.key(hook)))

    async def counts(self, hooks: Iterable[str]) -> dict[str, int]:
        names = list(hooks)
        if not names:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xlen(self.key(name))
            lengths = await pipe.execute()
        return {name: int(n) for name, n in zip(names, lengths, strict=True)}
