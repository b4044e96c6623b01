"""A webhook receiver double: a tiny HTTP server that records POSTed JSON and can go down and up."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class WebhookRecorder:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    status: int = 200
    requests: int = 0
    """Every request answered, whatever its status (``received`` keeps the 2xx ones)."""
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        """Listen (again) on the same port."""
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Go down: new connections are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                headers: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode("latin-1").strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                if self.status < 300:
                    self.received.append(Received(headers, body))
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def deliveries(self) -> set[str]:
        return {r.headers["x-videohub-delivery"] for r in self.received}

    def events(self) -> list[tuple[str, str, str]]:
        """(event, camera, kind) of each distinct delivery, in arrival order."""
        seen: set[str] = set()
        out: list[tuple[str, str, str]] = []
        for r in self.received:
            d = r.json()
            if d["delivery"] in seen:
                continue
            seen.add(d["delivery"])
            out.append((d["event"], d["alert"]["camera"], d["alert"]["kind"]))
        return out
