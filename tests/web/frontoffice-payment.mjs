// The front office (issue 8): the citizen pays a notice through the SIMULATED payment
// provider, which makes the real provider calls of the payments service (verify, activate,
// receipt; DOMAIN.md "Payments"); the position is PAID, as the operator sees through the gRPC
// API, and the citizen downloads the sealed receipt.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { check, demo, newPage, run } from "./lib.mjs";
import { callGrpc } from "./frontoffice-grpc.mjs";
import { SARZANA, accessible, heading, signInAndChoose, viewText } from "./frontoffice-lib.mjs";

const d = demo();

await run("front office: payment", async (browser) => {
  const page = await newPage(browser);
  await signInAndChoose(page, d.web, d.tokens.citizen);
  await page.getByRole("link", { name: "Avvisi di pagamento" }).click();
  await heading(page, "Avvisi di pagamento");
  await accessible(page, "notices");

  // The demo citizen's TARI in two installments, the first already paid.
  const open = page.getByRole("link", { name: /^Dettagli: TARI 2026/ });
  await open.click();
  await heading(page, "Avviso di pagamento");
  const [, istat, id] = page.url().match(/#\/notices\/(\d{6})\/([0-9a-f]+)$/) || [];
  check(istat === SARZANA && id, `the notice has an address: ${page.url()}`);
  const pay = page.getByRole("link", { name: /^Paga l'avviso \d{18}$/ });
  check((await pay.count()) === 1, "exactly one installment is left to pay");
  const notice = (await pay.getAttribute("aria-label")).match(/\d{18}/)[0];
  check((await viewText(page)).includes("Pagato in parte"), "the position is partly paid");
  await accessible(page, "notice");

  const operator = d.tokens.operators[SARZANA];
  const name = `comuni/${SARZANA}/debtPositions/${id}`;
  const before = await callGrpc(d, "payments.v1.DebtPositionService", "GetDebtPosition", { name }, operator, SARZANA);
  check(before.state === "STATE_PARTIALLY_PAID", `before: ${before.state}`);

  // The checkout: what the provider verified, and a clear "simulated" notice.
  await pay.click();
  await heading(page, "Pagamento");
  let text = await viewText(page);
  check(text.includes("SIMULATO") && text.includes("nessun denaro"), "the checkout says it is simulated");
  check(text.includes(notice) && text.includes("Pagabile") && text.includes("Sarzana"), "the checkout shows the verified notice");
  await accessible(page, "checkout");
  await page.getByRole("button", { name: /^Paga / }).click();
  const outcome = page.locator("#payment-outcome");
  await outcome.waitFor();
  check((await outcome.innerText()).includes("Pagato"), `outcome: ${await outcome.innerText()}`);
  await accessible(page, "checkout-paid");

  // The operator sees the position PAID through the gRPC API.
  const after = await callGrpc(d, "payments.v1.DebtPositionService", "GetDebtPosition", { name }, operator, SARZANA);
  check(after.state === "STATE_PAID", `after: ${after.state}`);
  check(after.payment_options.every((o) => o.paid), "every installment is paid");

  // Back on the notice: both receipts can be downloaded; the new one is sealed and verifies.
  await page.getByRole("link", { name: "Torna all'avviso" }).last().click();
  await heading(page, "Avviso di pagamento");
  text = await viewText(page);
  check(text.includes("Pagato") && !text.includes("Pagato in parte"), "the page shows the position paid");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: `Scarica la ricevuta dell'avviso ${notice}` }).click(),
  ]);
  const bytes = readFileSync(await download.path());
  const receipt = JSON.parse(bytes.toString("utf8"));
  check(receipt.notice_number === notice, `the receipt is the notice's: ${receipt.notice_number}`);
  check(receipt.psp_id === "DEMO-PSP", `the receipt names the provider: ${receipt.psp_id}`);
  check(download.suggestedFilename() === `ricevuta-${notice}.json`, download.suggestedFilename());
  // Its seal: the SHA-256 the payments service recorded, which the provider can fetch.
  const sealed = await callGrpc(d, "payments.v1.PaymentProviderService", "ListReceipts",
    { parent: `comuni/${SARZANA}/notices/${notice}` }, d.tokens.payment_provider, SARZANA);
  const stored = await callGrpc(d, "payments.v1.PaymentProviderService", "GetReceipt",
    { name: sealed.receipts[0].name }, d.tokens.payment_provider, SARZANA);
  check(createHash("sha256").update(bytes).digest("hex") === stored.sha256, "the downloaded receipt is the sealed document");
  await accessible(page, "notice-paid");
});
