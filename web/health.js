// The health page (运维监测) for maintenance staff: counters per state, the camera table with
// thumbnails and fps sparklines, the active alerts with acknowledge/resolve, the webhooks' and channels' parked
// events with re-send, availability per line and a camera detail view. Numbers are polled; state
// changes and alerts arrive live over /ws.
import "/web/health/strings.js";
import { api, apiFetch, requireLogin } from "/web/common/api.js";
import { applyI18n, onLangChange, t } from "/web/common/i18n.js";
import { mountNav } from "/web/common/nav.js";
import { toast } from "/web/common/toast.js";
import { LiveSocket } from "/web/common/ws.js";
import { AlertList } from "/web/health/alerts.js";
import { CameraTable } from "/web/health/cameras.js";
import { CameraDetail } from "/web/health/detail.js";
import { fmtTime } from "/web/health/dom.js";
import { renderLines } from "/web/health/lines.js";
import { ParkedList } from "/web/health/parked.js";
import { FpsHistory } from "/web/health/sparkline.js";
import { Thumbnails } from "/web/health/thumbs.js";
import { WorkersPanel } from "/web/health/workers.js";

const CAMERAS_MS = 3000; // fps sparkline resolution; the state itself also comes over /ws
const CAMERAS_LARGE_MS = 15000; // for a large registry the list is heavy: poll it less often
const LARGE = 500;
const LINES_MS = 30000; // availability moves slowly
const ALERTS_FALLBACK_MS = 10000; // only while /ws is down
const PARKED_MS = 15000; // parked webhook and channel events: rare, and not pushed over /ws
const WORKERS_MS = 2000; // workers beat every second; a lost one shows within a poll of its TTL

requireLogin();
const user = await api.get("/api/auth/me"); // the user and what their role may do
mountNav("health");
const $ = (selector) => document.querySelector(selector);

function request(method, path, body) {
  if (method === "GET") return api.get(path);
  return method === "DELETE" ? api.del(path) : api.post(path, body);
}

// A snapshot as a Blob, or null when the camera has no picture now (503 with a reason).
async function fetchBlob(path) {
  const response = await apiFetch(path);
  return response.ok ? response.blob() : null;
}

function report(err) {
  if (err && err.status === 401) return; // api.js is already taking the tab to /login
  toast(typeof err === "string" ? err : t("common.error", { msg: err.message }), { error: true });
}

const lines = new Map();
const history = new FpsHistory();
const thumbs = new Thumbnails(fetchBlob);
const detail = new CameraDetail({ dialog: $("#detail"), request, fetchBlob, lines });
const table = new CameraTable({
  counters: $("#counters"),
  filters: { line: $("#filter-line"), state: $("#filter-state"), search: $("#filter-search") },
  body: $("#cameras tbody"),
  empty: $("#cameras-empty"),
  more: $("#cameras-more"),
  thumbs,
  history,
  lines,
  onOpen: (camera) => detail.open(camera),
});
const alerts = new AlertList({
  list: $("#alert-list"),
  empty: $("#alerts-empty"),
  badge: $("#alert-badge"),
  readonly: $("#alerts-readonly"),
  request,
  user,
  cameraName: (id) => table.rows.get(id)?.name || id,
  lines,
  onOpen: (camera) => detail.open(camera),
  onError: report,
});

const parked = new ParkedList({
  panel: $("#parked-panel"),
  list: $("#parked-list"),
  empty: $("#parked-empty"),
  request,
  user,
  cameraName: (id) => table.rows.get(id)?.name || id,
  notify: (text, error) => toast(text, { error }),
});

const workers = new WorkersPanel({ panel: $("#workers-panel"), body: $("#workers tbody"), request });

async function pollCameras() {
  const rows = await request("GET", "/api/health/cameras");
  history.add(rows);
  table.update(rows);
  $("#updated").textContent = t("health.updated", { time: fmtTime(Date.now() / 1000) });
}

let lineRows = [];
async function pollLines() {
  lineRows = await request("GET", "/api/health/lines");
  renderLines($("#lines"), lineRows, lines);
}

async function loadLines() {
  for (const line of await request("GET", "/api/lines")) lines.set(line.id, line);
  table.fillLineFilter();
  table.fillStateFilter();
}

// Repeats fn every ms (a number, or a function giving it), never two at once, and survives errors
// (reported once per streak).
function every(ms, fn) {
  const delay = () => (typeof ms === "function" ? ms() : ms);
  let failing = false;
  const run = async () => {
    try {
      await fn();
      failing = false;
    } catch (err) {
      if (!failing) report(err);
      failing = true;
    }
    setTimeout(run, delay());
  };
  setTimeout(run, delay());
}

let liveOpen = false;
function onLive(msg) {
  if (msg.type === "alert") {
    alerts.onEvent(msg.event, msg.alert);
    if (msg.event === "opened" || msg.event === "resolved") pollLines().catch(() => {});
  } else if (msg.type === "health") {
    const tr = msg.transition || msg;
    if (tr.camera && tr.new) {
      table.applyTransition(tr);
      detail.touched(tr.camera);
    }
  }
}

function onLiveStatus(status) {
  liveOpen = status === "open";
  document.body.dataset.live = status;
  $("#live-off").hidden = status !== "closed";
  // (Re)connected: fetch what was missed while the socket was down.
  if (liveOpen) alerts.load().catch(report);
}

function relabel() {
  applyI18n();
  document.title = `${t("nav.health")} · ${t("app.title")}`;
  table.relabel();
  alerts.relabel();
  parked.relabel();
  workers.relabel();
  renderLines($("#lines"), lineRows, lines);
  detail.render();
}

async function start() {
  applyI18n();
  onLangChange(relabel);
  try {
    await loadLines();
    // The cameras first: the alert and parked lists name each camera from the table.
    await Promise.all([pollCameras(), pollLines()]);
    await Promise.all([alerts.load(), parked.load(), workers.load()]);
  } catch (err) {
    report(err);
  }
  document.body.dataset.ready = "1";
  new LiveSocket({ topics: ["alerts", "health"], onMessage: onLive, onStatus: onLiveStatus });
  every(() => (table.rows.size > LARGE ? CAMERAS_LARGE_MS : CAMERAS_MS), pollCameras);
  every(LINES_MS, pollLines);
  every(PARKED_MS, () => parked.load());
  every(WORKERS_MS, () => workers.load());
  every(ALERTS_FALLBACK_MS, async () => {
    if (!liveOpen) await alerts.load();
  });
}

start();
