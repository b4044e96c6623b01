// Preset recall without black (issue 16): when an operator points at (or tabs to) a preset's
// 调用 / Recall button, the server is asked to hold that preset's cameras for a few seconds
// (POST /api/cameras/{id}/warm). Their on_demand streams start while the operator moves to click,
// so every display that follows the wall starts their players from a warm GOP cache instead of
// waiting for each camera's next keyframe. Tiles whose camera stays on the wall keep their player
// (wall.js); tiles still cold show the camera's latest picture meanwhile.
import { api } from "/web/common/api.js";

const HOLD_SECONDS = 15;
const AGAIN_MS = 10_000; // one warm-up per preset per 10 s, however often the pointer passes

// Stream a display plays for a preset tile: sub in the grid, main for a maximised one.
function streamOf(wall, index) {
  return wall.maximized === index ? "main" : "sub";
}

export function armPresetWarmUp(listEl) {
  const last = new Map(); // preset id → time of its last warm-up
  const warm = async (presetId) => {
    if (!presetId || Date.now() - (last.get(presetId) || 0) < AGAIN_MS) return;
    last.set(presetId, Date.now());
    let preset;
    try {
      preset = await api.get(`/api/presets/${encodeURIComponent(presetId)}`);
    } catch {
      return;
    }
    const seen = new Set();
    const wanted = [];
    (preset.wall.tiles || []).forEach((tile, index) => {
      if (tile && tile.camera_id) wanted.push([tile.camera_id, streamOf(preset.wall, index)]);
    });
    for (const tour of preset.wall.tours || []) {
      for (const id of tour.cameras.slice(0, 16)) if (id) wanted.push([id, "sub"]); // its first page
    }
    for (const [cameraId, stream] of wanted) {
      const key = `${cameraId}/${stream}`;
      if (seen.has(key)) continue;
      seen.add(key);
      api.post(`/api/cameras/${encodeURIComponent(cameraId)}/warm`, { stream, seconds: HOLD_SECONDS }).catch(() => {});
    }
  };
  const onPoint = (event) => {
    const button = event.target.closest && event.target.closest("button.recall");
    if (!button) return;
    const li = button.closest("li[data-preset]");
    if (li) warm(li.dataset.preset);
  };
  listEl.addEventListener("pointerover", onPoint);
  listEl.addEventListener("focusin", onPoint);
}
