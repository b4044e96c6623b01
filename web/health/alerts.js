// The active alert list (open and acknowledged) with acknowledge/resolve, kept live from /ws, and the
// cue for a new alert: the item flashes, a counter badge counts the unseen ones, a short beep sounds.
import { t } from "/web/common/i18n.js";
import { el, fmtTime, lineName, reasonText } from "./dom.js";

// `me` is GET /api/auth/me: the server says what the role may do (policy.ALERT_ACTORS).
export function canActOnAlerts(me) {
  return Boolean(me && me.rights && me.rights.act_on_alerts);
}

// A short two-tone beep. Browsers keep audio suspended until the user has interacted with the page;
// then the beep is silent, never an error (a control-room page must keep running either way).
export class Beeper {
  constructor() {
    this.ctx = null;
    const unlock = () => {
      this.context()?.resume?.().catch(() => {});
    };
    document.addEventListener("pointerdown", unlock, { once: true, capture: true });
    document.addEventListener("keydown", unlock, { once: true, capture: true });
  }

  context() {
    if (this.ctx) return this.ctx;
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      this.ctx = Ctx ? new Ctx() : null;
    } catch {
      this.ctx = null;
    }
    return this.ctx;
  }

  beep() {
    try {
      const ctx = this.context();
      if (!ctx || ctx.state !== "running") return false;
      const gain = ctx.createGain();
      gain.gain.value = 0.08;
      gain.connect(ctx.destination);
      [880, 660].forEach((freq, i) => {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(ctx.currentTime + i * 0.15);
        osc.stop(ctx.currentTime + i * 0.15 + 0.12);
      });
      return true;
    } catch {
      return false;
    }
  }
}

export class AlertList {
  // request(method, path, body) → Promise<json>; cameraName(id) → display name; lines: Map of lines.
  constructor({ list, empty, badge, readonly, request, user, cameraName, lines, onOpen, onError }) {
    this.list = list;
    this.empty = empty;
    this.badge = badge;
    this.readonly = readonly;
    this.request = request;
    this.canAct = canActOnAlerts(user);
    this.cameraName = cameraName;
    this.lines = lines;
    this.onOpen = onOpen;
    this.onError = onError;
    this.alerts = new Map(); // id → alert
    this.loaded = false;
    this.resolved = new Set(); // ids seen resolved: terminal, so an older list answer cannot revive them
    this.items = new Map(); // id → <li>
    this.unseen = new Set();
    this.beeper = new Beeper();
    this.readonly.hidden = this.canAct;
    this.badge.addEventListener("click", () => this.markSeen());
  }

  // The full list (at start, when /ws reconnects, and polled while it is down). Merged, not
  // replaced: an event pushed while the request was under way is newer than its answer. An open
  // alert this page had not seen yet (raised while /ws was down) still gets the cue.
  async load() {
    const asked = Date.now();
    const page = await this.request("GET", "/api/alerts?state=active&limit=500");
    const fetched = new Map(page.items.map((a) => [a.id, a]));
    const fresh = [];
    for (const [id, alert] of fetched) {
      if (this.resolved.has(id)) continue;
      const known = this.alerts.get(id);
      if (known && Date.parse(known.updated_at) > Date.parse(alert.updated_at)) continue;
      if (!known && this.loaded && alert.state === "open") fresh.push(id);
      this.alerts.set(id, alert);
    }
    for (const [id, alert] of [...this.alerts]) {
      if (!fetched.has(id) && Date.parse(alert.updated_at) < asked) {
        this.alerts.delete(id);
        this.unseen.delete(id);
      }
    }
    for (const id of fresh) this.unseen.add(id);
    this.loaded = true;
    this.render();
    if (fresh.length) this.cue(fresh[0]);
  }

  // One pushed message from /ws: {type: "alert", event: "opened"|"updated"|"acknowledged"|"resolved", alert}.
  onEvent(event, alert) {
    if (!alert || !alert.id) return;
    const isNew = !this.alerts.has(alert.id);
    if (alert.state === "resolved") {
      this.resolved.add(alert.id);
      if (this.resolved.size > 500) this.resolved.delete(this.resolved.values().next().value);
      this.alerts.delete(alert.id);
      this.unseen.delete(alert.id);
    } else {
      this.alerts.set(alert.id, alert);
    }
    if (isNew && alert.state !== "resolved" && (event === "opened" || event === undefined)) {
      this.unseen.add(alert.id);
      this.render();
      this.cue(alert.id);
    } else {
      this.render();
    }
  }

