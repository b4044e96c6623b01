// The video wall view shared by the console and the display: a grid of tiles for one wall
// (layout, tiles, tours, maximised tile), each tile playing its camera over WHEP.
// Tours are computed from the wall's started_at and the clock, so every view of a wall is in step.
import { PlayerState, playWhep } from "/web/common/whep.js";
import { lang, registerStrings, t } from "/web/common/i18n.js";

registerStrings({
  "zh-CN": { "tile.empty": "空闲", "tile.close": "关闭画面", "tile.tour": "轮巡", "tile.forbidden": "无权限" },
  en: { "tile.empty": "Empty", "tile.close": "Close tile", "tile.tour": "Tour", "tile.forbidden": "No permission" },
});

export const TILE_COUNT = { 1: 1, 4: 4, 9: 9, 16: 16, "1+5": 6, "1+7": 8 };
export const LAYOUTS = ["1", "4", "9", "16", "1+5", "1+7"];

// Which camera each tile shows now: the tile's own camera, or the current step of a tour over it.
// A camera the user may not see comes without its id (tile {hidden: true}, null in a tour's list):
// such a tile shows "no permission" (hidden: true).
export function effectiveTiles(wall, nowSeconds = Date.now() / 1000) {
  const count = TILE_COUNT[wall.layout];
  const tiles = [];
  for (let i = 0; i < count; i++) {
    const tile = wall.tiles[i] || { camera_id: null, stream: "sub" };
    tiles.push({ camera_id: tile.camera_id, stream: tile.stream || "sub", tour: null, hidden: !!tile.hidden });
  }
  for (const tour of wall.tours || []) {
    const started = tour.started_at ?? nowSeconds;
    const step = Math.max(0, Math.floor((nowSeconds - started) / tour.dwell_seconds));
    const n = tour.cameras.length;
    if (tour.tile === "wall") {
      // Pages through the list: step k shows cameras k*count … k*count+count-1 (wrapping).
      for (let i = 0; i < count; i++) {
        const id = tour.cameras[(step * count + i) % n];
        tiles[i] = { camera_id: id, stream: "sub", tour, hidden: id === null };
      }
    } else if (tour.tile < count) {
      const id = tour.cameras[step % n];
      tiles[tour.tile] = { ...tiles[tour.tile], camera_id: id, tour, hidden: id === null };
    }
  }
  return tiles;
}

// The tile's state label; a forbidden tile says so in its name already.
function stateText(state) {
  return state && state !== "empty" && state !== "forbidden" ? t(`player.${state}`) : "";
}

export class WallView {
  // container: element to fill. cameras(): Map id → camera; lines(): Map id → line.
  // handlers (console only): onDrop(index, cameraId), onClose(index), onDblClick(index), onClick(index).
  constructor(container, { cameras, lines, interactive = false, handlers = {} }) {
    this.container = container;
    this.cameras = cameras;
    this.lines = lines;
    this.interactive = interactive;
    this.handlers = handlers;
    this.wall = null;
    this.tiles = []; // {el, video, key, player}
    container.classList.add("wall");
    this.tourTimer = setInterval(() => this.wall && this.refresh(), 1000);
  }

  // Show `wall` (ignored when older than the one shown: pushes may arrive out of order).
  render(wall) {
    if (this.wall && wall.id === this.wall.id && wall.version < this.wall.version) return;
    this.wall = wall;
    this.refresh();
  }

  refresh() {
    const wall = this.wall;
    const count = TILE_COUNT[wall.layout];
    this.container.dataset.layout = wall.layout;
    this.container.dataset.version = wall.version;
    this.container.classList.toggle("maximized", wall.maximized != null);
    while (this.tiles.length > count) this.dropTile(this.tiles.pop());
    while (this.tiles.length < count) this.tiles.push(this.makeTile(this.tiles.length));
    const current = effectiveTiles(wall);
    current.forEach((tile, i) => {
      const visible = wall.maximized == null || wall.maximized === i;
      // The maximised tile plays the main stream; the grid plays sub streams (bandwidth, decode).
      const stream = wall.maximized === i ? "main" : tile.stream === "main" && wall.maximized == null ? "main" : "sub";
      this.updateTile(this.tiles[i], visible ? tile.camera_id : null, stream, visible, tile.tour, tile.hidden);
    });
  }

