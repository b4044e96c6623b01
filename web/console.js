// The operator console: camera tree → wall tiles (drag or select + click), layouts, maximise,
// tours and presets. Every change is a PUT of the whole wall; displays follow over /ws.
import { api, currentUser, requireLogin } from "/web/common/api.js";
import { loadCameras, loadHealth, loadLines } from "/web/common/catalog.js";
import { applyI18n, lang, onLangChange, registerStrings, t } from "/web/common/i18n.js";
import { mountNav } from "/web/common/nav.js";
import { toast } from "/web/common/toast.js";
import { LiveSocket } from "/web/common/ws.js";
import { LAYOUTS, TILE_COUNT, WallView } from "/web/wall.js";
import { armPresetWarmUp } from "/web/wall/presetwarm.js"; // issue 16: recall lands on warm feeds

registerStrings({
  "zh-CN": {
    "console.search": "搜索摄像机（名称、编号、区域）",
    "console.summary": "共 {total} 路，在线 {online}",
    "console.layout": "布局",
    "console.openDisplay": "打开显示页",
    "console.selected": "已选：{name}（点击画面放入）",
    "console.tours": "轮巡",
    "console.tourTarget": "轮巡位置",
    "console.tourTile": "画面 {n}",
    "console.tourWall": "整面墙",
    "console.tourCameras": "摄像机列表",
    "console.tourAdd": "添加所选摄像机",
    "console.dwell": "停留时间（秒）",
    "console.tourStart": "开始轮巡",
    "console.tourStop": "停止",
    "console.tourItem": "{target}：{n} 路，{dwell} 秒",
    "console.tourNeedCamera": "请先在左侧选择摄像机",
    "console.presets": "预案",
    "console.presetName": "预案名称",
    "console.presetSaved": "预案已保存",
    "console.recall": "调用",
    "console.recalled": "已调用预案：{name}",
    "console.readOnly": "只读：当前角色不能操作大屏",
    "console.noArea": "未分区",
    "console.stale": "大屏已被其他席位修改，已刷新为最新画面，请重新操作",
  },
  en: {
    "console.search": "Search cameras (name, id, area)",
    "console.summary": "{total} cameras, {online} online",
    "console.layout": "Layout",
    "console.openDisplay": "Open display",
    "console.selected": "Selected: {name} (click a tile)",
    "console.tours": "Tours",
    "console.tourTarget": "Tour in",
    "console.tourTile": "Tile {n}",
    "console.tourWall": "Whole wall",
    "console.tourCameras": "Cameras",
    "console.tourAdd": "Add selected camera",
    "console.dwell": "Dwell (seconds)",
    "console.tourStart": "Start tour",
    "console.tourStop": "Stop",
    "console.tourItem": "{target}: {n} cameras, {dwell} s",
    "console.tourNeedCamera": "Select a camera on the left first",
    "console.presets": "Presets",
    "console.presetName": "Preset name",
    "console.presetSaved": "Preset saved",
    "console.recall": "Recall",
    "console.recalled": "Preset recalled: {name}",
    "console.readOnly": "Read only: your role cannot drive the wall",
    "console.noArea": "No area",
    "console.stale": "Another console changed the wall; it is refreshed, please try again",
  },
});

requireLogin();
const user = await api.get("/api/auth/me"); // the user and what their role may do (policy.WALL_WRITERS)
const canWrite = user.rights.drive_wall;
const wallId = new URLSearchParams(location.search).get("wall") || "main";
mountNav("console");

let lines = new Map();
let cameras = new Map();
let health = new Map();
let wall = null;
let selected = null; // camera id picked in the tree (select + click)
let tourCameras = [];

const view = new WallView(document.getElementById("wall"), {
  cameras: () => cameras,
  lines: () => lines,
  interactive: canWrite,
  handlers: {
    onDrop: (index, cameraId) => placeCamera(index, cameraId),
    onClick: (index) => selected && placeCamera(index, selected),
    onClose: (index) => placeCamera(index, null),
    onDblClick: (index) => toggleMaximize(index),
    onMove: (from, to) => swapTiles(from, to),
  },
});

const $ = (id) => document.getElementById(id);
$("display-link").href = `/display/${encodeURIComponent(wallId)}`;

// ---- wall changes ----------------------------------------------------------------------------

function spec(w) {
  return {
    name: w.name || "",
    layout: w.layout,
    tiles: w.tiles.map((tile) => ({ camera_id: tile.camera_id, stream: tile.stream || "sub" })),
    tours: (w.tours || []).map(({ tile, cameras: list, dwell_seconds, started_at }) => ({
      tile,
      cameras: list,
      dwell_seconds,
      started_at,
    })),
    maximized: w.maximized ?? null,
  };
}

