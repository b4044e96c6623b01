"""Soak: an hour of a command centre's day against one real service; resources and errors every minute.

    .venv/bin/python bench/soak.py [--minutes 60] [--every 60]      # the issue's run
    .venv/bin/python bench/soak.py --quick                          # 5 minutes, sampled every 30 s

A real ``videohub serve`` (embedded Valkey) and the camera simulator. The load, all at once:
- ``--cameras`` always_on cameras (360p, 10 fps, GOP 2 s; cameras share simulator encoders by query
  string). Half of them are *stable* and carry the viewers; the other half *flap*: their simulator
  mounts go down for ``--outage`` seconds one after another, all run long, so ingest reconnects,
  health goes offline and back, and alerts open and resolve;
- ``--viewers`` aiortc WHEP viewers on the stable cameras (frames reassembled and counted, not
  decoded); every sample period a quarter of them leave and new ones join;
- ``--ws`` ``/ws`` clients (authenticated; subscribed to a wall, alerts and health), the way open
  consoles, displays and health pages are;
- a request mix on the API from several users (camera lists, health, alerts, ingest state, snapshots,
  wall reads and writes).

Every ``--every`` seconds it records the service process's RSS, fds and threads, the embedded
Valkey's RSS, the HTTP 5xx count so far, the /ws clients still connected, and each viewer's frame rate
over the period. Prints one JSON line. Goal (issue 12): RSS growth <= 5 % in the second half, fds and
threads flat, 0 5xx, every viewer at the camera's frame rate (>= 90 % of 10 fps).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.procstat import process_cpu_s  # noqa: E402

CAMERA_FPS = 10.0
WALL = "soak"


class CountingDecoder:
    """Stands in for aiortc's H.264 decoder: counts reassembled frames per viewer."""

    instances: ClassVar[list[CountingDecoder]] = []

    def __init__(self, codec: Any) -> None:
        self.frames = 0
        CountingDecoder.instances.append(self)

    def decode(self, encoded_frame: Any) -> list[Any]:
        self.frames += 1
        return []


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, from /proc."""
    out = {"rss_kb": 0, "threads": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    return out


def child_pid(parent: int, name: str) -> int | None:
    """The first child of ``parent`` whose command line mentions ``name`` (the embedded valkey-server)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and name.encode() in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


class Tally:
    """HTTP outcomes of the whole load, by status class."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        self.transport_errors: Counter[str] = Counter()

    def note(self, what: str, status: int) -> None:
        self.statuses[status] += 1
        if status >= 500 and len(self.server_errors) < 50:
            self.server_errors.append(f"{what} -> {status}")

    @property
    def count_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class ViewerPool:
    """``size`` WHEP viewers on the stable cameras, spread over several users' clients (each user's
    playback caps hold, as on a real wall); ``leave`` and ``fill`` churn them."""

    def __init__(self, clients: list[Any], cameras: list[str], size: int, tally: Tally) -> None:
        self.clients = clients
        self.cameras = cameras
        self.size = size
        self.tally = tally
        self.live: list[tuple[Any, Any, str, CountingDecoder]] = []
        self.joined = 0
        self.failed = 0

    async def join(self, index: int) -> None:
        from tests.webrtc.viewer import Viewer

        viewer = Viewer()
        offer = await viewer.offer()
        before = len(CountingDecoder.instances)
        client = self.clients[index % len(self.clients)]
        response = await client.post(
            f"/whep/{self.cameras[index % len(self.cameras)]}",
            content=offer,
            headers={"Content-Type": "application/sdp"},
        )
        self.tally.note("POST /whep", response.status_code)
        if response.status_code != 201:
            self.failed += 1
            await viewer.close()
            return
        await viewer.accept(response.text)
        for _ in range(100):  # the decoder exists once the track's first packets arrive
            if len(CountingDecoder.instances) > before:
                break
            await asyncio.sleep(0.05)
        decoder = CountingDecoder.instances[-1] if len(CountingDecoder.instances) > before else None
        if decoder is None:
            self.failed += 1
            await viewer.close()
            return
        self.live.append((viewer, client, response.headers["location"], decoder))
        self.joined += 1

    async def leave(self, n: int) -> None:
        for _ in range(min(n, len(self.live))):
            viewer, client, location, _ = self.live.pop(random.randrange(len(self.live)))
            response = await client.delete(location)
            self.tally.note("DELETE /whep/sessions", response.status_code)
            await viewer.close()

    async def fill(self) -> None:
        while len(self.live) < self.size:
            await self.join(self.joined)

    def frames(self) -> dict[int, int]:
        return {id(d): d.frames for _, _, _, d in self.live}


async def ws_client(base: str, token: str, stats: Counter[str], stop: asyncio.Event) -> None:
    """One open page's /ws: auth, subscribe, read until told to stop; reconnects if dropped."""
    import websockets

    url = base.replace("http://", "ws://") + "/ws"
    while not stop.is_set():
        try:
            async with websockets.connect(url, max_size=2**20) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                await ws.send(
                    json.dumps({"type": "subscribe", "topics": [f"wall:{WALL}", "alerts", "health"]})
                )
                stats["connected"] += 1
                try:
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            message = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                            stats[f"msg:{message.get('type')}"] += 1
                finally:
                    stats["connected"] -= 1
        except (OSError, websockets.WebSocketException) as exc:
            stats[f"dropped:{type(exc).__name__}"] += 1
            await asyncio.sleep(1.0)


