"""``GET /api/workers``: the worker processes serving this service, as their heartbeats describe them.

Readable by admin, maintenance and operator (an operator sees where a wall's cameras play from); a
line admin is 403: the list maps the whole deployment. In a cluster the rows are the live workers of
``Cluster.workers()`` (refreshed every heartbeat) and ``state`` turns ``lost`` once a heartbeat is
older than ``cluster.heartbeat_ttl_ms``; one plain process lists itself, with its counters read now.
Internal addresses are listed (they are what an operator needs to reach a worker); the cluster
secret never is.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from videohub.api.deps import CurrentUser, ServicesDep
from videohub.cluster.workers import CpuMeter, WorkerInfo, default_worker_id, identity
from videohub.policy import check_role
from videohub.services import Services

router = APIRouter(tags=["operations"])

_STARTED = time.time()
_CPU = CpuMeter()


class WorkerOut(BaseModel):
    id: str
    role: str = Field(description="all, api or worker.")
    host: str
    pid: int
    address: str = Field(description="Internal HTTP base URL (empty for one plain process).")
    media_host: str = Field(description="The host its ICE candidates advertise.")
    capacity: float
    cameras: int = Field(description="Camera streams it ingests now.")
    viewers: int = Field(description="Its live WHEP sessions.")
    cpu: float = Field(description="Percent of one core over its last heartbeat interval.")
    heartbeat_at: float = Field(description="Its last heartbeat (Unix seconds).")
    heartbeat_age_seconds: float
    started_at: float
    state: Literal["live", "lost"] = Field(description="lost once the heartbeat is older than its TTL.")
    me: bool = Field(description="The worker that answered this request.")


def local_worker(svc: Services) -> WorkerInfo:
    """One plain process as a worker's heartbeat would describe it: its counters are read now."""
    cameras = 0
    if svc.hub is not None:
        cameras = sum(1 for entry in svc.hub.streams for r in entry.runners.values() if r.source is not None)
    return replace(
        identity(svc.settings.cluster, ""),
        started_at=_STARTED,
        heartbeat_at=time.time(),
        cameras=cameras,
        viewers=len(svc.sessions) if svc.sessions is not None else 0,
        cpu=_CPU.read(),
    )


def worker_out(worker: WorkerInfo, *, now: float, ttl_seconds: float, me: bool) -> WorkerOut:
    age = max(0.0, now - worker.heartbeat_at)
    return WorkerOut(
        id=worker.id,
        role=worker.role,
        host=worker.host,
        pid=worker.pid,
        address=worker.address,
        media_host=worker.media_host,
        capacity=worker.capacity,
        cameras=worker.cameras,
        viewers=worker.viewers,
        cpu=round(worker.cpu, 1),
        heartbeat_at=round(worker.heartbeat_at, 3),
        heartbeat_age_seconds=round(age, 3),
        started_at=round(worker.started_at, 3),
        state="lost" if age > ttl_seconds else "live",
        me=me,
    )


class WorkersOut(BaseModel):
    workers: list[WorkerOut] = Field(description="Live workers, sorted by id.")
    cluster: bool = Field(description="Cluster mode (false: one plain process, listed alone).")
    heartbeat_ttl_seconds: float = Field(description="A heartbeat older than this is lost.")


@router.get("/api/workers", response_model=WorkersOut)
async def list_workers(user: CurrentUser, svc: ServicesDep) -> WorkersOut:
    """Every live worker (sorted by id): role, host, pid, address, capacity, load, last heartbeat."""
    check_role(user, "admin", "maintenance", "operator")
    now = time.time()
    ttl = svc.settings.cluster.heartbeat_ttl_ms / 1000
    if svc.cluster is None:
        rows = [worker_out(local_worker(svc), now=now, ttl_seconds=ttl, me=True)]
    else:
        cluster = svc.cluster
        rows = [
            worker_out(w, now=now, ttl_seconds=ttl, me=cluster.is_me(w.id))
            for w in sorted(cluster.workers(), key=lambda w: w.id)
        ]
    return WorkersOut(workers=rows, cluster=svc.cluster is not None, heartbeat_ttl_seconds=ttl)


def worker_id(svc: Services) -> str:
    """The id of the worker serving this request (the label of its metrics, the ``worker`` of its rows)."""
    if svc.cluster is not None:
        return svc.cluster.me.id
    return svc.settings.cluster.worker_id or default_worker_id()
