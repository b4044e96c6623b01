"""A real H.264 packet source for WHEP tests: libx264 (through PyAV) encoding a moving test pattern.

It stands in for a camera and its ingest: one encoder thread per stream publishing each packet into a
real hub ``Feed`` from that thread, as ingest does (GOP cache, bounded subscriptions, direct senders).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from ingest.packet import Packet
from videohub.hub.feed import Feed, Subscription
from videohub.models import Camera

TIME_BASE = Fraction(1, 90_000)


@dataclass(frozen=True)
class StreamShape:
    width: int = 320
    height: int = 180
    fps: int = 10
    gop: int = 20
    profile: str = "baseline"  # baseline | main | high


class EncodedStream:
    """One encoder thread producing Annex-B packets (SPS/PPS before every keyframe)."""

    def __init__(self, key: tuple[str, str], shape: StreamShape, *, silent: bool = False) -> None:
        self.shape = shape
        self.feed = Feed(*key)  # on the running loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"encoder-{shape.profile}", daemon=True)
        self.packets = 0
        self.paused = False
        if not silent:  # a silent stream is a camera that accepts the session but never sends
            self._thread.start()

    def subscribe(self) -> Subscription:
        return self.feed.subscribe()

    @property
    def subscribers(self) -> int:
        return self.feed.subscribers

    def _deliver(self, packet: Packet) -> None:
        """In the encoder thread, as ingest calls ``Feed.publish``."""
        if self.paused:  # a camera that stops sending for a while
            return
        self.packets += 1
        self.feed.publish(packet)

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
                self._deliver(packet)
            i += 1
            delay = start + i / s.fps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def stop(self) -> None:
        """On the loop: stop encoding and end the feed (every subscription's ``get`` raises)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.feed.close("stream ended")


@dataclass
class EncodedFeeds:
    """A FeedHub: one EncodedStream per (camera id, stream), started by its first subscriber."""

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
            self.streams[key] = EncodedStream(key, shape, silent=camera.id in self.silent)
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
