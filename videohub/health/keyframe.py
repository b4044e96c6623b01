"""Decode one keyframe for picture diagnosis: keyframes only, downscaled in the decoder's scaler.

Blocking PyAV work: call ``decode_keyframe`` from a worker thread (``decode_keyframe_async`` does),
never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging

import av
import numpy as np

from ingest.packet import Packet
from videohub.health.metrics import Frame
from videohub.hub.latest import frame_jpeg

log = logging.getLogger(__name__)

_CODECS = {"h264": "h264", "h265": "hevc", "hevc": "hevc"}


def decode_keyframe(packet: Packet, width: int = 160) -> Frame | None:
    """The picture of one keyframe packet as a small BGR array, or None if it does not decode."""
    return decode_keyframe_picture(packet, width)[0]


def decode_keyframe_picture(
    packet: Packet, width: int = 160, picture_width: int | None = None
) -> tuple[Frame | None, bytes | None]:
    """``decode_keyframe``, plus (with ``picture_width``) the same decoded picture as a JPEG for the
    wall's latest picture (``videohub.hub.latest``): one decode for both.

    A fresh decoder per sample: keyframes carry SPS/PPS in-band, so no state from earlier packets is
    needed, and ``skip_frame = "NONKEY"`` makes the decoder drop anything that is not a keyframe
    (issue 5: diagnosis must cost a small fraction of a full decode).
    """
    codec_name = _CODECS.get(packet.codec)
    if codec_name is None or not packet.keyframe:
        return None, None
    try:
        ctx = av.CodecContext.create(codec_name, "r")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.skip_frame = "NONKEY"
        frames = list(ctx.decode(av.Packet(packet.data)))
        frames += list(ctx.decode(None))  # flush: the decoder may hold the frame back
    except (av.error.FFmpegError, ValueError) as exc:
        log.debug("keyframe did not decode: %s", exc)
        return None, None
    if not frames:
        return None, None
    frame = frames[-1]
    jpeg = frame_jpeg(frame, picture_width) if picture_width else None
    height = max(2, round(frame.height * width / frame.width)) if frame.width > width else frame.height
    out = frame.reformat(width=min(width, frame.width), height=height, format="bgr24").to_ndarray()
    return np.ascontiguousarray(out, dtype=np.uint8), jpeg


async def decode_keyframe_async(packet: Packet, width: int = 160) -> Frame | None:
    return await asyncio.to_thread(decode_keyframe, packet, width)
