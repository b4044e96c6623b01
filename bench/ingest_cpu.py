"""Ingest CPU cost, printed as JSON lines (issue 3: passthrough ≤ 1.3× ``ffmpeg -c copy``).

    .venv/bin/python bench/ingest_cpu.py [--cameras 8] [--seconds 15] [--rounds 3] [--transcode 1]

Starts the camera simulator and a real ``videohub serve`` process (health monitoring off, so that
what is measured is ingest), then measures, each over ``--seconds`` after a warm-up, in ``--rounds``
alternating rounds (the ratio compares medians: the box is shared and noisy):
1. passthrough: N always_on cameras registered over the API on one shared mount (distinct URLs by
   query string): the service ingests each into its Feed (GOP cache) with nobody watching — the media
   path up to the viewers, whose cost belongs to WHEP. CPU is the service process's user+system time
   from ``/proc/<pid>/stat``, minus the same service's idle CPU (no camera) measured first; the
   cameras are deleted after each round.
2. ffmpeg: N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`` processes on the same mount;
   CPU from ``/proc/<pid>/stat`` (utime+stime).
3. transcode: cameras on the H.265 and B-frame mounts (transcoded once per feed), CPU per feed.
4. passthrough_with_health: once more in a second service with the defaults (health monitoring and
   keyframe diagnosis on): the whole per-camera cost of an unwatched camera.
The simulator runs in its own process and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.harness.procstat import process_cpu_s
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "ingest_cpu", **fields}), flush=True)


class Service:
    """A ``videohub serve`` process, its API client, and its CPU time from /proc."""

    def __init__(self, service: VideohubService) -> None:
        self.service = service
        self.pid = service._proc.pid  # the `videohub serve` Python process itself
        self.client = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=30)
        self.idle_pct = 0.0

    async def idle(self, seconds: float) -> float:
        cpu0, wall0 = process_cpu_s(self.pid), time.monotonic()
        await asyncio.sleep(seconds)
        self.idle_pct = (process_cpu_s(self.pid) - cpu0) / (time.monotonic() - wall0) * 100
        return self.idle_pct

    async def streams(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for cam_id in ids:
            body = (await self.client.get(f"/api/cameras/{cam_id}/ingest")).json()
            stream = (body.get("streams") or [{}])[0]
            out.append({**(stream.get("ingest") or {}), "state": stream.get("state")})
        return out

    async def measure(self, name: str, urls: list[str], warmup: float, seconds: float) -> dict[str, Any]:
        ids = [f"{name}-{i}" for i in range(len(urls))]
        for cam_id, url in zip(ids, urls, strict=True):
            body = {
                "id": cam_id,
                "name": f"测试{cam_id}",
                "line": "public_security",
                "mode": "always_on",
                "streams": {"main": {"url": url}},
            }
            response = await self.client.post("/api/cameras", json=body)
            assert response.status_code == 201, response.text
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(s.get("state") == "streaming" for s in await self.streams(ids)):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(warmup)
            before = await self.streams(ids)
            cpu0, wall0 = process_cpu_s(self.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = process_cpu_s(self.pid) - cpu0, time.monotonic() - wall0
            after = await self.streams(ids)
        finally:
            for cam_id in ids:
                await self.client.delete(f"/api/cameras/{cam_id}")
        return {
            "cpu": max(0.0, cpu - self.idle_pct / 100 * wall),
            "service_cpu": cpu,
            "wall": wall,
            "packets": sum(
                a.get("packets", 0) - b.get("packets", 0) for a, b in zip(after, before, strict=True)
            ),
            "streaming": sum(a.get("state") == "streaming" for a in after),
            "modes": sorted({a["mode"] for a in after if a.get("mode")}),
        }

    async def close(self) -> None:
        await self.client.aclose()
        await asyncio.to_thread(self.service.close)


async def measure_ffmpeg(urls: list[str], warmup: float, seconds: float) -> dict[str, Any]:
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i"]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, not waited on in the loop
            [*command, url, "-c", "copy", "-f", "null", "-"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for url in urls
    ]
    try:
        await asyncio.sleep(warmup + 1.0)  # ffmpeg's default probing takes ~1 s more than ours
        cpu0 = sum(process_cpu_s(p.pid) for p in procs)
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        cpu = sum(process_cpu_s(p.pid) for p in procs) - cpu0
        alive = sum(p.poll() is None for p in procs)
        return {"cpu": cpu, "wall": time.monotonic() - wall0, "alive": alive}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cameras", type=int, default=8, help="passthrough cameras (and ffmpeg processes)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window per part")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians are compared)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--transcode", type=int, default=1, help="feeds per transcoded mount")
    parser.add_argument("--mount", default="cb", help="passthrough mount of the test preset")
    args = parser.parse_args()

    with CameraSimulator(preset="test") as sim:
        # Ingest CPU is the question: health monitoring is off in this service, so the
        # difference to its idle CPU is ingest + Feed hub alone. The whole per-camera cost with the
        # health monitor on (stats ticks, keyframe diagnosis) is measured afterwards, apart.
        service = await start_service({"VIDEOHUB_HEALTH__ENABLED": "false"})
        try:
            await run(args, sim, service)
        finally:
            await service.close()
        if args.rounds > 0:
            service = await start_service({})
            try:
                await asyncio.sleep(args.warmup)
                await service.idle(args.seconds)
                urls = [sim.rtsp_url(args.mount, {"bench": i, "health": 1}) for i in range(args.cameras)]
                whole = await service.measure("h", urls, args.warmup, args.seconds)
                emit(
                    mode="passthrough_with_health",
                    mount=args.mount,
                    cameras=args.cameras,
                    streaming=whole["streaming"],
                    seconds=round(whole["wall"], 2),
                    service_idle_cpu_percent=round(service.idle_pct, 3),
                    cpu_seconds=round(whole["cpu"], 3),
                    cpu_percent_per_camera=round(whole["cpu"] / args.cameras / whole["wall"] * 100, 3),
                )
            finally:
                await service.close()


async def start_service(env: dict[str, str]) -> Service:
    return Service(
        await asyncio.to_thread(
            VideohubService,
            Path(tempfile.mkdtemp(prefix="vh-ingest-bench-")),
            env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning", **env},
        )
    )


async def run(args: argparse.Namespace, sim: CameraSimulator, service: Service) -> None:
    await asyncio.sleep(args.warmup)  # the service settles after its start
    await service.idle(args.seconds)
    emit(mode="service_idle", seconds=args.seconds, cpu_percent=round(service.idle_pct, 3))
    spec = next(m for m in sim.ready["mounts"] if m["name"] == args.mount)
    # Rounds alternate ours and ffmpeg so load from other processes hits both alike; medians.
    ours_pct: list[float] = []
    ffmpeg_pct: list[float] = []
    for r in range(args.rounds):
        urls = [sim.rtsp_url(args.mount, {"bench": i, "round": r}) for i in range(args.cameras)]
        ours = await service.measure(f"r{r}", urls, args.warmup, args.seconds)
        ours_pct.append(ours["cpu"] / args.cameras / ours["wall"] * 100)
        emit(
            mode="passthrough",
            round=r,
            mount=args.mount,
            stream=f"{spec['width']}x{spec['height']}@{spec['fps']} {spec['bitrate']} kbit/s",
            cameras=args.cameras,
            streaming=ours["streaming"],
            seconds=round(ours["wall"], 2),
            packets=ours["packets"],
            service_cpu_seconds=round(ours["service_cpu"], 3),
            cpu_seconds=round(ours["cpu"], 3),
            cpu_percent_per_camera=round(ours_pct[-1], 3),
        )
        ffmpeg_urls = [sim.rtsp_url(args.mount, {"ffmpeg": i, "round": r}) for i in range(args.cameras)]
        theirs = await measure_ffmpeg(ffmpeg_urls, args.warmup, args.seconds)
        ffmpeg_pct.append(theirs["cpu"] / args.cameras / theirs["wall"] * 100)
        emit(
            mode="ffmpeg_copy",
            round=r,
            mount=args.mount,
            cameras=args.cameras,
            alive=theirs["alive"],
            seconds=round(theirs["wall"], 2),
            cpu_seconds=round(theirs["cpu"], 3),
            cpu_percent_per_camera=round(ffmpeg_pct[-1], 3),
        )
    ours_median, ffmpeg_median = statistics.median(ours_pct), statistics.median(ffmpeg_pct)
    ratio = ours_median / ffmpeg_median if ffmpeg_median > 0 else None
    emit(
        mode="ratio",
        metric="median passthrough CPU / median ffmpeg -c copy CPU, per camera",
        rounds=args.rounds,
        passthrough_percent_per_camera=round(ours_median, 3),
        ffmpeg_percent_per_camera=round(ffmpeg_median, 3),
        value=None if ratio is None else round(ratio, 3),
        goal=1.3,
        met=None if ratio is None else ratio <= 1.3,
    )
    for mount in ("h265", "bframes"):
        if args.transcode <= 0:
            break
        turls = [sim.rtsp_url(mount, {"bench": i}) for i in range(args.transcode)]
        result = await service.measure(f"t{mount}", turls, args.warmup, args.seconds)
        tspec = next(m for m in sim.ready["mounts"] if m["name"] == mount)
        emit(
            mode="transcode",
            mount=mount,
            stream=f"{tspec['codec']} {tspec['width']}x{tspec['height']}@{tspec['fps']}",
            feeds=args.transcode,
            modes=result["modes"],
            seconds=round(result["wall"], 2),
            cpu_seconds=round(result["cpu"], 3),
            cpu_percent_per_feed=round(result["cpu"] / args.transcode / result["wall"] * 100, 2),
        )


if __name__ == "__main__":
    asyncio.run(main())
