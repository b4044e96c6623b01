// The video wall view shared by the console and the display: a grid of tiles for one wall
// (layout, tiles, tours, maximised tile), each tile playing its camera over WHEP.
// Tours are computed from the wall's started_at and the clock, so every view of a wall is in step.
// Issue 16, the wall never shows black: a tile assigned a camera that is not live yet shows the
// camera's latest picture with its age (wall/picture.js); a tour opens the next step's feeds early in
// hidden players (wall/warm.js) and swaps them in at the switch; a feed whose camera stays on the
// wall (a preset recall that moves it, a tour step that keeps it) moves with it instead of
// reconnecting; a degraded or offline camera's tile says why (wall/health.js).
import { PlayerState, playWhep } from "/web/common/whep.js";
import { lang, registerStrings, t } from "/web/common/i18n.js";
import { WallHealth } from "/web/wall/health.js";
import { TilePicture } from "/web/wall/picture.js";
import { GopCache, leadSeconds, nextSwitch, PLAYER_LEAD_SECONDS, ServerHolds } from "/web/wall/warm.js";

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

const SWITCH_LOG = 50; // recent tour switches kept for diagnostics (and the tests and benches)

// A playing camera feed: its own <video> and WHEP player. It moves between tiles (and from the
// hidden warm-up layer to the front) instead of being closed and opened again.
class Feed {
  constructor(cameraId, stream, onState) {
    this.cameraId = cameraId;
    this.stream = stream;
    this.key = `${cameraId}/${stream}`;
    this.tile = null;
    this.video = document.createElement("video");
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.autoplay = true;
    this.openedAt = performance.now();
    this.liveAt = null;
    this.player = playWhep(this.video, cameraId, stream, {
      onState: (state) => {
        if (state === PlayerState.LIVE && this.liveAt == null) this.liveAt = performance.now();
        onState(this, state);
      },
    });
  }

  get live() {
    return this.player.state === PlayerState.LIVE;
  }

