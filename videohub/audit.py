"""The audit trail: every registry, user and viewing change appended to a Redis stream.

Entries carry who, what, when and before/after snapshots. Callers pass snapshots that hold no
secrets (models here never contain passwords); ``scrub`` is a second line of defence.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from videohub.models import AuditEntry, AuditPage
from videohub.store import key

AUDIT_STREAM = key("audit")
MAX_ENTRIES = 1_000_000
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

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

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
        await self._redis.xadd(AUDIT_STREAM, fields, maxlen=MAX_ENTRIES, approximate=True)

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