async def api_mix(
    client: Any, cameras: list[str], stable: list[str], tally: Tally, stop: asyncio.Event
) -> None:
    """A console's and a health page's background requests, about 10 a second.

    Snapshots are asked of stable cameras only: a flapping camera's snapshot is a documented 503 with
    a reason while it is down (no picture to give), which is not a server error.
    """
    paths = [
        "/api/cameras?limit=200",
        "/api/health/cameras",
        "/api/alerts",
        "/api/lines",
        f"/api/walls/{WALL}",
    ]
    n = 0
    while not stop.is_set():
        n += 1
        camera = random.choice(cameras)
        choices = [*paths, f"/api/cameras/{camera}/ingest", f"/api/cameras/{camera}/health"]
        if n % 20 == 0:
            choices.append(f"/api/cameras/{random.choice(stable)}/snapshot.jpg")
        path = random.choice(choices)
        try:
            if n % 50 == 0:
                wall = await client.get(f"/api/walls/{WALL}")
                tally.note("GET wall", wall.status_code)
                if wall.status_code == 200:
                    body = wall.json()
                    body["tiles"][n % len(body["tiles"])] = {"camera_id": camera, "stream": "main"}
                    headers = {"If-Match": f'"{body["version"]}"'}
                    body = {
                        k: v
                        for k, v in body.items()
                        if k in ("name", "layout", "tiles", "tours", "maximized")
                    }
                    put = await client.put(f"/api/walls/{WALL}", json=body, headers=headers)
                    tally.note("PUT wall", put.status_code)
            else:
                response = await client.get(path)
                tally.note(f"GET {path.split('?')[0]}", response.status_code)
        except Exception as exc:  # a transport error is recorded, never ends the soak
            tally.transport_errors[type(exc).__name__] += 1
        await asyncio.sleep(0.1)


