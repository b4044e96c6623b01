"""Steady state: 16 cameras and 32 WHEP viewers for 10 minutes; the service's RSS and fds over time.

    .venv/bin/python bench/steady.py [--cameras 16] [--viewers 32] [--minutes 10] [--every 10]

A real ``videohub serve`` process ingests ``--cameras`` always-on cameras from the camera simulator
(360p, 10 fps, 2 s GOP; the cameras share ``--mounts`` encoders by query string, as cameras behind one
NVR do, so the simulator's encoding does not crowd the box) and serves ``--viewers`` aiortc viewers in
this process, spread round-robin over the cameras. The viewers reassemble and count frames but do not
decode (decoding is the player's cost, not the service's). Every ``--every`` seconds the service
process's RSS (``/proc/PID/status`` VmRSS), open file descriptors (``/proc/PID/fd``), CPU time and
the frames every viewer received are sampled. Prints one JSON line with the samples and the growth:
a leak shows as RSS or fds still rising in the second half of the run, after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.procstat import process_cpu_s  # noqa: E402
from bench.harness.service_env import MANY_VIEWERS_ENV  # noqa: E402


class CountingDecoder:
    """Stands in for aiortc's H.264 decoder: counts reassembled frames per viewer."""

    instances: ClassVar[list[CountingDecoder]] = []

    def __init__(self, codec: Any) -> None:
        self.frames = 0
        CountingDecoder.instances.append(self)

    def decode(self, encoded_frame: Any) -> list[Any]:
        self.frames += 1
        return []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiortc.rtcrtpreceiver as receiver_module
    import httpx

    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService
    from tests.webrtc.viewer import Viewer

    setattr(receiver_module, "get_decoder", CountingDecoder)  # noqa: B010
    mounts = [f"st{m}:profile=main,width=640,height=360,fps=10,gop=2" for m in range(args.mounts)]
    sim = await asyncio.to_thread(CameraSimulator, preset="none", mounts=mounts)
    service = await asyncio.to_thread(
        VideohubService,
        Path(tempfile.mkdtemp(prefix="vh-steady-")),
        env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning", **MANY_VIEWERS_ENV},
    )
    pid = service._proc.pid  # the `videohub serve` Python process itself
    viewers: list[Viewer] = []
    client = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=30)
    try:
        for c in range(args.cameras):
            url = sim.rtsp_url(f"st{c % args.mounts}", {"cam": c})
            await asyncio.to_thread(service.create_camera, f"steady-{c:02d}", url, mode="always_on")
        for v in range(args.viewers):
            viewer = Viewer()
            offer = await viewer.offer()
            response = await client.post(
                f"/whep/steady-{v % args.cameras:02d}",
                content=offer,
                headers={"Content-Type": "application/sdp"},
            )
            assert response.status_code == 201, response.text
            await viewer.accept(response.text)
            viewers.append(viewer)
        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        end = start + args.minutes * 60
        last_frames = [0] * args.viewers
        last_cpu, last_t = process_cpu_s(pid), start
        while True:
            now = time.monotonic()
            frames = [d.frames for d in CountingDecoder.instances]
            frames += [0] * (args.viewers - len(frames))
            interval = max(now - last_t, 1e-9)
            per_viewer = [(f - lf) / interval for f, lf in zip(frames, last_frames, strict=True)]
            cpu = process_cpu_s(pid)
            sample = {
                "t_s": round(now - start, 1),
                "rss_mb": round(rss_mb(pid), 1),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "service_cpu_pct": round(100 * (cpu - last_cpu) / interval, 1) if samples else None,
                "min_viewer_fps": round(min(per_viewer), 1) if samples else None,
                "mean_viewer_fps": round(sum(per_viewer) / len(per_viewer), 1) if samples else None,
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
            samples.append(sample)
            print(json.dumps({"sample": sample}), file=sys.stderr, flush=True)
            last_frames, last_cpu, last_t = frames, cpu, now
            if now >= end:
                break
            await asyncio.sleep(min(args.every, max(0.0, end - time.monotonic())))
        sessions = (await client.get("/api/sessions")).json()
        n_sessions = len(sessions) if isinstance(sessions, list) else len(sessions.get("sessions", []))
    finally:
        await client.aclose()
        await asyncio.to_thread(service.close)
        await asyncio.gather(*(asyncio.wait_for(v.close(), 10) for v in viewers), return_exceptions=True)
        await asyncio.to_thread(sim.close)
    rss = [s["rss_mb"] for s in samples]
    fds = [s["fds"] for s in samples]
    half = len(samples) // 2
    cpus = [s["service_cpu_pct"] for s in samples[1:]]
    return {
        "bench": "steady",
        "cameras": args.cameras,
        "camera_stream": "H.264 main 640x360@10, GOP 2 s",
        "simulator_mounts": args.mounts,
        "viewers": args.viewers,
        "minutes": args.minutes,
        "sample_every_s": args.every,
        "rss_mb": {"first": rss[0], "last": rss[-1], "max": max(rss), "mid": rss[half]},
        "rss_growth_mb": round(rss[-1] - rss[0], 1),
        "rss_growth_mb_second_half": round(rss[-1] - rss[half], 1),
        "fds": {"first": fds[0], "last": fds[-1], "max": max(fds), "mid": fds[half]},
        "fds_growth": fds[-1] - fds[0],
        "service_cpu_pct_mean": round(sum(cpus) / len(cpus), 1) if cpus else None,
        "frames_per_viewer_per_s": samples[-1]["mean_viewer_fps"],
        "min_viewer_fps_last": samples[-1]["min_viewer_fps"],
        "sessions_at_end": n_sessions,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--mounts", type=int, default=4, help="simulator encoders the cameras share")
    parser.add_argument("--viewers", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="sampling interval, seconds")
    args = parser.parse_args()
    args.mounts = max(1, min(args.mounts, args.cameras))
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
