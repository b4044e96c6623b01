"""The same camera through Janus and through videohub, alternating in one run: the headline comparison.

    .venv/bin/python bench/peers.py [--levels none,0,1,10,50,100] [--rounds 2] [--window 10]
                                    [--ttff-runs 20] [--chromium-runs 10] [--ttff-gop 4] [--out FILE]

The parts, each its own process on the same 2 cores:
- the camera: the camera simulator (gst-rtsp-server), the camera of ``bench/fanout_cpu.py``: 1280x720,
  25 fps, H.264 High, ~2 Mbit/s (the ``noise`` picture), GOP 2 s, no B-frames, one encoder shared by
  every client, as a real camera;
- videohub: a real ``videohub serve`` (embedded Valkey) with the camera registered ``always_on``;
- Janus, Debian 12's ``janus`` package (installed with apt when missing), twice: **as shipped**
  (default ``event_loops``: a thread and loop per handle) and **tuned** (``event_loops`` = the number
  of cores, the peer to beat). Each has a private configuration folder (``bench/harness/janus.py``):
  the streaming plugin and the HTTP transport only, one RTSP mountpoint pulling the same camera (RTP
  over UDP; Janus's RTSP client asks for nothing else), its keyframe buffer off for the CPU levels;
- the viewers: the niced aiortc viewer processes of ``bench/fanout_cpu.py``
  (``bench/harness/viewers.py``): at each level one decoding viewer and the others counting RTP
  headers and sending RTCP receiver reports. With videohub they offer (WHEP POST); with Janus they
  answer Janus's offer (REST API: create a session, attach ``janus.plugin.streaming``, ``watch`` →
  JSEP offer, ``start`` with the answer, keep-alives every 20 s);
- this driver: signalling, and CPU times from /proc.

Janus's ICE skips loopback, so every ICE candidate — Janus's (``ice_enforce_list``), videohub's and
the viewers' — is on the machine's own address, found from the default route's interface. The packets
never leave the machine (the kernel delivers its own addresses locally).

**CPU levels.** For each level (``none`` = the server with no camera at all; ``0`` = the feed running,
nobody watching; then 1, 10, 50, 100 viewers) the three servers take turns: videohub, janus-tuned,
janus-shipped (the reverse order in the second round, so a drift of the machine's load does not
favour one). Each turn joins the level's viewers, waits until all receive frames, warms up, measures
a window (3 windows for ``none``, ``0`` and 1 viewer: one viewer's ~1 % must stand out of videohub's
periodic work, a keyframe diagnosis every 10 s), and ends every session before the next server's turn.
Server CPU is % of one core from /proc (utime + stime): videohub's Python process (its Valkey child is
reported apart), Janus's process (all its threads). Per viewer is the increase over the same server's
``0`` level in the same round. A turn is valid when every viewer got >= 90 % of the camera's frames
(the camera's frames are counted by videohub's ingest of the same shared encoder). One JSON line per
level and server: the mean of the rounds, each round's figure, and the ratios to both Janus.

**Warm time to first frame.** A second camera, GOP 4 s, meant as one that ignores keyframe requests,
runs through videohub (an always-on camera: its GOP cache) and one Janus (tuned) with
two mountpoints, keyframe buffer on and off. Each join is timed from the WHEP POST, or from Janus's
``watch`` request (session and handle already made, as a player that is already connected), to the
first decoded frame at an aiortc player; the three take turns, each join at a random point of the GOP.
videohub's ingest never asks the camera for a keyframe, but Janus sends its RTSP source a PLI when a
viewer joins, and the simulator's encoder obeys it: the camera's keyframe interval after each join is
recorded, and the page says when the camera answered.
The same joins are then made in Debian's Chromium (``--chromium-runs``): videohub as
``bench/ttff_chromium.py`` plays it, Janus as its ``janus.js`` would (REST from the page, answer at
once, candidates trickled), to the first frame shown. One JSON line per player and server with
p50/p95/max (``bench/harness/first_frame.py``).

``--quick`` is for ``bench/run --quick``: levels none,0,1,10, one round, short windows, 3 aiortc joins
each, no Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.first_frame import warm_ttff  # noqa: E402
from bench.harness.guard import Guard  # noqa: E402
from bench.harness.janus import Janus, JanusError, Mountpoint, ensure_installed, machine_address  # noqa: E402
from bench.harness.procstat import machine_ticks, process_cpu_s  # noqa: E402
from bench.harness.service_env import MANY_VIEWERS_ENV  # noqa: E402
from bench.harness.sides import JanusSide, Server, Videohub  # noqa: E402
from bench.harness.viewers import PER_PROCESS, Viewers, all_flowing, only_address  # noqa: E402

# The camera of bench/fanout_cpu.py (see there why ``noise``: x264 spends its whole 2 Mbit/s budget).
WIDTH, HEIGHT, FPS, GOP_S, KBPS = 1280, 720, 25, 2, 2000
CAMERA = "peers"
TTFF_CAMERA = "peers-ttff"
SERVERS = ("videohub", "janus-tuned", "janus-shipped")


# Camera URLs carry no query string: Janus's RTSP client appends the SDP's control path after it, and
# its PLAY then gets a 404 from gst-rtsp-server.


def mount(name: str, gop: float) -> str:
    return (
        f"{name}:profile=high,width={WIDTH},height={HEIGHT},fps={FPS},gop={gop},"
        f"bitrate={KBPS},bframes=0,pattern=noise"
    )


# ---- one turn ---------------------------------------------------------------------------------


@dataclass
class Turn:
    """What one server's turn at one level measured (CPU in % of one core)."""

    server: str
    level: str
    viewers: int
    seconds: float
    server_cpu: float
    valkey_cpu: float | None
    simulator_cpu: float
    viewers_cpu: float
    machine_busy: float
    camera_fps: float | None
    fps: list[float]
    flowing: bool

    @property
    def valid(self) -> bool:
        if not self.viewers:
            return True
        return self.flowing and self.camera_fps is not None and min(self.fps) >= 0.9 * self.camera_fps


