// Unione dashboard: compare a KPI across the federation's comuni. Every number on the page
// comes from /api/dashboard/* (BenchmarkService through the gateway, with the signed-in
// user's token); the page decides nothing about who may see what.
import { ApiError, call, download, el, signIn, signOut, token } from "/common/api.js";
import { date, lang, number, register, setLang, t, translatePage } from "/common/i18n.js";
import { barChart, lineChart, seriesSample } from "/dashboard/charts.js";

register({
  it: {
    title: "Unione · Confronto tra comuni",
    brand: "Unione · Confronto tra comuni",
    skip: "Vai al contenuto",
    nav: "Sessione",
    heading: "Confronto degli indicatori tra comuni",
    signout: "Esci",
    "lang.switch": "English",
    "signin.title": "Accedi",
    "signin.hint": "Questa pagina è per gli amministratori e gli operatori dei comuni. Incolla il tuo token di accesso.",
    "signin.token": "Token di accesso",
    "signin.submit": "Accedi",
    "signin.invalid": "Il token non è valido o è scaduto: {message}",
    "notfor.title": "Questa pagina non è per te",
    "notfor.text": "Il confronto tra comuni è riservato agli amministratori e agli operatori dei comuni. I servizi per i cittadini sono nello sportello online.",
    "notfor.link": "Vai allo sportello online",
    "role.admin": "Amministratore",
    "role.operator": "Operatore",
    "role.auditor": "Revisore",
    "role.integrator": "Integratore",
    "pick.kpi": "Indicatore",
    "pick.period": "Periodo",
    "pick.group": "Gruppo di confronto",
    "pick.chosen": "Comuni da confrontare",
    "pick.submit": "Confronta",
    "pick.nodata": "(nessun dato)",
    "pick.reported": "{period} ({count} comuni)",
    "group.federation": "Tutta la federazione ({count} comuni)",
    "group.peer_group": "Gruppo omogeneo: {id} ({count} comuni)",
    "group.province": "Provincia: {id} ({count} comuni)",
    "group.population": "Abitanti {min}–{max} ({count} comuni)",
    "group.population_open": "Abitanti da {min} ({count} comuni)",
    "group.comuni": "Comuni scelti…",
    "group.kinds.all": "Federazione",
    "group.kinds.peer": "Gruppi omogenei e unioni",
    "group.kinds.province": "Province",
    "group.kinds.population": "Fasce di popolazione",
    "group.kinds.chosen": "Scelta libera",
    csv: "Scarica CSV",
    loading: "Caricamento…",
    "nodata": "Il gateway non ha ancora raccolto valori per questo indicatore: riprova tra poco.",
    "choose.comuni": "Scegli almeno un comune.",
    "result.title": "{kpi} · {period}",
    "kpi.polarity.higher_is_better": "Un valore più alto è migliore.",
    "kpi.polarity.lower_is_better": "Un valore più basso è migliore.",
    "kpi.normalised": "Valori per 1.000 abitanti.",
    "kpi.unit": "Unità: {unit}.",
    "stats.median": "Mediana",
    "stats.mean": "Media (non ponderata)",
    "stats.reported": "Comuni con un valore",
    "stats.reported_value": "{reported} su {members}",
    "stats.target": "Obiettivo",
    "stats.best": "Migliore",
    "stats.worst": "Peggiore",
    "stats.none": "—",
    "bars.caption": "Comuni in ordine di posizione",
    "bars.title": "{kpi}, {period}: comuni in ordine di posizione",
    "bars.desc": "Barre orizzontali, una per comune con un valore, dalla prima posizione; la linea tratteggiata è l'obiettivo. Gli stessi numeri sono nella tabella.",
    "bars.capped": "Il grafico mostra i primi {shown} comuni su {total}; la tabella e il CSV li contengono tutti.",
    "bars.empty": "Nessun comune del gruppo ha un valore per questo periodo.",
    own: "il tuo comune",
    target: "Obiettivo",
    "band.green": "verde",
    "band.yellow": "giallo",
    "band.red": "rosso",
    "band.grey": "grigio",
    "legend.green": "verde: quartile migliore",
    "legend.yellow": "giallo: nella media",
    "legend.red": "rosso: quartile peggiore",
    "legend.target": "linea tratteggiata: obiettivo",
    "missing.title": "Comuni senza valore",
    "missing.unreachable": "nodo non raggiungibile",
    "missing.not_reported": "dato non comunicato",
    "missing.not_applicable": "indicatore non applicabile",
    "missing.confidential": "dato riservato",
    "missing.function_not_provided": "ufficio qualità non attivo nella federazione",
    "missing.not_collected": "dati non ancora raccolti",
    "missing.population_unknown": "popolazione non nota",
    "missing.outside": "fuori dal gruppo",
    "series.caption": "Andamento nel tempo: {names}",
    "series.title": "{kpi}: andamento di {names}",
    "series.desc": "Linee per periodo, una per comune, con l'obiettivo tratteggiato. Gli stessi numeri sono nella tabella dell'andamento.",
    "series.point": "{name}, {period}: {value}",
    "series.none": "Nessun valore nel tempo per questi comuni.",
    "series.table": "Andamento nel tempo",
    "table.title": "Tabella dei valori",
    "table.rank": "Posizione",
    "table.comune": "Comune",
    "table.istat": "Codice ISTAT",
    "table.value": "Valore",
    "table.normalised": "Per 1.000 abitanti",
    "table.band": "Fascia",
    "table.missing": "Motivo mancanza",
    "table.period": "Periodo",
    snapshot: "Dati letti dai comuni il {time} o dopo.",
    footer: "Unione dei comuni · dati aggregati pubblicati dai comuni (CC BY)",
  },
  en: {
    title: "Unione · Comparing comuni",
    brand: "Unione · Comparing comuni",
    skip: "Skip to content",
    nav: "Session",
    heading: "Comparing indicators across comuni",
    signout: "Sign out",
    "lang.switch": "Italiano",
    "signin.title": "Sign in",
    "signin.hint": "This page is for the comuni's administrators and operators. Paste your access token.",
    "signin.token": "Access token",
    "signin.submit": "Sign in",
    "signin.invalid": "The token is not valid or has expired: {message}",
    "notfor.title": "This page is not for you",
    "notfor.text": "Comparing comuni is for the comuni's administrators and operators. Services for citizens are at the online front office.",
    "notfor.link": "Go to the online front office",
    "role.admin": "Administrator",
    "role.operator": "Operator",
    "role.auditor": "Auditor",
    "role.integrator": "Integrator",
    "pick.kpi": "Indicator",
    "pick.period": "Period",
    "pick.group": "Compare within",
    "pick.chosen": "Comuni to compare",
    "pick.submit": "Compare",
    "pick.nodata": "(no data)",
    "pick.reported": "{period} ({count} comuni)",
    "group.federation": "The whole federation ({count} comuni)",
    "group.peer_group": "Peer group: {id} ({count} comuni)",
    "group.province": "Province: {id} ({count} comuni)",
    "group.population": "{min}–{max} inhabitants ({count} comuni)",
    "group.population_open": "From {min} inhabitants ({count} comuni)",
    "group.comuni": "Chosen comuni…",
    "group.kinds.all": "Federation",
    "group.kinds.peer": "Peer groups and associations",
    "group.kinds.province": "Provinces",
    "group.kinds.population": "Population bands",
    "group.kinds.chosen": "Free choice",
    csv: "Download CSV",
    loading: "Loading…",
    nodata: "The gateway has not collected values for this indicator yet: try again shortly.",
    "choose.comuni": "Choose at least one comune.",
    "result.title": "{kpi} · {period}",
    "kpi.polarity.higher_is_better": "Higher is better.",
    "kpi.polarity.lower_is_better": "Lower is better.",
    "kpi.normalised": "Values per 1,000 inhabitants.",
    "kpi.unit": "Unit: {unit}.",
    "stats.median": "Median",
    "stats.mean": "Mean (unweighted)",
    "stats.reported": "Comuni with a value",
    "stats.reported_value": "{reported} of {members}",
    "stats.target": "Target",
    "stats.best": "Best",
    "stats.worst": "Worst",
    "stats.none": "—",
    "bars.caption": "Comuni by rank",
    "bars.title": "{kpi}, {period}: comuni by rank",
    "bars.desc": "Horizontal bars, one per comune with a value, from the first rank; the dashed line is the target. The same numbers are in the table.",
    "bars.capped": "The chart shows the first {shown} of {total} comuni; the table and the CSV hold them all.",
    "bars.empty": "No comune of the group has a value for this period.",
    own: "your comune",
    target: "Target",
    "band.green": "green",
    "band.yellow": "yellow",
    "band.red": "red",
    "band.grey": "grey",
    "legend.green": "green: best quartile",
    "legend.yellow": "yellow: middle",
    "legend.red": "red: worst quartile",
    "legend.target": "dashed line: target",
    "missing.title": "Comuni with no value",
    "missing.unreachable": "node unreachable",
    "missing.not_reported": "not reported",
    "missing.not_applicable": "not applicable",
    "missing.confidential": "confidential",
    "missing.function_not_provided": "no quality office in the federation",
    "missing.not_collected": "not collected yet",
    "missing.population_unknown": "population unknown",
    "missing.outside": "outside the group",
    "series.caption": "Over time: {names}",
    "series.title": "{kpi}: {names} over time",
    "series.desc": "Lines by period, one per comune, with the target dashed. The same numbers are in the table over time.",
    "series.point": "{name}, {period}: {value}",
    "series.none": "No values over time for these comuni.",
    "series.table": "Over time",
    "table.title": "Table of values",
    "table.rank": "Rank",
    "table.comune": "Comune",
    "table.istat": "ISTAT code",
    "table.value": "Value",
    "table.normalised": "Per 1,000 inhabitants",
    "table.band": "Band",
    "table.missing": "Why missing",
    "table.period": "Period",
    snapshot: "Data read from the comuni at {time} or later.",
    footer: "Unione dei comuni · aggregate data published by the comuni (CC BY)",
  },
});

