"""A tiny RTSP server that misbehaves on purpose: the camera faults the simulator cannot play.

The camera simulator (gst-rtsp-server) stalls video and audio together; real cameras also fail in
halves. ``FaultyCamera`` plays one fault per instance, each a thread-per-connection TCP server on a
free loopback port, speaking just enough RTSP (OPTIONS, DESCRIBE, SETUP over TCP interleaved, PLAY,
GET_PARAMETER, TEARDOWN) for FFmpeg's RTSP client:

- ``silent``: accepts the connection and never answers (a hung camera);
- ``describe_then_stall``: answers OPTIONS and DESCRIBE, then never answers SETUP;
- ``audio_only``: the SDP offers H.264 video and G.711 audio, PLAY succeeds, and then only audio
  RTP arrives, 50 packets a second, for as long as the client stays (a camera whose video encoder
  died while its audio goes on);
- ``no_keyframe``: video RTP flows at 10 fps, but every frame is a P-frame (libx264 through PyAV,
  the keyframe cut off), so no picture can ever be decoded.

``open_connections`` tells whether a client still holds its session; ``close()`` drops every client.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import select
import socket
import socketserver
import struct
import threading
import time
from fractions import Fraction
from typing import Literal

import av
import numpy as np

Fault = Literal["silent", "describe_then_stall", "audio_only", "no_keyframe"]

_MTU = 1200


@functools.cache
def _h264() -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """(SPS, PPS, P-frame access units as Annex-B) of a short 160x90 libx264 clip with one keyframe."""
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 160, 90, "yuv420p"
    ctx.time_base = Fraction(1, 10)
    ctx.gop_size = 1000
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "scenecut=0"}
    units: list[bytes] = []
    ramp = np.tile(np.arange(160, dtype=np.uint16), (90, 1))
    for i in range(31):
        gray = ((ramp + i * 8) % 256).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.dstack([gray, gray, 255 - gray]), format="rgb24")
        frame.pts = i
        units.extend(bytes(p) for p in ctx.encode(frame.reformat(format="yuv420p")))
    units.extend(bytes(p) for p in ctx.encode(None))
    nals = _nal_units(units[0])
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    frames = tuple(u for u in units[1:] if all(n[0] & 0x1F == 1 for n in _nal_units(u)))
    assert len(frames) >= 20, "libx264 gave too few P-frames"
    return sps, pps, frames


def _nal_units(annexb: bytes) -> list[bytes]:
    parts = annexb.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


def _sdp(host: str) -> bytes:
    sps, pps, _ = _h264()
    sprop = base64.b64encode(sps).decode() + "," + base64.b64encode(pps).decode()
    lines = [
        "v=0",
        f"o=- 1 1 IN IP4 {host}",
        "s=faulty camera",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "a=control:*",
        "m=video 0 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        f"a=fmtp:96 packetization-mode=1;profile-level-id={sps[1:4].hex()};sprop-parameter-sets={sprop}",
        "a=control:track0",
        "m=audio 0 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=control:track1",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


class _Rtp:
    """RTP packets of one track (sequence numbers and SSRC kept per session)."""

    def __init__(self, payload_type: int, ssrc: int) -> None:
        self.pt = payload_type
        self.ssrc = ssrc
        self.seq = itertools.count(1)

    def packet(self, timestamp: int, payload: bytes, marker: bool) -> bytes:
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | self.pt,
            next(self.seq) & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        return header + payload


def _h264_payloads(access_unit: bytes) -> list[bytes]:
    """RFC 6184 payloads of one access unit: single NAL units, FU-A for the large ones."""
    out: list[bytes] = []
    for nal in _nal_units(access_unit):
        if len(nal) <= _MTU:
            out.append(nal)
            continue
        head, body = nal[0], nal[1:]
        chunks = [body[i : i + _MTU] for i in range(0, len(body), _MTU)]
        for i, chunk in enumerate(chunks):
            start, end = 0x80 if i == 0 else 0, 0x40 if i == len(chunks) - 1 else 0
            out.append(bytes([(head & 0xE0) | 28, start | end | (head & 0x1F)]) + chunk)
    return out


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def setup(self) -> None:
        self.buffer = b""
        self.channels: dict[str, int] = {}
        self.playing = False
        self.play_at = 0.0
        with self.server.lock:
            self.server.clients.add(self.request)

    def finish(self) -> None:
        with self.server.lock:
            self.server.clients.discard(self.request)

    def handle(self) -> None:
        sock: socket.socket = self.request
        fault = self.server.fault
        video, audio = _Rtp(96, 0x1111), _Rtp(8, 0x2222)
        frames = itertools.cycle(_h264()[2]) if fault == "no_keyframe" else None
        sent = 0
        with contextlib.suppress(OSError):
            while not self.server.closing.is_set():
                wait = 0.5
                if self.playing:
                    period = 0.02 if fault == "audio_only" else 0.1
                    wait = max(0.0, self.play_at + sent * period - time.monotonic())
                readable, _, _ = select.select([sock], [], [], wait)
                if readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    self.buffer += data
                    self._requests(sock)
                    continue
                if not self.playing:
                    continue
                if fault == "audio_only":
                    rtp = audio.packet(sent * 160, b"\xd5" * 160, marker=False)
                    self._interleaved(sock, self.channels.get("track1", 2), rtp)
                elif frames is not None:
                    payloads = _h264_payloads(next(frames))
                    for i, payload in enumerate(payloads):
                        rtp = video.packet(sent * 9000, payload, marker=i == len(payloads) - 1)
                        self._interleaved(sock, self.channels.get("track0", 0), rtp)
                sent += 1

    @staticmethod
    def _interleaved(sock: socket.socket, channel: int, rtp: bytes) -> None:
        sock.sendall(b"$" + bytes([channel]) + struct.pack("!H", len(rtp)) + rtp)

    def _requests(self, sock: socket.socket) -> None:
        """Answer every complete request in the buffer (RTCP frames from the client are skipped)."""
        while self.buffer:
            if self.buffer[:1] == b"$":
                if len(self.buffer) < 4:
                    return
                size = struct.unpack("!H", self.buffer[2:4])[0]
                if len(self.buffer) < 4 + size:
                    return
                self.buffer = self.buffer[4 + size :]
                continue
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.decode("latin-1").split("\r\n")
            fields = (line.partition(":") for line in lines[1:])
            headers = {name.strip().lower(): value.strip() for name, _, value in fields}
            size = int(headers.get("content-length", "0"))
            if len(rest) < size:
                return
            self.buffer = rest[size:]
            method, url = [*lines[0].split(), "", ""][:2]
            self._answer(sock, method, url, headers)

    def _answer(self, sock: socket.socket, method: str, url: str, headers: dict[str, str]) -> None:
        fault = self.server.fault
        if fault == "silent" or (fault == "describe_then_stall" and method not in ("OPTIONS", "DESCRIBE")):
            return
        cseq = headers.get("cseq", "0")
        if method not in ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER", "TEARDOWN"):
            sock.sendall(f"RTSP/1.0 405 Method Not Allowed\r\nCSeq: {cseq}\r\n\r\n".encode())
            return
        extra: list[str] = []
        body = b""
        if method == "OPTIONS":
            extra.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif method == "DESCRIBE":
            host, port = self.server.address
            body = _sdp(host)
            extra += [f"Content-Base: rtsp://{host}:{port}/cam/", "Content-Type: application/sdp"]
        elif method == "SETUP":
            transport = headers.get("transport", "")
            channel = 0
            for part in transport.split(";"):
                if part.startswith("interleaved="):
                    channel = int(part.removeprefix("interleaved=").split("-")[0])
            self.channels[url.rstrip("/").rsplit("/", 1)[-1]] = channel
            extra += [
                f"Transport: RTP/AVP/TCP;unicast;interleaved={channel}-{channel + 1}",
                "Session: 12345678;timeout=60",
            ]
        elif method == "PLAY":
            extra += ["Session: 12345678", "Range: npt=0.000-"]
            self.playing, self.play_at = True, time.monotonic()
        else:  # GET_PARAMETER (keep-alive), TEARDOWN
            extra.append("Session: 12345678")
        reply = ["RTSP/1.0 200 OK", f"CSeq: {cseq}", *extra]
        if body:
            reply.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(reply) + "\r\n\r\n").encode() + body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.lock = threading.Lock()
        self.clients: set[socket.socket] = set()
        self.closing = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)


class FaultyCamera:
    """One misbehaving RTSP camera on 127.0.0.1 (see the module docstring for the faults)."""

    def __init__(self, fault: Fault) -> None:
        if fault == "no_keyframe" or fault == "audio_only":
            _h264()  # encode before the first client connects (the SDP needs SPS/PPS)
        self.fault = fault
        self._server = _Server(fault)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"rtsp-{fault}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.address
        return f"rtsp://{host}:{port}/cam"

    @property
    def open_connections(self) -> int:
        with self._server.lock:
            return len(self._server.clients)

    def close(self) -> None:
        """Stop listening and drop every client (a probe still waiting sees its session end)."""
        if self._server.closing.is_set():
            return
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.lock:
            clients = list(self._server.clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def __enter__(self) -> FaultyCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