// Changes from this console run one after another, each on the newest wall (the previous change's
// answer), so quick successive actions never conflict with each other. The server still refuses
// (412) a change based on a wall another console has changed meanwhile.
let queue = Promise.resolve();

function change(mutate) {
  queue = queue.then(() => apply(mutate));
  return queue;
}

async function apply(mutate) {
  if (!wall) return;
  const path = `/api/walls/${encodeURIComponent(wallId)}`;
  const next = spec(wall);
  if (mutate(next) === false) return;
  try {
    showWall(await api.put(path, next, { "If-Match": `"${wall.version}"` }));
  } catch (err) {
    if (err.status === 412) {
      toast(t("console.stale"), { error: true });
      showWall(await api.get(path));
      return;
    }
    toast(t("common.error", { msg: err.message }), { error: true });
  }
}

function showWall(next) {
  if (wall && next.version < wall.version) return;
  wall = next;
  view.render(wall);
  renderLayoutButtons();
  renderTours();
}

function placeCamera(index, cameraId) {
  if (!canWrite || !wall) return;
  selectCamera(null);
  change((next) => {
    next.tiles[index] = { camera_id: cameraId, stream: "sub" };
    // A camera placed by hand replaces a tour running in that tile (a wall tour covers every tile).
    next.tours = next.tours.filter((tour) => tour.tile !== index && tour.tile !== "wall");
  });
}

function swapTiles(from, to) {
  if (!canWrite || !wall) return;
  change((next) => {
    [next.tiles[from], next.tiles[to]] = [next.tiles[to], next.tiles[from]];
    // Tile tours move with their tile.
    for (const tour of next.tours) {
      if (tour.tile === from) tour.tile = to;
      else if (tour.tile === to) tour.tile = from;
    }
  });
}

function toggleMaximize(index) {
  if (!canWrite || !wall) return;
  change((next) => {
    next.maximized = next.maximized === index ? null : index;
  });
}

function setLayout(layout) {
  if (!canWrite || !wall) return;
  change((next) => {
    if (next.layout === layout) return false;
    const count = TILE_COUNT[layout];
    next.layout = layout;
    next.tiles = next.tiles.slice(0, count);
    next.tours = next.tours.filter((tour) => tour.tile === "wall" || tour.tile < count);
    next.maximized = null;
  });
}

function renderLayoutButtons() {
  const box = $("layout-buttons");
  box.replaceChildren(
    ...LAYOUTS.map((layout) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = layout;
      button.dataset.layout = layout;
      button.className = wall && wall.layout === layout ? "active" : "";
      button.disabled = !canWrite;
      button.addEventListener("click", () => setLayout(layout));
      return button;
    }),
  );
}

// ---- camera tree -----------------------------------------------------------------------------

function selectCamera(id) {
  selected = id;
  document.querySelectorAll(".tree-camera").forEach((el) => el.classList.toggle("selected", el.dataset.camera === id));
  const camera = id ? cameras.get(id) : null;
  $("selection-hint").textContent = camera ? t("console.selected", { name: camera.name }) : "";
  document.querySelectorAll(".tile").forEach((el) => el.classList.toggle("selected-target", !!camera));
}

function renderTree() {
  const query = $("camera-search").value.trim().toLowerCase();
  const match = (c) =>
    !query || [c.name, c.id, c.area || ""].some((text) => text.toLowerCase().includes(query));
  const tree = $("camera-tree");
  tree.replaceChildren();
  let online = 0;
  for (const c of cameras.values()) if (health.get(c.id)?.state === "online") online += 1;
  $("tree-summary").textContent = t("console.summary", { total: cameras.size, online });
  for (const line of lines.values()) {
    const inLine = [...cameras.values()].filter((c) => c.line === line.id && match(c));
    if (query && inLine.length === 0) continue;
    const lineOnline = inLine.filter((c) => health.get(c.id)?.state === "online").length;
    const lineEl = document.createElement("details");
    lineEl.className = "tree-line";
    lineEl.dataset.key = line.id;
    lineEl.dataset.line = line.id;
    keepFolding(lineEl, !!query);
    lineEl.innerHTML = `<summary><span class="swatch"></span><span class="lname"></span><span class="count"></span></summary>`;
    lineEl.querySelector(".swatch").style.background = line.color;
    lineEl.querySelector(".lname").textContent = lang() === "en" ? line.name_en : line.name_zh;
    lineEl.querySelector(".count").textContent = `${lineOnline}/${inLine.length}`;
    const areas = new Map();
    for (const c of inLine) {
      const area = c.area || t("console.noArea");
      if (!areas.has(area)) areas.set(area, []);
      areas.get(area).push(c);
    }
    for (const [area, list] of [...areas.entries()].sort((a, b) => a[0].localeCompare(b[0], "zh-CN"))) {
      const areaEl = document.createElement("details");
      areaEl.className = "tree-area";
      areaEl.dataset.key = `${line.id}/${area}`;
      keepFolding(areaEl, !!query);
      areaEl.innerHTML = `<summary><span class="aname"></span><span class="count"></span></summary>`;
      areaEl.querySelector(".aname").textContent = area;
      areaEl.querySelector(".count").textContent = String(list.length);
      for (const c of list.sort((a, b) => a.name.localeCompare(b.name, "zh-CN"))) areaEl.append(cameraItem(c));
      lineEl.append(areaEl);
    }
    tree.append(lineEl);
  }
}

