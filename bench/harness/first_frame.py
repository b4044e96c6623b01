"""Warm time to first frame for ``bench/peers.py``: videohub's GOP cache against Janus's keyframe buffer.

Players join a running feed in turns — videohub (an always-on camera), Janus with its keyframe buffer,
Janus without — each at a random point of the camera's GOP, timed from the WHEP POST (or Janus's
``watch``, session and handle already made) to the first frame:
- aiortc players in this process (``Player``): the first decoded frame;
- Chromium players (Debian's Chromium through Playwright, on a page of videohub's origin): the first
  frame presented (``requestVideoFrameCallback``, else ``framesDecoded`` > 0). videohub is played as
  ``bench/ttff_chromium.py`` plays it; Janus as its own ``janus.js`` would: the REST calls from the
  page, the answer sent at once and the browser's candidates trickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from .janus import Mountpoint
from .sides import JanusSide, Videohub
from .viewers import Player

VARIANTS = {
    "videohub": "videohub (GOP cache)",
    "janus-tuned kf": "Janus, keyframe buffer on",
    "janus-tuned": "Janus, keyframe buffer off",
}

# Resolves [time, how] at the first frame the <video> shows (or decodes), as bench/ttff_chromium.py.
_FIRST_FRAME_JS = """
const firstFrame = (pc, video) => new Promise((resolve, reject) => {
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
      if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) {
        finish(performance.now(), "decoded");
      }
    });
  }, 10);
});
"""

JANUS_PLAY_JS = (
    """
