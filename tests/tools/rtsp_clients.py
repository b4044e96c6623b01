"""RTSP clients for the simulator's tests: a PyAV reader thread and a bare RTSP session.

The bare session speaks RTSP over a socket (DESCRIBE, SETUP interleaved, PLAY, TEARDOWN) so a test
can open and drop many sessions quickly, and leave at any step, as probes and flaky clients do.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import av

# A short stream analysis: parameter sets come with the SDP, and the tests stay fast.
OPTS = {"rtsp_transport": "tcp", "analyzeduration": "300000"}


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Reader(threading.Thread):
    """A camera client in a thread (PyAV blocks): counts video packets and records how it ended."""

    def __init__(self, url: str, read_timeout: float = 8.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.read_timeout = read_timeout
        self.packets = 0
        self.outcome = ""
        self.ended = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            with av.open(self.url, options=OPTS, timeout=(10.0, self.read_timeout)) as container:
                for packet in container.demux(video=0):
                    if packet.size:
                        self.packets += 1
                    if self._halt.is_set():
                        break
            self.outcome = "eof"
        except av.FFmpegError as exc:
            self.outcome = f"error: {exc}"
        finally:
            self.ended.set()

    def halt(self) -> None:
        self._halt.set()

    def close(self) -> None:
        self._halt.set()
        self.join(timeout=self.read_timeout + 5)


def start_reader(readers: list[Reader], url: str) -> Reader:
    reader = Reader(url)
    reader.start()
    readers.append(reader)
    return reader


def _request(sock: socket.socket, buf: bytearray, line: str, cseq: int, extra: str = "") -> tuple[int, str]:
    """Send one RTSP request and read its response: (status, head and body)."""
    sock.sendall(f"{line} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
    while True:
        # Interleaved media frames ($, channel, 16-bit length) may come before the response.
        while len(buf) >= 4 and buf[0] == 0x24 and len(buf) >= 4 + int.from_bytes(buf[2:4], "big"):
            del buf[: 4 + int.from_bytes(buf[2:4], "big")]
        if buf and buf[0] != 0x24 and b"\r\n\r\n" in buf:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_end]).decode(errors="replace")
    length = re.search(r"(?im)^content-length:\s*(\d+)", head)
    total = head_end + (int(length.group(1)) if length else 0)
    while len(buf) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        buf += chunk
    body = bytes(buf[head_end:total]).decode(errors="replace")
    del buf[:total]
    return int(head.split()[1]), head + body


def rtsp_session(url: str, leave_after: str, timeout: float = 10.0) -> int:
    """One bare RTSP session over TCP that hangs up after ``leave_after`` (describe, setup, play
    or teardown: after the first media packet). Returns the last status code the server sent."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 554), timeout=timeout) as sock:
        buf = bytearray()
        status, text = _request(sock, buf, f"DESCRIBE {url}", 1, "Accept: application/sdp\r\n")
        if status != 200 or leave_after == "describe":
            return status
        base = re.search(r"(?im)^content-base:\s*(\S+)", text)
        base_url = base.group(1) if base else url + "/"
        control = re.findall(r"(?m)^a=control:(\S+)", text)[-1]
        track = control if control.startswith("rtsp://") else base_url + control
        status, text = _request(
            sock, buf, f"SETUP {track}", 2, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
        )
        if status != 200 or leave_after == "setup":
            return status
        session = re.search(r"(?im)^session:\s*([^;\r\n]+)", text)
        assert session is not None
        # With a Range, as FFmpeg sends it: it makes the server seek the (live) media.
        play_headers = f"Session: {session.group(1)}\r\nRange: npt=0.000-\r\n"
        status, _ = _request(sock, buf, f"PLAY {base_url}", 3, play_headers)
        if status != 200 or leave_after == "play":
            return status
        while not buf.startswith(b"$"):  # the first interleaved media packet
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        request = f"TEARDOWN {base_url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session.group(1)}\r\n\r\n"
        sock.sendall(request.encode())
        return status
