"""Keyframe-only decode of real H.264 packets (encoded here with PyAV) for diagnosis."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np

from ingest.keyframe import decode_keyframe, decode_keyframe_async
from ingest.packet import Packet
from videohub.health.diagnosis import PictureDiagnoser


def encode(frames: list[np.ndarray], gop: int = 5) -> list[Packet]:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = 320, 180
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 10)
    codec.gop_size = gop
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    out: list[Packet] = []
    for i, img in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(img, format="bgr24")
        vf.pts = i
        for p in codec.encode(vf):
            out.append(Packet(bytes(p), p.pts, Fraction(1, 10), bool(p.is_keyframe), time.monotonic()))
    for p in codec.encode(None):
        out.append(Packet(bytes(p), p.pts, Fraction(1, 10), bool(p.is_keyframe), time.monotonic()))
    return out


def test_keyframe_decodes_to_a_small_bgr_picture_and_delta_frames_are_skipped() -> None:
    red = np.zeros((180, 320, 3), np.uint8)
    red[:, :, 2] = 200
    packets = encode([red] * 10)
    keyframes = [p for p in packets if p.keyframe]
    assert keyframes and len(keyframes) < len(packets)
    img = decode_keyframe(keyframes[0], width=80)
    assert img is not None and img.shape == (45, 80, 3)
    assert img[:, :, 2].mean() > 150 and img[:, :, 0].mean() < 50
    delta = next(p for p in packets if not p.keyframe)
    assert decode_keyframe(delta) is None


async def test_black_stream_is_diagnosed_black_from_its_keyframe() -> None:
    packets = encode([np.zeros((180, 320, 3), np.uint8)] * 5)
    img = await decode_keyframe_async(packets[0])
    assert img is not None
    assert PictureDiagnoser().diagnose(img).reasons == ("black",)


def test_garbage_does_not_raise() -> None:
    assert decode_keyframe(Packet(b"\x00\x00\x00\x01\x65garbage", 0, Fraction(1, 10), True, 0.0)) is None
