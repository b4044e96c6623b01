// Counters per state and the camera table (filter by line, state and text). Rows are keyed by camera
// id and updated in place, so thumbnails and focus survive the periodic refresh.
import { t } from "/web/common/i18n.js";
import { el, fmtNumber, fmtPct, fmtTime, lineName, reasonText } from "./dom.js";
import { sparkline } from "./sparkline.js";

export const STATES = ["online", "degraded", "offline", "unknown"];
// Rows drawn at once. Worst come first, so a large registry (thousands of on-demand cameras) shows
// its problems without drawing every healthy camera; the filters reach the rest.
const MAX_ROWS = 200;

export class CameraTable {
  constructor({ counters, filters, body, empty, more, thumbs, history, lines, onOpen }) {
    this.countersRoot = counters;
    this.filters = filters; // {line: <select>, state: <select>, search: <input>}
    this.body = body; // <tbody>
    this.empty = empty;
    this.more = more;
    this.thumbs = thumbs;
    this.history = history;
    this.lines = lines; // Map line id → {name_zh, name_en, color}
    this.onOpen = onOpen;
    this.rows = new Map(); // camera id → health row from the API
    this.trs = new Map(); // camera id → <tr>
    for (const input of Object.values(filters)) input.addEventListener("input", () => this.render());
    this.buildCounters();
  }

  buildCounters() {
    this.countersRoot.replaceChildren(
      ...STATES.map((state) =>
        el(
          "button",
          {
            class: `counter state-${state}`,
            dataset: { state },
            type: "button",
            title: t(`state.${state}`),
            onclick: () => {
              this.filters.state.value = this.filters.state.value === state ? "" : state;
              this.render();
            },
          },
          el("span", { class: "count" }, "0"),
          el("span", { class: "label", dataset: { i18n: `state.${state}` } }, t(`state.${state}`)),
        ),
      ),
    );
  }

  fillLineFilter() {
    const select = this.filters.line;
    const current = select.value;
    select.replaceChildren(
      el("option", { value: "" }, t("health.filter.all")),
      ...[...this.lines.keys()].map((id) => el("option", { value: id }, lineName(id, this.lines))),
    );
    select.value = current;
  }

  fillStateFilter() {
    const select = this.filters.state;
    const current = select.value;
    select.replaceChildren(
      el("option", { value: "" }, t("health.filter.all")),
      ...STATES.map((s) => el("option", { value: s }, t(`state.${s}`))),
    );
    select.value = current;
  }

  // Rows from GET /api/health/cameras (all the cameras this user sees).
  update(rows) {
    const ids = new Set(rows.map((r) => r.camera));
    for (const id of [...this.rows.keys()]) {
      if (!ids.has(id)) {
        this.rows.delete(id);
        const tr = this.trs.get(id);
        if (tr) this.dropRow(id, tr);
      }
    }
    for (const row of rows) this.rows.set(row.camera, row);
    this.render();
  }

  // A transition pushed over /ws: show it at once, the next poll fills in the numbers.
  applyTransition(tr) {
    const row = this.rows.get(tr.camera);
    if (!row) return false;
    row.state = tr.new;
    row.reasons = tr.reasons || [];
    row.since = tr.at;
    if (tr.new === "online") this.thumbs.refresh(tr.camera);
    this.render();
    return true;
  }

  matches(row) {
    const { line, state, search } = this.filters;
    if (line.value && row.line !== line.value) return false;
    if (state.value && row.state !== state.value) return false;
    const q = search.value.trim().toLowerCase();
    return !q || row.name.toLowerCase().includes(q) || row.camera.toLowerCase().includes(q);
  }