// Groups the operator folded stay folded across re-renders (health updates, search cleared);
// while searching every match is shown.
const folded = new Set();

function keepFolding(details, searching) {
  details.open = searching || !folded.has(details.dataset.key);
  details.addEventListener("toggle", () => {
    if (searching) return;
    if (details.open) folded.delete(details.dataset.key);
    else folded.add(details.dataset.key);
  });
}

// One camera's health changed: its dot and the counts, not the whole tree (10,000 cameras re-rendered
// on every health event froze the console).
function updateCamera(id) {
  const camera = cameras.get(id);
  if (!camera) return;
  const item = $("camera-tree").querySelector(`.tree-camera[data-camera="${CSS.escape(id)}"]`);
  if (item) showState(item.querySelector(".dot"), health.get(id)?.state || "unknown");
  renderCounts(camera.line);
}

function showState(dot, state) {
  dot.className = `dot ${state}`;
  dot.title = t(`state.${state}`);
}

function renderCounts(lineId) {
  let online = 0;
  for (const c of cameras.values()) if (health.get(c.id)?.state === "online") online += 1;
  $("tree-summary").textContent = t("console.summary", { total: cameras.size, online });
  const lineEl = $("camera-tree").querySelector(`.tree-line[data-line="${CSS.escape(lineId)}"]`);
  if (!lineEl) return;
  const shown = lineEl.querySelectorAll(".tree-camera").length;
  const shownOnline = lineEl.querySelectorAll(".tree-camera .dot.online").length;
  lineEl.querySelector(":scope > summary .count").textContent = `${shownOnline}/${shown}`;
}

function cameraItem(camera) {
  const el = document.createElement("div");
  el.className = `tree-camera${camera.id === selected ? " selected" : ""}`;
  el.dataset.camera = camera.id;
  el.dataset.testid = `camera-${camera.id}`;
  el.draggable = canWrite;
  el.innerHTML = `<span class="dot"></span><span class="name"></span>`;
  showState(el.querySelector(".dot"), health.get(camera.id)?.state || "unknown");
  el.querySelector(".name").textContent = camera.name;
  el.title = `${camera.name} (${camera.id})`;
  el.addEventListener("dragstart", (e) => {
    e.dataTransfer.setData("text/x-camera-id", camera.id);
    e.dataTransfer.setData("text/plain", camera.id);
    e.dataTransfer.effectAllowed = "copy";
  });
  el.addEventListener("click", () => selectCamera(selected === camera.id ? null : camera.id));
  return el;
}

// ---- tours -----------------------------------------------------------------------------------

function tourTargetLabel(target) {
  return target === "wall" ? t("console.tourWall") : t("console.tourTile", { n: Number(target) + 1 });
}

function renderTours() {
  const select = $("tour-target");
  const current = select.value;
  const count = wall ? TILE_COUNT[wall.layout] : 4;
  const options = [...Array(count).keys()].map(String).concat(["wall"]);
  select.replaceChildren(
    ...options.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = tourTargetLabel(value);
      return option;
    }),
  );
  if (options.includes(current)) select.value = current;
  const list = $("tour-cameras");
  list.replaceChildren(
    ...tourCameras.map((id, i) => {
      const li = document.createElement("li");
      li.textContent = cameras.get(id)?.name || id;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.addEventListener("click", () => {
        tourCameras.splice(i, 1);
        renderTours();
      });
      li.append(remove);
      return li;
    }),
  );
  const running = $("tour-list");
  running.replaceChildren(
    ...(wall?.tours || []).map((tour, i) => {
      const li = document.createElement("li");
      li.dataset.tour = String(tour.tile);
      li.innerHTML = `<span class="name"></span>`;
      li.querySelector(".name").textContent = t("console.tourItem", {
        target: tourTargetLabel(tour.tile),
        n: tour.cameras.length,
        dwell: tour.dwell_seconds,
      });
      if (canWrite) {
        const stop = document.createElement("button");
        stop.type = "button";
        stop.textContent = t("console.tourStop");
        stop.addEventListener("click", () => {
          change((next) => {
            next.tours = next.tours.filter((other) => other.tile !== tour.tile);
          });
        });
        li.append(stop);
      }
      return li;
    }),
  );
  for (const id of ["tour-add", "tour-start", "tour-dwell", "tour-target"]) $(id).disabled = !canWrite;
}

