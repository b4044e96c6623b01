// Small DOM and formatting helpers for the health page (no framework: elements are built directly).
import { lang, t } from "/web/common/i18n.js";

// el("td", {class: "x", dataset: {camera: id}, onclick: fn}, child, "text", ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function locale() {
  return lang() === "en" ? "en-GB" : "zh-CN";
}

// Epoch seconds or an ISO string → local date-time text.
export function fmtTime(value) {
  if (value === null || value === undefined) return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleString(locale(), { hour12: false });
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function fmtPct(value) {
  return value === null || value === undefined ? "—" : `${value.toFixed(value >= 99.95 ? 0 : 1)} %`;
}

export function fmtNumber(value, digits = 1) {
  return value === null || value === undefined ? "—" : value.toFixed(digits);
}

// Reason codes from ingest and diagnosis → readable text; an unknown code is shown as it is.
export function reasonText(code) {
  const text = t(`reason.${code}`);
  return text === `reason.${code}` ? code : text;
}

export function lineName(line, lines) {
  const key = `line.${line}`;
  const known = t(key);
  if (known !== key) return known;
  const info = lines.get(line);
  if (!info) return line;
  return lang() === "en" ? info.name_en : info.name_zh;
}