async def flapper(sim: Any, mounts: list[str], outage: float, stop: asyncio.Event) -> int:
    """Take one flapping mount down for ``outage`` seconds after another, until told to stop."""
    flaps = 0
    i = 0
    while not stop.is_set():
        mount = mounts[i % len(mounts)]
        i += 1
        await asyncio.to_thread(sim.stop_mount, mount)
        flaps += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), outage)
        await asyncio.to_thread(sim.start_mount, mount)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), outage)
    return flaps


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiortc.rtcrtpreceiver as receiver_module
    import httpx

    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService

    setattr(receiver_module, "get_decoder", CountingDecoder)  # noqa: B010
    stable_mounts = [f"ok{m}" for m in range(args.mounts)]
    flap_mounts = [f"fl{m}" for m in range(args.mounts)]
    spec = "profile=main,width=640,height=360,fps=10,gop=2"
    sim = await asyncio.to_thread(
        CameraSimulator, preset="none", mounts=[f"{m}:{spec}" for m in stable_mounts + flap_mounts]
    )
    service = await asyncio.to_thread(
        VideohubService,
        Path(tempfile.mkdtemp(prefix="vh-soak-")),
        env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"},
    )
    pid = service._proc.pid
    tally = Tally()
    ws_stats: Counter[str] = Counter()
    stop = asyncio.Event()
    client = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=30)
    tasks: list[asyncio.Task[Any]] = []
    pool: ViewerPool | None = None
    viewer_clients: list[Any] = []
    flaps = 0
    try:
        half = args.cameras // 2
        stable, flapping = [], []
        for c in range(args.cameras):
            group = stable_mounts if c < half else flap_mounts
            url = sim.rtsp_url(group[c % len(group)], {"cam": c})
            camera_id = f"ga-soak-{c:02d}"
            await asyncio.to_thread(service.create_camera, camera_id, url, mode="always_on")
            (stable if c < half else flapping).append(camera_id)
        # Many people, as in a command centre: wall operators (each plays a share of the viewers),
        # and the pages of operators and maintenance staff (each user's /ws cap holds).
        operators = [
            await asyncio.to_thread(service.create_user, f"soak_op{i}", "operator") for i in range(4)
        ]
        page_users = operators + [
            await asyncio.to_thread(service.create_user, f"soak_maint{i}", "maintenance") for i in range(6)
        ]
        operator, maint = operators[0], page_users[-1]
        viewer_clients = [
            httpx.AsyncClient(base_url=service.base_url, headers={"Authorization": f"Bearer {t}"}, timeout=30)
            for t in operators
        ]
        wall = {"layout": "9", "tiles": [{"camera_id": cid, "stream": "main"} for cid in stable[:9]]}
        put = await client.put(f"/api/walls/{WALL}", json=wall)
        tally.note("PUT wall", put.status_code)
        pool = ViewerPool(viewer_clients, stable, args.viewers, tally)
        await pool.fill()
        tasks += [
            asyncio.create_task(ws_client(service.base_url, page_users[i % len(page_users)], ws_stats, stop))
            for i in range(args.ws)
        ]
        for token in (operator, maint):
            api_client = httpx.AsyncClient(
                base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            tasks.append(asyncio.create_task(api_mix(api_client, stable + flapping, stable, tally, stop)))
        flap_task = asyncio.create_task(flapper(sim, flap_mounts, args.outage, stop))

        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        end = start + args.minutes * 60
        last_frames, last_t, last_cpu = pool.frames(), start, process_cpu_s(pid)
        while True:
            await asyncio.sleep(min(args.every, max(0.0, end - time.monotonic())))
            now = time.monotonic()
            interval = max(now - last_t, 1e-9)
            frames = pool.frames()
            fps = [(frames[k] - last_frames[k]) / interval for k in frames if k in last_frames]
            status = proc_status(pid)
            valkey = child_pid(pid, "valkey")
            cpu = process_cpu_s(pid)
            sample = {
                "t_s": round(now - start, 1),
                "rss_mb": round(status["rss_kb"] / 1024, 1),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "threads": status["threads"],
                "valkey_rss_mb": round(proc_status(valkey)["rss_kb"] / 1024, 1) if valkey else None,
                "service_cpu_pct": round(100 * (cpu - last_cpu) / interval, 1),
                "http_5xx": tally.count_5xx,
                "requests": sum(tally.statuses.values()),
                "ws_connected": ws_stats["connected"],
                "viewers": len(frames),
                "viewers_measured": len(fps),
                "min_viewer_fps": round(min(fps), 1) if fps else None,
                "mean_viewer_fps": round(sum(fps) / len(fps), 1) if fps else None,
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
            samples.append(sample)
            print(json.dumps({"sample": sample}), file=sys.stderr, flush=True)
            if now >= end:
                break
            # Viewers leave and join for the next period; the ones that stay are measured across it.
            await pool.leave(max(1, args.viewers // 4))
            await pool.fill()
            last_frames, last_t, last_cpu = pool.frames(), time.monotonic(), cpu
        stop.set()
        flaps = await flap_task
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pool is not None:
            await pool.leave(len(pool.live))
        await client.aclose()
        for viewer_client in viewer_clients:
            await viewer_client.aclose()
        await asyncio.to_thread(service.close)
        await asyncio.to_thread(sim.close)

    def growth(key: str, first: dict[str, Any], last: dict[str, Any]) -> float:
        return round(float(last[key]) - float(first[key]), 1)

    assert pool is not None
    mid = samples[len(samples) // 2]
    last = samples[-1]
    rss_growth_pct = 100 * (last["rss_mb"] - mid["rss_mb"]) / mid["rss_mb"]
    min_fps = min((s["min_viewer_fps"] for s in samples if s["min_viewer_fps"] is not None), default=0.0)
    return {
        "bench": "soak",
        "minutes": args.minutes,
        "cameras": args.cameras,
        "flapping_cameras": len(flapping),
        "camera_stream": "H.264 main 640x360@10, GOP 2 s",
        "viewers": args.viewers,
        "viewers_joined": pool.joined,
        "viewer_joins_failed": pool.failed,
        "ws_clients": args.ws,
        "flaps": flaps,
        "requests": sum(tally.statuses.values()),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "http_5xx": tally.count_5xx,
        "server_errors": tally.server_errors[:20],
        "transport_errors": dict(tally.transport_errors),
        "ws_connected_at_last_sample": last["ws_connected"],
        "ws_drops": {k: v for k, v in ws_stats.items() if k.startswith("dropped:")},
        "ws_messages": {k[4:]: v for k, v in ws_stats.items() if k.startswith("msg:")},
        "rss_mb": {"first": samples[0]["rss_mb"], "mid": mid["rss_mb"], "last": last["rss_mb"]},
        "rss_growth_pct_second_half": round(rss_growth_pct, 2),
        "fds_growth_second_half": growth("fds", mid, last),
        "threads_growth_second_half": growth("threads", mid, last),
        "valkey_rss_mb_last": last["valkey_rss_mb"],
        "min_viewer_fps": min_fps,
        "goal_met": bool(
            rss_growth_pct <= 5.0
            and last["fds"] - mid["fds"] <= 5
            and last["threads"] - mid["threads"] <= 2
            and tally.count_5xx == 0
            and min_fps >= 0.9 * CAMERA_FPS
        ),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=60.0, help="sampling period, seconds")
    parser.add_argument("--cameras", type=int, default=32, help="half stable (viewed), half flapping")
    parser.add_argument("--mounts", type=int, default=4, help="simulator encoders per half")
    parser.add_argument("--viewers", type=int, default=64)
    parser.add_argument("--ws", type=int, default=100, help="/ws clients")
    parser.add_argument("--outage", type=float, default=20.0, help="seconds a flapping mount stays down")
    parser.add_argument("--quick", action="store_true", help="5 minutes, sampled every 30 s")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.every = 5.0, 30.0
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
