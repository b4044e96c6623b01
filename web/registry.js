// The registry page: a line admin's own cameras (admins: every line) — list, add, edit, delete,
// CSV import, and "test connection" (ingest state plus a snapshot fetched with the bearer token).
import { api, apiFetch, ApiError, fetchBlobUrl, requireLogin } from "/web/common/api.js";
import { loadHealth, loadLines } from "/web/common/catalog.js";
import { applyI18n, lang, onLangChange, registerStrings, t } from "/web/common/i18n.js";
import { mountNav } from "/web/common/nav.js";
import { toast } from "/web/common/toast.js";

registerStrings({
  "zh-CN": {
    "registry.search": "搜索名称或编号",
    "registry.allLines": "全部条线",
    "registry.import": "CSV 导入",
    "registry.add": "新增摄像机",
    "registry.edit": "编辑",
    "registry.test": "测试连接",
    "registry.id": "编号",
    "registry.idAuto": "留空自动生成",
    "registry.name": "名称",
    "registry.line": "条线",
    "registry.area": "区域",
    "registry.mode": "接入方式",
    "registry.always_on": "常连",
    "registry.on_demand": "按需",
    "registry.enabled": "启用",
    "registry.yes": "是",
    "registry.no": "否",
    "registry.mainUrl": "主码流地址",
    "registry.subUrl": "子码流地址（可选）",
    "registry.idPrefix": "以 {prefix}- 开头，留空自动生成",
    "registry.username": "主码流用户名",
    "registry.password": "主码流密码",
    "registry.subUsername": "子码流用户名",
    "registry.subPassword": "子码流密码",
    "registry.passwordKeep": "已保存，留空则不修改",
    "registry.credentialsHint":
      "密码只保存在服务端，不会显示。更换地址的主机、端口或协议时须重新填写；子码流与主码流同一主机时沿用主码流的密码。地址中的 *** 表示已保存的参数值。",
    "registry.total": "共 {n} 路",
    "registry.addTitle": "新增摄像机",
    "registry.editTitle": "编辑摄像机 {id}",
    "registry.saved": "已保存",
    "registry.confirmDelete": "确定删除摄像机 {name}？",
    "registry.imported": "导入完成：成功 {created} 条，失败 {failed} 条",
    "registry.importRow": "第 {row} 行：{error}",
    "registry.testTitle": "测试连接：{name}",
    "registry.stream": "码流",
    "registry.state": "状态",
    "registry.reason": "原因",
    "registry.codec": "编码",
    "registry.fps": "帧率",
    "registry.bitrate": "码率 (kbps)",
    "registry.resolution": "分辨率",
    "registry.lastError": "最近错误",
    "registry.snapshotWait": "正在获取截图…",
    "registry.snapshotNone": "暂无画面：{reason}",
    "ingest.streaming": "正常接收",
    "ingest.connecting": "连接中",
    "ingest.backing_off": "重连等待",
    "ingest.idle": "空闲（按需）",
  },
  en: {
    "registry.search": "Search name or id",
    "registry.allLines": "All lines",
    "registry.import": "CSV import",
    "registry.add": "Add camera",
    "registry.edit": "Edit",
    "registry.test": "Test connection",
    "registry.id": "ID",
    "registry.idAuto": "Generated when empty",
    "registry.name": "Name",
    "registry.line": "Line",
    "registry.area": "Area",
    "registry.mode": "Mode",
    "registry.always_on": "Always on",
    "registry.on_demand": "On demand",
    "registry.enabled": "Enabled",
    "registry.yes": "Yes",
    "registry.no": "No",
    "registry.mainUrl": "Main stream URL",
    "registry.subUrl": "Sub stream URL (optional)",
    "registry.idPrefix": "Starts with {prefix}-; generated when empty",
    "registry.username": "Main stream username",
    "registry.password": "Main stream password",
    "registry.subUsername": "Sub stream username",
    "registry.subPassword": "Sub stream password",
    "registry.passwordKeep": "Stored; empty keeps it",
    "registry.credentialsHint":
      "Passwords stay on the server and are never shown. Enter them again when a URL's host, port or scheme changes; a sub stream on the main stream's host uses its password. *** in a URL stands for a stored value.",
    "registry.total": "{n} cameras",
    "registry.addTitle": "Add camera",
    "registry.editTitle": "Edit camera {id}",
    "registry.saved": "Saved",
    "registry.confirmDelete": "Delete camera {name}?",
    "registry.imported": "Import done: {created} created, {failed} failed",
    "registry.importRow": "Row {row}: {error}",
    "registry.testTitle": "Test connection: {name}",
    "registry.stream": "Stream",
    "registry.state": "State",
    "registry.reason": "Reason",
    "registry.codec": "Codec",
    "registry.fps": "FPS",
    "registry.bitrate": "Bitrate (kbps)",
    "registry.resolution": "Resolution",
    "registry.lastError": "Last error",
    "registry.snapshotWait": "Fetching a snapshot…",
    "registry.snapshotNone": "No picture: {reason}",
    "ingest.streaming": "Streaming",
    "ingest.connecting": "Connecting",
    "ingest.backing_off": "Backing off",
    "ingest.idle": "Idle (on demand)",
  },
});

