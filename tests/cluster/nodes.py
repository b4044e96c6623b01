"""Several videohub apps on one Valkey, each served by uvicorn on its own loopback port: a cluster in
one test process, for the routing tests (``videohub.cluster.routing`` and the routers that use it).

The lead's cluster core (heartbeats, leases, placement: ``videohub.cluster.Cluster``) is not on main
yet, so the nodes share a ``Directory``: the workers' records as their heartbeats would publish them,
and which worker owns which camera stream, set by the test. ``DirectoryCluster`` is each node's view
of it through the ``ClusterView`` protocol the routing reads. Everything else is real: HTTP between
the nodes (their internal address is their uvicorn port), the store, the Feed hubs, aiortc.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from videohub.aio import cancel_and_wait
from videohub.app import build_app
from videohub.cluster.view import WorkerView
from videohub.services import Parts, Services
from videohub.settings import Settings
from videohub.settings.cluster import ClusterSettings
from videohub.store import Store

T = TypeVar("T")
SECRET = "cluster-secret-0123456789abcdef"
SECRET_STR = SecretStr(SECRET)


@dataclass(frozen=True)
class Worker:
    """A worker's heartbeat record (the fields of ``videohub.cluster.workers.WorkerInfo``)."""

    id: str
    address: str
    role: str = "all"
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    media_host: str = "127.0.0.1"
    capacity: float = 1.0
    started_at: float = field(default_factory=time.time)
    heartbeat_at: float = field(default_factory=time.time)
    cameras: int = 0
    viewers: int = 0
    cpu: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Directory:
    """What every node knows of the cluster: live workers and the owner of each camera stream."""

    workers: dict[str, Worker] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    """Workers whose heartbeat stopped (as a paused process's), though they still serve."""

    def own(self, camera_id: str, worker_id: str, stream: str = "main") -> None:
        self.owners[(camera_id, stream)] = worker_id

    def beat(self, worker_id: str, **counters: Any) -> None:
        self.workers[worker_id] = replace(self.workers[worker_id], heartbeat_at=time.time(), **counters)


BEAT_SECONDS = 0.5


async def _heartbeats(directory: Directory, nodes: list[Node]) -> None:
    """Each serving node's record beats, as the cluster core's heartbeat does (every second there)."""
    while True:
        for node in nodes:
            if not node.task.done() and node.id in directory.workers and node.id not in directory.silent:
                directory.beat(node.id)
        await asyncio.sleep(BEAT_SECONDS)


class DirectoryCluster:
    """One node's ``ClusterView`` on the shared ``Directory``."""

    def __init__(self, directory: Directory, settings: ClusterSettings) -> None:
        assert settings.worker_id is not None
        self.directory = directory
        self.settings = settings
        self.my_id = settings.worker_id
        self.secret = settings.secret.get_secret_value() if settings.secret is not None else None

    @property
    def me(self) -> WorkerView:
        return self.directory.workers[self.my_id]

    def workers(self) -> list[Any]:
        return sorted(self.directory.workers.values(), key=lambda w: w.id)

    def worker(self, worker_id: str) -> WorkerView | None:
        return self.directory.workers.get(worker_id)

    def is_me(self, worker_id: str) -> bool:
        return worker_id == self.my_id

    async def owner(self, camera_id: str, stream: str = "main") -> WorkerView | None:
        owner = self.directory.owners.get((camera_id, stream))
        return self.directory.workers.get(owner) if owner is not None else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    id: str
    app: FastAPI
    server: uvicorn.Server
    address: str
    task: asyncio.Task[None]

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    async def stop(self) -> None:
        """Stop serving (its lifespan ends): the worker is dead to the others."""
        if not self.task.done():
            self.server.should_exit = True
            await self.task


async def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    return server, task


@asynccontextmanager
async def cluster_nodes(
    base: Settings, store: Store, ids: list[str], parts: Parts, **cluster: Any
) -> AsyncIterator[tuple[Directory, list[Node]]]:
    """Nodes ``ids`` on ``store``, each with its own port and ``cluster.*`` settings (``cluster`` adds
    overrides for every node, e.g. ``whep_routing="redirect"``)."""
    directory = Directory()
    nodes: list[Node] = []
    async with AsyncExitStack() as stack:
        for worker_id in ids:
            port = free_port()
            address = f"http://127.0.0.1:{port}"
            section = base.cluster.model_copy(
                update={"enabled": True, "worker_id": worker_id, "secret": SECRET_STR, **cluster}
            )
            settings = base.model_copy(update={"cluster": section})
            directory.workers[worker_id] = Worker(id=worker_id, address=address)
            app = build_app(settings, store=store, parts=parts, cluster=DirectoryCluster(directory, section))
            server, task = await serve(app, port)
            node = Node(worker_id, app, server, address, task)
            stack.push_async_callback(node.stop)
            nodes.append(node)
        beats = asyncio.create_task(_heartbeats(directory, nodes))
        stack.push_async_callback(cancel_and_wait, beats)
        yield directory, nodes


class ThreadedCluster:
    """``cluster_nodes`` on a loop of its own thread, for sync Playwright tests (which keep the main
    thread's loop): ``start()`` returns once every node serves; ``run(fn)`` calls ``fn`` on that loop
    (the ``Directory`` is read there); ``close()`` stops the nodes and the loop."""

    def __init__(self, redis_url: str, data_dir: Any, base: Settings, ids: list[str], **cluster: Any) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.base = base
        self.ids = ids
        self.cluster = cluster
        self.loop = asyncio.new_event_loop()
        self.directory: Directory | None = None
        self.nodes: list[Node] = []
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="cluster-nodes", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the cluster nodes did not start")
        if self._failed is not None:
            raise self._failed

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._failed = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        store = await Store.open(self.redis_url, self.data_dir)
        try:
            await store.redis.flushdb()
            parts = Parts(hub=True, whep=True)
            async with cluster_nodes(self.base, store, self.ids, parts, **self.cluster) as (directory, nodes):
                self.directory, self.nodes = directory, nodes
                self._ready.set()
                await self._stop.wait()
        finally:
            await store.redis.flushdb()
            await store.close()

    def run(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
