import { login } from "/web/common/api.js";
import { applyI18n, lang, onLangChange, registerStrings, setLang, t } from "/web/common/i18n.js";

registerStrings({
  "zh-CN": {
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误",
    "login.rate": "尝试次数过多，请稍后再试",
  },
  en: {
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong username or password",
    "login.rate": "Too many attempts, try again later",
  },
});

const HOME = { admin: "/", operator: "/", maintenance: "/health", line_admin: "/registry" };

// Where `next` may lead after the login: a path on this site, else nowhere (the role's home page).
// Browsers read "\" as "/" and drop tabs and newlines in URLs, so "/\evil.example" and "/<tab>/evil"
// are "//evil…", another host. `next` arrives decoded once (URLSearchParams); it is checked as it is
// and decoded once more, and the URL it makes must still be on this origin.
export function safeNext(next) {
  if (!next) return null;
  let decoded;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return null;
  }
  for (const value of [next, decoded]) {
    if (!value.startsWith("/") || value.startsWith("//")) return null;
    if (/[\\\u0000-\u001f\u007f]/.test(value)) return null;
    if (/^\/login(?:[/?#]|$)/.test(value)) return null;
  }
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
}

function render() {
  applyI18n();
  document.title = `${t("login.submit")} · ${t("app.title")}`;
}
render();
onLangChange(render);
document.querySelector(".lang").addEventListener("click", () => setLang(lang() === "zh-CN" ? "en" : "zh-CN"));

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  try {
    const user = await login(
      document.getElementById("username").value.trim(),
      document.getElementById("password").value,
    );
    const next = safeNext(new URLSearchParams(location.search).get("next"));
    location.assign(next || HOME[user.role] || "/");
  } catch (err) {
    error.textContent = err.status === 429 ? t("login.rate") : t("login.failed");
  }
});
