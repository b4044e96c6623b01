// Health on the tile (issue 16): a degraded or offline camera's tile says so and why, in words an
// operator reads at a glance (黑屏 / 画面冻结 / 遮挡 / 偏色 / 离线), live from the /ws "health" topic, and
// the label goes once the camera recovers. The reasons are the health monitor's
// (videohub/health/diagnosis.py REASONS, and ingest's offline reasons).
import { api } from "/web/common/api.js";
import { registerStrings, t } from "/web/common/i18n.js";
import { LiveSocket } from "/web/common/ws.js";

registerStrings({
  "zh-CN": {
    "tilehealth.offline": "离线",
    "tilehealth.degraded": "异常",
    "tilehealth.black": "黑屏",
    "tilehealth.frozen": "画面冻结",
    "tilehealth.covered": "遮挡",
    "tilehealth.color_cast": "偏色",
    "tilehealth.dark": "画面过暗",
    "tilehealth.overexposed": "过曝",
    "tilehealth.blurred": "画面模糊",
    "tilehealth.low_fps": "帧率过低",
    "tilehealth.timeout": "连接超时",
    "tilehealth.refused": "连接被拒绝",
    "tilehealth.unreachable": "网络不可达",
    "tilehealth.auth_failed": "认证失败",
    "tilehealth.not_found": "地址不存在",
    "tilehealth.stalled": "码流中断",
    "tilehealth.no_video": "无视频",
    "tilehealth.no_packets": "无数据",
  },
  en: {
    "tilehealth.offline": "Offline",
    "tilehealth.degraded": "Degraded",
    "tilehealth.black": "Black picture",
    "tilehealth.frozen": "Frozen picture",
    "tilehealth.covered": "Covered",
    "tilehealth.color_cast": "Colour cast",
    "tilehealth.dark": "Too dark",
    "tilehealth.overexposed": "Overexposed",
    "tilehealth.blurred": "Blurred",
    "tilehealth.low_fps": "Low frame rate",
    "tilehealth.timeout": "Timeout",
    "tilehealth.refused": "Connection refused",
    "tilehealth.unreachable": "Unreachable",
    "tilehealth.auth_failed": "Authentication failed",
    "tilehealth.not_found": "Not found",
    "tilehealth.stalled": "Stream stalled",
    "tilehealth.no_video": "No video",
    "tilehealth.no_packets": "No data",
  },
});

function reasonText(reason) {
  const key = `tilehealth.${reason}`;
  const text = t(key);
  return text === key ? null : text;
}

// The tile's words for a health row {state, reasons}: null while online or unknown.
// Degraded: its reasons ("黑屏", "画面冻结 · 遮挡"); offline: "离线", with the reason when it is known.
export function healthLabel(row) {
  if (!row || (row.state !== "degraded" && row.state !== "offline")) return null;
  const reasons = (row.reasons || []).map(reasonText).filter(Boolean);
  if (row.state === "offline") return [t("tilehealth.offline"), ...reasons].join(" · ");
  return reasons.length ? reasons.join(" · ") : t("tilehealth.degraded");
}

// Health of the cameras that are degraded or offline: loaded once, then kept current from /ws health
// transitions (reloaded after a reconnect, for what was missed). `onChange(cameraId)` is called per
// change (null: everything may have changed).
export class WallHealth {
  constructor(onChange) {
    this.rows = new Map(); // camera id → {state, reasons}
    this.onChange = onChange;
    this.socket = new LiveSocket({
      topics: ["health"],
      onMessage: (msg) => {
        if (msg.type !== "health" || !msg.camera || !msg.new) return;
        this.rows.set(msg.camera, { state: msg.new, reasons: msg.reasons || [] });
        this.onChange(msg.camera);
      },
      onStatus: (status) => status === "open" && this.load(),
    });
  }

  async load() {
    let rows;
    try {
      // Only what a tile labels: a wall of 10,000 registered cameras need not load them all.
      const [degraded, offline] = await Promise.all([
        api.get("/api/health/cameras?state=degraded"),
        api.get("/api/health/cameras?state=offline"),
      ]);
      rows = [...degraded, ...offline];
    } catch {
      return; // health not running, or the store away: tiles show no health label meanwhile
    }
    const seen = new Set();
    for (const row of rows) {
      seen.add(row.camera);
      this.rows.set(row.camera, { state: row.state, reasons: row.reasons || [] });
    }
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    this.onChange(null);
  }

  label(cameraId) {
    return cameraId ? healthLabel(this.rows.get(cameraId)) : null;
  }

  state(cameraId) {
    const row = cameraId ? this.rows.get(cameraId) : null;
    return row ? row.state : null;
  }

  close() {
    this.socket.close();
  }
}
