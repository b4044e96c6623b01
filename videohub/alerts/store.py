"""Alerts in Redis, and the event stream every delivery path reads.

Keys (prefix ``vh:``):
- ``alert:<id>``      the alert, JSON
- ``alerts:open``     hash ``<camera>|<kind>`` → id of its unresolved alert (one per camera and kind)
- ``alerts:index``    sorted set id → opened time (listing newest first, trimming by age)
- ``alerts:events``   stream of ``{event, alert}``: integrators read it; webhooks consume it through
                      consumer groups; the live UI tails it (so every worker's UI sees every alert)
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from videohub.alerts.models import Alert, AlertEvent, AlertState, EventType
from videohub.errors import Conflict, NotFound
from videohub.fence import Fence, check

Clock = Callable[[], float]


class AlertStore:
    """Owns the alert records and their lifecycle; every change is written with its event, atomically."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "vh:",
        clock: Clock | None = None,
        stream_maxlen: int = 100_000,
    ) -> None:
        import time

        self.redis = redis
        self.prefix = prefix
        self._clock = clock or time.time
        self.stream_maxlen = stream_maxlen
        self.stream = f"{prefix}alerts:events"
        self.open_key = f"{prefix}alerts:open"
        self._index = f"{prefix}alerts:index"

    def _key(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def get(self, alert_id: str) -> Alert | None:
        raw = await self.redis.get(self._key(alert_id))
        return None if raw is None else Alert.model_validate_json(raw)

    async def require(self, alert_id: str) -> Alert:
        alert = await self.get(alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} not found")
        return alert

    def _write(self, pipe: aioredis.client.Pipeline, alert: Alert, event: EventType) -> None:
        pipe.set(self._key(alert.id), alert.model_dump_json())
        body = AlertEvent(event=event, alert=alert).model_dump_json()
        pipe.xadd(self.stream, {"event": event, "alert": body}, maxlen=self.stream_maxlen, approximate=True)

    async def open(
        self, camera: str, line: str, kind: str, reasons: Sequence[str], fence: Fence | None = None
    ) -> Alert:
        """Open an alert for (camera, kind), or return the unresolved one (updating its reasons).
        With ``fence``, only while that lease is still the caller's (else ``Fenced``, nothing written)."""
        key = f"{camera}|{kind}"
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await check(pipe, fence)
                    await pipe.watch(self.open_key)
                    existing_id = await pipe.hget(self.open_key, key)
                    if existing_id is not None:
                        # Watch the alert itself too: an acknowledge landing between this read and the
                        # rewrite below would otherwise be overwritten and lost.
                        await pipe.watch(self.open_key, self._key(text(existing_id)))
                        existing = await self.get(text(existing_id))
                        if existing is not None and existing.active:
                            if existing.reasons == list(reasons) and existing.line == line:
                                await pipe.unwatch()
                                return existing
                            updated = existing.model_copy(
                                update={"reasons": list(reasons), "line": line, "updated_at": self._now()}
                            )
                            pipe.multi()
                            self._write(pipe, updated, "updated")
                            await pipe.execute()
                            return updated
                    now = self._now()
                    alert = Alert(
                        id=f"{int(now.timestamp() * 1000):x}-{secrets.token_hex(4)}",
                        camera=camera,
                        line=line,
                        kind=kind,
                        reasons=list(reasons),
                        opened_at=now,
                        updated_at=now,
                    )
                    pipe.multi()
                    pipe.hset(self.open_key, key, alert.id)
                    pipe.zadd(self._index, {alert.id: now.timestamp()})
                    self._write(pipe, alert, "opened")
                    await pipe.execute()
                    return alert
                except WatchError:
                    continue

    async def _change(
        self,
        alert_id: str,
        change: Callable[[Alert], Alert | None],
        event: EventType,
        fence: Fence | None = None,
    ) -> Alert:
        """Read-modify-write one alert under WATCH; ``change`` returns None for "nothing to do"."""
        key = self._key(alert_id)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await check(pipe, fence)
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise NotFound(f"alert {alert_id} not found")
                    current = Alert.model_validate_json(raw)
                    updated = change(current)
                    if updated is None:
                        await pipe.unwatch()
                        return current
                    pipe.multi()
                    if not updated.active:
                        pipe.hdel(self.open_key, f"{updated.camera}|{updated.kind}")
                    self._write(pipe, updated, event)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue

    async def acknowledge(self, alert_id: str, user: str, note: str | None = None) -> Alert:
        """open → acknowledged. Acknowledging twice keeps the first; a resolved alert is a conflict."""

        def change(alert: Alert) -> Alert | None:
            if alert.state == "resolved":
                raise Conflict(f"alert {alert_id} is already resolved")
            if alert.state == "acknowledged":
                return None
            now = self._now()
            return alert.model_copy(
                update={
                    "state": "acknowledged",
                    "acked_by": user,
                    "acked_at": now,
                    "ack_note": note,
                    "updated_at": now,
                }
            )

        return await self._change(alert_id, change, "acknowledged")

    async def resolve(
        self, alert_id: str, user: str, note: str | None = None, fence: Fence | None = None
    ) -> Alert:
        """→ resolved, by a user or by ``"auto"``. Resolving a resolved alert is a conflict for a user."""

        def change(alert: Alert) -> Alert | None:
            if alert.state == "resolved":
                if user == "auto":
                    return None
                raise Conflict(f"alert {alert_id} is already resolved")
            now = self._now()
            return alert.model_copy(
                update={
                    "state": "resolved",
                    "resolved_by": user,
                    "resolved_at": now,
                    "resolve_note": note,
                    "updated_at": now,
                }
            )

        return await self._change(alert_id, change, "resolved", fence)

    async def unresolved(self) -> dict[tuple[str, str], str]:
        """(camera, kind) → id of every unresolved alert."""
        rows = await self.redis.hgetall(self.open_key)
        out: dict[tuple[str, str], str] = {}
        for name, value in rows.items():
            camera, _, kind = text(name).rpartition("|")
            out[(camera, kind)] = text(value)
        return out

    async def active(self) -> list[Alert]:
        ids = list((await self.unresolved()).values())
        return await self._many(ids)

    async def _many(self, ids: Sequence[str]) -> list[Alert]:
        if not ids:
            return []
        raws = await self.redis.mget([self._key(i) for i in ids])
        return [Alert.model_validate_json(r) for r in raws if r is not None]

    async def query(
        self,
        *,
        state: AlertState | None = None,
        lines: Sequence[str] | None = None,
        camera: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts opened within ``[since, until]`` matching the filters, newest first."""
        out: list[Alert] = []
        high: float | str = "+inf" if until is None else until
        low: float | str = "-inf" if since is None else since
        offset, batch = 0, max(100, limit)
        while len(out) < limit:
            ids = await self.redis.zrevrangebyscore(self._index, high, low, start=offset, num=batch)
            if not ids:
                break
            offset += len(ids)
            for alert in await self._many([text(i) for i in ids]):
                if state is not None and alert.state != state:
                    continue
                if lines is not None and alert.line not in lines:
                    continue
                if camera is not None and alert.camera != camera:
                    continue
                if kind is not None and alert.kind != kind:
                    continue
                out.append(alert)
                if len(out) >= limit:
                    break
        return out

    async def trim(self, older_than_seconds: float) -> int:
        """Delete resolved alerts opened before the cutoff; returns how many."""
        cutoff = self._clock() - older_than_seconds
        ids = [text(i) for i in await self.redis.zrangebyscore(self._index, "-inf", cutoff)]
        removed = 0
        for alert in await self._many(ids):
            if alert.active:
                continue  # an alert still open is never forgotten
            await self.redis.delete(self._key(alert.id))
            await self.redis.zrem(self._index, alert.id)
            removed += 1
        return removed

    async def events_after(self, last_id: str = "0", count: int = 100) -> list[tuple[str, AlertEvent]]:
        """Events from the stream after ``last_id`` (what an integrator's reader does)."""
        rows = await self.redis.xrange(
            self.stream, f"({last_id}" if last_id != "0" else "-", "+", count=count
        )
        return [(text(rid), parse_event(fields)) for rid, fields in rows]


def text(value: bytes | str) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


def entry_field(fields: dict[Any, Any], name: str) -> str:
    """One field of a stream entry, whether the client decodes responses or not."""
    value = fields.get(name, fields.get(name.encode()))
    if value is None:
        raise ValueError(f"stream entry has no field {name!r}")
    return text(value)


def parse_event(fields: dict[Any, Any]) -> AlertEvent:
    return AlertEvent.model_validate(json.loads(entry_field(fields, "alert")))