async ({janus, mp}) => {
"""
    + _FIRST_FRAME_JS
    + """
  const post = async (path, body) => {
    const transaction = Math.random().toString(36).slice(2);
    const r = await fetch(janus + path, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({...body, transaction}),
    });
    const j = await r.json();
    if (j.janus === "error") throw new Error(`Janus ${body.janus}: ${j.error.code} ${j.error.reason}`);
    return j;
  };
  const session = (await post("", {janus: "create"})).data.id;
  const handle = (await post(`/${session}`, {janus: "attach", plugin: "janus.plugin.streaming"})).data.id;
  const event = async () => {
    for (;;) {
      const e = await (await fetch(`${janus}/${session}?maxev=1&rid=${Date.now()}`)).json();
      if (e.janus === "event" && e.sender === handle) {
        const data = (e.plugindata || {}).data || {};
        if (data.error) throw new Error(`streaming plugin: ${data.error}`);
        return e;
      }
    }
  };
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true; video.width = 320;
  document.body.appendChild(video);
  const watched = performance.now();
  await post(`/${session}/${handle}`, {janus: "message", body: {request: "watch", id: mp}});
  let offer = null;
  while (!offer) {
    const e = await event();
    if (e.jsep && e.jsep.type === "offer") offer = e.jsep;
  }
  const pc = new RTCPeerConnection();
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  pc.onicecandidate = (e) => {
    const c = e.candidate;
    const candidate = c ? {candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex}
                        : {completed: true};
    post(`/${session}/${handle}`, {janus: "trickle", candidate}).catch(() => {});
  };
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await post(`/${session}/${handle}`, {
    janus: "message", body: {request: "start"}, jsep: {type: "answer", sdp: pc.localDescription.sdp},
  });
  const shown = await firstFrame(pc, video);
  pc.close(); video.remove();
  await post(`/${session}`, {janus: "destroy"});
  return {ms: shown[0] - watched, how: shown[1]};
}
"""
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def _times(player: Player, start: float) -> tuple[float, float]:
    """(ms to the first decoded frame, ms of it after ICE + DTLS were done) since ``start``."""
    now = time.monotonic()
    connected = player.connected_at or now
    return (now - start) * 1000, (now - connected) * 1000


async def aiortc_videohub(vh: Videohub, camera: str) -> tuple[float, float | None]:
    player = Player()
    try:
        offer = await player.offer()
        start = time.monotonic()
        await player.accept(await vh.whep(offer, camera))
        await player.first_frame()
        return _times(player, start)
    finally:
        await vh.leave()
        await player.close()


async def aiortc_janus(side: JanusSide, mountpoint: int) -> tuple[float, float | None]:
    player = Player()
    session = await side.open()  # a player already connected to Janus: session and handle exist
    try:
        start = time.monotonic()
        answer = await player.answer(await session.watch(mountpoint))
        await session.start(answer)
        await player.first_frame()
        return _times(player, start)
    finally:
        await side.leave()
        await player.close()


@contextlib.asynccontextmanager
async def chromium_page(origin: str) -> AsyncIterator[tuple[Any, str]]:
    """(page, Chromium's version): one headless page on ``origin`` (videohub's login page)."""
    from playwright.async_api import async_playwright

    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{origin}/login")
            yield page, browser.version
        finally:
            await browser.close()


async def chromium_videohub(page: Any, vh: Videohub, camera: str) -> tuple[float, float | None]:
    from bench.ttff_chromium import PLAY_JS, STOP_JS

    token = vh.service.admin_token
    out: dict[str, Any] = await page.evaluate(PLAY_JS, {"cam": camera, "token": token})
    await page.evaluate(STOP_JS, {"idx": out["idx"], "token": token})
    return float(out["ms"]), None


async def chromium_janus(page: Any, side: JanusSide, mountpoint: int) -> tuple[float, float | None]:
    out: dict[str, Any] = await page.evaluate(JANUS_PLAY_JS, {"janus": side.janus.base_url, "mp": mountpoint})
    return float(out["ms"]), None


async def warm_ttff(
    vh: Videohub,
    side: JanusSide,
    sim_url: str,
    *,
    camera_id: str,
    camera: dict[str, Any],
    runs: int,
    chromium_runs: int,
) -> list[dict[str, Any]]:
    """Warm joins of the three variants in turns, aiortc players then Chromium; one summary each."""
    gop = float(camera["gop_s"])
    kf, nokf = Mountpoint(2, sim_url, True), Mountpoint(3, sim_url, False)
    await side.run([kf, nokf])
    await vh.camera(True, camera_id, sim_url)
    await asyncio.sleep(gop + 1)  # a keyframe in every cache
    rng = random.Random(7)
    out: list[dict[str, Any]] = []

    async def rounds(viewer: str, n: int, join: Any) -> None:
        joins: dict[str, list[float]] = {name: [] for name in VARIANTS}
        after: dict[str, list[float]] = {name: [] for name in VARIANTS}
        # The camera's keyframe interval just after each join, from videohub's ingest of the same
        # encoder: shorter than the GOP means the camera made a keyframe because a server asked.
        intervals: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for i in range(n):
            for name in VARIANTS:
                await asyncio.sleep(rng.uniform(0, gop))  # join at a random point of the GOP
                ms, connected = await join(name)
                joins[name].append(ms)
                if connected is not None:
                    after[name].append(connected)
                ingest = await vh.ingest(camera_id)
                if ingest and isinstance(ingest.get("keyframe_interval"), int | float):
                    intervals[name].append(float(ingest["keyframe_interval"]))
                sample = {"run": i, "viewer": viewer, "ttff": name, "ms": round(ms, 1)}
                print(json.dumps(sample), flush=True)
        for name, values in joins.items():
            line: dict[str, Any] = {
                "mode": "warm_ttff",
                "server": name.split()[0],
                "keyframe_buffer": name == "videohub" or name.endswith("kf"),
                "label": VARIANTS[name],
                "viewer": viewer,
                "runs": len(values),
                "camera": camera,
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(percentile(values, 0.95), 1),
                "max_ms": round(max(values), 1),
                "samples_ms": [round(v, 1) for v in values],
            }
            if intervals[name]:
                shortest = min(intervals[name])
                line["camera_keyframe_interval_min_s"] = round(shortest, 2)
                line["camera_answered_keyframe_requests"] = shortest < 0.8 * gop
            if after[name]:
                # The part after ICE and DTLS: the first picture itself (GOP cache, keyframe buffer, or
                # the wait for the camera's next keyframe).
                line["after_connected_p50_ms"] = round(statistics.median(after[name]), 1)
                line["after_connected_p95_ms"] = round(percentile(after[name], 0.95), 1)
            out.append(line)

    def mountpoint(name: str) -> int:
        return kf.id if name.endswith("kf") else nokf.id

    async def aiortc_join(name: str) -> tuple[float, float | None]:
        if name == "videohub":
            return await aiortc_videohub(vh, camera_id)
        return await aiortc_janus(side, mountpoint(name))

    try:
        if runs:
            await rounds("aiortc", runs, aiortc_join)
        if chromium_runs:
            async with chromium_page(vh.service.base_url) as (page, version):

                async def chromium_join(name: str) -> tuple[float, float | None]:
                    if name == "videohub":
                        return await chromium_videohub(page, vh, camera_id)
                    return await chromium_janus(page, side, mountpoint(name))

                await rounds("chromium", chromium_runs, chromium_join)
                for line in out:
                    if line["viewer"] == "chromium":
                        line["chromium"] = version
    finally:
        await vh.camera(False, camera_id)
    return out
