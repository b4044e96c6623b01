"""CPU of keyframe-only picture diagnosis as a fraction of a full decode of the same stream.

    .venv/bin/python bench/diagnosis_cpu.py [--width 1280 --height 720 --fps 25 --gop 2 --seconds 20]
        [--interval 10] [--out FILE]

Encodes a clip once (a textured scene with moving objects at a camera-like 2 Mbit/s, H.264 Annex-B
with SPS/PPS in-band, as the Feed carries it), then measures
process CPU time of:
- full decode: every packet through one decoder (what watching the stream would cost);
- diagnosis: what the health monitor does for the same stretch of time — one keyframe per
  ``--interval`` seconds decoded by ``decode_keyframe`` (fresh decoder, ``skip_frame=NONKEY``,
  downscaled in the scaler) and run through every picture check.

Prints one JSON object; the issue's goal is ``fraction <= 0.05``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import av  # noqa: E402
import numpy as np  # noqa: E402

from ingest.packet import Packet  # noqa: E402
from videohub.health.diagnosis import PictureDiagnoser  # noqa: E402
from videohub.health.keyframe import decode_keyframe  # noqa: E402


def scene(width: int, height: int, i: int, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A street-like picture: a textured backdrop, a few moving objects, light sensor noise."""
    img = base.copy()
    for k in range(4):
        x = (i * (6 + 3 * k) + 200 * k) % (width - 120)
        y = height // 5 + k * height // 6
        img[y : y + 80, x : x + 120] = (40 + 50 * k, 200 - 40 * k, 90 + 30 * k)
    noise = rng.integers(-3, 4, img.shape, dtype=np.int16)
    return np.asarray(np.clip(img.astype(np.int16) + noise, 0, 255), dtype=np.uint8)


def encode(width: int, height: int, fps: int, gop_seconds: float, seconds: float, kbps: int) -> list[Packet]:
    """H.264 at a camera-like constant bitrate, SPS/PPS before every keyframe (as the Feed has it)."""
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    gop = max(1, round(gop_seconds * fps))
    ctx.gop_size, ctx.max_b_frames, ctx.bit_rate = gop, 0, kbps * 1000
    ctx.options = {
        "preset": "superfast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:"
        f"vbv-maxrate={kbps}:vbv-bufsize={kbps}",
    }
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(xx * 255 // width), (yy * 255 // height), ((xx + yy) * 127 // (width + height))], axis=2
    )
    base = base.astype(np.uint8)
    for _ in range(60):  # buildings, signs: edges for the blur check
        x, y = int(rng.integers(0, width - 100)), int(rng.integers(0, height - 100))
        base[y : y + int(rng.integers(10, 100)), x : x + int(rng.integers(10, 100))] = rng.integers(0, 255, 3)
    packets: list[Packet] = []
    for i in range(round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(scene(width, height, i, rng, base), format="bgr24")
        frame.pts = i
        packets += [
            Packet(bytes(p), p.pts, ctx.time_base, bool(p.is_keyframe), 0.0) for p in ctx.encode(frame)
        ]
    packets += [Packet(bytes(p), p.pts, ctx.time_base, bool(p.is_keyframe), 0.0) for p in ctx.encode(None)]
    return packets


def full_decode(packets: list[Packet]) -> tuple[float, int]:
    ctx = av.CodecContext.create("h264", "r")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.thread_count = 1  # one core's worth, comparable with the single-threaded diagnosis
    frames = 0
    start = time.process_time()
    for p in packets:
        frames += len(ctx.decode(av.Packet(p.data)))
    frames += len(ctx.decode(None))
    return time.process_time() - start, frames


def diagnosis(packets: list[Packet], fps: int, interval: float, width: int) -> tuple[float, int]:
    diagnoser = PictureDiagnoser()
    # OpenCV's one-time initialisation (~0.1 s) is paid once per process, not per check.
    warm = decode_keyframe(next(p for p in packets if p.keyframe), width)
    assert warm is not None
    PictureDiagnoser().diagnose(warm)
    next_at = 0.0
    checks = 0
    start = time.process_time()
    for i, p in enumerate(packets):
        t = i / fps
        if p.keyframe and t >= next_at:
            frame = decode_keyframe(p, width)
            assert frame is not None
            diagnoser.diagnose(frame)
            checks += 1
            next_at = t + interval
    return time.process_time() - start, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=float, default=2.0, help="keyframe interval, seconds")
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--kbps", type=int, default=2000, help="bitrate")
    parser.add_argument("--interval", type=float, default=10.0, help="diagnosis interval, seconds")
    parser.add_argument("--diag-width", type=int, default=160)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    packets = encode(args.width, args.height, args.fps, args.gop, args.seconds, args.kbps)
    full_cpu, frames = full_decode(packets)
    diag_cpu, checks = diagnosis(packets, args.fps, args.interval, args.diag_width)
    result = {
        "bench": "diagnosis_cpu",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stream": f"{args.width}x{args.height}@{args.fps} H.264 {args.kbps} kbit/s, GOP {args.gop:g} s, "
        f"{args.seconds:g} s",
        "keyframe_bytes_avg": sum(p.size for p in packets if p.keyframe)
        // max(1, sum(p.keyframe for p in packets)),
        "diagnosis_interval_s": args.interval,
        "full_decode_cpu_s": round(full_cpu, 4),
        "frames_decoded": frames,
        "diagnosis_cpu_s": round(diag_cpu, 4),
        "keyframes_diagnosed": checks,
        "diagnosis_cpu_per_check_ms": round(1000 * diag_cpu / max(1, checks), 2),
        "fraction": round(diag_cpu / full_cpu, 4),
        "goal": "fraction <= 0.05",
        "goal_met": diag_cpu / full_cpu <= 0.05,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