/** Most bars drawn; the table and the CSV always hold every member. */
const MAX_BARS = 200;
/** Most comuni drawn over time. */
const MAX_SERIES = 5;

const $ = (id) => document.getElementById(id);
const state = { session: null, kpis: [], groups: null, comparison: null, series: null };

function fmt(v) {
  return v === null || v === undefined ? t("stats.none") : number(v, 2);
}

function say(text, kind = "") {
  const box = $("message");
  box.replaceChildren();
  if (!text) return;
  box.append(el("p", { class: kind ? `alert ${kind}` : "alert", role: kind === "error" ? "alert" : null }, text));
}

function errorText(err) {
  return err instanceof ApiError ? `${err.message} (${err.reason || err.code})` : String(err);
}

function show(section) {
  for (const id of ["signin", "not-for-you", "app"]) $(id).hidden = id !== section;
  $("signout").hidden = section === "signin";
}

function ownIstat() {
  const s = state.session;
  return s && s.role === "operator" && s.comuni && s.comuni.length ? s.comuni[0] : "";
}

function currentKpi() {
  return state.kpis.find((k) => k.kpi_id === $("kpi").value) || null;
}

// ---- Sign in ----------------------------------------------------------------------------

async function start() {
  translatePage();
  $("lang").textContent = t("lang.switch");
  $("lang").lang = lang() === "it" ? "en" : "it";
  if (!token()) {
    show("signin");
    return;
  }
  let session;
  try {
    session = await call("/api/session");
  } catch (err) {
    signOut();
    show("signin");
    say(t("signin.invalid", { message: errorText(err) }), "error");
    return;
  }
  state.session = session;
  if (session.role === "citizen" || session.role === "payment_provider") {
    $("who").textContent = "";
    show("not-for-you");
    return;
  }
  show("app");
  await loadPickers();
}

