"""The two sides of ``bench/peers.py``, as its driver sees them: videohub over WHEP, Janus over its REST API.

Each side joins a level's viewers (the viewer processes of ``bench/harness/viewers.py``), ends their
sessions, turns its camera source on or off, and reports its server process's CPU seconds from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .guard import Guard
from .janus import Janus, JanusSession, Mountpoint
from .procstat import process_cpu_s
from .viewers import Proc, children, spawn_viewers

KEEPALIVE_S = 20.0  # Janus ends a session after 60 s without a request


class Server(Protocol):
    """One side of the comparison, as the driver sees it."""

    @property
    def name(self) -> str: ...

    def cpu_seconds(self) -> float: ...
    async def join(self, n: int, decode: bool) -> Proc: ...
    async def leave(self) -> None: ...
    async def camera(self, on: bool) -> None: ...


class Videohub:
    """videohub: a real ``videohub serve``; WHEP over HTTP with the admin's token."""

    name = "videohub"

    def __init__(self, service: Any, camera_id: str, camera_url: str, address: str, fps: int) -> None:
        self.service = service
        self.camera_id = camera_id
        self.fps = fps
        self.pid: int = service._proc.pid  # Popen runs .venv/bin/videohub: the Python process itself
        self.http = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=60)
        self.camera_url = camera_url
        self.address = address
        self.sessions: list[str] = []

    def cpu_seconds(self) -> float:
        return process_cpu_s(self.pid)

    def valkey_cpu_seconds(self) -> float:
        return sum(process_cpu_s(pid) for pid in children(self.pid))

    async def join(self, n: int, decode: bool, camera: str | None = None) -> Proc:
        """``n`` players: the viewer process offers, WHEP POST, the answers back."""
        viewer = await spawn_viewers(n, decode, address=self.address)
        try:
            offers = [await viewer.recv() for _ in range(n)]
            for offer in offers:
                await viewer.send({"id": offer["id"], "answer": await self.whep(offer["offer"], camera)})
        except BaseException:
            await viewer.stop()
            raise
        return viewer

    async def whep(self, offer: str, camera: str | None = None) -> str:
        response = await self.http.post(
            f"/whep/{camera or self.camera_id}", content=offer, headers={"Content-Type": "application/sdp"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"WHEP POST: {response.status_code} {response.text[:300]}")
        self.sessions.append(response.headers["Location"])
        return response.text

    async def leave(self) -> None:
        """DELETE every session, then wait until the service lists none."""
        sessions, self.sessions = self.sessions, []
        for url in sessions:
            await self.http.delete(url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = await self.http.get("/api/sessions")
            if response.status_code == 200 and not response.json():
                return
            await asyncio.sleep(0.5)

    async def ingest(self, camera: str | None = None) -> dict[str, Any] | None:
        """The camera's ingest counters (``packets`` = access units read), or None without the camera."""
        response = await self.http.get(f"/api/cameras/{camera or self.camera_id}/ingest")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        stream: dict[str, Any] = response.json()["streams"][0]
        ingest: dict[str, Any] | None = stream.get("ingest")
        return ingest if stream.get("state") == "streaming" else None

    async def camera(self, on: bool, camera: str | None = None, url: str | None = None) -> None:
        """Register the camera always-on and wait until it streams, or delete it."""
        camera = camera or self.camera_id
        if not on:
            response = await self.http.delete(f"/api/cameras/{camera}")
            if response.status_code not in (200, 204, 404):
                raise RuntimeError(f"DELETE camera: {response.status_code} {response.text[:300]}")
            return
        await asyncio.to_thread(self.service.create_camera, camera, url or self.camera_url, mode="always_on")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ingest = await self.ingest(camera)
            if ingest is not None and ingest.get("fps", 0) >= 0.5 * self.fps:
                return
            await asyncio.sleep(1)
        raise RuntimeError(f"videohub does not stream camera {camera} ({url or self.camera_url})")

    async def close(self) -> None:
        await self.http.aclose()


@dataclass
class JanusSide:
    """One Janus (as shipped or tuned): its process, the players' REST sessions and their keep-alives."""

    janus: Janus
    mountpoint: Mountpoint
    address: str
    guard: Guard
    sessions: list[JanusSession] = field(default_factory=list)
    http: httpx.AsyncClient | None = None
    _keepalive: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.janus.name

    def cpu_seconds(self) -> float:
        return process_cpu_s(self.janus.pid)

    async def run(self, mountpoints: list[Mountpoint]) -> None:
        """(Re)start the Janus process with these mountpoints; ready when every one receives packets."""
        await asyncio.to_thread(self.janus.stop)
        self.guard.watch(await self.janus.start(mountpoints))
        if self.http is not None:
            await self.http.aclose()
        self.http = httpx.AsyncClient(base_url=self.janus.base_url, timeout=40)
        if self._keepalive is None:
            self._keepalive = asyncio.create_task(self._keepalives())

    async def _keepalives(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            live = [s for s in self.sessions if not s.closed]
            await asyncio.gather(*(s.keepalive() for s in live), return_exceptions=True)

    async def open(self) -> JanusSession:
        assert self.http is not None
        session = await JanusSession.open(self.janus.base_url, self.http)
        self.sessions.append(session)
        return session

    async def join(self, n: int, decode: bool, mountpoint: int | None = None) -> Proc:
        """``n`` players: Janus offers (``watch``), the viewer process answers, ``start``."""
        mpid = self.mountpoint.id if mountpoint is None else mountpoint
        viewer = await spawn_viewers(n, decode, answer=True, address=self.address)
        limit = asyncio.Semaphore(10)

        async def offer() -> tuple[JanusSession, str]:
            async with limit:
                session = await self.open()
                return session, await session.watch(mpid)

        async def start(session: JanusSession, answer: str) -> None:
            async with limit:
                await session.start(answer)

        try:
            offers = await asyncio.gather(*(offer() for _ in range(n)))
            answers: list[str] = []
            for i, (_, sdp) in enumerate(offers):
                await viewer.send({"id": i, "offer": sdp})
                answers.append((await viewer.recv())["answer"])
            await asyncio.gather(*(start(s, a) for (s, _), a in zip(offers, answers, strict=True)))
        except BaseException:
            await viewer.stop()
            raise
        return viewer

    async def leave(self) -> None:
        """Destroy every session (Janus hangs up its PeerConnections)."""
        sessions, self.sessions = self.sessions, []
        await asyncio.gather(*(s.destroy() for s in sessions))

    async def camera(self, on: bool) -> None:
        await self.run([self.mountpoint] if on else [])

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        with contextlib.suppress(Exception):
            await self.leave()
        if self.http is not None:
            await self.http.aclose()
        await asyncio.to_thread(self.janus.stop)
