"""Alert latency after a camera stops, and picture-back latency after it returns.

    .venv/bin/python bench/alert_latency.py [--cameras 3] [--rounds 6] [--out FILE]

Runs the real service parts (embedded Valkey, Feed hub with ingest, health monitor, alerts) against
the camera simulator with default health and ingest settings. Each round, for each camera: stop its
mount (``--fault stall``: the camera keeps the connection open and sends nothing), time until the
``offline`` alert is published on the live alert channel (what the UI and
webhooks get); start the mount again, time until the Feed holds a fresh keyframe (a viewer has a
picture again) and until the alert resolves (includes the recover hold time). Prints JSON with
p50/p95/max; the issue's goal is p95 <= 3 s for alert latency and picture-back latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures.camsim import CameraSimulator  # noqa: E402
from videohub.alerts.models import AlertEvent  # noqa: E402
from videohub.alerts.service import AlertService  # noqa: E402
from videohub.app import build_app  # noqa: E402
from videohub.health.startup import health_startup  # noqa: E402
from videohub.hub.startup import hub_startup  # noqa: E402
from videohub.models import CameraCreate, Streams, StreamSpec  # noqa: E402
from videohub.services import Services  # noqa: E402
from videohub.settings import load_settings  # noqa: E402
from videohub.store import Store  # noqa: E402


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


async def wait_event(
    queue: asyncio.Queue[AlertEvent], camera: str, event: str, within: float
) -> float | None:
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            e = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            return None
        if e.alert.camera == camera and e.event == event and e.alert.kind == "offline":
            return time.monotonic()
    return None


async def run(cameras: int, rounds: int, fault: str) -> dict[str, Any]:
    sim = CameraSimulator(preset="none")
    data = Path(tempfile.mkdtemp(prefix="vh-bench-"))
    store = await Store.open(None, data)
    settings = load_settings(admin_password="bench-admin-1")
    app = build_app(settings, store=store, startups=[hub_startup, health_startup])
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    alert_latency: list[float] = []
    picture_back: list[float] = []
    resolve_latency: list[float] = []
    missed = 0
    try:
        svc: Services = app.state.services
        alerts = svc.alerts
        assert isinstance(alerts, AlertService)
        mounts = [await asyncio.to_thread(sim.fresh_mount) for _ in range(cameras)]
        for i, mount in enumerate(mounts):
            await svc.registry.create(
                CameraCreate(
                    id=f"bench{i}",
                    name=f"bench {i}",
                    line=settings.lines[0].id,
                    streams=Streams(main=StreamSpec(url=sim.rtsp_url(mount))),
                )
            )
        await asyncio.sleep(8)  # ingest up, states online
        async with alerts.live.subscribe() as sub:
            for _ in range(rounds):
                for i, mount in enumerate(mounts):
                    camera = f"bench{i}"
                    t0 = time.monotonic()
                    await asyncio.to_thread(sim.stop_mount if fault == "stop" else sim.stall, mount)
                    seen = await wait_event(sub.queue, camera, "opened", 30)
                    if seen is None:
                        missed += 1
                    else:
                        alert_latency.append(seen - t0)
                    await asyncio.sleep(1)
                    t1 = time.monotonic()
                    await asyncio.to_thread(sim.start_mount if fault == "stop" else sim.resume, mount)
                    while time.monotonic() - t1 < 60:
                        feed = svc.hub.feed(camera)
                        if feed is not None and feed.last_keyframe is not None:
                            picture_back.append(time.monotonic() - t1)
                            break
                        await asyncio.sleep(0.02)
                    resolved = await wait_event(sub.queue, camera, "resolved", 60)
                    if resolved is not None:
                        resolve_latency.append(resolved - t1)
                    await asyncio.sleep(2)
    finally:
        await lifespan.__aexit__(None, None, None)
        await store.close()
        sim.close()
    h = settings.health
    return {
        "bench": "alert_latency",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cameras": cameras,
        "rounds": rounds,
        "fault": fault,
        "settings": {
            "offline_after_seconds": h.offline_after_seconds,
            "tick_seconds": h.tick_seconds,
            "recover_hold_seconds": h.recover_hold_seconds,
            "ingest_backoff_initial": settings.ingest.backoff_initial,
            "ingest_backoff_max": settings.ingest.backoff_max,
            "ingest_stall_timeout": settings.ingest.stall_timeout,
        },
        "alert_latency_s": summary(alert_latency),
        "alerts_missed": missed,
        "picture_back_latency_s": summary(picture_back),
        "resolve_latency_s": summary(resolve_latency),
        "goal": "p95 <= 3 s for alert latency and picture-back latency",
        "goal_met": bool(
            alert_latency
            and picture_back
            and not missed
            and summary(alert_latency)["p95"] <= 3.0  # type: ignore[operator]
            and summary(picture_back)["p95"] <= 3.0  # type: ignore[operator]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--fault",
        choices=("stop", "stall"),
        default="stop",
        help="stop: the mount goes away (clients dropped, "
        "404); stall: the camera keeps the connection but sends nothing",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.cameras, args.rounds, args.fault))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
