"""``videohub serve --workers N``: N worker processes behind one HTTP port on one machine.

The supervisor binds the public port once and hands the listening socket to every worker (they accept
from one queue, so the kernel spreads the connections); it starts the embedded Valkey unless
``VIDEOHUB_REDIS_URL`` names a Redis, prepares the store once (the first admin, registry migrations)
so that the workers do not race for it, makes a cluster secret when none is configured, and starts
each worker as ``videohub serve --role all --worker-id <host>-w<i> --fd <socket>``. A worker that dies
is started again (1 s, doubling to 30 s while it keeps dying); its cameras move to the others
meanwhile. SIGTERM/SIGINT stop every worker with SIGTERM (each drains), then the Valkey; exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from videohub.cluster.workers import default_worker_id
from videohub.services import build_registry
from videohub.settings import Settings
from videohub.store import Store
from videohub.users import UserStore

log = logging.getLogger("videohub.supervisor")

STOP_TIMEOUT = 60.0
"""Seconds the workers get to drain after SIGTERM before they are killed."""


@dataclass
class Child:
    index: int
    worker_id: str
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    backoff: float = 1.0
    restarts: int = 0
    waiter: asyncio.Task[int] | None = field(default=None, repr=False)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def bind_public(settings: Settings) -> socket.socket:
    """The public port, inheritable: the workers accept from it."""
    sock = listening_socket(settings.server.host, settings.server.port, 2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, settings: Settings, workers: int, argv: list[str]) -> None:
        """``argv``: the options every worker gets (config file, data dir)."""
        self.settings = settings
        self.count = workers
        self.argv = argv
        host = default_worker_id().rsplit("-", 1)[0]
        self.children = [Child(i, f"{host}-w{i + 1}") for i in range(workers)]
        self._stopping = asyncio.Event()
        self.env: dict[str, str] = {}

    async def prepare(self, store: Store) -> None:
        """The store's one-time start work, done here so that N workers do not race for it."""
        from videohub.app import ensure_admin  # the same first-admin rule as a single process

        users = UserStore(store.redis, self.settings.auth, self.settings.line_ids)
        try:
            await ensure_admin(self.settings, users)
            await build_registry(self.settings, store).migrate()
        finally:
            users.close()

    async def run(self, sock: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        async with AsyncExitStack() as stack:
            store = await Store.open(
                self.settings.redis_url, self.settings.server.data_dir, self.settings.store
            )
            stack.push_async_callback(store.close)
            await stack.enter_async_context(store.supervised(self.settings.store.watchdog_interval_seconds))
            await self.prepare(store)
            url = self.settings.redis_url or (store.embedded.url if store.embedded is not None else None)
            secret = self.settings.cluster.secret
            self.env = {
                **os.environ,
                "VIDEOHUB_REDIS_URL": url or "",
                "VIDEOHUB_CLUSTER__SECRET": secret.get_secret_value()
                if secret
                else secrets.token_urlsafe(32),
            }
            for child in self.children:
                await self._spawn(child, sock)
            log.info("supervisor: %d workers on %s:%d", self.count, *sock.getsockname()[:2])
            while not self._stopping.is_set():
                waiters = {c.waiter for c in self.children if c.waiter is not None}
                stop = asyncio.ensure_future(self._stopping.wait())
                done, _ = await asyncio.wait({*waiters, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                for child in self.children:
                    if child.waiter is not None and child.waiter in done and not self._stopping.is_set():
                        await self._died(child, sock)
            await self._stop_all()
        sock.close()
        return 0

    async def _spawn(self, child: Child, sock: socket.socket) -> None:
        cmd = [sys.executable, "-m", "videohub.cli", "serve", *self.argv]
        cmd += ["--role", "all", "--worker-id", child.worker_id, "--fd", str(sock.fileno())]
        child.proc = await asyncio.create_subprocess_exec(*cmd, env=self.env, pass_fds=(sock.fileno(),))
        child.started = time.monotonic()
        child.waiter = asyncio.ensure_future(child.proc.wait())
        log.info("supervisor: worker %s started (pid %d)", child.worker_id, child.proc.pid)

    async def _died(self, child: Child, sock: socket.socket) -> None:
        code = child.waiter.result() if child.waiter is not None else None
        child.waiter = None
        if time.monotonic() - child.started > 60:
            child.backoff = 1.0
        log.error(
            "supervisor: worker %s exited (%s); starting it again in %.0f s",
            child.worker_id,
            code,
            child.backoff,
        )
        try:
            await asyncio.wait_for(self._stopping.wait(), child.backoff)
            return
        except TimeoutError:
            pass
        child.backoff = min(child.backoff * 2, 30.0)
        child.restarts += 1
        await self._spawn(child, sock)

    async def _stop_all(self) -> None:
        running = [c.proc for c in self.children if c.proc is not None and c.proc.returncode is None]
        log.info("supervisor: stopping %d workers", len(running))
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), STOP_TIMEOUT)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.error("supervisor: worker pid %d did not stop; killing it", proc.pid)
                    proc.kill()
            await asyncio.gather(*(p.wait() for p in running))


def serve_workers(settings: Settings, workers: int, argv: list[str]) -> int:
    sock = bind_public(settings)
    return asyncio.run(Supervisor(settings, workers, argv).run(sock))
