// The big-screen display of one wall: no chrome, full screen, follows the console over /ws.
import { api, requireLogin } from "/web/common/api.js";
import { loadCameras, loadLines } from "/web/common/catalog.js";
import { applyI18n, registerStrings } from "/web/common/i18n.js";
import { LiveSocket } from "/web/common/ws.js";
import { WallView } from "/web/wall.js";

registerStrings({
  "zh-CN": { "display.offline": "与服务器的连接已断开，正在重连…" },
  en: { "display.offline": "Connection to the server lost, reconnecting…" },
});

requireLogin();
const wallId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "main");
let lines = new Map();
let cameras = new Map();
const view = new WallView(document.getElementById("wall"), { cameras: () => cameras, lines: () => lines });

async function main() {
  applyI18n();
  document.title = `${wallId} · 大屏`;
  [lines, cameras] = await Promise.all([loadLines(), loadCameras()]);
  view.render(await api.get(`/api/walls/${encodeURIComponent(wallId)}`));
  const socket = new LiveSocket({
    topics: [`wall:${wallId}`],
    onMessage: async (msg) => {
      if (msg.type !== "wall" || msg.wall.id !== wallId) return;
      // A camera added since the page loaded: fetch the list again for its name and line.
      const unknown = msg.wall.tiles.some((tile) => tile.camera_id && !cameras.has(tile.camera_id));
      if (unknown) cameras = await loadCameras();
      view.render(msg.wall);
    },
    onStatus: (status) => document.getElementById("offline").classList.toggle("hidden", status !== "closed"),
  });
  window.__display = { socket, view };
}

// Full screen on the first click (browsers allow it only after a user gesture).
document.addEventListener("click", () => document.documentElement.requestFullscreen?.().catch(() => {}), {
  once: true,
});
main();
