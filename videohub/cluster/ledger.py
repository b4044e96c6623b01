"""Each worker's live viewing sessions in Redis, so that a worker that dies is not lost from the audit.

A session that ends on its worker is audited there (``videohub.webrtc.rights.audit_hook``). A worker
killed with ``kill -9`` audits nothing: its sessions stay in ``vh:cluster:sessions:<worker>`` (session
reference → audit record so far; never the session id, which is a capability). When the others see
it gone, one of them (``SET NX`` on ``vh:cluster:reaped:<worker>``) writes each one's end to the audit
trail with the reason ``worker_lost`` and removes the ledger; a worker restarted under the same id
reaps its previous process's ledger at start. Its players have reconnected elsewhere by then.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis

from videohub.audit import AuditLog
from videohub.store import OUTAGE, PREFIX, OutageLog
from videohub.webrtc.rights import AUDIT_ACTION
from videohub.webrtc.session import SessionRecord, session_ref

log = logging.getLogger(__name__)

REAP_CLAIM_MS = 60_000


def ledger_key(worker_id: str) -> str:
    return f"{PREFIX}cluster:sessions:{worker_id}"


class SessionLedger:
    def __init__(self, redis: aioredis.Redis, worker_id: str, audit: AuditLog) -> None:
        self._redis = redis
        self.worker_id = worker_id
        self._audit = audit
        self._outage = OutageLog(log, "cluster session ledger")

    async def started(self, record: SessionRecord) -> None:
        try:
            await self._redis.hset(
                ledger_key(self.worker_id), session_ref(record.id), json.dumps(record.audit_dict())
            )
        except OUTAGE as exc:  # the session plays on; only a crash of this worker would go unaudited
            self._outage.failed(exc)

    async def ended(self, record: SessionRecord) -> None:
        try:
            await self._redis.hdel(ledger_key(self.worker_id), session_ref(record.id))
        except OUTAGE as exc:
            self._outage.failed(exc)

    async def reap(self, worker_id: str, started_at: float = 0.0) -> int:
        """Audit the sessions a gone worker left (once, whoever sees it first); returns how many."""
        claim = f"{PREFIX}cluster:reaped:{worker_id}:{int(started_at)}"
        if not await self._redis.set(claim, self.worker_id, nx=True, px=REAP_CLAIM_MS):
            return 0
        key = ledger_key(worker_id)
        left = await self._redis.hgetall(key)
        now = datetime.now(UTC)
        for raw in left.values():
            try:
                entry = json.loads(raw)
                started = datetime.fromisoformat(entry["started_at"])
            except (ValueError, KeyError, TypeError):
                continue
            entry.update(
                ended_at=now.isoformat(),
                duration_s=round((now - started).total_seconds(), 1),
                end_reason="worker_lost",
                worker=worker_id,
            )
            user, camera = str(entry.get("user")), str(entry.get("camera"))
            await self._audit.record(user, AUDIT_ACTION, camera, None, entry)
        await self._redis.delete(key)
        if left:
            log.warning("cluster: worker %s is gone; audited its %d sessions as ended", worker_id, len(left))
        return len(left)