const user = requireLogin();
mountNav("registry");
const $ = (id) => document.getElementById(id);
let lines = new Map();
let cameras = [];
let health = new Map();
let editing = null; // camera being edited, or null when adding
let snapshotUrl = null;

const lineName = (id) => {
  const line = lines.get(id);
  return line ? (lang() === "en" ? line.name_en : line.name_zh) : id;
};

async function load() {
  const params = new URLSearchParams({ limit: "1000" });
  if ($("line-filter").value) params.set("line", $("line-filter").value);
  if ($("search").value.trim()) params.set("q", $("search").value.trim());
  const page = await api.get(`/api/cameras?${params}`);
  cameras = page.items;
  $("total").textContent = t("registry.total", { n: page.total });
  render();
}

function render() {
  const rows = cameras.map((camera) => {
    const tr = document.createElement("tr");
    tr.dataset.camera = camera.id;
    const state = health.get(camera.id)?.state || "unknown";
    tr.innerHTML = `<td><span class="dot ${state}"></span></td><td class="c-id"></td><td class="c-name"></td>
      <td class="c-line"></td><td class="c-area"></td><td class="c-mode"></td><td class="c-enabled"></td>
      <td><div class="row-actions">
        <button type="button" class="test" data-i18n="registry.test"></button>
        <button type="button" class="edit" data-i18n="registry.edit"></button>
        <button type="button" class="danger delete" data-i18n="common.delete"></button></div></td>`;
    tr.querySelector(".c-id").textContent = camera.id;
    tr.querySelector(".c-name").textContent = camera.name;
    tr.querySelector(".c-line").textContent = lineName(camera.line);
    tr.querySelector(".c-area").textContent = camera.area;
    tr.querySelector(".c-mode").textContent = t(`registry.${camera.mode}`);
    tr.querySelector(".c-enabled").textContent = t(camera.enabled ? "registry.yes" : "registry.no");
    tr.querySelector(".test").addEventListener("click", () => testConnection(camera));
    tr.querySelector(".edit").addEventListener("click", () => openForm(camera));
    tr.querySelector(".delete").addEventListener("click", () => removeCamera(camera));
    applyI18n(tr);
    return tr;
  });
  $("camera-rows").replaceChildren(...rows);
}

function fillLineSelects() {
  const filter = $("line-filter");
  const current = filter.value;
  const options = [["", t("registry.allLines")], ...[...lines.keys()].map((id) => [id, lineName(id)])];
  filter.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  filter.value = current;
  filter.classList.toggle("hidden", lines.size <= 1);
  $("f-line").replaceChildren(...[...lines.keys()].map((id) => new Option(lineName(id), id)));
}

// ---- add / edit ------------------------------------------------------------------------------

function openForm(camera) {
  editing = camera;
  $("form-error").textContent = "";
  $("form-title").textContent = camera ? t("registry.editTitle", { id: camera.id }) : t("registry.addTitle");
  $("f-id").value = camera ? camera.id : "";
  $("f-id").disabled = !!camera;
  const prefix = user.role === "line_admin" ? lines.get(user.line)?.id_prefix : null;
  $("f-id").placeholder = prefix ? t("registry.idPrefix", { prefix }) : t("registry.idAuto");
  $("f-name").value = camera ? camera.name : "";
  $("f-line").value = camera ? camera.line : user.line || [...lines.keys()][0];
  $("f-line").disabled = user.role === "line_admin";
  $("f-area").value = camera ? camera.area : "";
  $("f-main").value = camera ? camera.streams.main.url : "";
  $("f-sub").value = camera && camera.streams.sub ? camera.streams.sub.url : "";
  // Stored passwords are never sent to the page: empty fields keep them.
  for (const [stream, userField, passField] of [["main", "f-user", "f-pass"], ["sub", "f-sub-user", "f-sub-pass"]]) {
    $(userField).value = "";
    $(passField).value = "";
    $(passField).placeholder = camera?.streams[stream]?.has_credentials ? t("registry.passwordKeep") : "";
  }
  $("f-mode").value = camera ? camera.mode : "always_on";
  $("f-enabled").checked = camera ? camera.enabled : true;
  $("camera-dialog").showModal();
}

function formBody() {
  const streams = { main: { url: $("f-main").value.trim() } };
  if ($("f-sub").value.trim()) streams.sub = { url: $("f-sub").value.trim() };
  // Credentials only when typed: an edit with empty fields keeps the stored ones (same host).
  for (const [stream, userField, passField] of [["main", "f-user", "f-pass"], ["sub", "f-sub-user", "f-sub-pass"]]) {
    if (streams[stream] && ($(userField).value.trim() || $(passField).value)) {
      streams[stream].credentials = { username: $(userField).value.trim(), password: $(passField).value };
    }
  }
  const body = {
    name: $("f-name").value.trim(),
    line: $("f-line").value,
    area: $("f-area").value.trim(),
    streams,
    mode: $("f-mode").value,
    enabled: $("f-enabled").checked,
  };
  if (!editing && $("f-id").value.trim()) body.id = $("f-id").value.trim();
  return body;
}