$("tour-add").addEventListener("click", () => {
  if (!selected) return toast(t("console.tourNeedCamera"), { error: true });
  tourCameras.push(selected);
  selectCamera(null); // consumed: a click on a tile now does not place it too
  renderTours();
});

$("tour-start").addEventListener("click", () => {
  if (!wall || tourCameras.length === 0) return toast(t("console.tourNeedCamera"), { error: true });
  const target = $("tour-target").value;
  const tile = target === "wall" ? "wall" : Number(target);
  const tour = { tile, cameras: [...tourCameras], dwell_seconds: Number($("tour-dwell").value) || 10 };
  tourCameras = [];
  change((next) => {
    // A wall tour replaces every other tour; a tile tour replaces the one in its tile.
    next.tours = tile === "wall" ? [] : next.tours.filter((other) => other.tile !== tile && other.tile !== "wall");
    next.tours.push(tour);
  });
});

// ---- presets ---------------------------------------------------------------------------------

armPresetWarmUp($("preset-list"));

async function renderPresets() {
  const presets = await api.get("/api/presets");
  $("preset-list").replaceChildren(
    ...presets.map((preset) => {
      const li = document.createElement("li");
      li.dataset.preset = preset.id;
      li.innerHTML = `<span class="name"></span>`;
      li.querySelector(".name").textContent = preset.name;
      li.querySelector(".name").title = `${preset.wall.layout} · ${preset.created_by}`;
      if (canWrite) {
        const recall = document.createElement("button");
        recall.type = "button";
        recall.className = "recall";
        recall.textContent = t("console.recall");
        recall.addEventListener("click", async () => {
          try {
            const w = await api.post(
              `/api/presets/${encodeURIComponent(preset.id)}/recall?wall=${encodeURIComponent(wallId)}`,
            );
            showWall(w);
            toast(t("console.recalled", { name: preset.name }));
          } catch (err) {
            toast(t("common.error", { msg: err.message }), { error: true });
          }
        });
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "danger";
        remove.textContent = "×";
        remove.title = t("common.delete");
        remove.addEventListener("click", async () => {
          await api.del(`/api/presets/${encodeURIComponent(preset.id)}`);
          renderPresets();
        });
        li.append(recall, remove);
      }
      return li;
    }),
  );
}

$("preset-save").addEventListener("click", async () => {
  const name = $("preset-name").value.trim();
  if (!name || !wall) return;
  try {
    await api.post("/api/presets", { name, wall: spec(wall) });
    $("preset-name").value = "";
    toast(t("console.presetSaved"));
    renderPresets();
  } catch (err) {
    toast(t("common.error", { msg: err.message }), { error: true });
  }
});
$("preset-save").disabled = !canWrite;

// ---- start -----------------------------------------------------------------------------------

$("camera-search").addEventListener("input", renderTree);
onLangChange(() => {
  applyI18n();
  renderTree();
  renderTours();
  renderPresets();
  if (wall) view.refresh();
});

async function refreshHealth() {
  const before = health;
  health = await loadHealth();
  for (const id of new Set([...before.keys(), ...health.keys()])) {
    if (before.get(id)?.state !== health.get(id)?.state) updateCamera(id);
  }
}

async function main() {
  applyI18n();
  if (!canWrite) toast(t("console.readOnly"));
  [lines, cameras, health] = await Promise.all([loadLines(), loadCameras(), loadHealth()]);
  renderTree();
  showWall(await api.get(`/api/walls/${encodeURIComponent(wallId)}`));
  renderPresets();
  const socket = new LiveSocket({
    topics: [`wall:${wallId}`, "health", "presets"],
    onMessage: (msg) => {
      if (msg.type === "wall" && msg.wall.id === wallId) showWall(msg.wall);
      else if (msg.type === "presets") renderPresets(); // saved or deleted on another console
      else if (msg.type === "health") {
        const row = health.get(msg.camera) || { camera: msg.camera };
        health.set(msg.camera, { ...row, state: msg.new });
        updateCamera(msg.camera);
      }
    },
    onStatus: (status) => ($("ws-status").className = `ws-status ${status}`),
  });
  window.__console = { socket, view, user: currentUser() };
  setInterval(refreshHealth, 15000);
}

main().catch((err) => toast(t("common.error", { msg: err.message }), { error: true }));
