"""Decode one keyframe: the one place a keyframe packet becomes a picture (snapshots and diagnosis).

Keyframes carry SPS/PPS in-band (the normalizer puts them there), so a fresh decoder per keyframe
needs no state from earlier packets, and ``skip_frame = "NONKEY"`` makes it drop anything that is not
a keyframe (decision 5: a picture check costs a small fraction of a full decode). Blocking PyAV work:
call from a worker thread, never on the event loop. Probes (``ingest.probe``) decode with the
demuxed stream's own context and share ``small_bgr``.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import av.error
import numpy as np
import numpy.typing as npt

from ingest.packet import Packet

BgrImage = npt.NDArray[np.uint8]
"""A picture as an (height, width, 3) BGR array, as OpenCV takes it."""

_CODECS = {"h264": "h264", "h265": "hevc", "hevc": "hevc"}
JPEG_QUALITY = 6
"""MJPEG qscale (2 best … 31 worst): about 25 KiB for a 640×360 street scene."""


class UndecodableKeyframe(Exception):
    """The packet gave no picture; ``detail`` says how (``does not decode (InvalidDataError)``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def decode_frame(packet: Packet) -> av.VideoFrame:
    """The picture of one keyframe packet, full size; raises ``UndecodableKeyframe``."""
    codec_name = _CODECS.get(packet.codec)
    if codec_name is None:
        raise UndecodableKeyframe(f"is of codec {packet.codec!r}")
    if not packet.keyframe:
        raise UndecodableKeyframe("is not a keyframe")
    try:
        ctx = av.CodecContext.create(codec_name, "r")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.skip_frame = "NONKEY"
        frames = list(ctx.decode(av.Packet(packet.data)))
        frames += list(ctx.decode(None))  # flush: the decoder may hold the frame back
    except (av.error.FFmpegError, ValueError) as exc:
        raise UndecodableKeyframe(f"does not decode ({type(exc).__name__})") from None
    if not frames:
        raise UndecodableKeyframe("gave no picture")
    return frames[-1]


def small_bgr(frame: av.VideoFrame, width: int) -> BgrImage:
    """``frame`` downscaled (in the decoder's scaler) to at most ``width`` pixels wide, as BGR."""
    height = max(2, round(frame.height * width / frame.width)) if frame.width > width else frame.height
    out = frame.reformat(width=min(width, frame.width), height=height, format="bgr24").to_ndarray()
    return np.ascontiguousarray(out, dtype=np.uint8)


def decode_keyframe(packet: Packet, width: int = 160) -> BgrImage | None:
    """The keyframe as a small BGR array for picture checks, or None if it does not decode."""
    try:
        return small_bgr(decode_frame(packet), width)
    except UndecodableKeyframe:
        return None


def decode_keyframe_picture(
    packet: Packet, width: int = 160, picture_width: int | None = None
) -> tuple[BgrImage | None, bytes | None]:
    """``decode_keyframe``, plus (with ``picture_width``) the same decoded picture as a JPEG at most
    that wide (the wall's latest picture, ``videohub.hub.latest``): one decode for both."""
    try:
        frame = decode_frame(packet)
    except UndecodableKeyframe:
        return None, None
    jpeg = frame_jpeg(frame, picture_width) if picture_width else None
    return small_bgr(frame, width), jpeg


def frame_jpeg(frame: av.VideoFrame, width: int, quality: int = JPEG_QUALITY) -> bytes:
    """A decoded picture as a JPEG at most ``width`` wide (blocking: call it in a worker thread)."""
    out_w = min(width, frame.width) // 2 * 2
    out_h = max(2, round(frame.height * out_w / frame.width) // 2 * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = out_w, out_h
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": str(quality), "qmax": str(quality)}
    picture = frame.reformat(width=out_w, height=out_h, format="yuvj420p")
    picture.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(picture))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    return data


async def decode_keyframe_async(packet: Packet, width: int = 160) -> BgrImage | None:
    return await asyncio.to_thread(decode_keyframe, packet, width)
