"""A real H.264 packet source for WHEP tests: libx264 (through PyAV) encoding a moving test pattern.

It stands in for the Feed hub until tests can use the real one: one encoder thread per stream,
packets handed to the loop with ``call_soon_threadsafe``, a GOP cache so a new subscriber starts at
the last keyframe, and bounded subscriber queues that skip to the next keyframe when full.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from ingest.packet import Packet
from videohub.hub.feed import FeedClosed
from videohub.models import Camera

TIME_BASE = Fraction(1, 90_000)


class SourceClosed(FeedClosed):
    """The stream ended, as the hub's FeedClosed."""

    def __init__(self) -> None:
        super().__init__("stream ended")


@dataclass(frozen=True)
class StreamShape:
    width: int = 320
    height: int = 180
    fps: int = 10
    gop: int = 20
    profile: str = "baseline"  # baseline | main | high


class Subscription:
    def __init__(self, source: EncodedStream, backlog: list[Packet], maxsize: int = 60) -> None:
        self._source = source
        self._queue: deque[Packet] = deque(backlog)
        self._maxsize = maxsize
        self._wake = asyncio.Event()
        self._closed = False
        self._ended = False
        self._skipping = False
        self.drops = 0
        if self._queue:
            self._wake.set()

    def push(self, packet: Packet) -> None:
        if self._skipping and not packet.keyframe:
            self.drops += 1
            return
        if len(self._queue) >= self._maxsize:
            self.drops += len(self._queue) + (0 if packet.keyframe else 1)
            self._queue.clear()
            self._skipping = not packet.keyframe
            if self._skipping:
                return
        self._skipping = False
        self._queue.append(packet)
        self._wake.set()

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    async def get(self) -> Packet:
        while not self._queue:
            if self._ended or self._closed:
                raise SourceClosed
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._source.leave(self)
            self._wake.set()


class EncodedStream:
    """One encoder thread producing Annex-B packets (SPS/PPS before every keyframe)."""

    def __init__(self, shape: StreamShape, loop: asyncio.AbstractEventLoop, *, silent: bool = False) -> None:
        self.shape = shape
        self._loop = loop
        self._subs: list[Subscription] = []
        self._gop: list[Packet] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"encoder-{shape.profile}", daemon=True)
        self.packets = 0
        self.paused = False
        if not silent:  # a silent stream is a camera that accepts the session but never sends
            self._thread.start()

    def subscribe(self) -> Subscription:
        sub = Subscription(self, list(self._gop))
        self._subs.append(sub)
        return sub

    def leave(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _deliver(self, packet: Packet) -> None:
        if self.paused:  # a camera that stops sending for a while
            return
        if packet.keyframe:
            self._gop = []
        self._gop.append(packet)
        self.packets += 1
        for sub in list(self._subs):
            sub.push(packet)

    def _run(self) -> None:
        s = self.shape
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = s.width, s.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = TIME_BASE
        ctx.framerate = Fraction(s.fps, 1)
        ctx.gop_size = s.gop
        ctx.max_b_frames = 0
        ctx.options = {"preset": "superfast", "tune": "zerolatency", "profile": s.profile, "bf": "0"}
        step = 90_000 // s.fps
        start = time.monotonic()
        i = 0
        while not self._stop.is_set():
            img = np.zeros((s.height, s.width, 3), np.uint8)
            x = (i * 4) % s.width
            img[:, x : x + s.width // 8] = (255, 200, 0)
            img[(i * 2) % s.height, :] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = i * step
            frame.time_base = TIME_BASE
            for p in ctx.encode(frame):
                packet = Packet(
                    data=bytes(p),
                    pts=p.pts,
                    time_base=TIME_BASE,
                    keyframe=bool(p.is_keyframe),
                    received=time.monotonic(),
                )
                try:
                    self._loop.call_soon_threadsafe(self._deliver, packet)
                except RuntimeError:  # loop closed
                    return
            i += 1
            delay = start + i / s.fps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sub in list(self._subs):
            sub.end()


@dataclass
class EncodedFeeds:
    """A FeedSource: one EncodedStream per (camera id, stream), started by its first subscriber."""

    shapes: dict[str, StreamShape] = field(default_factory=dict)
    streams: dict[tuple[str, str], EncodedStream] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    """Camera ids whose feed cannot start (raises, like an unreachable camera)."""
    silent: set[str] = field(default_factory=set)
    """Camera ids whose feed starts but never delivers a packet (a stalled camera)."""

    async def subscribe(self, camera: Camera, stream: str) -> Subscription:
        if camera.id in self.refuse:
            raise ConnectionRefusedError(camera.id)
        key = (camera.id, stream)
        if key not in self.streams:
            shape = self.shapes.get(camera.id, StreamShape())
            self.streams[key] = EncodedStream(
                shape, asyncio.get_running_loop(), silent=camera.id in self.silent
            )
        return self.streams[key].subscribe()

    def end(self, camera_id: str) -> None:
        """The camera's feed ends (deleted or disabled)."""
        for (cid, stream), encoded in list(self.streams.items()):
            if cid == camera_id:
                encoded.stop()
                del self.streams[(cid, stream)]

    def close(self) -> None:
        for encoded in self.streams.values():
            encoded.stop()
        self.streams.clear()
