// HTTP and auth client of the videohub API, used by every page (the WHEP player is /web/common/whep.js).
// The bearer token lives in sessionStorage: it lasts for the tab, and a closed tab forgets it.

const TOKEN_KEY = "videohub.token";
const USER_KEY = "videohub.user";
const EXPIRES_KEY = "videohub.expires";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : formatDetail(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

// FastAPI 422 bodies name the field: [{loc: ["body", "tiles", 0, "stream"], msg: "..."}].
function formatDetail(detail) {
  if (!Array.isArray(detail)) return detail ? JSON.stringify(detail) : "";
  return detail
    .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`)
    .join("; ");
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function currentUser() {
  try {
    return JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
  } catch {
    return null;
  }
}

export function storeLogin(body) {
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  sessionStorage.setItem(USER_KEY, JSON.stringify(body.user));
  sessionStorage.setItem(EXPIRES_KEY, body.expires_at);
  scheduleRefresh();
}

export function clearLogin() {
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
}

// Pages that stay open for days (the wall's display on the big screen) renew their token at half
// its lifetime, so nobody has to log in on the big screen. The server keeps the old token for a
// minute, and the live socket reconnects with the new one when the old one ends.
let refreshTimer = null;

export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const expires = Date.parse(sessionStorage.getItem(EXPIRES_KEY) || "");
  if (!token() || Number.isNaN(expires)) return;
  const wait = Math.min(Math.max(5000, (expires - Date.now()) / 2), 2 ** 31 - 1);
  refreshTimer = setTimeout(refreshNow, wait);
}

export async function refreshNow() {
  let response;
  try {
    response = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { Authorization: `Bearer ${token()}` },
    });
  } catch {
    refreshTimer = setTimeout(refreshNow, 30000); // the network or the service is away: try again
    return false;
  }
  if (response.status === 401) {
    redirectToLogin();
    return false;
  }
  if (!response.ok) {
    refreshTimer = setTimeout(refreshNow, 30000);
    return false;
  }
  storeLogin(await response.json());
  return true;
}

export function redirectToLogin() {
  clearLogin();
  const next = location.pathname + location.search;
  if (location.pathname !== "/login") location.assign(`/login?next=${encodeURIComponent(next)}`);
}

// The page's user, or a redirect to /login when this tab has no token.
export function requireLogin() {
  const user = currentUser();
  if (!token() || !user) {
    redirectToLogin();
    throw new Error("not logged in");
  }
  if (refreshTimer === null) scheduleRefresh();
  return user;
}

export async function login(username, password) {
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.detail);
  storeLogin(body);
  return body.user;
}

export async function logout() {
  try {
    await apiFetch("/api/auth/logout", { method: "POST" });
  } finally {
    clearLogin();
    location.assign("/login");
  }
}

// fetch() with the bearer token; a 401 sends the tab to /login (the token expired or was revoked).
// A 307 to another origin (a cluster's WHEP redirect to the camera's worker) is followed by fetch
// with the same method and body but without Authorization (the Fetch standard drops it across
// origins): the 401 that comes back from there is answered by asking that final URL again, token
// included, once.
export async function apiFetch(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const tok = token();
  if (tok) headers.set("Authorization", `Bearer ${tok}`);
  let response = await fetch(path, { ...options, headers });
  if (response.status === 401 && response.redirected && tok) {
    const target = new URL(response.url);
    if (target.origin !== location.origin) response = await fetch(target.href, { ...options, headers });
  }
  if (response.status === 401 && path !== "/api/auth/logout") {
    redirectToLogin();
    throw new ApiError(401, "unauthorized");
  }
  return response;
}

async function json(method, path, body, headers = {}) {
  const options = { method, headers: { ...headers } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await apiFetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data ? data.detail : null);
  return data;
}

// Each takes optional extra headers last, e.g. api.put(path, body, {"If-Match": '"3"'}).
export const api = {
  get: (path, headers) => json("GET", path, undefined, headers),
  post: (path, body, headers) => json("POST", path, body, headers),
  put: (path, body, headers) => json("PUT", path, body, headers),
  patch: (path, body, headers) => json("PATCH", path, body, headers),
  del: (path, headers) => json("DELETE", path, undefined, headers),
};

// An authorised image (e.g. a snapshot) as a blob: URL for an <img>; revoke it when replaced.
export async function fetchBlobUrl(path) {
  const response = await apiFetch(path);
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new ApiError(response.status, data ? data.detail : null);
  }
  return URL.createObjectURL(await response.blob());
}
