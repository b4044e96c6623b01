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

from ingest.errors import Reason, classify
from ingest.keyframe import BgrImage, frame_jpeg, small_bgr
from ingest.netpolicy import NetworkPolicy
from ingest.source import Login, SourceOptions, Transport, open_options, target_url
from ingest.url import UrlError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    frame: BgrImage | None
    """The keyframe, downscaled BGR; None when the probe failed."""
    error: str | None
    """Why it failed: an ``ingest.errors.Reason`` value (refused, not_found, auth_failed, timeout,
    unreachable …) or no_video."""
    seconds: float
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    jpeg: bytes | None = None
    """The keyframe as a JPEG for the wall's latest picture, when asked for (``picture_width``)."""

    @property
    def ok(self) -> bool:
        return self.frame is not None


def _reason(exc: BaseException, timed_out: bool) -> str:
    """The ingest's reason names (refused, not_found, auth_failed, timeout …) for a failed probe."""
    return classify(exc, timed_out=timed_out).reason.value


SILENCE_SECONDS = 2.0
"""Longest wait for the next packet of any stream while a probe waits for its keyframe. It is also
all a probe may overrun its deadline by: a read under way when the deadline passes ends within it."""


def probe(
    url: str,
    *,
    transport: Transport = "tcp",
    timeout: float = 10.0,
    width: int = 160,
    login: Login | None = None,
    policy: NetworkPolicy | None = None,
    allow_files: bool = True,
    picture_width: int | None = None,
) -> ProbeResult:
    """Open ``url``, return the first decodable keyframe downscaled to ``width``; never raises.

    The URL goes through ingest's check before anything is opened (``ingest.source.target_url``):
    one that fails is the probe result ``blocked``, without a connection.

    ``timeout`` is one deadline for the whole probe: connect, RTSP handshake and the wait for a
    keyframe. The thread is back by ``timeout + SILENCE_SECONDS`` whatever the camera does, even
    when packets keep arriving (audio only, or video without a keyframe).

    With ``picture_width``, the decoded keyframe is also returned as a JPEG that wide (at most):
    the wall shows it while a cold camera starts (``videohub.hub.latest``), without a second decode.
    """
    started = time.monotonic()
    try:
        url = target_url(url, login, policy, allow_files=allow_files)
    except UrlError:
        return ProbeResult(None, Reason.BLOCKED.value, time.monotonic() - started)
    deadline = started + timeout
    # av.open runs two steps, each bounded by PyAV's open timeout: the RTSP handshake, then the
    # stream analysis. Half the deadline each, and at most 5 s: a camera that does not answer the
    # handshake within 5 s is not going to; the rest of the time is left for the keyframe (cameras
    # use GOPs of up to 10 s).
    open_timeout = min(timeout / 2, 5.0)
    # Then PyAV's read timeout (its interrupt callback) bounds each read by SILENCE_SECONDS, and the
    # loop below checks the deadline at every packet. FFmpeg's socket timeout alone would let a read
    # that began just before the deadline run 5 s past it. The callback takes the GIL at each socket
    # poll, which costs the ingest a lot over hours; for a probe's second it did not show (measured:
    # 1,000 probes 128 at a time, CPU per probe within run-to-run noise with and without it).
    read_timeout = min(SILENCE_SECONDS, open_timeout)
    # The ingest's tuned options: a 0.1 s / 32 KB stream analysis (stream info comes from the SDP
    # and the keyframe itself) and FFmpeg's RTSP socket timeout bounding every handshake step. Note
    # that analyzeduration=0 is not "no analysis" but FFmpeg's 5 s default: with it av.open took
    # 1.35 s per probe (measured, 360p at 400 kbit/s), against ~0.2 s with these options.
    limits = SourceOptions(
        transport=transport, open_timeout=open_timeout, read_timeout=open_timeout, stall_timeout=open_timeout
    )
    options = open_options(url, limits)
    try:
        container = av.open(url, options=options, timeout=(open_timeout, read_timeout))
    except Exception as exc:  # every failure is a probe result, never a crash
        elapsed = time.monotonic() - started
        return ProbeResult(None, _reason(exc, elapsed >= 0.9 * open_timeout), elapsed)
    others = videos = 0

    def failed(reason: str) -> ProbeResult:
        # A camera that answers and streams, but sends no video at all, has a dead video channel
        # (its encoder, or a mis-set stream): not a network matter, so it is named apart.
        if reason == "timeout" and others and not videos:
            reason = "no_video"
        return ProbeResult(None, reason, time.monotonic() - started)

    try:
        if not container.streams.video:
            return ProbeResult(None, "no_video", time.monotonic() - started)
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"
        # Every stream's packets, not only the video's: PyAV drops the packets of unselected streams
        # inside its own read loop, so a camera that sends audio but no video never came back here
        # and held the probe's thread for ever.
        for packet in container.demux():
            if time.monotonic() > deadline:
                return failed("timeout")
            if packet.size == 0:  # the flush packets at the end of the stream
                continue
            if packet.stream_index != stream.index:
                others += 1
                continue
            videos += 1
            if not packet.is_keyframe:
                continue
            for frame in ctx.decode(packet):
                jpeg = frame_jpeg(frame, picture_width) if picture_width else None
                return ProbeResult(
                    small_bgr(frame, width),
                    None,
                    time.monotonic() - started,
                    ctx.name,
                    frame.width,
                    frame.height,
                    jpeg,
                )
        return failed("timeout")
    except Exception as exc:
        return failed(_reason(exc, time.monotonic() > deadline))
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
