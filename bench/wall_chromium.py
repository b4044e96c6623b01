"""The wall never shows black (issue 16), in Chromium: cold picture time and tour switch time.

    .venv/bin/python bench/wall_chromium.py [--runs 10] [--switches 10] [--gop 4]

The path an operator's big screen uses: the camera simulator → a real ``videohub serve`` (ingest,
Feed hub, health probes keeping the latest pictures, WHEP) → Debian's Chromium on the display page
``/display/{wall}``, following the wall over ``/ws``. Times are taken in the page on
``performance.now()`` by the wall itself (``tile._timing()``), from the moment the tile is given its
camera (the wall push arrived, or the tour's step changed):
- ``cold_picture``: a 1-tile wall is given an ``on_demand`` camera nobody watches, probed once
  before (so its latest picture is known); ``picture`` is when that picture is painted, ``live`` when
  the first live frame is presented (``requestVideoFrameCallback``). Goal: some picture within 300 ms.
  The mount's encoder runs for another camera, so the live picture waits for the next keyframe, as
  with a real camera.
- ``tour_switch``: a 9-tile wall tours 18 ``on_demand`` cameras (two pages, ``--dwell`` s each); per
  switch, the time until every one of the 9 tiles has presented a live frame of its new camera.
  Goal: within 300 ms. The wall opens the next page's feeds a GOP plus the open time before the
  switch (``web/wall/warm.js``); ``warmed`` and ``live_at_switch`` say how many tiles took over a
  feed opened early, and how many of those were already live.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_MS = 300

WARM_STATS_JS = """async () => {
  const out = [];
  for (const [key, feed] of window.__display.view.warm) {
    const pc = feed.player.pc;
    let inbound = null;
    if (pc) (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video")
        inbound = {packets: s.packetsReceived, decoded: s.framesDecoded, keyframes: s.keyFramesDecoded};
    });
    out.push({key, state: feed.player.state, ice: pc && pc.connectionState, paused: feed.video.paused,
              ready: feed.video.readyState, posts: feed.player.posts, inbound});
  }
  return out;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "max_ms": round(max(values), 1),
        "samples_ms": [round(v, 1) for v in values],
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS, login
    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import USER_PASSWORD, VideohubService

    small = f"width=320,height=180,fps=10,gop={args.gop},profile=baseline"
    mounts = [
        f"cold:width=640,height=360,fps=15,gop={args.gop},profile=high",
        f"toura:{small}",
        f"tourb:{small}",
    ]
    env = {
        "VIDEOHUB_SERVER__LOG_LEVEL": "warning",
        "VIDEOHUB_INGEST__ON_DEMAND_IDLE": "1",
        "VIDEOHUB_HEALTH__PROBE_INTERVAL_SECONDS": "5",
    }
    results: list[dict[str, Any]] = []
    with (
        CameraSimulator(preset="none", mounts=mounts) as sim,
        VideohubService(Path(tempfile.mkdtemp(prefix="vh-wallc-")), env=env) as service,
        sync_playwright() as pw,
    ):
        service.create_user("bench_op", "operator")
        for mount in ("cold", "toura", "tourb"):  # the encoders run, as a real camera's do
            service.create_camera(f"keep-{mount}", sim.rtsp_url(mount, {"cam": "keep"}), mode="always_on")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})

            def put_wall(wall: str, body: dict[str, Any]) -> dict[str, Any]:
                out: dict[str, Any] = service.call("PUT", f"/api/walls/{wall}", json=body)
                return out

            def tile_timing(index: int) -> dict[str, Any]:
                out: dict[str, Any] = page.evaluate(
                    "(i) => document.querySelector(`#wall .tile[data-index='${i}']`)._timing()", index
                )
                return out

            # -- cold picture -----------------------------------------------------------------
            cold = [f"cold-{i}" for i in range(args.runs)]
            for camera in cold:
                service.create_camera(camera, sim.rtsp_url("cold", {"cam": camera}), mode="on_demand")
            deadline = time.monotonic() + 60
            for camera in cold:  # every camera probed once: its latest picture is kept
                while service.request("GET", f"/api/cameras/{camera}/latest.jpg").status_code != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{camera} was not probed within 60 s")
                    time.sleep(0.3)
            put_wall("bench-cold", {"layout": "1", "tiles": []})
            login(page, service.base_url, "bench_op", USER_PASSWORD, next_path="/display/bench-cold")
            page.wait_for_function("window.__display && window.__display.view.wall !== null")
            pictures: list[float] = []
            lives: list[float] = []
            before = 0
            for camera in cold:
                put_wall("bench-cold", {"layout": "1", "tiles": [{"camera_id": camera, "stream": "main"}]})
                limit = time.monotonic() + 20
                while True:
                    t = tile_timing(0)
                    if t.get("camera") == camera and t.get("live") is not None:
                        break
                    if time.monotonic() > limit:
                        raise RuntimeError(f"{camera}: no live frame within 20 s: {t}")
                    time.sleep(0.1)
                if t.get("picture") is not None:
                    pictures.append(t["picture"] - t["assigned"])
                    before += t["picture"] < t["live"]
                lives.append(t["live"] - t["assigned"])
                put_wall("bench-cold", {"layout": "1", "tiles": []})
                time.sleep(1.5)  # the stream stops (on_demand idle 1 s): the next camera starts cold
            line: dict[str, Any] = {
                "bench": "wall_chromium",
                "mode": "cold_picture",
                "viewer": "chromium",
                "runs": len(cold),
                "camera": {"width": 640, "height": 360, "fps": 15, "gop_s": args.gop, "profile": "high"},
                **summary(pictures or [float("nan")]),
                "pictures": len(pictures),
                "picture_before_live": before,
                "live": summary(lives),
                "goal_p95_ms": GOAL_MS,
                "chromium": browser.version,
            }
            results.append(line)
            print(json.dumps(line), flush=True)

            # -- tour switch ------------------------------------------------------------------
            tour_cams = [f"tour-{i:02d}" for i in range(18)]
            for i, camera in enumerate(tour_cams):
                mount = "toura" if i % 2 == 0 else "tourb"
                service.create_camera(camera, sim.rtsp_url(mount, {"cam": camera}), mode="on_demand")
            put_wall("bench-tour", {"layout": "9", "tiles": []})
            page.goto(f"{service.base_url}/display/bench-tour")
            page.wait_for_function("window.__display && window.__display.view.wall !== null")
            tour = {"tile": "wall", "cameras": tour_cams, "dwell_seconds": args.dwell}
            started = put_wall("bench-tour", {"layout": "9", "tiles": [], "tours": [tour]})["tours"][0][
                "started_at"
            ]
            switch_ms: list[float] = []
            tiles_warmed = tiles_live = tiles_total = 0
            # Switch 1 is the first one after the page loaded (no GOP known yet); all are counted.
            for step in range(1, args.switches + 1):
                switch_at = started + step * args.dwell
                if args.verbose:
                    time.sleep(max(0.0, switch_at - 0.5 - time.time()))
                    warm = page.evaluate(WARM_STATS_JS)
                    print(json.dumps({"before_switch": step, "warm": warm}), file=sys.stderr)
                time.sleep(max(0.0, switch_at + 2.0 - time.time()))
                expected = tour_cams[(step % 2) * 9 : (step % 2) * 9 + 9]
                worst = 0.0
                for index, camera in enumerate(expected):
                    limit = time.monotonic() + 10
                    while True:
                        t = tile_timing(index)
                        if t.get("camera") == camera and t.get("live") is not None:
                            break
                        if time.monotonic() > limit:
                            raise RuntimeError(f"switch {step}, tile {index}: no live frame: {t}")
                        time.sleep(0.1)
                    worst = max(worst, t["live"] - t["assigned"])
                    tiles_total += 1
                    tiles_warmed += bool(t.get("warmed"))
                    tiles_live += bool(t.get("liveAtSwitch"))
                switch_ms.append(worst)
                if args.verbose:
                    log = page.evaluate("window.__display.view.switches.at(-1)")
                    print(
                        json.dumps({"switch": step, "worst_ms": round(worst, 1), "log": log}), file=sys.stderr
                    )
            line = {
                "bench": "wall_chromium",
                "mode": "tour_switch",
                "viewer": "chromium",
                "runs": len(switch_ms),
                "tiles": 9,
                "dwell_s": args.dwell,
                "camera": {"width": 320, "height": 180, "fps": 10, "gop_s": args.gop, "profile": "baseline"},
                **summary(switch_ms),
                "warmed_fraction": round(tiles_warmed / tiles_total, 3),
                "live_at_switch_fraction": round(tiles_live / tiles_total, 3),
                "goal_p95_ms": GOAL_MS,
                "chromium": browser.version,
            }
            results.append(line)
            print(json.dumps(line), flush=True)
        finally:
            browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="cold cameras assigned one after another")
    parser.add_argument("--switches", type=int, default=10, help="tour switches measured")
    parser.add_argument("--gop", type=float, default=4.0, help="camera GOP in seconds")
    parser.add_argument("--dwell", type=int, default=10, help="tour dwell in seconds")
    parser.add_argument("--verbose", action="store_true", help="print each switch's tiles to stderr")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
