"""CPU of keyframe-only picture diagnosis as a fraction of a full decode of the same stream.

    .venv/bin/python bench/diagnosis_cpu.py [--width 1280 --height 720 --fps 25 --gop 2 --kbps 2000]
        [--interval 10] [--cameras 4 --window 60 --rounds 2] [--seconds 60] [--out FILE]

The headline, measured from outside a real service: the camera simulator serves one 720p25 H.264 (its
``noise`` picture, so the encoder spends ~2 Mbit/s; GOP 2 s) to ``--cameras`` always_on cameras of a
``videohub serve`` process.
The service's CPU (``/proc``) is measured over ``--window`` seconds with keyframe diagnosis at its
default interval (one keyframe per feed per ``--interval`` s) and again with diagnosis nearly off
(once an hour), in alternating rounds; the difference per camera is the diagnosis cost. The full
decode it is compared with is ``ffmpeg -threads 1 -i URL -f null -`` on the same mount, per stream.
``fraction`` = diagnosis per camera / full decode per camera; the issue's goal is <= 0.05.

``isolated_fraction`` is the same question without a service, for precision (the service figure is
a small difference of two noisy numbers): a clip encoded once (a textured scene with moving objects,
SPS/PPS in-band as the Feed carries it), timed in this process: every packet through one decoder,
against one keyframe per ``--interval`` s through ``decode_keyframe`` (fresh decoder,
``skip_frame=NONKEY``, downscaled in the scaler) and every picture check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import av  # noqa: E402
import numpy as np  # noqa: E402

from bench.harness.procstat import process_cpu_s  # noqa: E402
from ingest.keyframe import decode_keyframe  # noqa: E402
from ingest.packet import Packet  # noqa: E402
from videohub.health.diagnosis import PictureDiagnoser  # noqa: E402


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


def service_cpu(
    data: Path, interval: float, ids: list[str], warmup: float, window: float
) -> tuple[float, float]:
    """% of a core a ``videohub serve`` on ``data`` uses with keyframe diagnosis every ``interval`` s."""
    from tests.fixtures.service import VideohubService

    env = {
        "VIDEOHUB_SERVER__LOG_LEVEL": "warning",
        "VIDEOHUB_HEALTH__DIAGNOSIS_INTERVAL_SECONDS": str(interval),
    }
    with VideohubService(data, env=env) as service:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [service.call("GET", f"/api/cameras/{i}/ingest")["streams"][0]["state"] for i in ids]
            if all(state == "streaming" for state in states):
                break
            time.sleep(0.5)
        time.sleep(warmup)
        pid = service._proc.pid  # the `videohub serve` Python process itself
        cpu0, t0 = process_cpu_s(pid), time.monotonic()
        time.sleep(window)
        pct = 100 * (process_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
        ingest = service.call("GET", f"/api/cameras/{ids[0]}/ingest")["streams"][0].get("ingest") or {}
        return pct, float(ingest.get("bitrate_kbps") or 0.0)


def ffmpeg_decode_cpu(urls: list[str], warmup: float, window: float) -> float:
    """% of a core per stream for ``ffmpeg -threads 1 -i URL -f null -`` (a full decode)."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-threads", "1", "-i"]
    procs = [
        subprocess.Popen(
            [*command, url, "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for url in urls
    ]
    try:
        time.sleep(warmup + 1.0)
        cpu0, t0 = sum(process_cpu_s(p.pid) for p in procs), time.monotonic()
        time.sleep(window)
        return 100 * (sum(process_cpu_s(p.pid) for p in procs) - cpu0) / (time.monotonic() - t0) / len(urls)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def measure_service(args: argparse.Namespace) -> dict[str, object]:
    """The same question asked of a real service: its CPU with diagnosis on against nearly off."""
    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService

    mount = f"diag:profile=high,width={args.width},height={args.height},fps={args.fps},gop={args.gop:g}"
    mount += f",bitrate={args.kbps},pattern=noise"  # noise: the encoder spends the whole bitrate
    data = Path(tempfile.mkdtemp(prefix="vh-diag-bench-"))
    ids = [f"diag-{i}" for i in range(args.cameras)]
    with CameraSimulator(preset="none", mounts=[mount]) as sim:
        urls = [sim.rtsp_url("diag", {"cam": i}) for i in ids]
        with VideohubService(data, env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"}) as first:
            for cam_id, url in zip(ids, urls, strict=True):
                first.create_camera(cam_id, url, name=f"诊断{cam_id}", mode="always_on")
        rounds = []
        for _ in range(args.rounds):  # alternate, so load from elsewhere hits both alike
            on, kbps = service_cpu(data, args.interval, ids, args.warmup, args.window)
            off, _ = service_cpu(data, 3600.0, ids, args.warmup, args.window)
            rounds.append((on, off))
        decode = ffmpeg_decode_cpu(
            [sim.rtsp_url("diag", {"ffmpeg": i}) for i in ids], args.warmup, args.window
        )
    on_pct = statistics.median(r[0] for r in rounds)
    off_pct = statistics.median(r[1] for r in rounds)
    per_camera = (on_pct - off_pct) / args.cameras
    return {
        "camera": f"camsim {mount.split(':', 1)[1]}, measured {kbps:.0f} kbit/s",
        "cameras": args.cameras,
        "window_s": args.window,
        "rounds": [{"diagnosis_on_pct": round(a, 2), "diagnosis_off_pct": round(b, 2)} for a, b in rounds],
        "service_cpu_pct_diagnosis_on": round(on_pct, 2),
        "service_cpu_pct_diagnosis_off": round(off_pct, 2),
        "diagnosis_pct_per_camera": round(per_camera, 3),
        "full_decode_pct_per_camera": round(decode, 2),
        "fraction": round(per_camera / decode, 4) if decode > 0 else None,
    }


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
    parser.add_argument("--cameras", type=int, default=4, help="service part: cameras on one mount")
    parser.add_argument("--window", type=float, default=60.0, help="service part: seconds per measurement")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="service part: alternating on/off rounds")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    service = measure_service(args)
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
        "isolated_fraction": round(diag_cpu / full_cpu, 4),
        "service": service,
        "fraction": service["fraction"],
        "goal": "fraction <= 0.05",
        "goal_met": service["fraction"] is not None and float(str(service["fraction"])) <= 0.05,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
