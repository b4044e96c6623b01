"""Small generated test clips (PyAV encoders; nothing downloaded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(
    path: Path,
    codec: str,
    *,
    frames: int = 30,
    width: int = 320,
    height: int = 180,
    fps: int = 10,
    gop: int = 10,
    bframes: int = 0,
) -> Path:
    """Write a moving gradient clip; ``codec`` is an FFmpeg encoder (libx264, libx265, mjpeg)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.time_base = Fraction(1, fps)
        ctx = stream.codec_context
        ctx.gop_size = gop
        if codec == "libx264":
            ctx.max_b_frames = bframes
            ctx.options = {"preset": "ultrafast" if not bframes else "veryfast", "bf": str(bframes)}
            if bframes:
                ctx.profile = "main"
        elif codec == "libx265":
            ctx.options = {"preset": "ultrafast", "x265-params": f"keyint={gop}:bframes=0:log-level=error"}
        ramp = np.tile(np.arange(width, dtype=np.uint16), (height, 1))
        for i in range(frames):
            gray = ((ramp + i * 8) % 256).astype(np.uint8)
            rgb = np.dstack([gray, np.roll(gray, i, axis=0), 255 - gray])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