async def join_level(server: Server, level: int, viewers: Viewers) -> None:
    """The level's viewers into ``viewers``: one decoding, the others counting, in processes of up to 25."""
    total = 0
    while total < level:
        decode = total == 0
        n = 1 if decode else min(PER_PROCESS, level - total)
        viewers.procs.append(await server.join(n, decode))
        total += n


async def turn(server: Server, vh: Videohub, sim_pid: int, level: str, window: float, warmup: float) -> Turn:
    n = int(level) if level.isdigit() else 0
    viewers = Viewers([])
    try:
        await join_level(server, n, viewers)  # into viewers: a failed join still stops those started
        flowing = await all_flowing(viewers) if n else True
        await asyncio.sleep(warmup)
        before = await viewers.counts()
        i0 = await vh.ingest()
        cpu0, valkey0, sim0 = server.cpu_seconds(), vh.valkey_cpu_seconds(), process_cpu_s(sim_pid)
        view0 = viewers.cpu_seconds()
        b0, t0_ticks = machine_ticks()
        t0 = time.monotonic()
        await asyncio.sleep(window)
        cpu1, valkey1, sim1 = server.cpu_seconds(), vh.valkey_cpu_seconds(), process_cpu_s(sim_pid)
        view1 = viewers.cpu_seconds()
        b1, t1_ticks = machine_ticks()
        elapsed = time.monotonic() - t0
        i1 = await vh.ingest()
        after = await viewers.counts()
    finally:
        await server.leave()
        await viewers.stop()
    fps: list[float] = []
    for (f0, _), (f1, _) in zip(before, after, strict=True):
        fps += [(b - a) / elapsed for a, b in zip(f0, f1, strict=True)]
    camera_fps = (i1["packets"] - i0["packets"]) / elapsed if i0 and i1 else None
    return Turn(
        server=server.name,
        level=level,
        viewers=n,
        seconds=elapsed,
        server_cpu=100.0 * (cpu1 - cpu0) / elapsed,
        valkey_cpu=100.0 * (valkey1 - valkey0) / elapsed if server.name == "videohub" else None,
        simulator_cpu=100.0 * (sim1 - sim0) / elapsed,
        viewers_cpu=100.0 * (view1 - view0) / elapsed,
        machine_busy=100.0 * (b1 - b0) / max(1, t1_ticks - t0_ticks),
        camera_fps=camera_fps,
        fps=fps,
        flowing=flowing,
    )


def progress(t: Turn, round_no: int, slot: int) -> None:
    """A progress line (``run`` marks it as a sample: bench/run shows it but stores the summaries)."""
    line = {
        "run": slot,
        "round": round_no,
        "server": t.server,
        "level": t.level,
        "server_cpu_pct": round(t.server_cpu, 2),
        "min_viewer_fps": round(min(t.fps), 1) if t.fps else None,
        "camera_fps": round(t.camera_fps, 1) if t.camera_fps else None,
        "machine_busy_pct": round(t.machine_busy, 1),
        "valid": t.valid,
    }
    print(json.dumps(line), flush=True)


