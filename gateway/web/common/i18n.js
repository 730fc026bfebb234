// Unione web front: messages in Italian first, English second. A page registers its
// dictionaries; `t(key, vars)` looks the key up in the chosen language, falling back to
// Italian, and fills `{name}` placeholders.

const LANG_KEY = "unione.lang";
const dictionaries = { it: {}, en: {} };

export function register(messages) {
  for (const lang of Object.keys(dictionaries)) Object.assign(dictionaries[lang], messages[lang] || {});
}

export function lang() {
  const chosen = localStorage.getItem(LANG_KEY);
  return chosen === "en" ? "en" : "it";
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value === "en" ? "en" : "it");
  document.documentElement.lang = lang();
}

export function t(key, vars = {}) {
  const text = dictionaries[lang()][key] ?? dictionaries.it[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fills every element with `data-i18n="key"` (its text) and `data-i18n-attr="attr:key"`. */
export function translatePage(root = document) {
  document.documentElement.lang = lang();
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) node.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

/** Formats a number the Italian or English way. */
export function number(value, digits = 2) {
  return new Intl.NumberFormat(lang() === "en" ? "en-GB" : "it-IT", { maximumFractionDigits: digits }).format(value);
}

/** Formats euro cents. */
export function euros(cents) {
  return new Intl.NumberFormat(lang() === "en" ? "en-GB" : "it-IT", { style: "currency", currency: "EUR" }).format(cents / 100);
}

/** Formats an ISO date or timestamp as a date. */
export function date(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "it-IT", { dateStyle: "medium" }).format(d);
}