  makeTile(index) {
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.index = index;
    el.dataset.testid = `tile-${index}`;
    el.dataset.camera = "";
    el.dataset.state = "empty";
    el.innerHTML = `
      <video muted playsinline autoplay></video>
      <div class="tile-label">
        <span class="tile-line"></span><span class="tile-name"></span>
        <span class="tile-tour hidden"></span>
        <span class="tile-state"></span>
      </div>
      ${this.interactive ? `<button type="button" class="tile-close" title="">×</button>` : ""}`;
    const tile = { el, video: el.querySelector("video"), key: null, player: null, index };
    if (this.interactive) {
      el.addEventListener("dragover", (e) => {
        e.preventDefault();
        el.classList.add("drop-target");
      });
      el.addEventListener("dragleave", () => el.classList.remove("drop-target"));
      el.addEventListener("drop", (e) => {
        e.preventDefault();
        el.classList.remove("drop-target");
        const from = e.dataTransfer.getData("text/x-tile-index");
        if (from !== "" && this.handlers.onMove) {
          if (Number(from) !== index) this.handlers.onMove(Number(from), index);
          return;
        }
        const id = e.dataTransfer.getData("text/x-camera-id") || e.dataTransfer.getData("text/plain");
        if (id && this.handlers.onDrop) this.handlers.onDrop(index, id);
      });
      // A tile with a camera can be dragged onto another tile: the two swap places.
      el.draggable = true;
      el.addEventListener("dragstart", (e) => {
        if (!tile.key) return e.preventDefault();
        e.dataTransfer.setData("text/x-tile-index", String(index));
        e.dataTransfer.effectAllowed = "move";
      });
      el.addEventListener("dblclick", () => this.handlers.onDblClick && this.handlers.onDblClick(index));
      el.addEventListener("click", (e) => {
        if (e.target.closest(".tile-close")) return;
        if (this.handlers.onClick) this.handlers.onClick(index);
      });
      el.querySelector(".tile-close").addEventListener("click", (e) => {
        e.stopPropagation();
        if (this.handlers.onClose) this.handlers.onClose(index);
      });
    }
    this.container.append(el);
    return tile;
  }

  dropTile(tile) {
    if (tile.player) tile.player.close();
    tile.el.remove();
  }

  updateTile(tile, cameraId, stream, visible, tour, hidden = false) {
    tile.el.classList.toggle("hidden", !visible);
    tile.el.classList.toggle("big", this.wall.maximized === tile.index);
    const forbidden = visible && hidden;
    const key = cameraId ? `${cameraId}/${stream}` : forbidden ? "forbidden" : null;
    if (key !== tile.key) {
      if (tile.player) tile.player.close();
      tile.player = null;
      tile.key = key;
      tile.el.dataset.camera = cameraId || "";
      tile.el.dataset.stream = cameraId ? stream : "";
      if (cameraId) {
        tile.player = playWhep(tile.video, cameraId, stream, { onState: (s) => this.showState(tile, s) });
        this.showState(tile, tile.player.state);
      } else {
        tile.video.srcObject = null;
        this.showState(tile, forbidden ? "forbidden" : null);
      }
    }
    const camera = cameraId ? this.cameras().get(cameraId) : null;
    const line = camera ? this.lines().get(camera.line) : null;
    const empty = forbidden ? t("tile.forbidden") : t("tile.empty");
    tile.el.querySelector(".tile-name").textContent = cameraId ? (camera ? camera.name : cameraId) : empty;
    const lineEl = tile.el.querySelector(".tile-line");
    lineEl.style.background = line ? line.color : "transparent";
    lineEl.textContent = line ? (lang() === "en" ? line.name_en : line.name_zh) : "";
    tile.el.style.setProperty("--line-color", line ? line.color : "var(--border)");
    const tourEl = tile.el.querySelector(".tile-tour");
    tourEl.classList.toggle("hidden", !tour);
    tourEl.textContent = tour ? `${t("tile.tour")} ${tour.dwell_seconds}s` : "";
    const close = tile.el.querySelector(".tile-close");
    if (close) close.title = t("tile.close");
    // Re-label the state too: the language may have changed since it was set.
    const state = tile.el.dataset.state;
    tile.el.querySelector(".tile-state").textContent = stateText(state);
  }

  showState(tile, state) {
    tile.el.dataset.state = state || "empty";
    const label = tile.el.querySelector(".tile-state");
    label.textContent = stateText(state);
    label.className = `tile-state ${state || ""}`;
    tile.el.classList.toggle("interrupted", state === PlayerState.INTERRUPTED);
  }

  close() {
    clearInterval(this.tourTimer);
    for (const tile of this.tiles) this.dropTile(tile);
    this.tiles = [];
  }
}
