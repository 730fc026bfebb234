// Steps the front office tests share: signing in with a token, choosing the comune, and
// checking a page state with axe-core at desktop and phone widths.
import { check, checkAccessibility, screenshot } from "./lib.mjs";

export const SARZANA = "011027";
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** Waits until the page rendered a view whose h1 is `title` (a string or RegExp). */
export async function heading(page, title) {
  await page.locator("#view h1", { hasText: title }).first().waitFor({ timeout: 20000 });
  await settled(page);
}

/** Waits until the view finished rendering: a view shows its heading and any confirmation
 *  at once, and the rest when its data has arrived. */
export async function settled(page) {
  await page.waitForFunction(() => !document.getElementById("view").hasAttribute("aria-busy"));
}

/** Signs in with `token` on the page at `url` and chooses `istat`. */
export async function signInAndChoose(page, url, token, istat = SARZANA) {
  await page.goto(url);
  await heading(page, "Accedi allo sportello");
  await page.fill("#token", token);
  await page.getByRole("button", { name: "Accedi", exact: true }).click();
  await heading(page, "Scegli il tuo comune");
  await page.selectOption("#comune", istat);
  await page.getByRole("button", { name: "Conferma" }).click();
  await heading(page, "Cosa vuoi fare?");
}

/** Checks the current page state with axe-core at desktop and phone widths, keeping a
 *  screenshot of each. */
export async function accessible(page, what) {
  const text = await page.locator("body").innerText();
  const leak = text.match(/\b(null|undefined|NaN)\b|\[object Object\]/);
  check(!leak, `${what}: the page shows a programming value: ${leak && leak[0]}`);
  const size = page.viewportSize() || DESKTOP;
  for (const [name, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    await checkAccessibility(page, `${what} (${name})`);
    await screenshot(page, `${what}-${name}`);
  }
  await page.setViewportSize(size);
}

/** The text of the view. */
export async function viewText(page) {
  return page.locator("#view").innerText();
}

/** Fails unless `control` carries an error tied to it with aria-describedby and
 *  aria-invalid, and the form's alert announces it. */
export async function errorTiedTo(page, selector, expected) {
  const state = await page.evaluate((sel) => {
    const control = document.querySelector(sel);
    const ids = (control.getAttribute("aria-describedby") || "").split(" ");
    const error = document.getElementById(`${control.id}-error`);
    const alert = control.closest("form").querySelector(".form-alert");
    return {
      invalid: control.getAttribute("aria-invalid"),
      tied: ids.includes(`${control.id}-error`),
      error: error && !error.hidden ? error.textContent : null,
      alertRole: alert.getAttribute("role"),
      alert: alert.textContent,
    };
  }, selector);
  check(state.invalid === "true" && state.tied, `${selector}: error not tied to its field: ${JSON.stringify(state)}`);
  check(state.error && state.error.includes(expected), `${selector}: error text ${JSON.stringify(state.error)} lacks ${expected}`);
  check(state.alertRole === "alert" && state.alert.includes(expected), `${selector}: error not announced: ${JSON.stringify(state)}`);
}