# ---- summaries --------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 2)


def summarize(
    turns: list[Turn], base: dict[str, Any], event_loops: dict[str, int | None]
) -> list[dict[str, Any]]:
    """One line per (level, server): means over the rounds, each round's figures, ratios to Janus."""
    by: dict[tuple[str, str], list[Turn]] = {}
    for t in turns:
        by.setdefault((t.level, t.server), []).append(t)
    idle = {key: [t.server_cpu for t in ts] for key, ts in by.items() if key[0] == "0"}

    def per_viewer(level: str, server: str) -> list[float] | None:
        ts = by.get((level, server), [])
        zero = idle.get(("0", server))
        if not level.isdigit() or int(level) == 0 or not zero or len(zero) != len(ts):
            return None
        return [(t.server_cpu - z) / t.viewers for t, z in zip(ts, zero, strict=True)]

    cpu = {key: mean([t.server_cpu for t in ts]) for key, ts in by.items()}
    pv = {key: per_viewer(*key) for key in by}
    lines = []
    levels = sorted({lv for lv, _ in by}, key=lambda x: -1 if x == "none" else int(x))
    for level in levels:
        for server in SERVERS:
            ts = by.get((level, server))
            if not ts:
                continue
            per = pv[(level, server)]
            per_mean = mean(per) if per else None
            fps = [f for t in ts for f in t.fps]
            cams = [t.camera_fps for t in ts if t.camera_fps is not None]
            line: dict[str, Any] = {
                **base,
                "server": server,
                "event_loops": event_loops.get(server),
                "level": level,
                "viewers": ts[0].viewers,
                "feed_running": level != "none",
                "rounds": len(ts),
                "window_s": round(mean([t.seconds for t in ts]), 1),
                "server_cpu_pct": round(cpu[(level, server)], 2),
                "server_cpu_pct_rounds": [round(t.server_cpu, 2) for t in ts],
                "per_viewer_cpu_pct": round(per_mean, 3) if per_mean is not None else None,
                "per_viewer_cpu_pct_rounds": [round(x, 3) for x in per] if per else None,
                "frames_per_viewer_per_s": round(mean(fps), 1) if fps else None,
                "min_viewer_fps": round(min(fps), 1) if fps else None,
                "camera_fps": round(mean(cams), 1) if cams else None,
                "valid": all(t.valid for t in ts),
                "valid_rounds": [t.valid for t in ts],
                "machine_busy_pct": round(mean([t.machine_busy for t in ts]), 1),
                "machine_busy_pct_rounds": [round(t.machine_busy, 1) for t in ts],
                "simulator_cpu_pct": round(mean([t.simulator_cpu for t in ts]), 1),
                "viewers_cpu_pct": round(mean([t.viewers_cpu for t in ts]), 1),
            }
            if server == "videohub":
                line["valkey_cpu_pct"] = round(mean([t.valkey_cpu or 0.0 for t in ts]), 2)
            for peer in ("janus-tuned", "janus-shipped"):
                key = peer.replace("-", "_")
                line[f"cpu_ratio_to_{key}"] = ratio(cpu[(level, server)], cpu.get((level, peer)))
                peer_pv = pv.get((level, peer))
                line[f"per_viewer_ratio_to_{key}"] = ratio(per_mean, mean(peer_pv) if peer_pv else None)
            lines.append(line)
    return lines


# ---- the run ----------------------------------------------------------------------------------


