"""``Cluster``: this worker's view of the cluster, as the rest of the service uses it.

Built by ``videohub.services.build_services`` in cluster mode (``settings.cluster.enabled``) and kept on
``Services.cluster``: its heartbeat and leases start before the hub (``Cluster`` is a Part), its
placement loop (``Cluster.ownership``, a Part of its own) starts after the registry follower, so it
stops first and hands the streams over while the hub and the WHEP sessions still run.
"""

from __future__ import annotations

import hmac
import logging

import redis.asyncio as aioredis

from videohub.aio import CloseOnce, Part, TaskOwner
from videohub.audit import AuditLog
from videohub.cluster.leases import LeaseTable
from videohub.cluster.ledger import SessionLedger
from videohub.cluster.ownership import Ownership
from videohub.cluster.workers import Counters, WorkerDirectory, WorkerInfo, identity
from videohub.settings.cluster import ClusterSettings
from videohub.store import OUTAGE

log = logging.getLogger(__name__)


class Cluster(Part):
    """Who is alive, who owns a stream, and the leases of this worker."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: ClusterSettings,
        address: str,
        counters: Counters,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.directory = WorkerDirectory(redis, settings, identity(settings, address), counters)
        self.ledger = SessionLedger(redis, self.directory.me.id, audit)
        """This worker's live sessions in Redis; the sessions of a worker that died are audited."""
        self._tasks = TaskOwner("cluster")
        self.directory.on_gone(self._gone)
        self.leases = LeaseTable(redis, self.directory.me.id, settings.lease_ttl_ms, self._lost)
        self.ownership = Ownership(redis, settings, self.directory, self.leases)
        self.secret = settings.secret.get_secret_value() if settings.secret is not None else None
        self._closing = CloseOnce()

    def _lost(self, stream: str) -> None:
        self.ownership.lost(stream)

    @property
    def me(self) -> WorkerInfo:
        return self.directory.me

    def workers(self) -> list[WorkerInfo]:
        return self.directory.alive

    def worker(self, worker_id: str) -> WorkerInfo | None:
        return self.directory.get(worker_id)

    def is_me(self, worker_id: str) -> bool:
        return worker_id == self.directory.me.id

    async def owner(self, camera_id: str, stream: str = "main") -> WorkerInfo | None:
        return await self.ownership.owner(camera_id, stream)

    def trusted(self, presented: str | None) -> bool:
        """Whether a request carries the cluster's secret (it was forwarded by another node)."""
        if self.secret is None or not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.secret.encode())

    def _gone(self, worker: WorkerInfo) -> None:
        if self._tasks.started and not self._tasks.closed:
            self._tasks.spawn(self._reap(worker.id, worker.started_at), name=f"reap-{worker.id}")

    async def _reap(self, worker_id: str, started_at: float) -> None:
        try:
            await self.ledger.reap(worker_id, started_at)
        except OUTAGE as exc:
            log.warning("cluster: could not audit the sessions of gone worker %s: %s", worker_id, exc)

    async def start(self) -> None:
        await self._tasks.start()
        await self.directory.start()
        await self.leases.start()
        # A previous process of this worker id that died left its sessions behind.
        self._tasks.spawn(self._reap(self.me.id, self.me.started_at), name="reap-previous")

    async def close(self) -> None:
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self.ownership.close()  # normally closed already, before the hub: drains
        await self.leases.close()
        for stream in self.leases.held():  # whatever is left: free it for the others now
            try:
                await self.leases.release(stream)
            except Exception:
                self.leases.forget(stream)
        await self.directory.close()
        await self._tasks.close()