function whoText() {
  const s = state.session;
  if (!s) return "";
  const role = t(`role.${s.role}`);
  const own = ownIstat();
  const town = own && state.groups ? state.groups.comuni.find((c) => c.istat_code === own) : null;
  return town ? `${role} · ${town.display_name}` : role;
}

// ---- Pickers ----------------------------------------------------------------------------

async function loadPickers() {
  say(t("loading"));
  try {
    const [kpis, groups] = await Promise.all([call("/api/dashboard/kpis"), call("/api/dashboard/groups")]);
    state.kpis = kpis.kpis;
    state.groups = groups;
  } catch (err) {
    say(errorText(err), "error");
    return;
  }
  say("");
  $("who").textContent = whoText();
  fillKpis();
  fillPeriods();
  fillGroups();
  fillChosen();
  await compare();
}

function fillKpis() {
  const select = $("kpi");
  const chosen = select.value;
  select.replaceChildren(
    ...state.kpis.map((k) =>
      el("option", { value: k.kpi_id }, `${k.kpi_id} · ${k.title}${k.periods.length ? "" : ` ${t("pick.nodata")}`}`),
    ),
  );
  const first = state.kpis.find((k) => k.periods.length) || state.kpis[0];
  select.value = chosen && state.kpis.some((k) => k.kpi_id === chosen) ? chosen : first ? first.kpi_id : "";
}

