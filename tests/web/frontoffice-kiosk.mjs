// The front office (issue 8) as a 24-hour kiosk (`?kiosk=1`): bigger targets, and after
// `kiosk_idle_seconds` of inactivity (from /api/settings; the demo keeps the default 90 s) a
// visible countdown, then a sign-out that clears everything of the session. The page's clock
// is Playwright's emulated clock, so the real 90-second logic runs in a moment without any
// test-only setting in the product.
import { check, demo, newPage, run, screenshot } from "./lib.mjs";
import { accessible, heading, signInAndChoose, viewText } from "./frontoffice-lib.mjs";

const d = demo();

await run("front office: kiosk", async (browser) => {
  const page = await newPage(browser);
  await page.clock.install();
  await signInAndChoose(page, `${d.web}?kiosk=1#/`, d.tokens.citizen);
  check(await page.evaluate(() => document.body.classList.contains("kiosk")), "kiosk mode is on");
  const tile = await page.getByRole("link", { name: "Certificati" }).boundingBox();
  check(tile.height >= 56, `kiosk targets are large: ${tile.height}px`);
  await accessible(page, "kiosk-home");

  const { kiosk_idle_seconds: idle } = await page.evaluate(() => fetch("/api/settings").then((r) => r.json()));
  check(idle === 90, `the demo keeps the default idle time: ${idle}`);
  const warnAt = Math.max(5, Math.min(30, Math.floor(idle / 3)));

  // Some data on screen, then inactivity: the countdown shows before the sign-out.
  await page.getByRole("link", { name: "Residenza e famiglia" }).click();
  await heading(page, "La mia residenza e la mia famiglia");
  await page.locator("#household-title").waitFor();
  const warning = page.locator("#kiosk-warning");
  await page.clock.runFor((idle - warnAt - 2) * 1000);
  check(await warning.isHidden(), "no warning before the last seconds");
  await page.clock.runFor(3000);
  await warning.waitFor({ state: "visible" });
  const first = Number((await page.locator("#kiosk-warning-text").innerText()).match(/(\d+) secondi/)[1]);
  check(first <= warnAt && first > warnAt - 3, `countdown starts at ${first}`);
  check(await page.evaluate(() => document.activeElement.id === "kiosk-continue"), "the warning takes the focus");
  await page.clock.runFor(3000);
  const later = Number((await page.locator("#kiosk-warning-text").innerText()).match(/(\d+) secondi/)[1]);
  check(later === first - 3, `the countdown counts down: ${first} then ${later}`);
  await accessible(page, "kiosk-warning");

  // Touching "Continua" keeps the session.
  await page.getByRole("button", { name: "Continua" }).click();
  await warning.waitFor({ state: "hidden" });
  await page.clock.runFor((idle - warnAt - 2) * 1000);
  check(await warning.isHidden(), "activity restarted the idle time");
  check((await viewText(page)).includes(d.citizen_fiscal_number), "still signed in after Continua");

  // Left alone, the kiosk signs out and forgets everything.
  await page.clock.runFor((warnAt + 3) * 1000);
  await heading(page, "Accedi allo sportello");
  const after = await page.evaluate(() => ({
    storage: sessionStorage.length,
    hash: location.hash,
    who: document.getElementById("who").textContent,
    lang: document.documentElement.lang,
  }));
  check(after.storage === 0, `the session storage is empty: ${after.storage}`);
  check(after.hash === "#/", `back to the start: ${after.hash}`);
  check(!after.who.includes(d.citizen_fiscal_number), "the header no longer names the citizen");
  check(after.lang === "it", "the next citizen starts in Italian");
  check(await page.locator("#signout").isHidden(), "no sign-out button without a session");
  const text = await viewText(page);
  check(text.includes("Sessione chiusa per inattività"), "the page says why");
  check(!text.includes(d.citizen_fiscal_number), "no data of the citizen is left on screen");
  await accessible(page, "kiosk-signed-out");
  await screenshot(page, "kiosk-done");
});
