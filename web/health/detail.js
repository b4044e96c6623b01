// One camera's detail (GET /api/cameras/{id}/health): state and reasons, stream numbers, the picture
// checks with their measured values, availability per window and the event timeline of transitions.
import { t } from "/web/common/i18n.js";
import { el, fmtDuration, fmtNumber, fmtPct, fmtTime, lineName, reasonText, svg } from "./dom.js";
import { WINDOWS } from "./lines.js";

const REFRESH_MS = 5000;
const BAND_SECONDS = 24 * 3600;

// The last 24 h as coloured segments, one per state run.
function band(transitions, now) {
  const width = 600;
  const height = 14;
  const start = now - BAND_SECONDS;
  const root = svg("svg", { class: "band", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const sorted = [...transitions].sort((a, b) => a.at - b.at);
  const before = sorted.filter((tr) => tr.at <= start).pop();
  let state = before ? before.new : sorted.length ? sorted.find((tr) => tr.at > start)?.old || "unknown" : "unknown";
  let at = start;
  const x = (time) => ((time - start) / BAND_SECONDS) * width;
  for (const tr of sorted.filter((s) => s.at > start)) {
    root.append(svg("rect", { class: `seg state-${state}`, x: x(at), y: 0, width: Math.max(0, x(tr.at) - x(at)), height }));
    state = tr.new;
    at = tr.at;
  }
  root.append(svg("rect", { class: `seg state-${state}`, x: x(at), y: 0, width: Math.max(0, width - x(at)), height }));
  return root;
}

export class CameraDetail {
  constructor({ dialog, request, fetchBlob, lines }) {
    this.dialog = dialog;
    this.request = request;
    this.fetchBlob = fetchBlob;
    this.lines = lines;
    this.camera = null;
    this.data = null;
    this.timer = null;
    this.picture = null;
    dialog.addEventListener("close", () => this.stop());
  }

  async open(camera) {
    this.stop();
    this.camera = camera;
    this.data = null;
    this.dialog.dataset.camera = camera;
    this.dialog.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
    if (!this.dialog.open) this.dialog.showModal();
    await Promise.all([this.refresh(), this.loadPicture()]);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.camera = null;
    if (this.picture) URL.revokeObjectURL(this.picture);
    this.picture = null;
  }

  async loadPicture() {
    const camera = this.camera;
    const blob = await this.fetchBlob(`/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg`).catch(() => null);
    if (camera !== this.camera || !blob) return;
    this.picture = URL.createObjectURL(blob);
    this.render();
  }

  // Called for a pushed transition: refresh now if it is about the camera on screen.
  touched(camera) {
    if (camera === this.camera) this.refresh();
  }

  async refresh() {
    const camera = this.camera;
    if (!camera) return;
    try {
      const data = await this.request("GET", `/api/cameras/${encodeURIComponent(camera)}/health`);
      if (camera !== this.camera) return;
      this.data = data;
    } catch (err) {
      if (camera !== this.camera) return;
      this.dialog.replaceChildren(el("p", { class: "error" }, t("common.error", { msg: err.message })), this.closeButton());
      return;
    }
    this.render();
  }

  closeButton() {
    return el("button", { type: "button", class: "close", onclick: () => this.dialog.close() }, t("common.close"));
  }

  render() {
    const d = this.data;
    if (!d) return;
    const reasons = d.flapping ? [...d.reasons, "flapping"] : d.reasons;
    const now = Date.now() / 1000;
    this.dialog.dataset.state = d.state;
    this.dialog.replaceChildren(
      el(
        "header",
        {},
        el("h2", {}, d.name),
        el("span", { class: `badge state-${d.state}`, dataset: { testid: "detail-state" } }, t(`state.${d.state}`)),
        el("span", { class: "muted" }, `${d.camera} · ${lineName(d.line, this.lines)} · ${t(`health.detail.mode.${d.mode}`)}`),
        el("span", { class: "spacer" }),
        this.closeButton(),
      ),
      el(
        "div",
        { class: "detail-top" },
        this.picture ? el("img", { class: "picture", src: this.picture, alt: "" }) : el("div", { class: "picture none" }, t("health.no_picture")),
        el(
          "dl",
          { class: "facts" },
          el("dt", {}, t("health.detail.reasons")),
          el("dd", {}, reasons.length ? reasons.map(reasonText).join("、") : "—"),
          el("dt", {}, t("health.col.fps")),
          el("dd", {}, fmtNumber(d.fps)),
          el("dt", {}, t("health.col.bitrate")),
          el("dd", {}, d.bitrate_kbps === null ? "—" : `${Math.round(d.bitrate_kbps)} kb/s`),
          el("dt", {}, t("health.detail.last_packet")),
          el("dd", {}, d.last_packet_age === null ? "—" : t("health.ago", { n: d.last_packet_age.toFixed(1) })),
          el("dt", {}, t("health.detail.reconnects")),
          el("dd", {}, String(d.reconnects)),
          el("dt", {}, t("health.detail.viewers")),
          el("dd", {}, String(d.viewers)),
          el("dt", {}, t("health.col.error")),
          el("dd", { class: "wrap" }, d.last_error || "—"),
        ),
      ),
      el("h3", {}, t("health.detail.checks")),
      this.checks(d.diagnosis),
      el("h3", {}, t("health.detail.availability")),
      this.availability(d.availability),
      el("h3", {}, t("health.detail.timeline")),
      band(d.transitions, now),
      el("div", { class: "band-axis muted" }, el("span", {}, "-24 h"), el("span", {}, "-12 h"), el("span", {}, t("health.detail.now"))),
      this.timeline(d.transitions),
    );
  }

  checks(diagnosis) {
    if (!diagnosis || !diagnosis.checks?.length) return el("p", { class: "muted" }, t("health.detail.no_checks"));
    return el(
      "table",
      { class: "vh-table checks" },
      el(
        "tr",
        {},
        ["check", "value", "limit", "result"].map((k) => el("th", {}, t(`health.detail.${k}`))),
      ),
      diagnosis.checks.map((c) =>
        el(
          "tr",
          { class: c.failed ? "failed" : "" },
          el("td", {}, reasonText(c.name)),
          el("td", { class: "num" }, fmtNumber(c.value, 2)),
          el("td", { class: "num" }, fmtNumber(c.limit, 2)),
          el("td", {}, c.failed ? t("health.detail.fail") : t("health.detail.pass"), c.note ? el("span", { class: "muted" }, ` (${c.note})`) : null),
        ),
      ),
    );
  }

  availability(windows) {
    return el(
      "table",
      { class: "vh-table windows" },
      el("tr", {}, el("th", {}), WINDOWS.map((w) => el("th", {}, t(`health.window.${w}`)))),
      [
        ["avail", (a) => fmtPct(a.availability_pct)],
        ["healthy", (a) => fmtPct(a.healthy_pct)],
        ["mttr", (a) => fmtDuration(a.mttr_seconds)],
        ["incidents", (a) => String(a.incidents)],
      ].map(([key, fmt]) =>
        el("tr", {}, el("th", {}, t(`health.detail.${key}`)), WINDOWS.map((w) => el("td", { class: "num" }, fmt(windows[w] || {})))),
      ),
    );
  }

  timeline(transitions) {
    if (!transitions.length) return el("p", { class: "muted" }, t("health.detail.no_events"));
    const sorted = [...transitions].sort((a, b) => b.at - a.at);
    return el(
      "ol",
      { class: "timeline" },
      sorted.map((tr) =>
        el(
          "li",
          { dataset: { state: tr.new } },
          el("span", { class: `dot ${tr.new}` }),
          el("time", {}, fmtTime(tr.at)),
          el("span", {}, `${t(`state.${tr.old}`)} → `),
          el("strong", { class: `state-${tr.new}` }, t(`state.${tr.new}`)),
          tr.reasons.length ? el("span", { class: "muted" }, ` ${tr.reasons.map(reasonText).join("、")}`) : null,
        ),
      ),
    );
  }
}