function fillPeriods() {
  const select = $("period");
  const chosen = select.value;
  const kpi = currentKpi();
  const periods = kpi ? kpi.periods : [];
  select.replaceChildren(
    ...periods.map((p) => el("option", { value: p.period }, t("pick.reported", { period: p.period, count: p.reported_count }))),
  );
  if (periods.some((p) => p.period === chosen)) select.value = chosen;
}

function fillGroups() {
  const select = $("group");
  const chosen = select.value;
  const g = state.groups;
  const option = (value, text) => el("option", { value }, text);
  const optgroup = (label, options) => (options.length ? el("optgroup", { label }, options) : null);
  const kind = (k) => g.groups.filter((x) => x.kind === k);
  select.replaceChildren(
    ...[
      optgroup(t("group.kinds.all"), [option("federation", t("group.federation", { count: g.federation_member_count }))]),
      optgroup(t("group.kinds.peer"), kind("peer_group").map((x) => option(`peer_group:${x.id}`, t("group.peer_group", { id: x.id, count: x.member_count })))),
      optgroup(t("group.kinds.province"), kind("province").map((x) => option(`province:${x.id}`, t("group.province", { id: x.id, count: x.member_count })))),
      optgroup(
        t("group.kinds.population"),
        g.population_bands
          .filter((b) => b.member_count > 0)
          .map((b) =>
            option(
              `population:${b.min_population}-${b.max_population || ""}`,
              b.max_population
                ? t("group.population", { min: number(b.min_population, 0), max: number(b.max_population, 0), count: b.member_count })
                : t("group.population_open", { min: number(b.min_population, 0), count: b.member_count }),
            ),
          ),
      ),
      optgroup(t("group.kinds.chosen"), [option("comuni", t("group.comuni"))]),
    ].filter(Boolean),
  );
  if (chosen && [...select.options].some((o) => o.value === chosen)) {
    select.value = chosen;
    return;
  }
  // An operator starts with the peer group of their own comune, anyone else with everyone.
  const own = g.comuni.find((c) => c.istat_code === ownIstat());
  select.value = own && own.peer_group ? `peer_group:${own.peer_group}` : "federation";
}

function fillChosen() {
  const list = $("chosen-list");
  const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
  if (!checked.size && ownIstat()) checked.add(ownIstat());
  list.replaceChildren(
    ...state.groups.comuni.map((c) => {
      const id = `chosen-${c.istat_code}`;
      return el(
        "div",
        { class: "check" },
        el("input", { type: "checkbox", id, value: c.istat_code, checked: checked.has(c.istat_code) }),
        el("label", { for: id }, `${c.display_name} (${c.province})`),
      );
    }),
  );
  $("chosen").hidden = $("group").value !== "comuni";
}

function groupParam() {
  const value = $("group").value;
  if (value !== "comuni") return value;
  const chosen = [...$("chosen-list").querySelectorAll("input:checked")].map((i) => i.value);
  return chosen.length ? `comuni:${chosen.join(",")}` : "";
}

function comparisonQuery() {
  const params = new URLSearchParams({ kpi: $("kpi").value, period: $("period").value, group: groupParam() });
  if (ownIstat()) params.set("highlight", ownIstat());
  return params.toString();
}

// ---- Comparison -------------------------------------------------------------------------

let generation = 0;

async function compare() {
  // Only the latest pick is shown: an answer that arrives after a newer pick is dropped.
  const mine = ++generation;
  const kpi = currentKpi();
  if (!kpi || !$("period").value) {
    $("result").hidden = true;
    say(t("nodata"));
    return;
  }
  if (!groupParam()) {
    say(t("choose.comuni"), "error");
    return;
  }
  say(t("loading"));
  let comparison;
  let series;
  try {
    comparison = await call(`/api/dashboard/comparison?${comparisonQuery()}`);
    series = await loadSeries(kpi, comparison);
  } catch (err) {
    if (mine === generation) say(errorText(err), "error");
    return;
  }
  if (mine !== generation) return;
  state.comparison = comparison;
  state.series = series;
  say("");
  render();
}

/** The series shown: the chosen comuni, else the own comune, else the best ranked. */
async function loadSeries(kpi, comparison) {
  const rows = comparison.rows;
  let comuni = $("group").value === "comuni" ? rows.map((r) => r.istat_code) : [];
  if (!comuni.length) comuni = rows.filter((r) => r.highlighted).map((r) => r.istat_code);
  if (!comuni.length && rows.length) comuni = [rows[0].istat_code];
  comuni = comuni.slice(0, MAX_SERIES);
  if (!comuni.length || !kpi.periods.length) return null;
  const params = new URLSearchParams({
    kpi: kpi.kpi_id,
    comuni: comuni.join(","),
    from: kpi.periods[kpi.periods.length - 1].period,
    to: kpi.periods[0].period,
  });
  return call(`/api/dashboard/series?${params}`);
}

