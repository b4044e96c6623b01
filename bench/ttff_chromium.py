"""Time to first frame in Chromium: WHEP POST → first video frame shown, warm and cold feeds.

    .venv/bin/python bench/ttff_chromium.py [--runs 10] [--gop 4]

The path a wall operator uses: the camera simulator (one H.264 mount per run, the given GOP) → a real
``videohub serve`` process (ingest, Feed hub with its GOP cache, WHEP) → Debian's Chromium driven by
Playwright, playing into a ``<video>`` element on a page of the service's origin. Timing is taken in
the page on ``performance.now()``:
- ``ms``: from just before the WHEP POST to the first frame presented (``requestVideoFrameCallback``;
  if the browser never calls it, the first ``framesDecoded > 0`` seen by polling ``getStats`` every
  10 ms);
- ``click_ms``: the same from the moment the player starts (offer and ICE gathering, capped at 2 s as
  the web UI does) — what an operator feels.
warm: another player in the page holds the feed, so a new player starts from the GOP cache (goal
p95 ≤ 300 ms); cold: a fresh on-demand camera nobody watches (RTSP connect, probe, first keyframe).
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

PLAY_JS = """
async ({cam, token}) => {
  const gather = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const timer = setTimeout(resolve, 2000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 320;
  document.body.appendChild(video);
  const clicked = performance.now();
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gather(pc);
  const posted = performance.now();
  const response = await fetch(`/whep/${encodeURIComponent(cam)}`, {
    method: "POST",
    headers: {"Content-Type": "application/sdp", "Authorization": `Bearer ${token}`},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(`WHEP ${response.status}: ${await response.text()}`);
  const location = response.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  const shown = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (t, how) => {
      if (done) return;
      done = true; clearInterval(poll); clearTimeout(limit); resolve([t, how]);
    };
    const limit = setTimeout(() => {
      if (done) return;
      done = true; clearInterval(poll); reject(new Error("no frame in 30 s"));
    }, 30000);
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback((now) => finish(now, "presented"));
    const poll = setInterval(async () => {
      const stats = await pc.getStats();
      stats.forEach((s) => {
        const video = s.type === "inbound-rtp" && s.kind === "video";
        if (video && s.framesDecoded > 0) finish(performance.now(), "decoded");
      });
    }, 10);
  });
  window.__players = window.__players || [];
  window.__players.push({pc, location, video});
  const idx = window.__players.length - 1;
  return {ms: shown[0] - posted, click_ms: shown[0] - clicked, how: shown[1], idx};
}
"""

STOP_JS = """
async ({idx, token}) => {
  const p = window.__players[idx];
  p.pc.close(); p.video.remove();
  await fetch(p.location, {method: "DELETE", headers: {"Authorization": `Bearer ${token}`}});
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS
    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService

    mount = f"ttffc:profile=high,width={args.width},height={args.height},fps={args.fps},gop={args.gop}"
    results: list[dict[str, Any]] = []
    with (
        CameraSimulator(preset="none", mounts=[mount]) as sim,
        VideohubService(
            Path(tempfile.mkdtemp(prefix="vh-ttffc-")), env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"}
        ) as service,
        sync_playwright() as pw,
    ):
        token = service.admin_token
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{service.base_url}/login")

            def camera(cid: str) -> None:
                service.create_camera(cid, sim.rtsp_url("ttffc", {"cam": cid}), mode="on_demand")

            def play(cid: str) -> dict[str, Any]:
                out: dict[str, Any] = page.evaluate(PLAY_JS, {"cam": cid, "token": token})
                return out

            def stop(idx: int) -> None:
                page.evaluate(STOP_JS, {"idx": idx, "token": token})

            samples: dict[str, list[dict[str, Any]]] = {"warm": [], "cold": []}
            camera("warm")
            holder = play("warm")
            for i in range(args.runs):
                time.sleep(args.gop * (i % 4) / 4)  # join at different points of the GOP
                sample = play("warm")
                samples["warm"].append(sample)
                stop(sample["idx"])
            stop(holder["idx"])
            for i in range(args.runs):
                cid = f"cold-{i}"
                camera(cid)
                time.sleep(0.3)
                sample = play(cid)
                samples["cold"].append(sample)
                stop(sample["idx"])
            for mode, runs in samples.items():
                ms = [s["ms"] for s in runs]
                click = [s["click_ms"] for s in runs]
                summary: dict[str, Any] = {
                    "bench": "ttff_chromium",
                    "mode": mode,
                    "viewer": "chromium",
                    "runs": len(runs),
                    "camera": {
                        "width": args.width,
                        "height": args.height,
                        "fps": args.fps,
                        "gop_s": args.gop,
                        "profile": "high",
                    },
                    "p50_ms": round(statistics.median(ms), 1),
                    "p95_ms": round(percentile(ms, 0.95), 1),
                    "max_ms": round(max(ms), 1),
                    "samples_ms": [round(v, 1) for v in ms],
                    "click_p50_ms": round(statistics.median(click), 1),
                    "click_p95_ms": round(percentile(click, 0.95), 1),
                    "first_frame_signal": sorted({s["how"] for s in runs}),
                    "chromium": browser.version,
                }
                if mode == "warm":
                    summary["goal_p95_ms"] = 300
                results.append(summary)
                print(json.dumps(summary), flush=True)
        finally:
            browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gop", type=float, default=4.0, help="camera GOP in seconds")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
