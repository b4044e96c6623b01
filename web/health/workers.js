// Workers (工作进程): the processes serving this service, from GET /api/workers, polled. A worker
// that stops answering drops out of that list once its heartbeat expires: the panel keeps showing it,
// marked lost (失联) with the age of its last heartbeat, until it is back. A line admin may not read
// the list (403): the panel stays hidden.
import { t } from "/web/common/i18n.js";
import { el, fmtNumber } from "./dom.js";

export class WorkersPanel {
  // request(method, path) → Promise<json>
  constructor({ panel, body, request }) {
    this.panel = panel;
    this.body = body;
    this.request = request;
    this.seen = new Map(); // id → { worker, at: Date.now() when last listed }
    this.enabled = true;
  }

  async load() {
    if (!this.enabled) return;
    let rows;
    try {
      rows = (await this.request("GET", "/api/workers")).workers;
    } catch (err) {
      if (err && err.status === 403) {
        this.enabled = false;
        this.panel.hidden = true;
        return;
      }
      throw err;
    }
    const now = Date.now();
    for (const worker of rows) this.seen.set(worker.id, { worker, at: now });
    this.listed = new Set(rows.map((w) => w.id));
    this.panel.hidden = false;
    this.render();
  }

  render() {
    const now = Date.now();
    const rows = [...this.seen.values()].sort((a, b) => a.worker.id.localeCompare(b.worker.id));
    this.body.replaceChildren(
      ...rows.map(({ worker, at }) => {
        const gone = !this.listed || !this.listed.has(worker.id);
        const lost = gone || worker.state === "lost";
        const age = worker.heartbeat_age_seconds + (gone ? (now - at) / 1000 : 0);
        const state = lost ? "lost" : "live";
        return el(
          "tr",
          { class: `worker ${state}`, dataset: { worker: worker.id, state } },
          el("td", { class: "id" }, worker.id, worker.me ? el("span", { class: "muted" }, ` (${t("health.workers.me")})`) : null),
          el("td", {}, worker.host),
          el("td", { class: "num" }, lost ? "—" : worker.cameras),
          el("td", { class: "num" }, lost ? "—" : worker.viewers),
          el("td", { class: "num" }, lost ? "—" : `${fmtNumber(worker.cpu)} %`),
          el("td", { class: "num" }, t("health.ago", { n: Math.round(age) })),
          el("td", {}, el("span", { class: `badge worker-${state}` }, t(`health.workers.state.${state}`))),
        );
      }),
    );
  }

  relabel() {
    this.render();
  }
}
