// Shared by the browser tests: Debian's Chromium driven by playwright-core, screenshots kept
// as artifacts, and axe-core run inside the page for WCAG 2.1 A/AA.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);

/** The demo federation the Rust test started (`demo.json`). */
export function demo() {
  return JSON.parse(readFileSync(process.env.UNIONE_DEMO_JSON, "utf8"));
}

/** The folder where this test keeps its screenshots. */
export function artifacts() {
  const dir = process.env.UNIONE_ARTIFACTS;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Launches headless Chromium with the flags this closed network needs; playwright gives
 *  every launch a fresh, empty profile of its own. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.UNIONE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

let shots = 0;
/** Saves a full-page screenshot named `NN-name.png`. */
export async function screenshot(page, name) {
  shots += 1;
  const file = join(artifacts(), `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Runs axe-core in the page for WCAG 2.0/2.1 A and AA; throws on any violation. */
export async function checkAccessibility(page, what) {
  const source = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(source);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  if (result.violations.length > 0) {
    const lines = result.violations.map(
      (v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("\n    ")}`,
    );
    throw new Error(`accessibility violations on ${what}:\n  ${lines.join("\n  ")}`);
  }
  return result.passes.length;
}

/** Fails with `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `body(browser)` and exits 0, or prints the error and exits 1. Pages print their
 *  console errors, so a failing script shows why. */
export async function run(name, body) {
  const browser = await launch();
  try {
    await body(browser);
    console.log(`${name}: ok`);
  } catch (err) {
    console.error(`${name}: FAILED\n${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** A new page that reports console errors and failed requests on stderr. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") console.error(`[page console] ${msg.text()}`);
  });
  page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
  return page;
}
