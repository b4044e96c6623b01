"""Server CPU per WHEP viewer track at 1, 10, 50 and 100 viewers of one 720p ~2 Mbit/s camera.

    .venv/bin/python bench/fanout_cpu.py [--levels 1,10,50,100] [--window 10] [--sender passthrough|aiortc]

The real path, each part its own process, so that only the service's work is measured:
- the camera: the camera simulator (tools/camsim, gst-rtsp-server) encoding one 1280x720, 25 fps,
  ~2 Mbit/s H.264 High mount live (x264, no B-frames, GOP 2 s; see PATTERN for the picture). It costs
  ~40 % of a core, outside the service's figure but on the same 2
  cores (``--sim-nice`` lowers its priority below the service's, above the viewers');
- the service: a real ``videohub serve`` process (embedded Valkey), the camera registered ``always_on``
  over the API; its passthrough sender (``PassthroughSender``: payloads packetized once per access unit
  and shared, per viewer only RTP header, SRTP and UDP). ``--sender aiortc`` starts the same service
  with aiortc's own ``RTCRtpSender`` loop (packetizing per viewer), for comparison;
- viewer processes (niced), all real aiortc peers negotiating ICE, DTLS-SRTP and RTCP with the service.
  Their offers are POSTed by this driver to ``/whep/{camera}`` over HTTP with a bearer token, and the
  answers handed back. The first viewer decodes every frame with aiortc's full receiver (SRTP, jitter
  buffer, H.264 decoder): the proof that the stream really plays. The others (up to 25 per process)
  count the stream from the RTP headers, which SRTP leaves in clear (marker bit = end of a frame,
  sizes, sequence numbers), without unprotecting, depacketizing or decoding, and send an RTCP
  receiver report about once a second as a player does (a viewer that sent nothing would be ended as
  vanished). Full receivers for every viewer saturated the 2 cores at 50 and 100 viewers;
- this driver: relays offers and answers, reads CPU times from /proc.

Prints one JSON object per level: the service process's CPU (% of one core, /proc utime+stime of the
``videohub serve`` Python process; its embedded Valkey is a child process, reported apart), its
increase per viewer over the idle service (feed running, no viewer) and per viewer added since the
previous level (the marginal cost, without the feed-wide share the first viewer carries), the frames
each viewer received per second (mean, minimum, the decoding viewer's decoded pictures), the frames
the service ingested from the camera in the same window, the simulator's and the viewers' CPU, and
how busy the whole machine was. ``valid`` is false when any viewer got fewer than 90 % of the
camera's frames in the window (the machine or the service did not keep up, so the CPU figure would
understate the real cost); ``camera_at_rate`` is false when the camera itself delivered fewer than
90 % of its 25 fps (the ``cast`` picture is drawn on one thread at 16-24 fps; ``noise`` keeps 25; the figures
are then for ``camera_fps``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.procstat import machine_ticks, process_cpu_s  # noqa: E402
from bench.harness.service_env import MANY_VIEWERS_ENV  # noqa: E402
from bench.harness.viewers import PER_PROCESS, Proc, Viewers, all_flowing, children, spawn_viewers, view  # noqa: E402

WIDTH, HEIGHT, FPS, GOP_S = 1280, 720, 25, 2
# The simulator's ``noise`` pattern (sensor noise over the whole picture) makes x264 spend its whole
# budget at a constant rate, like a busy real scene: 2000 kbit/s gives ~2.0 Mbit/s at a steady 25 fps
# for ~40 % of a core (measured: feed_bitrate, camera_fps). On the other patterns x264 reaches its
# minimum quantizer at 0.1-0.4 Mbit/s, and ``cast`` (a scrolling pinwheel, the picture of runs before
# 2026-11-26 14:40 UTC) spends ~1.9 Mbit/s but is drawn at only 16-24 fps for a whole core.
BITRATES_KBPS = {"noise": 2000, "cast": 2400}
PATTERN = "noise"
CAMERA = "fanout"

# ``--sender aiortc``: the service process imports this first (PYTHONPATH) and disables the passthrough
# loop, so aiortc's own RTCRtpSender loop sends (the path the manager falls back to).
_AIORTC_SENDER = """
import logging
from videohub.webrtc.sender import PassthroughSender
PassthroughSender.supported = staticmethod(lambda _sender: False)
logging.getLogger("videohub.webrtc.manager").setLevel(logging.ERROR)
"""


class Service:
    """The driver's side of the real service: HTTP with the admin's bearer token, and its CPU."""

    def __init__(self, service: Any) -> None:
        import httpx

        self.service = service
        self.pid: int = service._proc.pid  # Popen runs .venv/bin/videohub: the Python process itself
        self.http = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=60)
        self.sessions: list[str] = []

    async def whep(self, offer: str) -> str:
        response = await self.http.post(
            f"/whep/{CAMERA}", content=offer, headers={"Content-Type": "application/sdp"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"WHEP POST: {response.status_code} {response.text[:300]}")
        self.sessions.append(response.headers["Location"])
        return response.text

    async def ingest(self) -> dict[str, Any]:
        response = await self.http.get(f"/api/cameras/{CAMERA}/ingest")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()["streams"][0]
        return stats

    async def streaming(self, within: float = 60.0) -> dict[str, Any]:
        """Wait until the service ingests the camera (its rate is reported, not required)."""
        deadline = time.monotonic() + within
        stream: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stream = await self.ingest()
            ingest = stream.get("ingest") or {}
            if stream["state"] == "streaming" and ingest.get("fps", 0) >= 0.5 * FPS:
                return stream
            await asyncio.sleep(1)
        raise RuntimeError(f"the camera does not stream: {stream}")

    def cpu_seconds(self) -> float:
        return process_cpu_s(self.pid)

    def valkey_cpu_seconds(self) -> float:
        return sum(process_cpu_s(pid) for pid in children(self.pid))

    async def close(self) -> None:
        await self.http.aclose()


async def add_viewers(service: Service, n: int, decode: bool) -> Proc:
    viewer = await spawn_viewers(n, decode)
    offers = [await viewer.recv() for _ in range(n)]
    for offer in offers:
        answer = await service.whep(offer["offer"])
        await viewer.send({"id": offer["id"], "answer": answer})
    return viewer


@dataclass
class Window:
    """What one measuring window saw: CPU % of one core per process group, and the machine."""

    seconds: float
    service: float
    valkey: float
    simulator: float
    machine_busy: float
    camera_frames: int
    camera_kbit_s: float


async def measure(service: Service, sim_pid: int, window: float) -> Window:
    i0 = (await service.ingest())["ingest"]
    s0, v0, c0 = service.cpu_seconds(), service.valkey_cpu_seconds(), process_cpu_s(sim_pid)
    b0, t0_ticks = machine_ticks()
    t0 = time.monotonic()
    await asyncio.sleep(window)
    s1, v1, c1 = service.cpu_seconds(), service.valkey_cpu_seconds(), process_cpu_s(sim_pid)
    b1, t1_ticks = machine_ticks()
    elapsed = time.monotonic() - t0
    i1 = (await service.ingest())["ingest"]
    return Window(
        seconds=elapsed,
        service=100.0 * (s1 - s0) / elapsed,
        valkey=100.0 * (v1 - v0) / elapsed,
        simulator=100.0 * (c1 - c0) / elapsed,
        machine_busy=100.0 * (b1 - b0) / max(1, t1_ticks - t0_ticks),
        camera_frames=i1["packets"] - i0["packets"],
        camera_kbit_s=(i1["bytes"] - i0["bytes"]) * 8 / elapsed / 1000,
    )


def sender_env(sender: str, tmp: Path) -> dict[str, str]:
    env = {"VIDEOHUB_SERVER__LOG_LEVEL": "warning", **MANY_VIEWERS_ENV}
    if sender == "aiortc":
        (tmp / "sitecustomize.py").write_text(_AIORTC_SENDER)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(REPO)])
    return env


async def drive(
    levels: list[int], window: float, warmup: float, sender: str, sim_nice: int, pattern: str
) -> list[str]:
    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService

    mount = (
        f"{CAMERA}:profile=high,width={WIDTH},height={HEIGHT},fps={FPS},gop={GOP_S},"
        f"bitrate={BITRATES_KBPS.get(pattern, 2000)},bframes=0,pattern={pattern}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="vh-fanout-"))
    sim = await asyncio.to_thread(CameraSimulator, preset="none", mounts=[mount])
    sim_pid = sim._proc.pid
    if sim_nice:
        # The simulator is the camera, not the service: below the service, above the viewers (15).
        os.setpriority(os.PRIO_PGRP, os.getpgid(sim_pid), sim_nice)
    viewers = Viewers([])
    lines: list[str] = []
    service: Service | None = None
    vh: Any = None
    try:
        vh = await asyncio.to_thread(VideohubService, tmp / "data", env=sender_env(sender, tmp))
        service = Service(vh)
        await asyncio.to_thread(vh.create_camera, CAMERA, sim.rtsp_url(CAMERA), mode="always_on")
        await service.streaming()
        await asyncio.sleep(warmup)
        # The idle service and one viewer are measured over 3 windows: one viewer's ~1 % must stand
        # out of the service's own periodic work (a 720p keyframe diagnosis every 10 s per feed), which
        # an 8 s window catches once or not at all.
        long_window = 3 * window
        idle = await measure(service, sim_pid, long_window)
        base: dict[str, Any] = {
            "bench": "fanout_cpu",
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "sender": sender,
            "feed_bitrate": round(idle.camera_kbit_s * 1000),
            "camera": f"camsim H.264 high {WIDTH}x{HEIGHT}@{FPS}, GOP {GOP_S} s, pattern {pattern}, live",
            "service": "videohub serve (process CPU from /proc)",
            "simulator_nice": sim_nice,
        }
        first = {
            **base,
            "viewers": 0,
            "window_s": round(idle.seconds, 1),
            "server_cpu_pct": round(idle.service, 2),
            "camera_fps": round(idle.camera_frames / idle.seconds, 1),
            "simulator_cpu_pct": round(idle.simulator, 1),
            "valkey_cpu_pct": round(idle.valkey, 2),
            "machine_busy_pct": round(idle.machine_busy, 1),
        }
        lines.append(json.dumps(first))
        print(lines[-1], flush=True)
        total = prev_level = 0
        prev_cpu = idle.service
        for level in levels:
            while total < level:
                decode = total == 0  # the first viewer decodes: proof that the stream really plays
                n = 1 if decode else min(PER_PROCESS, level - total)
                viewers.procs.append(await add_viewers(service, n, decode))
                total += n
            flowing = await all_flowing(viewers)
            await asyncio.sleep(warmup)
            before = await viewers.counts()
            viewers_cpu = viewers.cpu_seconds()
            w = await measure(service, sim_pid, long_window if level == 1 else window)
            viewers_cpu = viewers.cpu_seconds() - viewers_cpu
            after = await viewers.counts()
            fps: list[float] = []
            kbits: list[float] = []
            for (f0, b0), (f1, b1) in zip(before, after, strict=True):
                fps += [(b - a) / w.seconds for a, b in zip(f0, f1, strict=True)]
                kbits += [(b - a) * 8 / w.seconds / 1000 for a, b in zip(b0, b1, strict=True)]
            decoded_fps, counted = fps[0], fps[1:]
            camera_fps = w.camera_frames / w.seconds
            result = {
                **base,
                "viewers": level,
                "window_s": round(w.seconds, 1),
                "server_cpu_pct": round(w.service, 2),
                "per_viewer_cpu_pct": round((w.service - idle.service) / level, 3),
                # The slope from the previous level: what each added viewer cost, without the
                # feed-wide work (packetizing each access unit once) that the first viewer carries.
                "marginal_cpu_pct_per_added_viewer": round((w.service - prev_cpu) / (level - prev_level), 3),
                "goal_per_viewer_pct": 1.0,
                "camera_fps": round(camera_fps, 1),
                "frames_received_per_viewer_per_s": round(sum(fps) / level, 1),
                "min_viewer_fps": round(min(fps), 1),
                "decoding_viewer_fps": round(decoded_fps, 1),
                "counting_viewers": len(counted),
                "kbit_s_per_counting_viewer": round(sum(kbits[1:]) / len(counted)) if counted else None,
                "viewer_processes": len(viewers.procs),
                "viewers_cpu_pct": round(100.0 * viewers_cpu / w.seconds, 1),
                "simulator_cpu_pct": round(w.simulator, 1),
                "valkey_cpu_pct": round(w.valkey, 2),
                "machine_busy_pct": round(w.machine_busy, 1),
                # A viewer (or the decoding one) short of the camera's frames means the machine or the
                # service did not keep up: the CPU figure would then understate the service's real cost.
                "valid": flowing and min(fps) >= 0.9 * camera_fps,
                # The camera itself short of its 25 fps (the simulator draws ``cast`` on one thread at
                # <= ~24 fps; ``noise`` keeps 25): fewer frames to send, so the figures are for camera_fps.
                "camera_at_rate": camera_fps >= 0.9 * FPS,
            }
            lines.append(json.dumps(result))
            print(lines[-1], flush=True)
            prev_level, prev_cpu = level, w.service
    finally:
        for v in viewers.procs:
            await v.stop()
        if service is not None:
            await service.close()
        if vh is not None:
            await asyncio.to_thread(vh.close)
        await asyncio.to_thread(sim.close)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="drive", choices=["drive", "view"])
    parser.add_argument("--count", type=int, default=PER_PROCESS)
    parser.add_argument("--decode", action="store_true", help="view: decode (aiortc's full receiver)")
    parser.add_argument("--levels", default="1,10,50,100")
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        help="seconds per measurement (3x for the idle service and 1 viewer); 10 s = the diagnosis period",
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--sender",
        choices=["passthrough", "aiortc"],
        default="passthrough",
        help="the service's RTP loop: videohub's PassthroughSender, or aiortc's own (for comparison)",
    )
    parser.add_argument(
        "--sim-nice",
        type=int,
        default=5,
        help="niceness of the camera simulator (0: same priority as the service; viewers run at 15)",
    )
    parser.add_argument(
        "--pattern",
        default=PATTERN,
        help="simulator picture: noise (~2 Mbit/s at 25 fps), cast (~1.9 Mbit/s, drawn at <= ~24 fps) or "
        "clock (25 fps, ~0.37 Mbit/s)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.role == "view":
        asyncio.run(view(args.count, args.decode))
    else:
        levels = sorted(int(x) for x in args.levels.split(","))
        lines = asyncio.run(drive(levels, args.window, args.warmup, args.sender, args.sim_nice, args.pattern))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
