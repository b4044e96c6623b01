// i18n: zh-CN first, English on request. The choice is kept in localStorage for every tab.
// Pages add their own strings with registerStrings({"zh-CN": {...}, "en": {...}}) and mark static
// elements with data-i18n="key" (text) or data-i18n-title / data-i18n-placeholder (attributes).

const STORAGE_KEY = "videohub.lang";
export const LANGS = ["zh-CN", "en"];
const strings = { "zh-CN": {}, en: {} };
const listeners = new Set();

export function lang() {
  const saved = localStorage.getItem(STORAGE_KEY);
  return LANGS.includes(saved) ? saved : "zh-CN";
}

export function setLang(value) {
  if (!LANGS.includes(value)) return;
  localStorage.setItem(STORAGE_KEY, value);
  document.documentElement.lang = value;
  applyI18n();
  for (const fn of listeners) fn(value);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function registerStrings(table) {
  for (const code of LANGS) Object.assign(strings[code], table[code] || {});
}

// t("key", {n: 3}) → the string in the current language with {n} replaced; falls back to zh-CN,
// then to the key itself, so a missing translation is visible but never breaks the page.
export function t(key, params) {
  const code = lang();
  let text = strings[code][key] ?? strings["zh-CN"][key] ?? key;
  if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  return text;
}

export function applyI18n(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  root.querySelectorAll("[data-i18n-title]").forEach((el) => (el.title = t(el.dataset.i18nTitle)));
  root
    .querySelectorAll("[data-i18n-placeholder]")
    .forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
}

registerStrings({
  "zh-CN": {
    "app.title": "视频汇聚平台",
    "nav.console": "值守控制台",
    "nav.registry": "设备登记",
    "nav.health": "运维监测",
    "nav.logout": "退出",
    "nav.lang": "English",
    "common.save": "保存",
    "common.cancel": "取消",
    "common.delete": "删除",
    "common.close": "关闭",
    "common.loading": "加载中…",
    "common.error": "出错了：{msg}",
    "common.forbidden": "无权限",
    "line.public_security": "公安",
    "line.safety": "安监",
    "line.environment": "环保",
    "line.land_resources": "国土",
    "state.online": "在线",
    "state.degraded": "异常",
    "state.offline": "离线",
    "state.unknown": "未知",
    "player.connecting": "连接中",
    "player.live": "直播",
    "player.interrupted": "中断",
    "player.unavailable": "无法播放（已删除或无权限）",
    "player.closed": "已关闭",
  },
  en: {
    "app.title": "Video Hub",
    "nav.console": "Console",
    "nav.registry": "Registry",
    "nav.health": "Health",
    "nav.logout": "Log out",
    "nav.lang": "中文",
    "common.save": "Save",
    "common.cancel": "Cancel",
    "common.delete": "Delete",
    "common.close": "Close",
    "common.loading": "Loading…",
    "common.error": "Error: {msg}",
    "common.forbidden": "Forbidden",
    "line.public_security": "Public Security",
    "line.safety": "Work Safety",
    "line.environment": "Environment",
    "line.land_resources": "Land Resources",
    "state.online": "Online",
    "state.degraded": "Degraded",
    "state.offline": "Offline",
    "state.unknown": "Unknown",
    "player.connecting": "Connecting",
    "player.live": "Live",
    "player.interrupted": "Interrupted",
    "player.unavailable": "Unavailable (deleted or no access)",
    "player.closed": "Closed",
  },
});

document.documentElement.lang = lang();
