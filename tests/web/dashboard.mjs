// The administrators' benchmark dashboard (issue 7) in a real browser against the demo: an
// operator of Sarzana signs in, picks a KPI and a period the demo has values for, and every
// number the page shows (bars: count, order, labels, values, band colours; the table; the
// group's statistics; the CSV download) is checked against the JSON API's answer fetched in
// the same test. The own town is highlighted, the time series has points, axe-core finds no
// WCAG 2.1 AA violation, nothing overflows at a phone's width, and a citizen is told the page
// is not for them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { artifacts, check, checkAccessibility, demo, newPage, run, screenshot } from "./lib.mjs";

const d = demo();
const OWN = "011027";
const operator = d.tokens.operators[OWN];
const base = d.web.replace(/\/$/, "");

async function api(path, token = operator) {
  const response = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** Polls until `probe()` answers something truthy, at most `seconds`. */
async function eventually(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  let last = null;
  for (;;) {
    try {
      const answer = await probe();
      if (answer) return answer;
      last = "not yet";
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** RFC 4180 CSV into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else if (c !== "\r") field += c;
  }
  return rows;
}

function hexToRgb(hex) {
  const h = hex.trim().replace("#", "");
  const n = parseInt(h, 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

const sameNumber = (text, value) => (value === null || value === undefined ? text === "" : Number(text) === value);

async function signInAs(page, token) {
  await page.goto(`${base}/dashboard/`);
  await page.waitForSelector("#token", { state: "visible" });
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
}

await run("dashboard", async (browser) => {
  // The comuni the demo has; wait (bounded) until the gateway's snapshot holds a KPI and a
  // period that every one of them reported.
  const members = (await api("/api/comuni")).comuni;
  const { kpi, period } = await eventually("a KPI every demo comune reported", 180, async () => {
    const { kpis } = await api("/api/dashboard/kpis");
    // A KPI normalised per 1,000 inhabitants first, so both value columns are checked.
    const order = [...kpis].sort((a, b) => (b.normalisation === "per_1000_inhabitants") - (a.normalisation === "per_1000_inhabitants"));
    for (const k of order) {
      const full = k.periods.find((p) => p.reported_count === members.length);
      if (full) return { kpi: k, period: full.period };
    }
    return null;
  });
  const query = new URLSearchParams({ kpi: kpi.kpi_id, period, group: "federation", highlight: OWN });
  const expected = await api(`/api/dashboard/comparison?${query}`);
  check(expected.rows.length === members.length, `every member is compared: ${expected.rows.length}`);
  const ranked = expected.rows.filter((r) => r.normalised_value !== null);

  const page = await newPage(browser, { acceptDownloads: true });
  await page.goto(`${base}/dashboard/`);
  await page.waitForSelector("#signin:not([hidden])");
  await screenshot(page, "sign-in");
  await checkAccessibility(page, "the sign-in form");

  await signInAs(page, operator);
  await page.waitForFunction(() => document.getElementById("who").textContent.includes("Sarzana"));
  await page.waitForSelector("#result:not([hidden])");
  await screenshot(page, "signed-in");

  // Pick the KPI, the period and the whole federation.
  await page.selectOption("#kpi", kpi.kpi_id);
  await page.selectOption("#period", period);
  await page.selectOption("#group", "federation");
  await page.waitForFunction(
    ({ id, period, n }) =>
      document.getElementById("result-title").textContent.includes(id) &&
      document.getElementById("result-title").textContent.includes(period) &&
      document.querySelectorAll("#bars-chart .bar-row").length === n &&
      document.querySelectorAll("#table tbody tr").length > 0 &&
      document.querySelectorAll("#series-chart .point").length > 0,
    { id: kpi.kpi_id, period, n: ranked.length },
  );
  // The answer fetched by the page itself, after the pickers settled.
  const shown = await page.evaluate(async (q) => {
    const r = await fetch(`/api/dashboard/comparison?${q}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem("unione.token")}` } });
    const answer = await r.json();
    const fmt = (v) => (v === null || v === undefined ? "" : new Intl.NumberFormat("it-IT", { maximumFractionDigits: 2 }).format(v));
    const css = getComputedStyle(document.documentElement);
    return {
      answer,
      fmtValues: answer.rows.map((row) => ({ value: fmt(row.value), normalised: fmt(row.normalised_value) })),
      fmtStats: { median: fmt(answer.statistics.median), mean: fmt(answer.statistics.mean), target: fmt(answer.kpi.target) },
      bandColours: Object.fromEntries(["green", "yellow", "red", "grey"].map((b) => [b, css.getPropertyValue(`--band-${b}`)])),
      bars: [...document.querySelectorAll("#bars-chart .bar-row")].map((g) => ({
        istat: g.dataset.istat,
        rank: g.dataset.rank,
        band: g.dataset.band,
        value: Number(g.dataset.value),
        own: g.classList.contains("own"),
        name: g.querySelector(".bar-name").textContent,
        label: g.querySelector(".bar-value").textContent,
        fill: getComputedStyle(g.querySelector(".bar")).fill,
        width: Number(g.querySelector(".bar").getAttribute("width")),
      })),
      table: [...document.querySelectorAll("#table tbody tr")].map((tr) => ({
        istat: tr.dataset.istat,
        own: tr.classList.contains("own"),
        rank: tr.querySelector(".rank").textContent,
        value: tr.querySelector(".value").textContent,
        normalised: tr.querySelector(".normalised")?.textContent ?? null,
        band: tr.querySelector(".band").textContent,
        name: tr.querySelector("th").textContent,
      })),
      stats: {
        median: document.getElementById("stat-median").textContent,
        mean: document.getElementById("stat-mean").textContent,
        reported: document.getElementById("stat-reported").textContent,
        target: document.getElementById("stat-target").textContent,
      },
      targetLine: document.querySelectorAll("#bars-chart .target-line").length,
      seriesPoints: document.querySelectorAll("#series-chart .point").length,
      seriesOwn: document.querySelectorAll(`#series-chart .series[data-istat="011027"] .point`).length,
      seriesTarget: document.querySelectorAll("#series-chart .target-line").length,
    };
  }, query.toString());
  await screenshot(page, "comparison");

  const answer = shown.answer;
  const project = (rows) => JSON.stringify(rows.map((r) => [r.istat_code, r.rank, r.value, r.normalised_value, r.band, r.missing_reason]));
  check(project(answer.rows) === project(expected.rows), `the page's answer is the test's: ${project(answer.rows)} vs ${project(expected.rows)}`);
  const bandWords = { green: "verde", yellow: "giallo", red: "rosso", grey: "grigio" };
  const withValues = answer.rows.filter((r) => r.normalised_value !== null);
  // The bars: one per member with a value, in the API's order, with its rank, value, band
  // (in colour and in words) and name.
  check(shown.bars.length === withValues.length, `bars: ${shown.bars.length} for ${withValues.length} values`);
  withValues.forEach((row, i) => {
    const bar = shown.bars[i];
    const where = `bar ${i} (${JSON.stringify(bar)} vs ${JSON.stringify(row)})`;
    check(bar.istat === row.istat_code, `${where}: order`);
    check(bar.rank === String(row.rank), `${where}: rank`);
    check(bar.value === row.normalised_value, `${where}: value`);
    check(bar.band === row.band, `${where}: band`);
    check(bar.fill === hexToRgb(shown.bandColours[row.band]), `${where}: colour ${bar.fill}`);
    check(bar.name.startsWith(`${row.rank}. ${row.display_name}`), `${where}: name label`);
    const index = answer.rows.indexOf(row);
    check(bar.label === `${shown.fmtValues[index].normalised} · ${bandWords[row.band]}`, `${where}: value label ${bar.label}`);
    check(bar.width > 0, `${where}: drawn`);
  });
  check(shown.targetLine === 1, "the target is drawn as a line");
  // The own town is highlighted in the chart and in the table, and only it.
  const ownBars = shown.bars.filter((b) => b.own).map((b) => b.istat);
  check(JSON.stringify(ownBars) === JSON.stringify([OWN]), `own bar: ${ownBars}`);
  check(shown.bars.find((b) => b.own).name.includes("il tuo comune"), "the own bar says so in words");
  const ownRows = shown.table.filter((r) => r.own).map((r) => r.istat);
  check(JSON.stringify(ownRows) === JSON.stringify([OWN]), `own table row: ${ownRows}`);
  // The table: every member, in the API's order, with the same numbers.
  check(shown.table.length === answer.rows.length, `table rows: ${shown.table.length}`);
  answer.rows.forEach((row, i) => {
    const line = shown.table[i];
    const where = `table row ${i} (${JSON.stringify(line)} vs ${JSON.stringify(row)})`;
    check(line.istat === row.istat_code, `${where}: order`);
    check(line.name.startsWith(row.display_name), `${where}: name`);
    check(line.rank === (row.rank ? String(row.rank) : ""), `${where}: rank`);
    check(line.value === shown.fmtValues[i].value, `${where}: value`);
    if (answer.kpi.normalisation === "per_1000_inhabitants") check(line.normalised === shown.fmtValues[i].normalised, `${where}: normalised`);
    check(line.band === bandWords[row.band], `${where}: band`);
  });
  // The group's statistics.
  check(shown.stats.median === shown.fmtStats.median, `median ${shown.stats.median}`);
  check(shown.stats.mean === shown.fmtStats.mean, `mean ${shown.stats.mean}`);
  check(shown.stats.target === shown.fmtStats.target, `target ${shown.stats.target}`);
  check(shown.stats.reported === `${answer.statistics.reported_count} su ${answer.statistics.member_count}`, `reported ${shown.stats.reported}`);
  // The time series of the own town, with the target.
  check(shown.seriesPoints > 0 && shown.seriesOwn === shown.seriesPoints, `series points: ${shown.seriesPoints} (own ${shown.seriesOwn})`);
  check(shown.seriesTarget === 1, "the series shows the target");

  const passes = await checkAccessibility(page, "the dashboard with a comparison shown");
  check(passes > 0, "axe ran its checks");

  // The CSV download equals the API's answer.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  check(download.suggestedFilename() === `confronto-${kpi.kpi_id}-${period}.csv`, `file name ${download.suggestedFilename()}`);
  const csvText = readFileSync(await download.path(), "utf8");
  check(csvText.startsWith("\ufeff"), "the CSV starts with a byte order mark");
  const [header, ...lines] = parseCsv(csvText.slice(1));
  const col = Object.fromEntries(header.map((name, i) => [name, i]));
  check(lines.length === answer.rows.length, `CSV rows: ${lines.length}`);
  answer.rows.forEach((row, i) => {
    const line = lines[i];
    const where = `CSV row ${i} (${line} vs ${JSON.stringify(row)})`;
    check(line[col.istat_code] === row.istat_code, `${where}: order`);
    check(line[col.comune] === row.display_name, `${where}: name`);
    check(line[col.rank] === (row.rank ? String(row.rank) : ""), `${where}: rank`);
    check(sameNumber(line[col.value], row.value), `${where}: value`);
    check(sameNumber(line[col.normalised_value], row.normalised_value), `${where}: normalised`);
    check(line[col.band] === row.band, `${where}: band`);
    check(line[col.missing_reason] === row.missing_reason, `${where}: missing reason`);
    check(sameNumber(line[col.group_median], answer.statistics.median), `${where}: median`);
    check(sameNumber(line[col.group_mean], answer.statistics.mean), `${where}: mean`);
    check(line[col.group_reported_count] === String(answer.statistics.reported_count), `${where}: reported`);
    check(sameNumber(line[col.target], answer.kpi.target), `${where}: target`);
  });

  // English.
  await page.click("#lang");
  await page.waitForFunction(() => document.documentElement.lang === "en" && document.querySelector("#bars-chart .bar-value").textContent.match(/green|yellow|red/));
  check((await page.textContent("h1")).includes("Comparing"), "the heading in English");
  await screenshot(page, "english");
  await checkAccessibility(page, "the dashboard in English");
  await page.click("#lang");

  // Chosen comuni: the group named town by town, keyboard only.
  await page.focus("#group");
  await page.selectOption("#group", "comuni");
  await page.waitForSelector("#chosen:not([hidden])");
  await page.check("#chosen-011011");
  await page.focus("#pickers button[type=submit]");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#table tbody tr").length === 2);
  // The time series shows the chosen towns, each in the legend with its own marker.
  await page.waitForFunction(() => document.querySelectorAll("#series-chart .series").length === 2);
  const seriesTowns = await page.$$eval("#series-chart .series", (gs) => gs.map((g) => g.dataset.istat).sort());
  check(JSON.stringify(seriesTowns) === JSON.stringify(["011011", "011027"]), `series: ${seriesTowns}`);
  check((await page.$$("#series-legend li")).length === 2, "a legend entry per town");
  await screenshot(page, "chosen-comuni");

  // A period some town did not report: each missing town is listed with its reason.
  const partial = (await api("/api/dashboard/kpis")).kpis
    .flatMap((k) => k.periods.map((p) => ({ kpi: k.kpi_id, period: p.period, n: p.reported_count })))
    .find((p) => p.n > 0 && p.n < members.length);
  check(partial, "the demo has a period that some town did not report");
  const gaps = await api(`/api/dashboard/comparison?${new URLSearchParams({ kpi: partial.kpi, period: partial.period, group: "federation", highlight: OWN })}`);
  await page.selectOption("#group", "federation");
  await page.selectOption("#kpi", partial.kpi);
  await page.selectOption("#period", partial.period);
  await page.waitForFunction(
    ({ id, period }) => document.getElementById("result-title").textContent.includes(`${id} `) && document.getElementById("result-title").textContent.includes(period),
    { id: partial.kpi, period: partial.period },
  );
  await page.waitForFunction((n) => document.querySelectorAll("#missing li").length === n && document.querySelectorAll("#bars-chart .bar-row").length > 0,
    gaps.rows.filter((r) => r.missing_reason).length);
  const listed = await page.$$eval("#missing li", (lis) => lis.map((li) => ({ istat: li.dataset.istat, text: li.textContent })));
  const reasons = { unreachable: "nodo non raggiungibile", not_reported: "dato non comunicato", not_applicable: "indicatore non applicabile", confidential: "dato riservato", function_not_provided: "ufficio qualità non attivo nella federazione", not_collected: "dati non ancora raccolti", population_unknown: "popolazione non nota" };
  gaps.rows.filter((r) => r.missing_reason).forEach((row, i) => {
    check(listed[i].istat === row.istat_code && listed[i].text.includes(row.display_name) && listed[i].text.includes(reasons[row.missing_reason]),
      `missing ${i}: ${JSON.stringify(listed[i])} vs ${JSON.stringify(row)}`);
  });
  const bars = await page.$$eval("#bars-chart .bar-row", (gs) => gs.map((g) => g.dataset.istat));
  check(JSON.stringify(bars) === JSON.stringify(gaps.rows.filter((r) => !r.missing_reason).map((r) => r.istat_code)), `bars without the missing: ${bars}`);
  await screenshot(page, "missing-towns");

  // A phone: nothing overflows horizontally.
  const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await signInAs(phone, operator);
  await phone.waitForSelector("#bars-chart .bar-row");
  await phone.selectOption("#kpi", kpi.kpi_id);
  await phone.selectOption("#period", period);
  await phone.waitForFunction(
    ({ id, period }) => document.getElementById("result-title").textContent.includes(`${id} `) && document.getElementById("result-title").textContent.includes(period),
    { id: kpi.kpi_id, period },
  );
  await phone.waitForSelector("#series-chart .point");
  const overflow = await phone.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("body *")]
      .filter((n) => n.getBoundingClientRect().right > width + 1 && !n.closest(".visually-hidden, .skip-link"))
      .map((n) => `${n.tagName.toLowerCase()}#${n.id}.${n.className?.baseVal ?? n.className}`)
      .slice(0, 5);
    return { scroll: document.documentElement.scrollWidth, width, wide };
  });
  check(overflow.scroll <= overflow.width && overflow.wide.length === 0, `overflow at 390 px: ${JSON.stringify(overflow)}`);
  await screenshot(phone, "phone");
  await phone.locator("figure.chart").first().screenshot({ path: join(artifacts(), "phone-bars.png") });
  await checkAccessibility(phone, "the dashboard at a phone's width");

  // A citizen is told the page is not for them, and the API refuses them too.
  const citizen = await newPage(browser);
  await signInAs(citizen, d.tokens.citizen);
  await citizen.waitForSelector("#not-for-you:not([hidden])");
  check(await citizen.isHidden("#app"), "no dashboard for a citizen");
  await screenshot(citizen, "citizen");
  const refused = await fetch(`${base}/api/dashboard/comparison?${query}`, { headers: { Authorization: `Bearer ${d.tokens.citizen}` } });
  check(refused.status === 403, `the API refuses a citizen: ${refused.status}`);
});
