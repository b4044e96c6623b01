"""What routing reads of the cluster: the workers and who owns a stream (the seam to ``Cluster``).

``videohub.cluster`` (the lead's core: placement, heartbeats, leases, ownership) exposes a ``Cluster``
facade on ``Services.cluster``; the routing side (``routing.py``, the API routers) only reads it, so it
is typed against these two protocols: ``WorkerView`` is ``workers.WorkerInfo`` (a frozen dataclass),
``ClusterView`` the read-only face of ``Cluster``. ``LocalWorker`` describes the one process of a
service that runs without cluster mode, so ``GET /api/workers`` and ``/metrics`` name it the same way.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Protocol

from videohub.settings.cluster import WORKER_ID, ClusterSettings


class WorkerView(Protocol):
    """One worker as its last heartbeat described it (``workers.WorkerInfo``)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def media_host(self) -> str: ...
    @property
    def capacity(self) -> float: ...
    @property
    def started_at(self) -> float: ...
    @property
    def heartbeat_at(self) -> float: ...
    @property
    def cameras(self) -> int: ...
    @property
    def viewers(self) -> int: ...
    @property
    def cpu(self) -> float: ...


class ClusterView(Protocol):
    """The read-only face of ``videohub.cluster.Cluster`` that routing and the API use."""

    @property
    def settings(self) -> ClusterSettings: ...
    @property
    def me(self) -> WorkerView: ...
    @property
    def secret(self) -> str | None: ...
    def workers(self) -> list[Any]: ...  # list[WorkerView]; Any: a list is invariant in its item type
    def worker(self, worker_id: str) -> WorkerView | None: ...
    def is_me(self, worker_id: str) -> bool: ...
    async def owner(self, camera_id: str, stream: str = "main") -> WorkerView | None: ...


def local_worker_id(settings: ClusterSettings) -> str:
    """This process's id: the configured one, else ``<hostname>-<pid>`` cut to a valid worker id."""
    if settings.worker_id is not None:
        return settings.worker_id
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname().lower()).strip("-") or "host"
    candidate = f"{host[:24]}-{os.getpid()}"[:32].strip("-")
    return candidate if WORKER_ID.match(candidate) else f"videohub-{os.getpid()}"


class CpuMeter:
    """This process's CPU, in percent of one core, between two reads (the first read: since start)."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.process_time()

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        elapsed = wall - self._wall
        percent = 100.0 * (cpu - self._cpu) / elapsed if elapsed > 0 else 0.0
        self._wall, self._cpu = wall, cpu
        return round(percent, 1)
