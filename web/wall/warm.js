// Tours without black (issue 16), in two steps before each switch:
// 1. A GOP plus the open time ahead, the wall asks the server to hold the next step's feeds
//    (POST /api/cameras/{id}/warm): on_demand streams start and their GOP caches fill. A hold is a
//    viewer for the on_demand lifetime; it is released once the step has switched, or when the tour
//    stops or changes, and it lapses by itself a few seconds after the switch anyway.
// 2. PLAYER_LEAD_SECONDS ahead, hidden players open on the tiles they will fill. Their WHEP answers
//    come at once from the warm GOP caches, so they are live at the switch, which only swaps a
//    playing <video> to the front.
// Why both: the WHEP answer waits for the feed's first keyframe, and a browser runs at most six
// requests to one server at once, so nine hidden players opened a GOP ahead on cold cameras queue
// behind each other (and delay the tiles' latest pictures); a hold answers at once. A hold alone
// would still leave the WHEP and ICE set-up (~200 ms a player, more for nine on a busy display)
// after the switch. A hold on the server also serves every display that follows the wall.
import { api } from "/web/common/api.js";

export const OPEN_SECONDS = 2.5; // RTSP connect + WHEP set-up + the player noticing its first frame
export const PLAYER_LEAD_SECONDS = 2.0; // hidden players open this long before the switch
const HOLD_GRACE_SECONDS = 4; // a hold lasts this long past its switch (then lapses on the server)
export const UNKNOWN_GOP_SECONDS = 10.0; // never pulled here yet: assume the longest GOP cameras use
const GOP_REFRESH_MS = 60_000;
const GOP_RETRY_MS = 3_000; // not known yet (a stream needs two keyframes): ask again soon

// When `tour` next changes step after `now` (seconds since the epoch).
export function nextSwitch(tour, now) {
  const started = tour.started_at ?? now;
  const step = Math.max(0, Math.floor((now - started) / tour.dwell_seconds));
  return started + (step + 1) * tour.dwell_seconds;
}

// Keyframe intervals of cameras, from GET /api/cameras/{id}/ingest (the last session's stats when
// the stream is idle), fetched in the background and kept for a minute.
export class GopCache {
  constructor() {
    this.known = new Map(); // camera id → {seconds|null, at}
    this.pending = new Set();
  }

  // Seconds between keyframes of the camera's stream, or null when not known (yet).
  get(cameraId, stream) {
    const found = this.known.get(cameraId);
    const gop = found ? (found.streams[stream] ?? found.streams.main ?? null) : null;
    const age = found ? Date.now() - found.at : Infinity;
    if (age > (gop == null ? GOP_RETRY_MS : GOP_REFRESH_MS)) this.fetch(cameraId);
    return gop;
  }

  async fetch(cameraId) {
    if (this.pending.has(cameraId)) return;
    this.pending.add(cameraId);
    try {
      const data = await api.get(`/api/cameras/${encodeURIComponent(cameraId)}/ingest`);
      const streams = {};
      for (const s of data.streams || []) {
        const gop = s.ingest ? s.ingest.keyframe_interval : null;
        if (gop != null && gop > 0) streams[s.stream] = gop;
      }
      // A stream seen before keeps its GOP while it is idle or has just restarted (one keyframe yet).
      const before = this.known.get(cameraId);
      this.known.set(cameraId, { streams: { ...(before ? before.streams : {}), ...streams }, at: Date.now() });
    } catch {
      const before = this.known.get(cameraId);
      this.known.set(cameraId, { streams: before ? before.streams : {}, at: Date.now() });
    } finally {
      this.pending.delete(cameraId);
    }
  }
}

// Seconds before the switch to open these (camera, stream) pairs: the longest GOP plus OPEN_SECONDS.
export function leadSeconds(gops, targets) {
  let gop = 0;
  for (const target of targets) {
    gop = Math.max(gop, gops.get(target.cameraId, target.stream) ?? UNKNOWN_GOP_SECONDS);
  }
  return gop + OPEN_SECONDS;
}

// The wall's warm-up holds on the server: `want(targets, untilSeconds)` holds each (camera, stream)
// until then (renewed as needed), `release(key)` ends one. `failed(key)`: the server refused it
// (limits, rights): the wall then opens that camera's hidden player early instead.
export class ServerHolds {
  constructor() {
    this.holds = new Map(); // key → {cameraId, stream, until, failed}
  }

  want(target, switchAt) {
    const until = switchAt + HOLD_GRACE_SECONDS;
    const found = this.holds.get(target.key);
    if (found && (found.failed || found.until >= switchAt + 1)) return;
    const hold = { cameraId: target.cameraId, stream: target.stream, until, failed: false };
    this.holds.set(target.key, hold);
    const seconds = Math.min(30, Math.max(1, until - Date.now() / 1000));
    api
      .post(`/api/cameras/${encodeURIComponent(target.cameraId)}/warm`, { stream: target.stream, seconds })
      .catch(() => {
        hold.failed = true;
      });
  }

  failed(key) {
    const hold = this.holds.get(key);
    return !!(hold && hold.failed);
  }

  keys() {
    return [...this.holds.keys()];
  }

  release(key) {
    const hold = this.holds.get(key);
    if (!hold) return;
    this.holds.delete(key);
    if (hold.failed) return;
    const path = `/api/cameras/${encodeURIComponent(hold.cameraId)}/warm?stream=${encodeURIComponent(hold.stream)}`;
    api.del(path).catch(() => {});
  }

  releaseAll() {
    for (const key of this.keys()) this.release(key);
  }
}
