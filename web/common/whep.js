// The WHEP player (draft-ietf-wish-whep) used by the wall and the console: one state machine per
// <video>, over the HTTP client of /web/common/api.js.
import { apiFetch } from "/web/common/api.js";

export const PlayerState = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  INTERRUPTED: "interrupted",
  // The camera was deleted or the viewer may no longer see it (404/403): said plainly, and retried
  // only slowly (it may be re-created or the rights restored) instead of every few seconds.
  UNAVAILABLE: "unavailable",
  CLOSED: "closed",
});

// Players of this page: ended (WHEP DELETE, keepalive) when the page goes away, so the server frees
// their sessions at once instead of waiting for the ICE timeout.
const activePlayers = new Set();
addEventListener("pagehide", () => {
  for (const handle of [...activePlayers]) handle.close();
});

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 8000;
// A live session that ends (its camera moved to another worker, or the worker stopped) is
// reconnected at once, with a little jitter so a wall's tiles do not all post in the same instant;
// only repeated failures back off.
const LIVE_RETRY_MS = 150;
// A picture that stops moving for this long counts as interrupted: a stopped camera can leave the
// peer connection "connected" (RTCP keeps flowing) while no frame arrives.
const STALL_MS = 3000;
const FIRST_FRAME_MS = 10000;
const UNAVAILABLE_RETRY_MS = 60000;

// The picture the tile showed last, kept as the video's poster while it is interrupted, so the wall
// shows the last frame (dimmed, labelled 中断) rather than a black tile.
function keepLastFrame(videoEl) {
  if (!videoEl.videoWidth || videoEl.readyState < 2) return;
  try {
    const canvas = document.createElement("canvas");
    canvas.width = videoEl.videoWidth;
    canvas.height = videoEl.videoHeight;
    canvas.getContext("2d").drawImage(videoEl, 0, 0);
    videoEl.poster = canvas.toDataURL("image/jpeg", 0.8);
  } catch {
    // A frame that cannot be drawn: the tile shows the plain interrupted state.
  }
}

function waitIceGathering(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function framesDecoded(pc) {
  const stats = await pc.getStats();
  let frames = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}

// Play camera `cameraId` (stream "main" or "sub") into `videoEl` over WHEP, retrying with a capped,
// jittered backoff whenever the session fails, stalls or cannot start. Returns a handle
// {state, pc, cameraId, stream, attempts, posts, closed, close()}; state changes go to the `onState`
// callback of the options; videoEl.dataset.state mirrors the state, videoEl._whep is the handle.
export function playWhep(videoEl, cameraId, stream = "sub", { onState } = {}) {
  const handle = {
    state: PlayerState.CONNECTING,
    pc: null,
    cameraId,
    stream,
    attempts: 0,
    posts: 0, // WHEP offers sent, for diagnostics and tests
    closed: false,
    close,
  };
  let generation = 0;
  let sessionUrl = null;
  let retryTimer = null;
  let watchTimer = null;

  activePlayers.add(handle);
  videoEl.muted = true;
  videoEl.autoplay = true;
  videoEl.playsInline = true;
  videoEl._whep = handle;

  function setState(state) {
    if (handle.state === state) return;
    handle.state = state;
    videoEl.dataset.state = state;
    if (onState) onState(state);
  }
  videoEl.dataset.state = handle.state;

  function teardown() {
    clearInterval(watchTimer);
    watchTimer = null;
    if (handle.pc) {
      handle.pc.close();
      handle.pc = null;
    }
    if (sessionUrl) {
      const url = sessionUrl;
      sessionUrl = null;
      // keepalive: the DELETE still goes out when the page is being left.
      apiFetch(url, { method: "DELETE", keepalive: true }).catch(() => {});
    }
  }

  function scheduleRetry(delayMs, unavailable = false) {
    if (handle.closed) return;
    const wasLive = handle.state === PlayerState.LIVE;
    if (wasLive) keepLastFrame(videoEl);
    teardown();
    // Without a source the element shows its poster (the last frame) until the next picture.
    videoEl.srcObject = null;
    if (unavailable) {
      setState(PlayerState.UNAVAILABLE);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(start, UNAVAILABLE_RETRY_MS);
      return;
    }
    setState(wasLive || handle.attempts > 0 ? PlayerState.INTERRUPTED : PlayerState.CONNECTING);
    handle.attempts += 1;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(handle.attempts - 1, 4));
    const first = wasLive && handle.attempts === 1;
    const wait = delayMs ?? (first ? LIVE_RETRY_MS * Math.random() : backoff * (0.75 + Math.random() * 0.5));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(start, wait);
  }

  async function start() {
    if (handle.closed) return;
    const gen = ++generation;
    const pc = new RTCPeerConnection();
    handle.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => {
      videoEl.srcObject = event.streams[0] || new MediaStream([event.track]);
      videoEl.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (gen !== generation) return;
      if (pc.connectionState === "failed" || pc.connectionState === "closed") scheduleRetry();
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIceGathering(pc);
      if (gen !== generation || handle.closed) return;
      const url = `/whep/${encodeURIComponent(cameraId)}?stream=${encodeURIComponent(stream)}`;
      handle.posts += 1;
      const response = await apiFetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
      if (gen !== generation || handle.closed) {
        const loc = response.headers.get("Location");
        const stale = loc && new URL(loc, response.url).href;
        if (response.status === 201 && stale) apiFetch(stale, { method: "DELETE" }).catch(() => {});
        return;
      }
      if (response.status === 404 || response.status === 403) {
        scheduleRetry(undefined, true);
        return;
      }
      if (response.status !== 201) {
        const retryAfter = Number(response.headers.get("Retry-After"));
        scheduleRetry(retryAfter > 0 ? retryAfter * 1000 : undefined);
        return;
      }
      // Relative to the URL that answered: after a cluster's 307 that is the camera's worker.
      sessionUrl = new URL(response.headers.get("Location"), response.url).href;
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      watch(gen, pc);
    } catch (err) {
      if (gen === generation) scheduleRetry();
    }
  }

  // Live once frames are decoded; interrupted (and restarted) when they stop for STALL_MS.
  function watch(gen, pc) {
    const began = performance.now();
    let last = -1;
    let lastChange = performance.now();
    watchTimer = setInterval(async () => {
      if (gen !== generation || handle.closed) return;
      let frames = 0;
      try {
        frames = await framesDecoded(pc);
      } catch {
        return;
      }
      if (gen !== generation) return;
      const now = performance.now();
      if (frames !== last) {
        last = frames;
        lastChange = now;
        if (frames > 0) {
          handle.attempts = 0;
          videoEl.removeAttribute("poster");
          setState(PlayerState.LIVE);
        }
        return;
      }
      const limit = handle.state === PlayerState.LIVE ? STALL_MS : FIRST_FRAME_MS;
      if (now - (frames > 0 ? lastChange : began) > limit) {
        scheduleRetry();
      }
    }, 500);
  }

  function close() {
    if (handle.closed) return;
    handle.closed = true;
    activePlayers.delete(handle);
    generation += 1;
    clearTimeout(retryTimer);
    teardown();
    videoEl.srcObject = null;
    videoEl.removeAttribute("poster");
    setState(PlayerState.CLOSED);
  }

  start();
  return handle;
}
