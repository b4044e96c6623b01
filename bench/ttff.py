"""Time to first frame: WHEP POST → first decoded frame at an aiortc player, warm and cold feeds.

    .venv/bin/python bench/ttff.py [--runs 20] [--gop 4] [--out FILE]

The real path end to end: the camera simulator (gst-rtsp-server, one mount with a 4 s GOP) → ingest →
Feed hub (GOP cache) → WHEP (a real `videohub serve` process over HTTP, embedded Valkey) → an aiortc
player that decodes.
- warm: the camera's feed is already running (another viewer holds it), so a new viewer starts from
  the GOP cache and does not wait for the camera's next keyframe (goal: p95 ≤ 300 ms);
- cold: an on-demand camera nobody watches: RTSP connect, probe, then the camera's next keyframe.

Prints one JSON object per mode (p50/p95/max in ms) after one per run. Chromium's number is measured
by `bench/ttff_chromium.py`.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


async def run(runs: int, gop: float, fps: int, width: int, height: int) -> list[dict[str, Any]]:
    import httpx

    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService
    from tests.webrtc.viewer import Viewer

    mount = f"ttff:profile=high,width={width},height={height},fps={fps},gop={gop}"
    sim = await asyncio.to_thread(CameraSimulator, preset="none", mounts=[mount])
    # A real `videohub serve` process; on-demand feeds stop as soon as their last viewer leaves, so
    # every cold run really starts the camera.
    service = await asyncio.to_thread(
        VideohubService,
        Path(tempfile.mkdtemp(prefix="ttff-")),
        env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning", "VIDEOHUB_INGEST__ON_DEMAND_IDLE": "0"},
    )
    results: list[dict[str, Any]] = []
    client = httpx.AsyncClient(base_url=service.base_url, timeout=30)
    try:
        auth = service.auth()

        async def camera(cid: str, mode: str) -> None:
            body = {
                "id": cid,
                "name": cid,
                "line": "public_security",
                "mode": mode,
                "streams": {"main": {"url": sim.rtsp_url("ttff", {"cam": cid})}},
            }
            response = await client.post("/api/cameras", json=body, headers=auth)
            assert response.status_code == 201, response.text

        async def ttff(cid: str) -> tuple[float, Viewer, str]:
            viewer = Viewer()
            offer = await viewer.offer()
            start = time.monotonic()
            response = await client.post(
                f"/whep/{cid}", content=offer, headers={**auth, "Content-Type": "application/sdp"}
            )
            assert response.status_code == 201, response.text
            await viewer.accept(response.text)
            await viewer.frame(within=30)
            return (time.monotonic() - start) * 1000, viewer, response.headers["Location"]

        async def end(viewer: Viewer, url: str) -> None:
            await client.delete(url, headers=auth)
            await viewer.close()

        # warm: a holder keeps the feed running; each new viewer joins from the GOP cache.
        await camera("warm", "on_demand")
        _, holder, holder_url = await ttff("warm")
        warm: list[float] = []
        for i in range(runs):
            await asyncio.sleep(gop * (i % 4) / 4)  # join at different points of the GOP
            ms, viewer, url = await ttff("warm")
            warm.append(ms)
            results.append({"bench": "ttff", "mode": "warm", "run": i, "ms": round(ms, 1)})
            print(json.dumps(results[-1]), flush=True)
            await end(viewer, url)
        await end(holder, holder_url)

        cold: list[float] = []
        for i in range(runs):
            cid = f"cold-{i}"
            await camera(cid, "on_demand")
            await asyncio.sleep(0.3)
            ms, viewer, url = await ttff(cid)
            cold.append(ms)
            results.append({"bench": "ttff", "mode": "cold", "run": i, "ms": round(ms, 1)})
            print(json.dumps(results[-1]), flush=True)
            await end(viewer, url)

        for mode, values in (("warm", warm), ("cold", cold)):
            summary = {
                "bench": "ttff",
                "mode": mode,
                "viewer": "aiortc",
                "runs": len(values),
                "camera": {"width": width, "height": height, "fps": fps, "gop_s": gop, "profile": "high"},
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(percentile(values, 0.95), 1),
                "max_ms": round(max(values), 1),
                "samples_ms": [round(v, 1) for v in values],
            }
            if mode == "warm":
                summary["goal_p95_ms"] = 300
            results.append(summary)
            print(json.dumps(summary), flush=True)
    finally:
        await client.aclose()
        await asyncio.to_thread(service.close)
        await asyncio.to_thread(sim.close)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--gop", type=float, default=4.0, help="camera GOP in seconds")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.runs, args.gop, args.fps, args.width, args.height))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in results))


if __name__ == "__main__":
    main()