function render() {
  const c = state.comparison;
  if (!c) return;
  $("result").hidden = false;
  const kpi = c.kpi;
  $("result-title").textContent = t("result.title", { kpi: `${kpi.kpi_id} ${kpi.title}`, period: c.period });
  $("kpi-definition").textContent = [
    kpi.definition,
    t(`kpi.polarity.${kpi.polarity}`),
    kpi.normalisation === "per_1000_inhabitants" ? t("kpi.normalised") : t("kpi.unit", { unit: kpi.unit }),
  ].join(" ");
  renderStats(c);
  renderBars(c);
  renderMissing(c);
  renderSeries();
  renderTable(c);
  $("snapshot").textContent = c.snapshot_time ? t("snapshot", { time: `${date(c.snapshot_time)} ${new Date(c.snapshot_time).toLocaleTimeString(lang() === "en" ? "en-GB" : "it-IT")}` }) : "";
}

function renderStats(c) {
  const s = c.statistics;
  const item = (key, value, id) => [el("dt", {}, t(key)), el("dd", { id }, value)];
  $("stats").replaceChildren(
    ...item("stats.median", fmt(s.median), "stat-median"),
    ...item("stats.mean", fmt(s.mean), "stat-mean"),
    ...item("stats.reported", t("stats.reported_value", { reported: s.reported_count, members: s.member_count }), "stat-reported"),
    ...item("stats.target", fmt(c.kpi.target), "stat-target"),
    ...item("stats.best", fmt(s.best), "stat-best"),
    ...item("stats.worst", fmt(s.worst), "stat-worst"),
  );
}

function chartWidth(id) {
  return $(id).clientWidth || 320;
}

function renderBars(c) {
  const ranked = c.rows.filter((r) => r.normalised_value !== null && r.normalised_value !== undefined);
  const shown = ranked.slice(0, MAX_BARS);
  $("legend").replaceChildren(
    ...["green", "yellow", "red"].map((b) => el("li", {}, el("span", { class: `swatch band-bg-${b}`, "aria-hidden": "true" }), t(`legend.${b}`))),
    el("li", {}, el("span", { class: "swatch target-swatch", "aria-hidden": "true" }), t("legend.target")),
  );
  const box = $("bars");
  if (!shown.length) {
    box.replaceChildren(el("p", { class: "hint" }, t("bars.empty")));
    return;
  }
  const period = c.period;
  box.replaceChildren(
    barChart(shown, {
      width: chartWidth("bars"),
      target: c.kpi.target,
      format: fmt,
      bandLabel: (b) => t(`band.${b}`),
      ownLabel: t("own"),
      targetLabel: t("target"),
      title: t("bars.title", { kpi: c.kpi.kpi_id, period }),
      description: t("bars.desc"),
    }),
    ...(ranked.length > shown.length ? [el("p", { class: "hint" }, t("bars.capped", { shown: shown.length, total: ranked.length }))] : []),
  );
}

function missingText(r) {
  const reason = t(`missing.${r.missing_reason}`);
  return r.missing_detail ? `${reason} (${r.missing_detail})` : reason;
}

function renderMissing(c) {
  const missing = c.rows.filter((r) => r.missing_reason);
  $("missing-box").hidden = missing.length === 0;
  $("missing").replaceChildren(
    ...missing.map((r) =>
      el("li", { "data-istat": r.istat_code, class: r.highlighted ? "own" : null },
        el("strong", {}, r.display_name), r.highlighted ? ` (${t("own")})` : "", `: ${missingText(r)}`),
    ),
  );
}

