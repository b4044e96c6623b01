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
    const next = new URLSearchParams(location.search).get("next");
    // Only same-site paths: never bounce a fresh login to another origin.
    const safe = next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login");
    location.assign(safe ? next : HOME[user.role] || "/");
  } catch (err) {
    error.textContent = err.status === 429 ? t("login.rate") : t("login.failed");
  }
});
