"""Ingest CPU cost, printed as JSON lines (issue 3: passthrough ≤ 1.3× ``ffmpeg -c copy``).

    .venv/bin/python bench/ingest_cpu.py [--cameras 8] [--seconds 15] [--rounds 3] [--transcode 1]

Starts the camera simulator, then measures, each over ``--seconds`` after a warm-up, in
``--rounds`` alternating rounds (the ratio compares medians: the box is shared and noisy):
1. passthrough: N ``ingest.Source`` threads in this process on one shared mount (distinct URLs by
   query string), each publishing into its ``Feed`` (GOP cache) — the media path up to the viewers,
   whose cost belongs to WHEP. CPU is this process's user+system time from the OS
   (``time.process_time``). ``--reader`` adds one reading subscriber per feed, reported apart.
2. ffmpeg: N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`` processes on the same mount;
   CPU from ``/proc/<pid>/stat`` (utime+stime).
3. transcode: feeds from the H.265 and B-frame mounts (transcoded once per feed), CPU per feed.
The simulator runs in its own process and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import Source, SourceOptions, State
from ingest.handoff import Handoff
from tests.fixtures.camsim import CameraSimulator
from videohub.hub.feed import Feed

TICK = os.sysconf("SC_CLK_TCK")


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "ingest_cpu", **fields}), flush=True)


async def drain(feed: Feed) -> None:
    sub = feed.subscribe()
    while True:
        await sub.get()


async def wait_streaming(sources: list[Source], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not all(s.state is State.STREAMING for s in sources) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def measure_sources(
    urls: list[str], warmup: float, seconds: float, *, reader: bool = False
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    handoff = Handoff(loop)  # shared, and packets published in the ingest thread, as the Feed hub does
    feeds = [Feed(f"bench{i}", "main", handoff=handoff) for i in range(len(urls))]
    readers = [asyncio.create_task(drain(feed)) for feed in feeds] if reader else []
    sources = [
        Source(
            f"bench{i}",
            url,
            loop=loop,
            on_packet=feed.publish,
            options=SourceOptions(),
            handoff=handoff,
            packets_in_thread=True,
        )
        for i, (url, feed) in enumerate(zip(urls, feeds, strict=True))
    ]
    for source in sources:
        source.start()
    await wait_streaming(sources)
    await asyncio.sleep(warmup)
    packets0 = sum(s.stats.packets for s in sources)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    packets = sum(s.stats.packets for s in sources) - packets0
    streaming = sum(s.state is State.STREAMING for s in sources)
    modes = sorted({s.info.mode for s in sources if s.info is not None})
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(s.aclose() for s in sources))
    return {
        "cpu": cpu,
        "wall": wall,
        "packets": packets,
        "streaming": streaming,
        "modes": modes,
        "calls_per_wakeup": round(handoff.calls / max(1, handoff.wakeups), 2),
    }


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


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
        cpu0 = sum(proc_cpu(p.pid) for p in procs)
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        cpu = sum(proc_cpu(p.pid) for p in procs) - cpu0
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
    parser.add_argument("--reader", action="store_true", help="also measure with one reader per feed")
    args = parser.parse_args()

    with CameraSimulator(preset="test") as sim:
        spec = next(m for m in sim.ready["mounts"] if m["name"] == args.mount)
        # Rounds alternate ours and ffmpeg so load from other processes hits both alike; medians.
        ours_pct: list[float] = []
        ffmpeg_pct: list[float] = []
        for r in range(args.rounds):
            urls = [sim.rtsp_url(args.mount, {"bench": i, "round": r}) for i in range(args.cameras)]
            ours = await measure_sources(urls, args.warmup, args.seconds)
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
                loop_calls_per_wakeup=ours["calls_per_wakeup"],
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
        if args.reader:
            urls = [sim.rtsp_url(args.mount, {"bench": i, "reader": 1}) for i in range(args.cameras)]
            read = await measure_sources(urls, args.warmup, args.seconds, reader=True)
            emit(
                mode="passthrough_with_reader",
                mount=args.mount,
                cameras=args.cameras,
                seconds=round(read["wall"], 2),
                cpu_seconds=round(read["cpu"], 3),
                cpu_percent_per_camera=round(read["cpu"] / args.cameras / read["wall"] * 100, 3),
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
            result = await measure_sources(turls, args.warmup, args.seconds)
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