  cue(id) {
    const li = this.items.get(id);
    if (li) {
      li.classList.remove("flash");
      void li.offsetWidth; // restart the animation for a second alert on the same item
      li.classList.add("flash", "unseen");
    }
    this.beeper.beep();
  }

  markSeen() {
    this.unseen.clear();
    for (const li of this.items.values()) li.classList.remove("unseen");
    this.renderBadge();
  }

  renderBadge() {
    const n = this.unseen.size;
    this.badge.textContent = String(n);
    this.badge.hidden = n === 0;
    this.badge.title = t("health.alerts.new");
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = n ? `(${n}) ${base}` : base;
  }

  render() {
    const order = [...this.alerts.values()].sort((a, b) => {
      // Open before acknowledged, newest first within each.
      if (a.state !== b.state) return a.state === "open" ? -1 : 1;
      return b.opened_at.localeCompare(a.opened_at);
    });
    const wanted = new Set(order.map((a) => a.id));
    for (const [id, li] of [...this.items]) {
      if (!wanted.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    let previous = null;
    for (const alert of order) {
      let li = this.items.get(alert.id);
      if (!li) {
        li = this.buildItem(alert);
        this.items.set(alert.id, li);
      }
      this.fillItem(li, alert);
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== li) this.list.insertBefore(li, expected);
      previous = li;
    }
    this.empty.hidden = order.length > 0;
    this.renderBadge();
  }

  buildItem(alert) {
    const note = el("input", {
      class: "note",
      type: "text",
      maxlength: 500,
      placeholder: t("health.alert.note"),
      disabled: !this.canAct,
    });
    const ack = el(
      "button",
      { type: "button", class: "ack", disabled: !this.canAct, onclick: () => this.act(alert.id, "ack", note) },
      t("health.alert.ack"),
    );
    const resolve = el(
      "button",
      {
        type: "button",
        class: "resolve danger",
        disabled: !this.canAct,
        onclick: () => this.act(alert.id, "resolve", note),
      },
      t("health.alert.resolve"),
    );
    return el(
      "li",
      { class: "alert", dataset: { alertId: alert.id, camera: alert.camera } },
      el(
        "div",
        { class: "head" },
        el("span", { class: "kind" }),
        el("button", { type: "button", class: "link camera", onclick: () => this.onOpen(alert.camera) }),
        el("span", { class: "line" }),
        el("span", { class: "state-chip" }),
      ),
      el("div", { class: "meta" }),
      el("div", { class: "actions" }, note, ack, resolve),
    );
  }

  fillItem(li, alert) {
    li.dataset.state = alert.state;
    li.dataset.kind = alert.kind;
    li.classList.toggle("unseen", this.unseen.has(alert.id));
    li.querySelector(".kind").textContent = t(`health.alert.kind.${alert.kind}`);
    li.querySelector(".kind").className = `kind kind-${alert.kind}`;
    li.querySelector(".camera").textContent = this.cameraName(alert.camera);
    li.querySelector(".line").textContent = lineName(alert.line, this.lines);
    const chip = li.querySelector(".state-chip");
    chip.textContent = t(`health.alert.state.${alert.state}`);
    chip.className = `state-chip alert-${alert.state}`;
    const meta = [t("health.alert.opened", { time: fmtTime(alert.opened_at) })];
    if (alert.reasons.length) meta.unshift(alert.reasons.map(reasonText).join("、"));
    if (alert.acked_by) meta.push(t("health.alert.acked", { who: alert.acked_by, time: fmtTime(alert.acked_at) }));
    if (alert.ack_note) meta.push(`“${alert.ack_note}”`);
    li.querySelector(".meta").textContent = meta.join(" · ");
    li.querySelector(".ack").hidden = alert.state !== "open";
  }

  async act(id, action, noteInput) {
    const note = noteInput.value.trim();
    const buttons = this.items.get(id)?.querySelectorAll("button.ack, button.resolve") || [];
    buttons.forEach((b) => (b.disabled = true));
    try {
      const updated = await this.request("POST", `/api/alerts/${encodeURIComponent(id)}/${action}`, note ? { note } : {});
      noteInput.value = "";
      this.unseen.delete(id);
      this.onEvent(action === "ack" ? "acknowledged" : "resolved", updated);
    } catch (err) {
      this.onError(t("health.alert.failed", { msg: err.message }));
    } finally {
      buttons.forEach((b) => (b.disabled = !this.canAct));
    }
  }

  relabel() {
    for (const li of this.items.values()) li.remove();
    this.items.clear();
    this.render();
  }
}
