// Lines and cameras the user may see, loaded once per page (paged through /api/cameras).
import { api } from "/web/common/api.js";

export async function loadLines() {
  const lines = await api.get("/api/lines");
  return new Map(lines.map((line) => [line.id, line]));
}

export async function loadCameras() {
  const cameras = new Map();
  for (let offset = 0; ; offset += 1000) {
    const page = await api.get(`/api/cameras?limit=1000&offset=${offset}`);
    for (const camera of page.items) cameras.set(camera.id, camera);
    if (page.items.length < 1000 || cameras.size >= page.total) break;
  }
  return cameras;
}

// camera id → health row (state, reasons, fps…); empty when the health monitor is not running.
export async function loadHealth() {
  try {
    const rows = await api.get("/api/health/cameras");
    return new Map(rows.map((row) => [row.camera, row]));
  } catch {
    return new Map();
  }
}