function renderSeries() {
  const s = state.series;
  const box = $("series");
  const legend = $("series-legend");
  if (!s || !s.series.length) {
    $("series-caption").textContent = "";
    legend.replaceChildren();
    box.replaceChildren(el("p", { class: "hint" }, t("series.none")));
    return;
  }
  const names = s.series.map((x) => x.display_name).join(", ");
  $("series-caption").textContent = t("series.caption", { names });
  legend.replaceChildren(...s.series.map((x, i) => el("li", {}, seriesSample(i), x.display_name)));
  const periods = s.series[0].points.map((p) => p.period);
  const table = el(
    "table",
    { id: "series-table", class: "series-table" },
    el("caption", {}, t("series.table")),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("table.period")), ...s.series.map((x) => el("th", { scope: "col", class: "number" }, x.display_name)))),
    el(
      "tbody",
      {},
      periods.map((p, i) =>
        el("tr", {}, el("th", { scope: "row" }, p), ...s.series.map((x) => {
          const point = x.points[i];
          const missing = point.normalised_value === null || point.normalised_value === undefined;
          return el("td", { class: "number" }, missing ? t(`missing.${point.missing_reason}`) : fmt(point.normalised_value));
        })),
      ),
    ),
  );
  box.replaceChildren(
    lineChart(s.series, {
      width: chartWidth("series"),
      target: s.kpi.target,
      format: fmt,
      targetLabel: t("target"),
      title: t("series.title", { kpi: s.kpi.kpi_id, names }),
      description: t("series.desc"),
      pointLabel: (x, p) => t("series.point", { name: x.display_name, period: p.period, value: fmt(p.normalised_value) }),
    }),
    el("details", {}, el("summary", {}, t("series.table")), el("div", { class: "table-box" }, table)),
  );
}

function renderTable(c) {
  const normalised = c.kpi.normalisation === "per_1000_inhabitants";
  const heads = ["table.rank", "table.comune", "table.istat", "table.value", ...(normalised ? ["table.normalised"] : []), "table.band", "table.missing"];
  const table = $("table");
  table.replaceChildren(
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col", class: ["table.rank", "table.value", "table.normalised"].includes(h) ? "number" : null }, t(h))))),
    el(
      "tbody",
      {},
      c.rows.map((r) => {
        const cell = (key, value, cls) => el("td", { "data-label": t(key), class: cls }, value);
        const reason = r.missing_reason ? missingText(r) : r.in_group ? "" : t("missing.outside");
        return el(
          "tr",
          { class: r.highlighted ? "own" : null, "data-istat": r.istat_code },
          cell("table.rank", r.rank || "", "number rank"),
          el("th", { scope: "row", "data-label": t("table.comune") }, r.display_name, r.highlighted ? el("span", { class: "own-tag" }, ` (${t("own")})`) : null),
          cell("table.istat", r.istat_code, "istat"),
          cell("table.value", r.value === null || r.value === undefined ? "" : fmt(r.value), "number value"),
          normalised ? cell("table.normalised", r.normalised_value === null || r.normalised_value === undefined ? "" : fmt(r.normalised_value), "number normalised") : null,
          cell("table.band", el("span", { class: `status band-${r.band}` }, t(`band.${r.band}`)), "band"),
          cell("table.missing", reason, "missing"),
        );
      }),
    ),
  );
}

// ---- Events -----------------------------------------------------------------------------

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  signIn(value);
  $("token").value = "";
  say("");
  await start();
  $("main").focus();
});

$("signout").addEventListener("click", () => {
  signOut();
  state.session = null;
  state.comparison = null;
  $("who").textContent = "";
  $("result").hidden = true;
  say("");
  show("signin");
  $("token").focus();
});

$("lang").addEventListener("click", () => {
  setLang(lang() === "it" ? "en" : "it");
  translatePage();
  $("lang").textContent = t("lang.switch");
  $("lang").lang = lang() === "it" ? "en" : "it";
  if (state.groups) {
    $("who").textContent = whoText();
    fillKpis();
    fillPeriods();
    fillGroups();
  }
  render();
});

$("kpi").addEventListener("change", () => {
  fillPeriods();
  compare();
});
$("period").addEventListener("change", () => compare());
$("group").addEventListener("change", () => {
  $("chosen").hidden = $("group").value !== "comuni";
  if ($("group").value !== "comuni") compare();
});
$("pickers").addEventListener("submit", (event) => {
  event.preventDefault();
  compare();
});
$("csv").addEventListener("click", async () => {
  if (!groupParam()) {
    say(t("choose.comuni"), "error");
    return;
  }
  try {
    await download(`/api/dashboard/comparison.csv?${comparisonQuery()}`, `confronto-${$("kpi").value}-${$("period").value}.csv`);
  } catch (err) {
    say(errorText(err), "error");
  }
});

let resizing = 0;
window.addEventListener("resize", () => {
  cancelAnimationFrame(resizing);
  resizing = requestAnimationFrame(() => {
    if (state.comparison && !$("result").hidden) {
      renderBars(state.comparison);
      renderSeries();
    }
  });
});

start();
