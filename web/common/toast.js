// A short message in the corner (saved, failed, ...). toast(text, {error: true}).
export function toast(text, { error = false, ms = 3000 } = {}) {
  const el = document.createElement("div");
  el.className = `toast${error ? " error" : ""}`;
  el.setAttribute("role", "status");
  el.textContent = text;
  document.body.append(el);
  setTimeout(() => el.remove(), ms);
}
