// Parked events (推送暂存): what a webhook or channel (WeCom or DingTalk robot, mail) kept refusing,
// per channel, with re-send (one or all) and delete. Only maintenance staff and admins see this panel,
// and only when webhooks or channels are configured; the list is polled (parking is rare, and not
// pushed over /ws).
import { t } from "/web/common/i18n.js";
import { el, fmtTime } from "./dom.js";
import { canActOnAlerts } from "./alerts.js";

export class ParkedList {
  // request(method, path) → Promise<json>; cameraName(id) → display name; notify(text, isError).
  constructor({ panel, list, empty, request, user, cameraName, notify }) {
    this.panel = panel;
    this.list = list;
    this.empty = empty;
    this.request = request;
    this.cameraName = cameraName;
    this.notify = notify;
    this.enabled = canActOnAlerts(user);
    this.panel.hidden = !this.enabled;
    this.page = { items: [], counts: {} };
    this.busy = false;
  }

  async load() {
    if (!this.enabled) return;
    this.page = await this.request("GET", "/api/alerts/dead?limit=200");
    this.render();
  }

  render() {
    this.list.replaceChildren();
    const hooks = Object.keys(this.page.counts).sort();
    let total = 0;
    for (const hook of hooks) {
      const count = this.page.counts[hook];
      total += count;
      if (!count) continue;
      const items = this.page.items.filter((p) => p.hook === hook);
      const kind = (this.page.channels || {})[hook] || "webhook";
      const resendAll = el(
        "button",
        { type: "button", class: "resend-all", disabled: this.busy, onclick: () => this.resendAll(hook) },
        t("health.parked.resend_all"),
      );
      this.list.append(
        el(
          "li",
          { class: "hook", dataset: { hook, channel: kind } },
          el(
            "div",
            { class: "head" },
            el("span", { class: "channel" }, t(`health.parked.channel.${kind}`)),
            el("strong", { class: "hook-name" }, hook),
            el("span", { class: "count" }, t("health.parked.count", { n: count })),
            resendAll,
          ),
          el("ul", { class: "events" }, items.map((p) => this.item(p))),
        ),
      );
    }
    this.empty.hidden = total > 0;
    this.panel.hidden = !this.enabled || hooks.length === 0; // no webhook configured: nothing to show
  }

  item(p) {
    const what = `${t(`health.parked.event.${p.event}`)} · ${t(`health.alert.kind.${p.alert.kind}`)}`;
    const meta = [
      t("health.parked.attempts", { n: p.attempts }),
      p.last_error,
      t("health.parked.at", { time: fmtTime(p.parked_at) }),
    ];
    return el(
      "li",
      { class: "parked", dataset: { id: p.id, delivery: p.delivery, camera: p.alert.camera } },
      el(
        "div",
        { class: "head" },
        el("span", { class: "what" }, what),
        el("span", { class: "camera" }, this.cameraName(p.alert.camera)),
      ),
      el("div", { class: "meta" }, meta.join(" · ")),
      el(
        "div",
        { class: "actions" },
        el(
          "button",
          { type: "button", class: "resend", disabled: this.busy, onclick: () => this.resend(p) },
          t("health.parked.resend"),
        ),
        el(
          "button",
          { type: "button", class: "delete danger", disabled: this.busy, onclick: () => this.remove(p) },
          t("health.parked.delete"),
        ),
      ),
    );
  }

  async act(work) {
    this.busy = true;
    this.render();
    try {
      await work();
    } catch (err) {
      this.notify(t("health.parked.failed", { msg: err.message }), true);
    } finally {
      this.busy = false;
      await this.load().catch(() => this.render());
    }
  }

  path(hook, id) {
    return `/api/alerts/dead/${encodeURIComponent(hook)}/${encodeURIComponent(id)}`;
  }

  resend(p) {
    return this.act(async () => {
      const result = await this.request("POST", `${this.path(p.hook, p.id)}/resend`);
      if (result.failed) this.notify(t("health.parked.refused", { msg: result.failed.last_error }), true);
      else this.notify(t("health.parked.resent", { n: result.resent }));
    });
  }

  // The server sends a batch per call and stops at the first refusal: repeat while it makes progress.
  resendAll(hook) {
    return this.act(async () => {
      let sent = 0;
      let left = 0;
      for (;;) {
        const result = await this.request("POST", `/api/alerts/dead/${encodeURIComponent(hook)}/resend-all`);
        sent += result.resent;
        left = result.remaining;
        if (result.failed) {
          this.notify(t("health.parked.refused_after", { n: sent, msg: result.failed.last_error }), true);
          return;
        }
        if (!result.remaining || !result.resent) break;
      }
      // Stopped with events left and no refusal: a robot's rate limit (20 a minute); try again later.
      if (left) this.notify(t("health.parked.resent_later", { n: sent, left }));
      else this.notify(t("health.parked.resent", { n: sent }));
    });
  }

  remove(p) {
    if (!window.confirm(t("health.parked.confirm_delete"))) return Promise.resolve();
    return this.act(() => this.request("DELETE", this.path(p.hook, p.id)));
  }

  relabel() {
    this.render();
  }
}
