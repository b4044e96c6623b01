// FPS history kept in the browser (the API reports only the current fps) and drawn as a small SVG.
import { svg } from "./dom.js";

const POINTS = 40; // at one poll every few seconds: the last couple of minutes

export class FpsHistory {
  constructor(points = POINTS) {
    this.points = points;
    this.series = new Map(); // camera id → array of fps (null while offline)
  }

  add(rows) {
    const seen = new Set();
    for (const row of rows) {
      seen.add(row.camera);
      const list = this.series.get(row.camera) || [];
      list.push(row.state === "offline" || row.fps === null ? null : row.fps);
      if (list.length > this.points) list.splice(0, list.length - this.points);
      this.series.set(row.camera, list);
    }
    for (const id of [...this.series.keys()]) if (!seen.has(id)) this.series.delete(id);
  }

  get(camera) {
    return this.series.get(camera) || [];
  }
}

// A polyline of the values (gaps where null) with a red tick at each gap.
export function sparkline(values, width = 96, height = 24) {
  const root = svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}` });
  const known = values.filter((v) => v !== null);
  const max = Math.max(1, ...known);
  const step = width / Math.max(1, POINTS - 1);
  const x0 = width - step * (values.length - 1);
  let path = "";
  values.forEach((v, i) => {
    const x = x0 + i * step;
    if (v === null) {
      root.append(svg("line", { class: "gap", x1: x, x2: x, y1: height - 4, y2: height }));
      return;
    }
    const y = height - 2 - (v / max) * (height - 4);
    const joined = i > 0 && values[i - 1] !== null;
    const alone = !joined && (i === values.length - 1 || values[i + 1] === null);
    // A point between gaps has no line to be part of: draw it as a dot so it is not lost.
    if (alone) root.append(svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 1.5 }));
    path += `${joined ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
  });
  if (path) root.append(svg("path", { d: path.trim() }));
  return root;
}
