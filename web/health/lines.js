// Availability per line (在线率) as horizontal bars for 1 h / 24 h / 7 d, with MTTR and open alerts.
import { t } from "/web/common/i18n.js";
import { el, fmtDuration, fmtPct, lineName, svg } from "./dom.js";
import { STATES } from "./cameras.js";

export const WINDOWS = ["1h", "24h", "7d"];
const BAR_W = 200;
const LABEL_W = 100;
const BAR_H = 10;

function bars(row) {
  const height = WINDOWS.length * (BAR_H + 4);
  const root = svg("svg", { class: "avail", width: BAR_W + LABEL_W, height, viewBox: `0 0 ${BAR_W + LABEL_W} ${height}` });
  WINDOWS.forEach((name, i) => {
    const y = i * (BAR_H + 4);
    const a = row.availability[name] || {};
    const pct = a.availability_pct;
    root.append(svg("rect", { class: "track", x: 0, y, width: BAR_W, height: BAR_H, rx: 2 }));
    if (pct !== null && pct !== undefined) {
      const level = pct >= 99 ? "good" : pct >= 90 ? "fair" : "poor";
      root.append(
        svg(
          "rect",
          { class: `bar w-${name} ${level}`, x: 0, y, width: (BAR_W * pct) / 100, height: BAR_H, rx: 2 },
          svg("title", {}, `${t(`health.window.${name}`)}: ${fmtPct(pct)}`),
        ),
      );
    }
    root.append(
      svg("text", { x: BAR_W + 6, y: y + BAR_H - 1 }, `${t(`health.window.${name}`)} ${fmtPct(pct)}`),
    );
  });
  return root;
}

export function renderLines(root, rows, lines) {
  if (!rows.length) {
    root.replaceChildren(el("p", { class: "muted" }, t("health.lines.none")));
    return;
  }
  root.replaceChildren(
    ...rows.map((row) => {
      const info = lines.get(row.line);
      const mttr = row.availability["24h"]?.mttr_seconds;
      return el(
        "div",
        { class: "line-row", dataset: { line: row.line } },
        el(
          "div",
          { class: "line-name" },
          el("span", { class: "line-dot", style: info ? `background:${info.color}` : "" }),
          lineName(row.line, lines),
          el("span", { class: "muted" }, ` (${row.cameras})`),
        ),
        bars(row),
        el(
          "div",
          { class: "line-meta" },
          ...STATES.filter((s) => row.states[s]).map((s) =>
            el("span", { class: `badge state-${s}` }, `${t(`state.${s}`)} ${row.states[s]}`),
          ),
          row.open_alerts ? el("span", { class: "badge alerts" }, `${t("health.alerts")} ${row.open_alerts}`) : null,
          mttr !== null && mttr !== undefined
            ? el("span", { class: "muted" }, t("health.lines.mttr", { value: fmtDuration(mttr) }))
            : null,
        ),
      );
    }),
  );
}