  render() {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    const lineFilter = this.filters.line.value;
    for (const row of this.rows.values()) {
      if (!lineFilter || row.line === lineFilter) counts[row.state] = (counts[row.state] || 0) + 1;
    }
    for (const button of this.countersRoot.querySelectorAll(".counter")) {
      button.querySelector(".count").textContent = String(counts[button.dataset.state]);
      button.classList.toggle("active", this.filters.state.value === button.dataset.state);
    }
    // Worst first: offline, degraded, unknown, online; then by name.
    const order = { offline: 0, degraded: 1, unknown: 2, online: 3 };
    const matching = [...this.rows.values()]
      .filter((row) => this.matches(row))
      .sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name, "zh-CN"));
    const shown = matching.slice(0, MAX_ROWS);
    this.more.hidden = matching.length <= shown.length;
    this.more.textContent = t("health.more", { shown: shown.length, total: matching.length });
    const wanted = new Set(shown.map((r) => r.camera));
    for (const [id, tr] of [...this.trs]) if (!wanted.has(id)) this.dropRow(id, tr);
    let previous = null;
    for (const row of shown) {
      let tr = this.trs.get(row.camera);
      if (!tr) {
        tr = this.buildRow(row.camera);
        this.trs.set(row.camera, tr);
      }
      this.fillRow(tr, row);
      const expected = previous ? previous.nextSibling : this.body.firstChild;
      if (expected !== tr) this.body.insertBefore(tr, expected);
      previous = tr;
    }
    this.empty.hidden = shown.length > 0;
  }

  dropRow(id, tr) {
    this.thumbs.forget(tr.querySelector("img.thumb"));
    tr.remove();
    this.trs.delete(id);
  }

  buildRow(camera) {
    const img = el("img", { class: "thumb", alt: "", width: 96, height: 54, decoding: "async" });
    this.thumbs.watch(img, camera);
    const tr = el(
      "tr",
      { dataset: { camera } },
      el("td", { class: "c-thumb" }, img),
      el(
        "td",
        { class: "c-camera" },
        el("button", { type: "button", class: "link open", onclick: () => this.onOpen(camera) }),
        el("div", { class: "id" }, camera),
      ),
      el("td", { class: "c-line" }),
      el("td", { class: "c-state" }),
      el("td", { class: "c-fps" }),
      el("td", { class: "c-bitrate num" }),
      el("td", { class: "c-uptime num" }),
      el("td", { class: "c-error" }),
    );
    return tr;
  }

  fillRow(tr, row) {
    tr.dataset.state = row.state;
    tr.className = `state-${row.state}`;
    tr.querySelector(".open").textContent = row.name;
    const info = this.lines.get(row.line);
    const line = tr.querySelector(".c-line");
    line.replaceChildren(
      el("span", { class: "line-dot", style: info ? `background:${info.color}` : "" }),
      lineName(row.line, this.lines),
    );
    const reasons = row.flapping ? [...row.reasons, "flapping"] : row.reasons;
    const state = [el("span", { class: `badge state-${row.state}` }, t(`state.${row.state}`))];
    if (reasons.length) state.push(el("div", { class: "reasons" }, reasons.map(reasonText).join("、")));
    if (row.since) state.push(el("div", { class: "since" }, t("health.since", { time: fmtTime(row.since) })));
    tr.querySelector(".c-state").replaceChildren(...state);
    tr.querySelector(".c-fps").replaceChildren(
      el("span", { class: "num" }, fmtNumber(row.fps)),
      sparkline(this.history.get(row.camera)),
    );
    tr.querySelector(".c-bitrate").textContent =
      row.bitrate_kbps === null || row.bitrate_kbps === undefined ? "—" : `${Math.round(row.bitrate_kbps)} kb/s`;
    tr.querySelector(".c-uptime").textContent = fmtPct(row.uptime_24h_pct);
    const error = tr.querySelector(".c-error");
    error.textContent = row.last_error || "";
    error.title = row.last_error || "";
  }

  relabel() {
    this.fillLineFilter();
    this.fillStateFilter();
    this.buildCounters();
    for (const [id, tr] of [...this.trs]) this.dropRow(id, tr);
    this.render();
  }
}
