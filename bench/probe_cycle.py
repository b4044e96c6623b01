"""One probe cycle of a real ``videohub serve`` over many on_demand cameras, reachable and unreachable.

    .venv/bin/python bench/probe_cycle.py [--cameras 10000] [--reachable 0.6] [--refused 0.3]
        [--concurrency N] [--timeout 10] [--mounts 1] [--out FILE]

Real parts only, measured from outside: a ``videohub serve`` process (embedded Valkey, its health
monitor with its probe schedule, bounded concurrency and its own thread pool, the real probe: PyAV
RTSP connect, one keyframe, keyframes-only decode, diagnosis, disconnect; the alert service raising
an ``offline`` alert for every unreachable camera). Cameras are:
- reachable: the camera simulator (``--mounts`` 360p mounts, 10 fps, 1 s GOP; each camera has its
  own URL via a query string, sharing its mount's encoder, as many cameras behind one NVR would).
  A probe waits for the next keyframe, so the GOP bounds a reachable probe's time;
- refused: a closed TCP port (the camera is switched off: connection refused at once);
- silent: a TCP server in this process that accepts and never answers (a hung camera: the probe
  times out).
Steps: a first service process (probing every 24 h, so it stays out of the way) registers the
cameras over the HTTP API and stops; a second one on the same data directory starts with the probe
interval at its minimum (5 s), so every camera's first probe is due within 5 s of start, and the
time from launching it until no camera is in state ``unknown`` any more (``GET
/api/health/cameras?state=unknown`` every 2 s) is the cycle. Then each camera's state must be right:
reachable ``online``, the others ``offline``. The degraded hold is 0 (as for a first look: the state
follows the probe at once). Prints JSON; the issue's goal is 10,000 cameras in <= 300 s with every
camera in its right state; ``goal_met`` needs both and the simulator alive. The simulator and this
process share the machine with the service; their CPU is reported beside the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.harness.procstat import process_cpu_s  # noqa: E402
from tests.fixtures.camsim import CameraSimulator  # noqa: E402
from tests.fixtures.service import VideohubService  # noqa: E402
from videohub.settings.health import HealthSettings  # noqa: E402

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


def register(service: VideohubService, cameras: list[tuple[str, str]]) -> float:
    """Create the cameras over the API (4 threads, one keep-alive connection each); seconds taken."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def create(item: tuple[str, str]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=service.base_url, headers=service.auth(), timeout=60
            )
            clients.append(client)
        cam_id, url = item
        n = int(cam_id.removeprefix("cam"))
        body = {
            "id": cam_id,
            "name": f"巡检点{n}",
            "line": LINES[n % len(LINES)],
            "area": f"网格{n % 50}",
            "mode": "on_demand",
            "streams": {"main": {"url": url}},
        }
        response = client.post("/api/cameras", json=body)
        assert response.status_code == 201, response.text

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, cameras))
    for client in clients:
        client.close()
    return time.monotonic() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    mounts = [f"probe{m}" for m in range(args.mounts)]
    sim = await asyncio.to_thread(
        CameraSimulator, preset="none", mounts=[f"{name}:{MOUNT_KEYS}" for name in mounts]
    )
    sim_pid = sim.pid
    server, silent_port, held = await silent_server()
    refused_port = closed_port()
    data = Path(tempfile.mkdtemp(prefix="vh-probe-bench-"))
    quiet = {"VIDEOHUB_SERVER__LOG_LEVEL": "warning"}
    n = args.cameras
    n_ok, n_refused = round(n * args.reachable), round(n * args.refused)
    kinds: dict[str, str] = {}
    cameras: list[tuple[str, str]] = []
    for i in range(n):
        if i < n_ok:
            kind, url = "reachable", sim.rtsp_url(mounts[i % len(mounts)], {"cam": i})
        elif i < n_ok + n_refused:
            kind, url = "refused", f"rtsp://127.0.0.1:{refused_port}/cam{i}"
        else:
            kind, url = "silent", f"rtsp://127.0.0.1:{silent_port}/cam{i}"
        cam_id = f"cam{i:05d}"
        kinds[cam_id] = kind
        cameras.append((cam_id, url))
    service: VideohubService | None = None
    try:
        first = await asyncio.to_thread(
            VideohubService, data, env={**quiet, "VIDEOHUB_HEALTH__PROBE_INTERVAL_SECONDS": "86400"}
        )
        try:
            register_s = await asyncio.to_thread(register, first, cameras)
        finally:
            await asyncio.to_thread(first.close)
        env = {
            **quiet,
            "VIDEOHUB_HEALTH__PROBE_INTERVAL_SECONDS": "5",
            "VIDEOHUB_HEALTH__PROBE_CONCURRENCY": str(args.concurrency),
            "VIDEOHUB_HEALTH__PROBE_TIMEOUT_SECONDS": str(args.timeout),
            "VIDEOHUB_HEALTH__DEGRADED_HOLD_SECONDS": "0",
        }
        sim_cpu0, t0 = process_cpu_s(sim_pid), time.monotonic()
        service = await asyncio.to_thread(VideohubService, data, env=env)
        started_s = time.monotonic() - t0
        pid = service._proc.pid  # the `videohub serve` Python process itself
        client = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=120)
        polls: list[dict[str, float]] = []
        try:
            while True:
                response = await client.get("/api/health/cameras", params={"state": "unknown"})
                assert response.status_code == 200, response.text
                left = len(response.json())
                polls.append({"t_s": round(time.monotonic() - t0, 1), "unknown": left})
                if left == 0:
                    break
                if time.monotonic() - t0 > args.give_up:
                    break
                await asyncio.sleep(2.0)
            cycle_s = time.monotonic() - t0
            service_cpu_s = process_cpu_s(pid)
            sim_cpu_s = process_cpu_s(sim_pid) - sim_cpu0
            sim_alive = sim.alive
            rows = (await client.get("/api/health/cameras")).json()
            alerts = (await client.get("/api/alerts", params={"state": "open", "limit": 1000})).json()
        finally:
            await client.aclose()
    finally:
        if service is not None:
            await asyncio.to_thread(service.close)
        for w in held:
            w.close()
        server.close()
        await asyncio.to_thread(sim.close)
    outcome: Counter[str] = Counter()
    wrong = 0
    for row in rows:
        kind = kinds[row["camera"]]
        reason = row["reasons"][0] if row["reasons"] else ""
        outcome[f"{kind}:{row['state']}" + (f":{reason}" if reason else "")] += 1
        expected = "online" if kind == "reachable" else "offline"
        wrong += row["state"] != expected
    wrong += n - len(rows)
    # The API pages at 1,000: this says whether alerts were raised, not how many beyond that.
    open_alerts = len(alerts.get("items", [])) if isinstance(alerts, dict) else None
    return {
        "bench": "probe_cycle",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cameras": n,
        "mix": {"reachable": n_ok, "refused": n_refused, "silent": n - n_ok - n_refused},
        "reachable_mounts": {"count": args.mounts, "spec": MOUNT_KEYS},
        "measured": "outside a real `videohub serve` (HTTP API), from launching the process",
        "probe_concurrency": args.concurrency,
        "probe_timeout_s": args.timeout,
        "register_s": round(register_s, 1),
        "service_start_s": round(started_s, 1),
        "cycle_s": round(cycle_s, 1),
        "probes_per_s": round(n / cycle_s, 1),
        "service_cpu_s": round(service_cpu_s, 1),
        "simulator_cpu_s": round(sim_cpu_s, 1),
        "simulator_alive": sim_alive,
        "unknown_over_time": polls[:: max(1, len(polls) // 20)] + polls[-1:],
        "outcomes": dict(sorted(outcome.items())),
        "cameras_in_wrong_state": wrong,
        "open_alerts_first_page": open_alerts,
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
    parser.add_argument("--give-up", type=float, default=900.0, help="stop waiting after this many seconds")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