$("camera-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    if (editing) await api.patch(`/api/cameras/${encodeURIComponent(editing.id)}`, formBody());
    else await api.post("/api/cameras", formBody());
    $("camera-dialog").close();
    toast(t("registry.saved"));
    await load();
  } catch (err) {
    $("form-error").textContent = err.message;
  }
});
$("form-cancel").addEventListener("click", () => $("camera-dialog").close());
$("add-camera").addEventListener("click", () => openForm(null));

async function removeCamera(camera) {
  if (!confirm(t("registry.confirmDelete", { name: camera.name }))) return;
  try {
    await api.del(`/api/cameras/${encodeURIComponent(camera.id)}`);
    await load();
  } catch (err) {
    toast(t("common.error", { msg: err.message }), { error: true });
  }
}

// ---- CSV import ------------------------------------------------------------------------------

$("csv-file").addEventListener("change", async () => {
  const file = $("csv-file").files[0];
  if (!file) return;
  const box = $("import-result");
  try {
    const response = await apiFetch("/api/cameras/import", {
      method: "POST",
      headers: { "Content-Type": "text/csv" },
      body: await file.text(),
    });
    const result = await response.json();
    if (!response.ok) throw new ApiError(response.status, result.detail);
    box.replaceChildren(document.createTextNode(t("registry.imported", result)));
    const failures = result.rows.filter((row) => !row.ok);
    if (failures.length) {
      const list = document.createElement("ul");
      for (const row of failures) {
        const li = document.createElement("li");
        li.className = "error";
        li.textContent = t("registry.importRow", { row: row.row, error: row.error });
        list.append(li);
      }
      box.append(list);
    }
  } catch (err) {
    box.textContent = t("common.error", { msg: err.message });
  }
  box.classList.remove("hidden");
  $("csv-file").value = "";
  await load();
});

// ---- test connection -------------------------------------------------------------------------

function ingestTable(result) {
  const dl = document.createElement("dl");
  const add = (label, value) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "—";
    dl.append(dt, dd);
  };
  for (const s of result.streams) {
    add(t("registry.stream"), `${s.stream} · ${s.url}`);
    add(t("registry.state"), t(`ingest.${s.state}`));
    dl.lastChild.dataset.state = s.state;
    if (s.reason) add(t("registry.reason"), s.reason);
    const ing = s.ingest;
    if (ing) {
      add(t("registry.codec"), `${ing.codec || ing.output_codec || ""} ${ing.profile || ""}`.trim());
      if (ing.width) add(t("registry.resolution"), `${ing.width}×${ing.height}`);
      add(t("registry.fps"), ing.fps?.toFixed(1));
      add(t("registry.bitrate"), ing.bitrate_kbps?.toFixed(0));
      if (ing.last_error) add(t("registry.lastError"), ing.last_error);
    }
  }
  return dl;
}

async function testConnection(camera) {
  $("test-title").textContent = t("registry.testTitle", { name: camera.name });
  $("test-ingest").textContent = t("common.loading");
  $("test-snapshot").removeAttribute("src");
  $("test-snapshot-status").textContent = t("registry.snapshotWait");
  $("test-dialog").showModal();
  const id = encodeURIComponent(camera.id);
  // The snapshot also wakes an on-demand camera; retry while the first keyframe is on its way.
  let reason = "";
  for (let attempt = 0; attempt < 8 && $("test-dialog").open; attempt++) {
    try {
      const url = await fetchBlobUrl(`/api/cameras/${id}/snapshot.jpg`);
      if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
      snapshotUrl = url;
      $("test-snapshot").src = url;
      $("test-snapshot-status").textContent = "";
      reason = "";
      break;
    } catch (err) {
      reason = err.message;
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
  if (reason) $("test-snapshot-status").textContent = t("registry.snapshotNone", { reason });
  try {
    $("test-ingest").replaceChildren(ingestTable(await api.get(`/api/cameras/${id}/ingest`)));
  } catch (err) {
    $("test-ingest").textContent = t("common.error", { msg: err.message });
  }
}
$("test-close").addEventListener("click", () => $("test-dialog").close());

// ---- start -----------------------------------------------------------------------------------

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(load, 250);
});
$("line-filter").addEventListener("change", load);
onLangChange(() => {
  applyI18n();
  fillLineSelects();
  render();
});

async function main() {
  applyI18n();
  [lines, health] = await Promise.all([loadLines(), loadHealth()]);
  fillLineSelects();
  await load();
}
main().catch((err) => toast(t("common.error", { msg: err.message }), { error: true }));
