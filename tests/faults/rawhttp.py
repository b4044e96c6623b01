"""Raw-socket HTTP/1.1 for fault tests: requests no well-behaved client would send.

httpx cannot send a body that is never finished, headers that arrive a byte at a time, or keep
writing a 100 MB body after the server has answered, so these tests speak HTTP over plain sockets.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    body_bytes_sent: int = 0
    """Body bytes the client managed to send before the server answered or closed."""
    answered_before_body: bool = False
    """The response arrived before the client sent a single body byte."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Reader:
    sock: socket.socket
    data: bytearray = field(default_factory=bytearray)
    got_head: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.data += chunk
                if b"\r\n\r\n" in self.data:
                    self.got_head.set()
        except OSError:
            return
        finally:
            self.got_head.set()


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        raise AssertionError(f"no HTTP response: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawResponse(status=int(lines[0].split()[1]), headers=headers, body=body)


def exchange(
    port: int,
    head: bytes,
    body: Iterable[bytes] = (),
    *,
    wait_before_body: float = 3.0,
    timeout: float = 60.0,
) -> RawResponse:
    """Send ``head``, wait up to ``wait_before_body`` s for an early answer, then stream ``body``.

    Reading runs in its own thread while the body is written, as a client that stops writing only
    when the server closes would; a write that fails (the server closed) ends the body.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    reader = _Reader(sock)
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    sent = 0
    try:
        sock.sendall(head)
        early = reader.got_head.wait(wait_before_body)
        if not early:
            try:
                for chunk in body:
                    if reader.got_head.is_set():
                        break
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the server closed the connection while we were still sending
        thread.join(timeout)
    finally:
        sock.close()
    response = parse_response(bytes(reader.data))
    response.body_bytes_sent = sent
    response.answered_before_body = early
    return response


def chunked(total: int, chunk: int = 64 * 1024) -> Iterable[bytes]:
    """``total`` bytes of body in HTTP/1.1 chunked encoding, then the last chunk."""
    piece = b"x" * chunk
    left = total
    while left > 0:
        n = min(chunk, left)
        yield b"%x\r\n" % n + piece[:n] + b"\r\n"
        left -= n
    yield b"0\r\n\r\n"


def plain(total: int, chunk: int = 256 * 1024) -> Iterable[bytes]:
    piece = b"x" * chunk
    left = total
    while left > 0:
        n = min(chunk, left)
        yield piece[:n]
        left -= n


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of process ``pid`` from /proc/<pid>/status: VmRSS now, or VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


def wait_closed(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), reading whatever it sends; None if open."""
    start = time.monotonic()
    deadline = start + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            return None
        except OSError:
            return time.monotonic() - start
    return None