  close() {
    this.player.close();
    this.video.remove();
  }
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
    this.tiles = []; // {el, feed, key, index, picture, timing}
    this.warm = new Map(); // key → Feed opened early for the next tour step
    this.holds = new ServerHolds(); // the server's warm-up holds for the next tour step
    this.gops = new GopCache();
    this.switches = []; // recent tour switches: {at, tiles: [{index, camera, warmed, live}]}
    this.health = new WallHealth((cameraId) => this.showHealthOf(cameraId));
    container.classList.add("wall");
    this.tourTimer = setInterval(() => this.wall && this.refresh(), 1000);
    this.wakeTimer = null;
  }

  // Show `wall` (ignored when older than the one shown: pushes may arrive out of order).
  render(wall) {
    if (this.wall && wall.id === this.wall.id && wall.version < this.wall.version) return;
    this.wall = wall;
    this.refresh();
  }

  // What each tile shows at `nowSeconds`: camera, stream, key ("camera/stream", "forbidden" or null).
  targets(wall, nowSeconds) {
    return effectiveTiles(wall, nowSeconds).map((tile, i) => {
      const visible = wall.maximized == null || wall.maximized === i;
      // The maximised tile plays the main stream; the grid plays sub streams (bandwidth, decode).
      const stream =
        wall.maximized === i ? "main" : tile.stream === "main" && wall.maximized == null ? "main" : "sub";
      const cameraId = visible ? tile.camera_id : null;
      const forbidden = visible && tile.hidden;
      const key = cameraId ? `${cameraId}/${stream}` : forbidden ? "forbidden" : null;
      return { ...tile, index: i, visible, stream, cameraId, forbidden, key };
    });
  }

  refresh() {
    const wall = this.wall;
    const count = TILE_COUNT[wall.layout];
    this.container.dataset.layout = wall.layout;
    this.container.dataset.version = wall.version;
    this.container.classList.toggle("maximized", wall.maximized != null);
    while (this.tiles.length > count) this.dropTile(this.tiles.pop());
    while (this.tiles.length < count) this.tiles.push(this.makeTile(this.tiles.length));
    const now = Date.now() / 1000;
    const current = this.targets(wall, now);
    // Tiles that change camera give up their feeds first: another tile may take one over (a preset
    // recall that moves a camera, a tour step that keeps it) instead of reconnecting.
    const released = new Map();
    current.forEach((target, i) => {
      const tile = this.tiles[i];
      if (target.key !== tile.key && tile.feed) {
        if (!released.has(tile.feed.key)) released.set(tile.feed.key, tile.feed);
        else tile.feed.close();
        tile.feed.tile = null;
        tile.feed = null;
      }
    });
    const switched = [];
    current.forEach((target, i) => {
      const tile = this.tiles[i];
      const changed = target.key !== tile.key;
      this.updateTile(tile, target, released);
      if (changed && target.tour && target.cameraId) {
        const feed = tile.feed;
        switched.push({
          index: i,
          camera: target.cameraId,
          warmed: !!tile.timing.warmed,
          live: tile.timing.liveAtSwitch,
          state: feed ? feed.player.state : null,
          openedMs: feed ? Math.round(performance.now() - feed.openedAt) : null,
          liveAfterMs: feed && feed.liveAt != null ? Math.round(feed.liveAt - feed.openedAt) : null,
        });
      }
    });
    for (const feed of released.values()) feed.close();
    if (switched.length) {
      this.switches.push({ at: performance.now(), tiles: switched });
      if (this.switches.length > SWITCH_LOG) this.switches.shift();
    }
    this.warmUp(wall, now, current);
  }

  // Before each tour switch: a GOP plus the open time ahead, hold the next step's feeds on the server;
  // PLAYER_LEAD_SECONDS ahead, open hidden players on the tiles they will fill (wall/warm.js says
  // why both). Holds and hidden players no step wants any more (the tour moved on, stopped or
  // changed) are released.
  warmUp(wall, now, current) {
    const holds = new Map(); // key → [target, switch time]
    const players = new Map(); // key → target
    let wake = Infinity;
    const later = (t) => (t > now ? t : Infinity);
    // Learn the GOPs of what plays now too: the tour comes back to these cameras.
    for (const target of current) if (target.cameraId && target.tour) this.gops.get(target.cameraId, target.stream);
    for (const tour of wall.tours || []) {
      const at = nextSwitch(tour, now);
      const next = this.targets(wall, at + 0.001).filter(
        (target, i) => target.tour === tour && target.cameraId && target.key !== current[i].key,
      );
      if (!next.length) continue;
      // Never earlier than the step's start: a GOP longer than the dwell holds for the whole step.
      const holdAt = Math.max(at - leadSeconds(this.gops, next), at - tour.dwell_seconds);
      const playAt = Math.max(at - PLAYER_LEAD_SECONDS, holdAt);
      wake = Math.min(wake, at, later(holdAt), later(playAt));
      if (now < holdAt) continue;
      for (const target of next) {
        if (!holds.has(target.key)) holds.set(target.key, [target, at]);
        // A hold the server refused: the hidden player opens now instead, as early as the hold.
        if (now >= playAt || this.holds.failed(target.key)) players.set(target.key, target);
      }
    }
    for (const [target, at] of holds.values()) this.holds.want(target, at);
    for (const key of this.holds.keys()) if (!holds.has(key)) this.holds.release(key);
    for (const [key, feed] of this.warm) {
      if (!players.has(key)) {
        feed.close();
        this.warm.delete(key);
      }
    }
    for (const [key, target] of players) {
      if (this.warm.has(key)) continue;
      const feed = new Feed(target.cameraId, target.stream, (f, state) => this.onFeedState(f, state));
      this.tiles[target.index].warmLayer.append(feed.video);
      this.warm.set(key, feed);
    }
    // Wake exactly at the next switch and warm-up steps, not only on the one-second tick.
    clearTimeout(this.wakeTimer);
    if (wake !== Infinity) {
      this.wakeTimer = setTimeout(() => this.wall && this.refresh(), Math.max(0, wake * 1000 - Date.now()) + 5);
    }
  }

  makeTile(index) {
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.index = index;
    el.dataset.testid = `tile-${index}`;
    el.dataset.camera = "";
    el.dataset.state = "empty";
    el.innerHTML = `
      <div class="tile-warm" aria-hidden="true"></div>
      <span class="tile-health hidden"></span>
      <div class="tile-label">
        <span class="tile-line"></span><span class="tile-name"></span>
        <span class="tile-tour hidden"></span>
        <span class="tile-state"></span>
      </div>
      ${this.interactive ? `<button type="button" class="tile-close" title="">×</button>` : ""}`;
    const tile = {
      el,
      feed: null,
      key: null,
      index,
      warmLayer: el.querySelector(".tile-warm"),
      picture: new TilePicture(el),
      timing: {},
    };
    // The bench and tests read when this tile's camera was assigned, and its picture and video shown.
    el._timing = () => tile.timing;
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
    if (tile.feed) tile.feed.close();
    tile.feed = null;
    tile.picture.hide();
    for (const [key, feed] of this.warm) {
      if (feed.video.parentElement === tile.warmLayer) {
        feed.close();
        this.warm.delete(key);
      }
    }
    tile.el.remove();
  }

  // Put a feed on the front of a tile: a warm one opened for this step, one another tile gave up,
  // or a new one; until it is live the tile shows the camera's latest picture.
  attach(tile, target, released) {
    let feed = this.warm.get(target.key);
    const warmed = !!feed;
    if (feed) this.warm.delete(target.key);
    else if (released.has(target.key)) {
      feed = released.get(target.key);
      released.delete(target.key);
    } else feed = new Feed(target.cameraId, target.stream, (f, state) => this.onFeedState(f, state));
    feed.tile = tile;
    tile.feed = feed;
    tile.el.prepend(feed.video); // first <video> of the tile is the one shown
    feed.video.play().catch(() => {});
    const timing = { camera: target.cameraId, assigned: performance.now(), warmed, liveAtSwitch: feed.live };
    tile.timing = timing;
    // The first frame shown after the assignment (the bench reads it): the operator sees live video.
    if (feed.video.requestVideoFrameCallback) {
      feed.video.requestVideoFrameCallback(() => {
        if (tile.timing === timing) timing.live = performance.now();
      });
    }
    if (!feed.live) tile.picture.show(target.cameraId, target.stream, timing);
    this.showState(tile, feed.player.state);
  }

  onFeedState(feed, state) {
    if (feed.tile && feed.tile.feed === feed) this.showState(feed.tile, state);
  }

  updateTile(tile, target, released) {
    const { cameraId, stream, visible, tour, forbidden, key } = target;
    tile.el.classList.toggle("hidden", !visible);
    tile.el.classList.toggle("big", this.wall.maximized === tile.index);
    if (key !== tile.key) {
      tile.key = key;
      tile.el.dataset.camera = cameraId || "";
      tile.el.dataset.stream = cameraId ? stream : "";
      tile.picture.hide();
      if (cameraId) {
        this.attach(tile, target, released);
      } else {
        tile.timing = {};
        this.showState(tile, forbidden ? "forbidden" : null);
      }
      this.showHealth(tile);
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
    // Re-label the state, the picture's age and the health too: the language may have changed.
    const state = tile.el.dataset.state;
    tile.el.querySelector(".tile-state").textContent = stateText(state);
    tile.picture.relabel();
    this.showHealth(tile);
  }

  showState(tile, state) {
    tile.el.dataset.state = state || "empty";
    const label = tile.el.querySelector(".tile-state");
    label.textContent = stateText(state);
    label.className = `tile-state ${state || ""}`;
    tile.el.classList.toggle("interrupted", state === PlayerState.INTERRUPTED);
    if (state === PlayerState.LIVE) tile.picture.hide(); // live video: the latest picture goes
  }

  // The camera's health on its tile (黑屏, 离线 …), or nothing while it is online.
  showHealth(tile) {
    const cameraId = tile.el.dataset.camera;
    const text = this.health.label(cameraId);
    const badge = tile.el.querySelector(".tile-health");
    badge.textContent = text || "";
    badge.classList.toggle("hidden", !text);
    badge.dataset.state = text ? this.health.state(cameraId) : "";
    tile.el.dataset.health = text ? this.health.state(cameraId) : "";
  }

  showHealthOf(cameraId) {
    for (const tile of this.tiles) if (cameraId === null || tile.el.dataset.camera === cameraId) this.showHealth(tile);
  }

  close() {
    clearInterval(this.tourTimer);
    clearTimeout(this.wakeTimer);
    for (const tile of this.tiles) this.dropTile(tile);
    for (const feed of this.warm.values()) feed.close();
    this.warm.clear();
    this.holds.releaseAll();
    this.tiles = [];
    this.health.close();
  }
}
