// Tours without black (issue 16): the wall opens the next step's feeds early, in hidden players on
// the tiles they will fill, so the switch only swaps a playing <video> to the front.
//
// How early: the camera's keyframe interval (its GOP, from the ingest stats) plus the time to open
// it (RTSP connect, WHEP set-up, first frame) before the switch, so the server's GOP cache is warm
// and the hidden player is already live when the step changes. The warm-up players are ordinary WHEP
// sessions: they count as viewers for on_demand cameras (the stream stays up) and end when the tour
// moves on or stops. Why in the browser and not a server-side hold: a warm GOP cache still leaves
// the WHEP set-up (ICE, DTLS, ~200 ms per player, more for nine at once on a busy display) after the
// switch; a player opened early has done all of it, and the server needs no new state or limits
// (the per-user session limits already bound it).
import { api } from "/web/common/api.js";

export const OPEN_SECONDS = 2.5; // RTSP connect + WHEP set-up + the player noticing its first frame
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
      this.known.set(cameraId, { streams, at: Date.now() });
    } catch {
      this.known.set(cameraId, { streams: {}, at: Date.now() });
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
