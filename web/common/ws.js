// The /ws client: authenticates with the first message (browsers cannot set headers on a WebSocket,
// and a token in the URL would reach access logs), subscribes to topics, reconnects with backoff.
import { redirectToLogin, token } from "/web/common/api.js";
import { onLangChange, registerStrings, t } from "/web/common/i18n.js";

registerStrings({
  "zh-CN": { "live.degraded": "存储服务暂时不可用：画面照常播放，更改暂时无法保存，恢复后自动同步" },
  en: { "live.degraded": "Storage is unavailable: video keeps playing; changes cannot be saved until it is back" },
});

// The server says when Redis is unreachable ({"type":"degraded","redis":"unreachable"}) and when it is
// back ("ok"): every page shows one banner meanwhile, so nobody mistakes a refused save for a bug.
function showDegraded(down) {
  let banner = document.getElementById("live-degraded");
  if (!banner && !down) return;
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "live-degraded";
    banner.setAttribute("role", "status");
    banner.style.cssText =
      "position:fixed;bottom:0;left:0;right:0;z-index:1000;padding:6px 12px;text-align:center;" +
      "background:#b45309;color:#fff;font-size:14px;pointer-events:none";
    document.body.appendChild(banner);
    onLangChange(() => {
      banner.textContent = t("live.degraded");
    });
  }
  banner.textContent = t("live.degraded");
  banner.hidden = !down;
  document.body.dataset.store = down ? "unreachable" : "ok";
}

export class LiveSocket {
  // topics: e.g. ["wall:main", "alerts", "health"]; onMessage(msg) gets every pushed JSON message;
  // onStatus(status) gets "connecting" | "open" | "closed".
  constructor({ topics = [], onMessage = () => {}, onStatus = () => {} } = {}) {
    this.topics = new Set(topics);
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.status = "connecting";
    this.attempts = 0;
    this.closed = false;
    this.socket = null;
    this.timer = null;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    this.setStatus("connecting");
    socket.onopen = () => {
      socket.sentToken = token();
      socket.send(JSON.stringify({ type: "auth", token: socket.sentToken }));
      socket.send(JSON.stringify({ type: "subscribe", topics: [...this.topics] }));
    };
    socket.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "ready") {
        showDegraded(false); // authenticated: the store answered just now
        this.attempts = 0;
        this.setStatus("open");
        return;
      }
      if (msg.type === "degraded") showDegraded(msg.redis !== "ok");
      if (msg.type === "error" && msg.status === 503) showDegraded(true); // could not even authenticate
      if (msg.type === "error" && msg.status === 401) {
        this.close();
        redirectToLogin();
        return;
      }
      this.onMessage(msg);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed) return;
      // 4401: the token expired or was revoked. A page that renewed its token meanwhile reconnects
      // with the new one; otherwise it is time to log in again.
      if (event.code === 4401 && token() && token() !== socket.sentToken) {
        this.connect();
        return;
      }
      if (event.code === 4401) {
        this.close();
        redirectToLogin();
        return;
      }
      this.setStatus("closed");
      this.attempts += 1;
      const delay = Math.min(10000, 500 * 2 ** Math.min(this.attempts, 5)) * (0.75 + Math.random() * 0.5);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
  }

  subscribe(topics) {
    for (const topic of topics) this.topics.add(topic);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "subscribe", topics }));
    }
  }

  unsubscribe(topics) {
    for (const topic of topics) this.topics.delete(topic);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "unsubscribe", topics }));
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }
}
