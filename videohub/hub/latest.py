"""The latest picture of every camera stream, kept in Redis so a wall tile has one at once (issue 16).

Beside the snapshot cache (Feed → snapshots → **latest picture**): whenever the service decodes a
keyframe anyway — a probe of an ``on_demand`` camera, the health sample of a pulled stream, a
``snapshot.jpg`` request — the picture is encoded once more as a small JPEG (no extra H.264 decode)
and stored with its capture time. ``GET /api/cameras/{id}/latest.jpg`` reads it back without
starting the stream, so a tile assigned to a cold camera paints that picture while its live feed
starts, with the picture's age beside it.

Bounded: one picture per camera stream, at most ``PICTURE_WIDTH`` pixels wide and ``MAX_BYTES``
long, refreshed from a pulled stream at most every ``REFRESH_SECONDS``, kept ``TTL_SECONDS`` after
its last refresh. A picture remembers (as a hash) the stream URL it came from: once the camera points
elsewhere, or a deleted id is registered again, the old picture is no longer shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from videohub.models import Camera
from videohub.store import OUTAGE, PREFIX, OutageLog

log = logging.getLogger(__name__)

PICTURE_WIDTH = 640
"""Widest picture kept: a wall tile is rarely wider, and 10,000 cameras stay within a few hundred MB."""
MAX_BYTES = 256 * 1024
"""A JPEG larger than this (noise at 640 px is ~100 KiB) is not kept."""
REFRESH_SECONDS = 60.0
"""A pulled stream's picture is replaced at most this often (one Redis write a minute per stream)."""
TTL_SECONDS = 30 * 86400
"""A picture not refreshed for 30 days is dropped (the camera is gone or long dead)."""

STREAMS = ("main", "sub")


def url_mark(url: str) -> str:
    """A short hash of the stream URL a picture came from (the URL itself is not stored again)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LatestPicture:
    jpeg: bytes
    captured_at: float
    """Wall-clock time (Unix seconds) the picture was taken from the camera."""
    stream: str
    source: str
    """probe, keyframe (health sample of a pulled stream) or snapshot (a snapshot.jpg request)."""

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.captured_at)


class LatestPictures:
    """Reads and writes the latest picture per camera stream (``<prefix>latest:<camera>:<stream>``)."""

    def __init__(self, redis: aioredis.Redis, prefix: str = PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self._written: dict[tuple[str, str], float] = {}
        self._outage = OutageLog(log, "latest pictures")

    def key(self, camera_id: str, stream: str) -> str:
        return f"{self.prefix}latest:{camera_id}:{stream}"

    def due(self, camera_id: str, stream: str) -> bool:
        """Whether a pulled stream's picture should be refreshed now (at most every REFRESH_SECONDS)."""
        last = self._written.get((camera_id, stream))
        return last is None or time.monotonic() - last >= REFRESH_SECONDS

    async def put(self, camera: Camera, stream: str, jpeg: bytes, captured_at: float, source: str) -> bool:
        """Keep ``jpeg`` as the stream's latest picture; False when not kept (too large, Redis away)."""
        spec = getattr(camera.streams, stream, None)
        if spec is None or not jpeg or len(jpeg) > MAX_BYTES:
            return False
        self._written[(camera.id, stream)] = time.monotonic()
        key = self.key(camera.id, stream)
        fields = {
            "jpeg": base64.b64encode(jpeg).decode(),
            "at": f"{captured_at:.3f}",
            "source": source,
            "url": url_mark(spec.url),
        }
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)
                pipe.expire(key, TTL_SECONDS)
                await pipe.execute()
        except OUTAGE as exc:  # the next sample or probe writes it again
            self._outage.failed(exc)
            return False
        except RedisError as exc:
            log.warning("latest picture of %s/%s not kept: %s", camera.id, stream, type(exc).__name__)
            return False
        self._outage.ok()
        return True

    async def get(self, camera: Camera, stream: str = "main") -> LatestPicture | None:
        """The stream's latest picture, else the other stream's (the same scene), else None.

        Raises the Redis outage errors (the API answers 503)."""
        order = [stream] + [s for s in STREAMS if s != stream]
        for name in order:
            spec = getattr(camera.streams, name, None)
            if spec is None:
                continue
            found = await self.redis.hgetall(self.key(camera.id, name))
            if not found or found.get("url") != url_mark(spec.url):
                continue
            try:
                jpeg = base64.b64decode(found["jpeg"], validate=True)
                at = float(found["at"])
            except (KeyError, ValueError, binascii.Error):
                continue
            return LatestPicture(jpeg, at, name, found.get("source", ""))
        return None


class KeyframeStreams(Protocol):
    """Which stream of a camera the health monitor samples (``FeedManagerView`` knows)."""

    def sampled_stream(self, camera_id: str) -> str | None: ...


class PictureSink:
    """What the health monitor hands its decoded keyframes to (see ``videohub.health.monitor``)."""

    width = PICTURE_WIDTH

    def __init__(self, pictures: LatestPictures, streams: KeyframeStreams | None) -> None:
        self.pictures = pictures
        self.streams = streams

    def wants_keyframe(self, camera_id: str) -> bool:
        """Whether the next sampled keyframe of the camera should also give a picture."""
        stream = self.streams.sampled_stream(camera_id) if self.streams is not None else None
        return stream is not None and self.pictures.due(camera_id, stream)

    async def keyframe(self, camera: Camera, jpeg: bytes | None, received: float) -> None:
        """A sampled keyframe's picture; ``received`` is the packet's ``time.monotonic()``."""
        stream = self.streams.sampled_stream(camera.id) if self.streams is not None else None
        if jpeg is None or stream is None:
            return
        captured = time.time() - max(0.0, time.monotonic() - received)
        await self.pictures.put(camera, stream, jpeg, captured, "keyframe")

    async def probed(self, camera: Camera, stream: str, jpeg: bytes | None) -> None:
        if jpeg is not None:
            await self.pictures.put(camera, stream, jpeg, time.time(), "probe")
