"""The audit trail: every login, registry, user and viewing change appended to a Redis stream.

Entries carry who, what, when and before/after snapshots. Callers pass snapshots that hold no
secrets (models here never contain passwords); ``scrub`` is a second line of defence.

The trail is kept by age, not by count: each write removes the entries older than the retention
(``XADD … MINID``, the stream ids being millisecond timestamps), so however many viewing sessions
churn, a recent entry such as a ``camera.create`` stays. An entry that cannot be written is never
dropped silently: it is logged at error level, counted (``videohub_audit_write_failures_total``) and
raised as Unavailable, so the request that made the change answers 503. (A viewing session's end has
no request to fail: the session manager logs it.)
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from videohub.errors import Unavailable
from videohub.models import AuditEntry, AuditPage
from videohub.store import key

log = logging.getLogger(__name__)

AUDIT_STREAM = key("audit")
DEFAULT_RETENTION_DAYS = 180.0
_SECRET_KEYS = frozenset({"password", "password_hash", "token", "access_token", "secret", "credential"})


def scrub(value: Any) -> Any:
    """Drop secret-looking keys anywhere in a JSON-like value."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k.lower() not in _SECRET_KEYS}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


class AuditLog:
    """Append-only audit stream (``vh:audit``), newest-first paging."""

    def __init__(self, redis: aioredis.Redis, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self._redis = redis
        self._retention_ms = int(retention_days * 86_400_000)
        self.failures = 0
        """Entries that could not be written (for /metrics)."""

    async def record(
        self,
        actor: str,
        action: str,
        target: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        fields = {
            "ts": f"{time.time():.3f}",
            "actor": actor,
            "action": action,
            "target": target,
            "before": json.dumps(scrub(before), ensure_ascii=False, default=str) if before else "",
            "after": json.dumps(scrub(after), ensure_ascii=False, default=str) if after else "",
        }
        oldest = max(0, int(time.time() * 1000) - self._retention_ms)
        try:
            # Exact trimming: with "~" Redis keeps a whole node of old entries next to new ones.
            await self._redis.xadd(AUDIT_STREAM, fields, minid=f"{oldest}-0", approximate=False)
        except (RedisError, OSError) as exc:
            self.failures += 1
            log.error(
                "audit entry not written: %s by %s on %s (%s)", action, actor, target, type(exc).__name__
            )
            raise Unavailable("the audit trail cannot be written; try again shortly") from None

    async def length(self) -> int:
        """Entries in the trail (all workers), for /metrics."""
        return int(await self._redis.xlen(AUDIT_STREAM))

    async def page(self, limit: int = 50, before: str | None = None, action: str | None = None) -> AuditPage:
        """Newest first. ``before`` is an entry id from a previous page's ``next_before``."""
        items: list[AuditEntry] = []
        cursor = f"({before}" if before else "+"
        while len(items) < limit:
            batch = await self._redis.xrevrange(AUDIT_STREAM, max=cursor, min="-", count=max(limit * 2, 50))
            if not batch:
                cursor = ""
                break
            for entry_id, fields in batch:
                cursor = f"({entry_id}"
                if action and fields.get("action") != action:
                    continue
                items.append(
                    AuditEntry(
                        id=entry_id,
                        ts=datetime.fromtimestamp(float(fields["ts"]), UTC),
                        actor=fields["actor"],
                        action=fields["action"],
                        target=fields["target"],
                        before=json.loads(fields["before"]) if fields.get("before") else None,
                        after=json.loads(fields["after"]) if fields.get("after") else None,
                    )
                )
                if len(items) == limit:
                    break
        next_before = items[-1].id if len(items) == limit else None
        return AuditPage(items=items, next_before=next_before)
