// The latest picture of a tile's camera (issue 16, "a picture at once"): the moment a camera is put
// on a tile that is not live yet, its latest picture (from the last probe or keyframe, kept by the
// server in Redis) is painted over the tile with its age ("3 分钟前"), until the live video arrives.
// GET /api/cameras/{id}/latest.jpg never starts the camera's stream, so it answers at once.
import { apiFetch } from "/web/common/api.js";
import { registerStrings, t } from "/web/common/i18n.js";

registerStrings({
  "zh-CN": {
    "picture.age.now": "刚刚",
    "picture.age.s": "{n} 秒前",
    "picture.age.m": "{n} 分钟前",
    "picture.age.h": "{n} 小时前",
    "picture.age.d": "{n} 天前",
    "picture.title": "最近画面（非实时）",
  },
  en: {
    "picture.age.now": "just now",
    "picture.age.s": "{n} s ago",
    "picture.age.m": "{n} min ago",
    "picture.age.h": "{n} h ago",
    "picture.age.d": "{n} d ago",
    "picture.title": "Latest picture (not live)",
  },
});

// "3 分钟前" / "3 min ago" for a picture taken `seconds` ago.
export function ageText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 5) return t("picture.age.now");
  if (s < 60) return t("picture.age.s", { n: s });
  if (s < 3600) return t("picture.age.m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("picture.age.h", { n: Math.floor(s / 3600) });
  return t("picture.age.d", { n: Math.floor(s / 86400) });
}

// One tile's picture layer: an <img> over the video and an age badge. `show(cameraId, stream)`
// fetches and paints the picture unless `hide()` (live video) came first; timings in `timing`.
export class TilePicture {
  constructor(tileEl) {
    this.img = document.createElement("img");
    this.img.className = "tile-picture hidden";
    this.img.alt = "";
    this.img.draggable = false;
    this.age = document.createElement("span");
    this.age.className = "tile-picture-age hidden";
    tileEl.append(this.img, this.age);
    this.tileEl = tileEl;
    this.generation = 0;
    this.capturedAt = null; // local clock (ms since epoch) of the picture's capture
    this.url = null;
  }

  // A new camera on the tile: fetch its latest picture (painted unless live video arrives first).
  async show(cameraId, stream, timing) {
    const gen = ++this.generation;
    this.clear();
    let response;
    try {
      response = await apiFetch(
        `/api/cameras/${encodeURIComponent(cameraId)}/latest.jpg?stream=${encodeURIComponent(stream)}`,
      );
    } catch {
      return;
    }
    if (gen !== this.generation || !response.ok) return; // 404: never seen; the tile waits for live
    const age = Number(response.headers.get("X-Picture-Age")) || 0;
    const blob = await response.blob();
    if (gen !== this.generation) return;
    this.url = URL.createObjectURL(blob);
    this.img.onload = () => {
      if (gen !== this.generation) return;
      this.img.classList.remove("hidden");
      this.age.classList.remove("hidden");
      this.tileEl.dataset.picture = "shown";
      // Painted on the next frame: what the operator sees (the bench reads this time).
      requestAnimationFrame(() => {
        if (gen === this.generation && timing && timing.picture == null) timing.picture = performance.now();
      });
    };
    this.capturedAt = Date.now() - age * 1000;
    this.img.title = t("picture.title");
    this.relabel();
    this.img.src = this.url;
  }

  relabel() {
    if (this.capturedAt != null) this.age.textContent = ageText((Date.now() - this.capturedAt) / 1000);
  }

  // Live video arrived (or the tile was emptied): the picture layer goes away.
  hide() {
    this.generation += 1;
    this.clear();
  }

  clear() {
    this.img.classList.add("hidden");
    this.age.classList.add("hidden");
    this.img.onload = null;
    this.img.removeAttribute("src");
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    this.capturedAt = null;
    if (this.tileEl.dataset.picture === "shown") this.tileEl.dataset.picture = "hidden";
  }
}
