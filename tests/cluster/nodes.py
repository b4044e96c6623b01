"""Several videohub apps in cluster mode on one Valkey, each served by uvicorn on its own loopback port:
a cluster in one test process, for the routing tests (``videohub.cluster.routing`` and its routers).

Every part is real: each app builds its own ``videohub.cluster.Cluster`` from its settings (heartbeat,
leases, placement on the shared Valkey), its uvicorn port is both its public and its internal address
(``cluster.internal_port``), requests between nodes are HTTP. A node's HTTP can stop while its
service runs on (``Node.stop_http``: alive in the directory, not answering), or the whole node stops
(``Node.stop``: its record leaves the directory).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from videohub.app import build_app
from videohub.cluster import Cluster
from videohub.services import Parts, Services
from videohub.settings import Settings
from videohub.store import Store

T = TypeVar("T")
SECRET = "cluster-secret-0123456789abcdef"
SECRET_STR = SecretStr(SECRET)


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
    lifespan: Any

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    @property
    def cluster(self) -> Cluster:
        cluster = self.services.cluster
        assert cluster is not None
        return cluster

    async def stop_http(self) -> None:
        """Stop answering HTTP; the service (heartbeat, leases, media) runs on."""
        if not self.task.done():
            self.server.should_exit = True
            await self.task

    async def stop(self) -> None:
        """Stop the node: HTTP, then the service (its record and leases leave the cluster)."""
        await self.stop_http()
        if self.lifespan is not None:
            lifespan, self.lifespan = self.lifespan, None
            await lifespan.__aexit__(None, None, None)


async def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    return server, task


async def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


def _sees(node: Node, ids: list[str]) -> Callable[[], bool]:
    return lambda: [w.id for w in node.cluster.workers()] == ids


@asynccontextmanager
async def cluster_nodes(
    base: Settings, store: Store, ids: list[str], parts: Parts, **cluster: Any
) -> AsyncIterator[list[Node]]:
    """Nodes ``ids`` on ``store``, each with its own port and ``cluster.*`` settings (``cluster`` adds
    overrides for every node, e.g. ``whep_routing="redirect"``); yielded once each sees all."""
    nodes: list[Node] = []
    async with AsyncExitStack() as stack:
        for worker_id in ids:
            port = free_port()
            section = base.cluster.model_copy(
                update={
                    "enabled": True,
                    "worker_id": worker_id,
                    "secret": SECRET_STR,
                    "advertise_host": "127.0.0.1",
                    "internal_port": port,
                    **cluster,
                }
            )
            app = build_app(base.model_copy(update={"cluster": section}), store=store, parts=parts)
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
            server, task = await serve(app, port)
            node = Node(worker_id, app, server, f"http://127.0.0.1:{port}", task, lifespan)
            stack.push_async_callback(node.stop)
            nodes.append(node)
        for node in nodes:
            await wait_for(_sees(node, sorted(ids)), 10, f"{node.id} sees every node")
        yield nodes


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
            async with cluster_nodes(self.base, store, self.ids, parts, **self.cluster) as nodes:
                self.nodes = nodes
                self._ready.set()
                await self._stop.wait()
        finally:
            await store.redis.flushdb()
            await store.close()

    def run(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def wait(self, coro: Coroutine[Any, Any, T], within: float = 30) -> T:
        """Run a coroutine on the nodes' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(within)

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
