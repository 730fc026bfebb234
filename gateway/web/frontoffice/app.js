// The citizens' front office: a single page with hash navigation (`#/cases/011027/<id>`), so
// that any state of the page has an address. Every datum comes from the gateway's JSON API
// with the citizen's token; whatever address is typed, the API (not this page) decides what
// the citizen may see, and the page shows its refusal.
import { call, signOut, token } from "/common/api.js";
import { lang, setLang, t, translatePage } from "/common/i18n.js";
import "./messages.js";
import { isKiosk, startIdleWatch } from "./kiosk.js";
import { routes, notFoundView, signInView } from "./views.js";

const COMUNE_KEY = "unione.comune";
const view = document.getElementById("view");
const announcer = document.getElementById("announce");

/** What every view reads: the session, the chosen comune, the settings. */
const ctx = {
  view,
  session: null,
  settings: { kiosk_idle_seconds: 90, simulated_psp: false },
  comuni: [],
  kiosk: isKiosk(),
  comune() {
    return sessionStorage.getItem(COMUNE_KEY);
  },
  setComune(istat) {
    sessionStorage.setItem(COMUNE_KEY, istat);
  },
  comuneName(istat) {
    const c = this.comuni.find((m) => m.istat_code === istat);
    return c ? c.display_name : istat;
  },
  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },
  announce(text) {
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 50);
  },
  async refreshSession() {
    this.session = null;
    if (!token()) return null;
    try {
      this.session = await call("/api/session");
    } catch (_) {
      signOut();
      this.session = null;
    }
    return this.session;
  },
  signedOut() {
    signOut();
    sessionStorage.clear();
    this.session = null;
    header();
  },
};

function header() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  const langButton = document.getElementById("lang");
  const parts = [];
  if (ctx.kiosk) parts.push(t("kiosk.badge"));
  if (ctx.session && ctx.session.fiscal_number) parts.push(t("who", { cf: ctx.session.fiscal_number }));
  who.textContent = parts.join(" · ");
  out.hidden = !ctx.session;
  langButton.textContent = lang() === "it" ? "English" : "Italiano";
  langButton.setAttribute("lang", lang() === "it" ? "en" : "it");
}

let rendering = 0;
let rendered = 0;
/** Renders the view of the current address. */
async function render() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return; // e.g. the skip link's #main
  const mine = ++rendering;
  const path = hash.slice(2).split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
  const match = routes.find((r) => r.match(path));
  translatePage();
  header();
  view.replaceChildren();
  view.setAttribute("aria-busy", "true");
  let title;
  try {
    if (match && match.signedIn && !ctx.session) {
      title = await signInView(ctx, t("signin.needed"));
    } else if (match) {
      title = await match.view(ctx, match.params(path));
    } else {
      title = await notFoundView(ctx);
    }
  } finally {
    if (mine === rendering) view.removeAttribute("aria-busy");
  }
  if (mine !== rendering) return;
  document.title = `${title} · ${t("brand")}`;
  // After a navigation the focus goes to the new heading; on the first load it stays at the
  // top of the document, so that the first Tab reaches the skip link.
  const h1 = view.querySelector("h1");
  if (h1 && rendered++ > 0) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: false });
  }
  ctx.announce(title);
}
ctx.render = render;

async function start() {
  document.body.classList.toggle("kiosk", ctx.kiosk);
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    const target = view.querySelector("h1") || document.getElementById("main");
    target.tabIndex = -1;
    target.focus();
  });
  document.getElementById("lang").addEventListener("click", () => {
    setLang(lang() === "it" ? "en" : "it");
    render();
  });
  document.getElementById("signout").addEventListener("click", () => {
    ctx.signedOut();
    ctx.navigate("#/");
  });
  try {
    ctx.settings = { ...ctx.settings, ...(await call("/api/settings")) };
  } catch (_) { /* defaults */ }
  try {
    ctx.comuni = (await call("/api/comuni")).comuni;
  } catch (_) { ctx.comuni = []; }
  await ctx.refreshSession();
  if (ctx.kiosk) {
    startIdleWatch(ctx.settings.kiosk_idle_seconds, () => Boolean(ctx.session), () => {
      // Clears everything of the session: the token, the comune, the language, the page.
      ctx.signedOut();
      setLang("it");
      view.replaceChildren();
      ctx.kioskSignedOut = true;
      ctx.navigate("#/");
    });
  }
  window.addEventListener("hashchange", render);
  await render();
}

start();
