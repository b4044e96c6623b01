"""One probe cycle over many registered on_demand cameras, reachable and unreachable mixed.

    .venv/bin/python bench/probe_cycle.py [--cameras 10000] [--reachable 0.6] [--refused 0.3]
        [--concurrency N] [--timeout 10] [--mounts 1] [--out FILE]

Real parts: an embedded Valkey holding the registry, the ``HealthMonitor`` with its probe schedule
(bounded concurrency, its own thread pool), the real probe (PyAV: RTSP connect, one keyframe,
keyframes-only decode, diagnosis, disconnect) and the ``AlertService`` raising an ``offline`` alert
for every unreachable camera. Cameras are:
- reachable: the camera simulator (``--mounts`` 360p mounts, 10 fps, 1 s GOP; each camera has its
  own URL via a query string, sharing its mount's encoder, as many cameras behind one NVR would).
  A probe waits for the next keyframe, so the GOP bounds a reachable probe's time;
- refused: a closed TCP port (the camera is switched off: connection refused at once);
- silent: a TCP server that accepts and never answers (a hung camera: the probe times out).
All cameras are made due at once and the time until every one of them has been probed is measured
(a camera probed twice counts once). Prints JSON; the issue's goal is 10,000 cameras in <= 300 s with
every camera in its right state (reachable online, the others offline); ``goal_met`` needs both.
The simulator serves every reachable probe from the same machine, so its CPU (reported as
``simulator_cpu_s``) competes with the prober's.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures.camsim import CameraSimulator  # noqa: E402
from videohub.alerts.service import AlertService  # noqa: E402
from videohub.health.monitor import HealthMonitor  # noqa: E402
from videohub.models import CameraCreate, Streams, StreamSpec  # noqa: E402
from videohub.registry import CameraRegistry  # noqa: E402
from videohub.settings.health import HealthSettings  # noqa: E402
from videohub.store import Store  # noqa: E402

LINES = ["public_security", "safety", "environment", "land_resources"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def silent_server() -> tuple[asyncio.Server, int, list[asyncio.StreamWriter]]:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, answer nothing; close when the prober gives up
        await reader.read()
        writer.close()
        held.remove(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=4096)
    port: int = server.sockets[0].getsockname()[1]
    return server, port, held


MOUNT_KEYS = "profile=baseline,width=640,height=360,fps=10,gop=1"


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {"p50": pick(0.5), "p95": pick(0.95), "max": round(values[-1], 2)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    mounts = [f"probe{m}" for m in range(args.mounts)]
    sim = CameraSimulator(preset="none", mounts=[f"{name}:{MOUNT_KEYS}" for name in mounts])
    sim_pid = sim.pid
    server, silent_port, held = await silent_server()
    refused_port = closed_port()
    store = await Store.open(None, Path(tempfile.mkdtemp(prefix="vh-probe-bench-")))
    try:
        redis = store.redis
        registry = CameraRegistry(redis, LINES, allow_test_sources=False)
        n = args.cameras
        n_ok, n_refused = round(n * args.reachable), round(n * args.refused)
        kinds: dict[str, str] = {}
        t_reg = time.monotonic()
        for i in range(n):
            if i < n_ok:
                kind, url = "reachable", sim.rtsp_url(mounts[i % len(mounts)], {"cam": i})
            elif i < n_ok + n_refused:
                kind, url = "refused", f"rtsp://127.0.0.1:{refused_port}/cam{i}"
            else:
                kind, url = "silent", f"rtsp://127.0.0.1:{silent_port}/cam{i}"
            cam_id = f"cam{i:05d}"
            kinds[cam_id] = kind
            await registry.create(
                CameraCreate(
                    id=cam_id,
                    name=cam_id,
                    line=LINES[i % len(LINES)],
                    streams=Streams(main=StreamSpec(url=url)),
                    mode="on_demand",
                )
            )
        register_s = time.monotonic() - t_reg
        settings = HealthSettings(
            probe_concurrency=args.concurrency, probe_timeout_seconds=args.timeout, degraded_hold_seconds=0
        )
        alerts = AlertService(redis)
        monitor = HealthMonitor(settings, registry, alerts, redis)
        await monitor.load()
        now = monitor.clock()
        # Everything due now (the service spreads first probes over one interval instead).
        monitor._probe_heap = [(now, cam_id) for cam_id in monitor.cameras]
        heapq.heapify(monitor._probe_heap)
        cpu0, sim_cpu0, t0 = time.process_time(), process_cpu_s(sim_pid), time.monotonic()
        task = asyncio.create_task(monitor._probe_loop())
        tracked = list(monitor.cameras.values())
        while any(t.probe is None for t in tracked):  # noqa: ASYNC110 - polling the monitor's state
            await asyncio.sleep(0.5)
        cycle_s = time.monotonic() - t0
        cpu_s = time.process_time() - cpu0
        sim_cpu_s = process_cpu_s(sim_pid) - sim_cpu0
        sim_alive = sim.alive
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if monitor._probe_pool is not None:
            monitor._probe_pool.shutdown(wait=False, cancel_futures=True)
        outcome: Counter[str] = Counter()
        seconds: dict[str, list[float]] = {}
        wrong = 0
        for cam_id, t in monitor.cameras.items():
            probe = t.probe or {}
            outcome[f"{kinds[cam_id]}:{probe.get('error') or 'ok'}"] += 1
            seconds.setdefault(kinds[cam_id], []).append(float(probe.get("seconds", 0.0)))
            expected = "online" if kinds[cam_id] == "reachable" else "offline"
            wrong += t.health.state != expected
        open_alerts = len(await alerts.store.active())
        await alerts.close()
    finally:
        for w in held:
            w.close()
        server.close()
        await store.close()
        sim.close()
    return {
        "bench": "probe_cycle",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cameras": n,
        "mix": {"reachable": n_ok, "refused": n_refused, "silent": n - n_ok - n_refused},
        "reachable_mounts": {"count": args.mounts, "spec": MOUNT_KEYS},
        "probe_concurrency": args.concurrency,
        "probe_timeout_s": args.timeout,
        "register_s": round(register_s, 1),
        "cycle_s": round(cycle_s, 1),
        "probes_per_s": round(n / cycle_s, 1),
        "bench_process_cpu_s": round(cpu_s, 1),
        "simulator_cpu_s": round(sim_cpu_s, 1),
        "simulator_alive": sim_alive,
        "probe_s": {kind: spread(values) for kind, values in sorted(seconds.items())},
        "probes_done": monitor.probes_done,
        "outcomes": dict(sorted(outcome.items())),
        "cameras_in_wrong_state": wrong,
        "open_offline_alerts": open_alerts,
        "goal": "10,000 cameras in <= 300 s",
        "linear_projection_10000_s": round(cycle_s * 10000 / n, 1),
        "goal_met": n >= 10000 and cycle_s <= 300 and wrong == 0 and sim_alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=10000)
    parser.add_argument("--reachable", type=float, default=0.6)
    parser.add_argument("--refused", type=float, default=0.3, help="the rest are silent (time out)")
    parser.add_argument("--concurrency", type=int, default=HealthSettings().probe_concurrency)
    parser.add_argument("--timeout", type=float, default=HealthSettings().probe_timeout_seconds)
    parser.add_argument("--mounts", type=int, default=1, help="simulator mounts the reachable cameras share")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
