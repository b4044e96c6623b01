"""JPEG snapshots of a feed: the latest keyframe, decoded on demand in a worker thread, cached briefly.

Beside the viewers on the Feed's output (Feed → **snapshot**). Only a keyframe is decoded, and only
when someone asks, so snapshots cost nothing while nobody looks; the cache keeps a burst of requests
(a wall of thumbnails refreshing together) to one decode per keyframe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error

from ingest.keyframe import UndecodableKeyframe, decode_frame
from ingest.packet import Packet
from ingest.stats import StreamState
from videohub.errors import FeedClosed, NoPicture
from videohub.hub.feed import Subscription
from videohub.hub.runner import StreamRunner


def keyframe_to_jpeg(packet: Packet, quality: int = 5) -> bytes:
    """Decode one H.264 keyframe (SPS/PPS in-band) and encode it as JPEG. Blocking: run in a thread.

    ``quality`` is MJPEG's qscale (2 best … 31 worst). Raises NoPicture when it does not decode.
    """
    try:
        frame = decode_frame(packet)
    except UndecodableKeyframe as exc:
        raise NoPicture(f"the latest keyframe {exc.detail}", "undecodable") from None
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width = frame.width
    encoder.height = frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": str(quality), "qmax": str(quality)}
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(picture))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    return data


@dataclass(slots=True)
class _Cached:
    keyframe: Packet
    jpeg: bytes
    at: float


class SnapshotCache:
    """Per-feed cache of the last JPEG: reused while its keyframe is still the latest or it is
    younger than ``max_age`` seconds. Concurrent requests for one feed share one decode."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._cache: dict[str, _Cached] = {}
        self._pending: dict[str, asyncio.Future[bytes]] = {}

    async def get(self, key: str, keyframe: Packet) -> bytes:
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and (cached.keyframe is keyframe or now - cached.at < self._max_age):
            return cached.jpeg
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            jpeg = await asyncio.to_thread(keyframe_to_jpeg, keyframe)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(jpeg)
        self._cache[key] = _Cached(keyframe, jpeg, time.monotonic())
        return jpeg

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)


class Snapshots:
    """A stream's picture for ``GET …/snapshot.jpg``: its last keyframe as JPEG (one decode per
    keyframe, ``SnapshotCache``); a stopped on_demand stream is started (``subscribe``) and given
    ``wait`` seconds for its first keyframe. Raises NoPicture (503) with a reason otherwise."""

    def __init__(self, wait: float, max_age: float) -> None:
        self.wait = wait
        self._cache = SnapshotCache(max_age)

    def forget(self, key: str) -> None:
        self._cache.forget(key)

    async def take(self, runner: StreamRunner, subscribe: Callable[[], Awaitable[Subscription]]) -> bytes:
        keyframe = runner.feed.last_keyframe
        if keyframe is None:
            stats = runner.source.stats.snapshot() if runner.source is not None else None
            if stats is not None and stats.state is StreamState.BACKING_OFF:
                raise NoPicture(f"the camera is not streaming ({stats.reason})", stats.reason or "error")
            keyframe = await self._wait_keyframe(runner, subscribe)
        return await self._cache.get(runner.feed.key, keyframe)

    async def _wait_keyframe(
        self, runner: StreamRunner, subscribe: Callable[[], Awaitable[Subscription]]
    ) -> Packet:
        subscription = await subscribe()
        try:
            async with asyncio.timeout(self.wait):
                return await runner.feed.keyframe()
        except TimeoutError:
            stats = runner.source.stats.snapshot() if runner.source is not None else None
            reason = (stats.reason or stats.last_error_reason) if stats is not None else None
            raise NoPicture(
                f"the camera delivered no picture within {self.wait:g} s"
                + (f" ({reason})" if reason else ""),
                reason or "not_streaming",
            ) from None
        except FeedClosed as exc:
            raise NoPicture(f"the feed ended: {exc.reason}", "not_streaming") from None
        finally:
            subscription.close()
