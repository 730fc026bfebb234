// The front office (issue 8): the demo citizen signs in, sees their residence and household,
// requests a residence certificate and downloads its PDF; then, signed out, anyone verifies
// the certificate's code through the page's public form (DOMAIN.md "Registry": certificates
// carry a verification code anyone may check).
import { readFileSync } from "node:fs";
import { check, demo, newPage, run, screenshot } from "./lib.mjs";
import { SARZANA, accessible, errorTiedTo, heading, viewText } from "./frontoffice-lib.mjs";

const d = demo();

await run("front office: certificate", async (browser) => {
  const page = await newPage(browser);
  await page.goto(d.web);
  await heading(page, "Accedi allo sportello");
  check((await viewText(page)).includes("SPID"), "the sign-in page says that SPID/CIE give the token in production");
  await accessible(page, "sign-in");

  // Keyboard: the first Tab reaches the skip link, which moves the focus to the content.
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.id === "skip"), "the first Tab reaches the skip link");
  await screenshot(page, "skip-link");
  await page.keyboard.press("Enter");
  check(await page.evaluate(() => document.getElementById("main").contains(document.activeElement)), "the skip link moves the focus to the content");
  check(page.url().endsWith("#/") || !page.url().includes("#main"), `the skip link keeps the address: ${page.url()}`);

  // A token that is not a citizen's is refused, with the error on the token field.
  await page.fill("#token", d.tokens.operators[SARZANA]);
  await page.getByRole("button", { name: "Accedi", exact: true }).click();
  await page.locator("#token-error:not([hidden])").waitFor();
  await errorTiedTo(page, "#token", "non è di un cittadino");
  await accessible(page, "sign-in-error");

  // Signing in with the keyboard only: type the token, Tab to the button, Enter.
  await page.fill("#token", "");
  await page.focus("#token");
  await page.keyboard.insertText(d.tokens.citizen);
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.textContent === "Accedi"), "Tab leads from the token to the button");
  await page.keyboard.press("Enter");
  await heading(page, "Scegli il tuo comune");
  await page.focus("#comune");
  await page.selectOption("#comune", SARZANA);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await heading(page, "Cosa vuoi fare?");
  check((await page.locator("#who").innerText()).includes(d.citizen_fiscal_number), "the header names the citizen");
  await accessible(page, "home");

  // Residence and household.
  await page.getByRole("link", { name: "Residenza e famiglia" }).click();
  await heading(page, "La mia residenza e la mia famiglia");
  await page.locator("#household-title").waitFor();
  const residence = await viewText(page);
  check(residence.includes(d.citizen_fiscal_number), "the residence page shows the citizen's codice fiscale");
  check(residence.includes("Tu"), "the household lists the citizen");
  await accessible(page, "residence");

  // Request a residence certificate, open it, download its PDF.
  await page.goto(`${d.web}#/certificates`);
  await heading(page, "Certificati");
  await page.selectOption("#cert-type", "RESIDENCE");
  await page.getByRole("button", { name: "Richiedi il certificato" }).click();
  const issued = page.locator(".alert.success", { hasText: "Codice di verifica" });
  await issued.waitFor();
  const code = (await issued.innerText()).match(/Codice di verifica: ([A-Z2-9]{12})/)[1];
  await accessible(page, "certificates");
  await issued.getByRole("link", { name: "Apri" }).click();
  await heading(page, "Certificato");
  check(/#\/certificates\/011027\/[0-9a-f]+$/.test(page.url()), `the certificate has an address: ${page.url()}`);
  check((await viewText(page)).includes(code), "the certificate page shows its code");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-pdf")]);
  const pdf = readFileSync(await download.path());
  check(pdf.subarray(0, 5).toString() === "%PDF-", "the download is a PDF");
  check(download.suggestedFilename() === `certificato-${code}.pdf`, `file name ${download.suggestedFilename()}`);
  await accessible(page, "certificate");

  // Signed out, anyone verifies the code through the public form.
  await page.getByRole("button", { name: "Esci" }).click();
  await heading(page, "Accedi allo sportello");
  check(await page.evaluate(() => sessionStorage.length === 0), "signing out clears the session");
  await page.getByRole("link", { name: "Verifica un certificato senza accedere" }).click();
  await heading(page, "Verifica un certificato");
  await page.selectOption("#verify-comune", SARZANA);
  await page.fill("#verify-code", "ZZZZ-ZZZZ-ZZZZ");
  await page.getByRole("button", { name: "Verifica", exact: true }).click();
  await page.locator("#verify-code-error:not([hidden])").waitFor();
  await errorTiedTo(page, "#verify-code", "Nessun certificato");
  await accessible(page, "verify-error");
  await page.fill("#verify-code", code.toLowerCase().replace(/(.{4})/g, "$1 ").trim());
  await page.getByRole("button", { name: "Verifica", exact: true }).click();
  const outcome = page.locator("#verify-outcome");
  await outcome.waitFor();
  check((await outcome.innerText()).includes("autentico"), `verification: ${await outcome.innerText()}`);
  check((await viewText(page)).includes(d.citizen_fiscal_number), "the verified content names the person");
  await accessible(page, "verify");

  // English as the second language.
  await page.getByRole("button", { name: "English" }).click();
  await heading(page, "Verify a certificate");
  check(await page.evaluate(() => document.documentElement.lang === "en"), "the page's language is English");
  await screenshot(page, "verify-english");
});
