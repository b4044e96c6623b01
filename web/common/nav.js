// The shared header: console / registry / health, the user, logout and the language switch.
// mountNav("console") inserts it at the top of <body> and returns the element.
import { currentUser, logout } from "/web/common/api.js";
import { applyI18n, lang, onLangChange, setLang, t } from "/web/common/i18n.js";

const LINKS = [
  { id: "console", href: "/", roles: ["admin", "operator", "maintenance"] },
  { id: "registry", href: "/registry", roles: ["admin", "line_admin"] },
  { id: "health", href: "/health", roles: ["admin", "operator", "maintenance", "line_admin"] },
];

export function mountNav(active) {
  const user = currentUser();
  const header = document.createElement("header");
  header.className = "vh-nav";
  const links = LINKS.filter((l) => !user || l.roles.includes(user.role))
    .map(
      (l) =>
        `<a href="${l.href}" data-nav="${l.id}" class="${l.id === active ? "active" : ""}" data-i18n="nav.${l.id}"></a>`,
    )
    .join("");
  header.innerHTML = `
    <span class="vh-brand" data-i18n="app.title"></span>
    <nav>${links}</nav>
    <span class="vh-spacer"></span>
    <span class="vh-user" data-testid="nav-user"></span>
    <button type="button" class="vh-lang" data-testid="lang-switch" data-i18n="nav.lang"></button>
    <button type="button" class="vh-logout" data-testid="logout" data-i18n="nav.logout"></button>`;
  header.querySelector(".vh-user").textContent = user ? `${user.username} · ${user.role}` : "";
  header.querySelector(".vh-lang").addEventListener("click", () => setLang(lang() === "zh-CN" ? "en" : "zh-CN"));
  header.querySelector(".vh-logout").addEventListener("click", () => logout());
  document.body.prepend(header);
  applyI18n(header);
  onLangChange(() => applyI18n(header));
  document.title = `${t(`nav.${active}`)} · ${t("app.title")}`;
  return header;
}
