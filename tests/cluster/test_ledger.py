"""A worker killed with its viewers still watching: their sessions still reach the audit trail, once,
written by whichever live worker notices first, without the session id (a capability)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from videohub.audit import AuditLog
from videohub.cluster.ledger import SessionLedger, ledger_key
from videohub.webrtc.rights import AUDIT_ACTION
from videohub.webrtc.session import SessionRecord, session_ref


def record(session_id: str, user: str = "op1", camera: str = "ga-001") -> SessionRecord:
    return SessionRecord(
        id=session_id,
        user=user,
        camera_id=camera,
        stream="main",
        started_at=datetime.now(UTC) - timedelta(seconds=30),
        remote="192.0.2.10",
    )


async def test_sessions_of_a_dead_worker_are_audited_once_as_worker_lost(redis: aioredis.Redis) -> None:
    audit = AuditLog(redis)
    dead = SessionLedger(redis, "w-dead", audit)
    ended_cleanly = record("sess-secret-2", user="op2")
    await dead.started(record("sess-secret-1"))
    await dead.started(ended_cleanly)
    await dead.ended(ended_cleanly)  # audited by its own worker; not left behind
    # Two live workers see w-dead gone at the same beat.
    survivors = [SessionLedger(redis, "w1", audit), SessionLedger(redis, "w2", audit)]
    counts = [await s.reap("w-dead", 1000.0) for s in survivors]
    assert sorted(counts) == [0, 1]
    page = await audit.page(action=AUDIT_ACTION)
    assert [(e.actor, e.target) for e in page.items] == [("op1", "ga-001")]
    after = page.items[0].after or {}
    assert after["end_reason"] == "worker_lost"
    assert after["worker"] == "w-dead"
    assert after["session"] == session_ref("sess-secret-1")
    assert float(str(after["duration_s"])) >= 30
    assert "sess-secret-1" not in str(after)  # the reference, never the id
    assert not await redis.exists(ledger_key("w-dead"))
