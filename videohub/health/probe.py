"""Probe one camera: connect, decode one keyframe (keyframes only), disconnect.

Used for ``on_demand`` cameras, which are not pulled unless someone watches (issue 5: probed on a
schedule). Blocking PyAV work: ``probe`` runs in a worker thread; ``probe_async`` does that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import av
import numpy as np

from ingest.errors import Reason, classify
from ingest.netpolicy import NetworkPolicy
from ingest.source import Login, SourceOptions, Transport, open_options, target_url
from ingest.url import UrlError
from videohub.health.metrics import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    frame: Frame | None
    """The keyframe, downscaled BGR; None when the probe failed."""
    error: str | None
    """Why it failed: an ``ingest.errors.Reason`` value (refused, not_found, auth_failed, timeout,
    unreachable …) or no_video."""
    seconds: float
    codec: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def ok(self) -> bool:
        return self.frame is not None


def _reason(exc: BaseException, timed_out: bool) -> str:
    """The ingest's reason names (refused, not_found, auth_failed, timeout …) for a failed probe."""
    return classify(exc, timed_out=timed_out).reason.value


def probe(
    url: str,
    *,
    transport: Transport = "tcp",
    timeout: float = 10.0,
    width: int = 160,
    login: Login | None = None,
    policy: NetworkPolicy | None = None,
    allow_files: bool = True,
) -> ProbeResult:
    """Open ``url``, return the first decodable keyframe downscaled to ``width``; never raises.

    The URL goes through ingest's check before anything is opened (``ingest.source.target_url``):
    one that fails is the probe result ``blocked``, without a connection.
    """
    started = time.monotonic()
    try:
        url = target_url(url, login, policy, allow_files=allow_files)
    except UrlError:
        return ProbeResult(None, Reason.BLOCKED.value, time.monotonic() - started)
    deadline = started + timeout
    # A camera that does not answer the RTSP handshake within 5 s is not going to; the rest of
    # the time is left for the keyframe (cameras use GOPs of up to 10 s).
    open_timeout = min(timeout, 5.0)
    # The ingest's tuned options: a 0.1 s / 32 KB stream analysis (stream info comes from the SDP
    # and the keyframe itself) and FFmpeg's RTSP socket timeout bounding every read. Note that
    # analyzeduration=0 is not "no analysis" but FFmpeg's 5 s default: with it av.open took
    # 1.35 s per probe (measured, 360p at 400 kbit/s), against ~0.2 s with these options.
    # The socket timeout, not PyAV's read timeout, bounds reads: PyAV's interrupt callback takes
    # the GIL on every socket poll (the ingest measured ~30 % CPU for it).
    limits = SourceOptions(
        transport=transport, open_timeout=open_timeout, read_timeout=open_timeout, stall_timeout=open_timeout
    )
    options = open_options(url, limits)
    rtsp = url.startswith(("rtsp://", "rtsps://"))
    try:
        container = av.open(url, options=options, timeout=(open_timeout, None if rtsp else open_timeout))
    except Exception as exc:  # every failure is a probe result, never a crash
        elapsed = time.monotonic() - started
        return ProbeResult(None, _reason(exc, elapsed >= 0.9 * open_timeout), elapsed)
    try:
        if not container.streams.video:
            return ProbeResult(None, "no_video", time.monotonic() - started)
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                return ProbeResult(None, "timeout", time.monotonic() - started)
            if packet.size == 0 or not packet.is_keyframe:
                continue
            for frame in ctx.decode(packet):
                h = max(2, round(frame.height * width / frame.width)) if frame.width > width else frame.height
                img = frame.reformat(width=min(width, frame.width), height=h, format="bgr24").to_ndarray()
                return ProbeResult(
                    np.ascontiguousarray(img, dtype=np.uint8),
                    None,
                    time.monotonic() - started,
                    ctx.name,
                    frame.width,
                    frame.height,
                )
        return ProbeResult(None, "timeout", time.monotonic() - started)
    except Exception as exc:
        return ProbeResult(None, _reason(exc, time.monotonic() > deadline), time.monotonic() - started)
    finally:
        container.close()


async def probe_async(
    url: str,
    *,
    transport: Transport = "tcp",
    give_up_after: float = 10.0,
    width: int = 160,
    login: Login | None = None,
    policy: NetworkPolicy | None = None,
) -> ProbeResult:
    return await asyncio.to_thread(
        probe, url, transport=transport, timeout=give_up_after, width=width, login=login, policy=policy
    )