async def drive(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService

    levels = [x.strip() for x in args.levels.split(",") if x.strip()]
    if "0" not in levels:
        levels.insert(1 if levels[:1] == ["none"] else 0, "0")  # per viewer is counted from level 0
    ensure_installed()
    interface, address = machine_address()
    only_address(address)  # the time-to-first-frame players of this process
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="vh-peers-"))  # kept after a failure: Janus's logs, the data dir
    done = False
    guard = Guard()
    sim: Any = None
    service: Any = None
    vh: Videohub | None = None
    sides: list[JanusSide] = []
    turns: list[Turn] = []
    try:
        sim = await asyncio.to_thread(
            CameraSimulator, preset="none", mounts=[mount(CAMERA, GOP_S), mount(TTFF_CAMERA, args.ttff_gop)]
        )
        guard.watch(sim._proc.pid)
        sim_pid = sim._proc.pid
        os.setpriority(os.PRIO_PGRP, os.getpgid(sim_pid), args.sim_nice)
        service = await asyncio.to_thread(
            VideohubService,
            tmp / "videohub",
            env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning", **MANY_VIEWERS_ENV},
        )
        guard.watch(service._proc.pid)
        vh = Videohub(service, CAMERA, sim.rtsp_url(CAMERA), address, FPS)
        for name, loops in (("janus-tuned", cores), ("janus-shipped", None)):
            folder = tmp / name
            folder.mkdir()
            janus = Janus(folder, address=address, event_loops=loops, name=name)
            side = JanusSide(janus, Mountpoint(1, sim.rtsp_url(CAMERA)), address, guard)
            sides.append(side)
        servers: list[Server] = [vh, *sides]
        on: bool | None = None  # nothing started yet: the first level starts every server's source
        slot = 0
        for round_no in range(1, args.rounds + 1):
            order = servers if round_no % 2 else servers[::-1]
            for level in levels:
                want = level != "none"
                if want != on:
                    await asyncio.gather(*(s.camera(want) for s in servers))
                    on = want
                    await asyncio.sleep(args.warmup + (GOP_S if on else 0))
                long = level in ("none", "0", "1")
                for server in order:
                    t = await turn(server, vh, sim_pid, level, args.window * (3 if long else 1), args.warmup)
                    turns.append(t)
                    progress(t, round_no, slot)
                    slot += 1
                    await asyncio.sleep(args.settle)
        base = {
            "camera": f"camsim H.264 high {WIDTH}x{HEIGHT}@{FPS}, GOP {GOP_S} s, {KBPS} kbit/s noise, live",
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "janus": "Debian janus " + janus_version(),
            "address": f"{address} ({interface}, the default route's)",
            "simulator_nice": args.sim_nice,
        }
        loops = {"videohub": None, "janus-tuned": cores, "janus-shipped": None}
        lines = summarize(turns, base, loops)
        for line in lines:
            print(json.dumps(line), flush=True)
        if args.ttff_runs or args.chromium_runs:
            await sides[1].close()  # Janus as shipped is not needed here
            await vh.camera(False)
            camera = {
                "width": WIDTH,
                "height": HEIGHT,
                "fps": FPS,
                "gop_s": args.ttff_gop,
                "profile": "high",
                "kbit_s": KBPS,
            }
            for line in await warm_ttff(
                vh,
                sides[0],
                sim.rtsp_url(TTFF_CAMERA),
                camera_id=TTFF_CAMERA,
                camera=camera,
                runs=args.ttff_runs,
                chromium_runs=args.chromium_runs,
            ):
                lines.append({**base, **line})
                print(json.dumps(lines[-1]), flush=True)
        done = True
        return lines
    finally:
        for side in sides:
            with contextlib.suppress(Exception):
                await side.close()
        if vh is not None:
            with contextlib.suppress(Exception):
                await vh.close()
        if service is not None:
            await asyncio.to_thread(service.close)
        if sim is not None:
            await asyncio.to_thread(sim.close)
        guard.close()
        if done:
            shutil.rmtree(tmp, ignore_errors=True)


def janus_version() -> str:
    import subprocess

    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "janus"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="none,0,1,10,50,100", help="none = no camera; 0 = feed running")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0, help="seconds (3x for none, 0 and 1 viewer)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between turns")
    parser.add_argument("--ttff-runs", type=int, default=20, help="warm joins per server (0: none)")
    parser.add_argument("--chromium-runs", type=int, default=10, help="warm joins per server in Chromium")
    parser.add_argument("--ttff-gop", type=float, default=4.0)
    parser.add_argument("--sim-nice", type=int, default=5, help="the simulator's niceness (viewers: 15)")
    parser.add_argument("--quick", action="store_true", help="none,0,1,10; one round; short windows; 3 joins")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.levels, args.rounds, args.window, args.warmup, args.settle = "none,0,1,10", 1, 3.0, 1.0, 0.5
        args.ttff_runs, args.chromium_runs = 3, 0

    # SIGTERM as SIGINT: asyncio.run cancels the main task, so every finally stops its children.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.kill(os.getpid(), signal.SIGINT))
    try:
        lines = asyncio.run(drive(args))
    except JanusError as exc:
        print(f"peers: Janus: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("peers: interrupted; service, simulator, Janus and viewers stopped", file=sys.stderr)
        sys.exit(130)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(x) + "\n" for x in lines))


if __name__ == "__main__":
    main()
