"""Small servers an attacker would run, for the security tests: they record what they receive.

``RecordingServer`` accepts TCP connections on 127.0.0.1, splits what arrives into requests (RTSP and
HTTP heads end with an empty line) and answers each with ``reply(request)``. It keeps every byte it
got, so a test can assert what a camera URL made the service send (a password, a command), or that
nothing connected at all.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

Reply = Callable[[bytes], bytes | None]
"""The answer to one request head; None says nothing (and keeps the connection open)."""


def _cseq(request: bytes) -> str:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"cseq":
            return value.strip().decode(errors="replace")
    return "1"


def rtsp_401_basic(request: bytes) -> bytes:
    """Every RTSP request is refused with a Basic challenge: a client that has a password sends it."""
    return (
        f'RTSP/1.0 401 Unauthorized\r\nCSeq: {_cseq(request)}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'
    ).encode()


def http_redirect(location: str) -> Reply:
    def reply(request: bytes) -> bytes:
        return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()

    return reply


def http_404(request: bytes) -> bytes:
    return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class RecordingServer:
    """A TCP server on a free loopback port that records every connection's bytes."""

    def __init__(self, reply: Reply | None = None) -> None:
        self._reply = reply
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        self._received: list[bytearray] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"recorder-{self.port}", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._received)

    @property
    def received(self) -> bytes:
        """Everything every connection sent, in order of connection."""
        with self._lock:
            return b"".join(bytes(chunk) for chunk in self._received)

    def wait_for(self, check: Callable[[RecordingServer], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check(self):
                return True
            time.sleep(0.1)
        return check(self)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                buffer = bytearray()
                self._received.append(buffer)
            threading.Thread(target=self._serve, args=(conn, buffer), daemon=True).start()

    def _serve(self, conn: socket.socket, buffer: bytearray) -> None:
        pending = b""
        conn.settimeout(0.5)
        with conn:
            while not self._closed.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    buffer.extend(chunk)
                pending += chunk
                while b"\r\n\r\n" in pending:
                    head, pending = pending.split(b"\r\n\r\n", 1)
                    answer = self._reply(head) if self._reply is not None else None
                    if answer:
                        try:
                            conn.sendall(answer)
                        except OSError:
                            return

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
