// The front office (issue 8): a second citizen cannot open the first one's case, certificate
// or notice by its address, nor pay the first one's notice through the simulated provider.
// The page shows the API's refusal, never the other citizen's data: the gateway and the node
// decide (a citizen's own records only; another's is NOT_FOUND, as a missing one).
import { check, demo, newPage, run, screenshot } from "./lib.mjs";
import { callGrpc, citizenToken } from "./frontoffice-grpc.mjs";
import { SARZANA, accessible, heading, signInAndChoose, viewText } from "./frontoffice-lib.mjs";

const d = demo();
const operator = d.tokens.operators[SARZANA];

await run("front office: a citizen sees only their own data", async (browser) => {
  // The first citizen's case, certificate and notice, made through the front office's API.
  const first = await newPage(browser);
  await signInAndChoose(first, d.web, d.tokens.citizen);
  const made = await first.evaluate(async (istat) => {
    const post = async (path, body) => {
      const r = await fetch(path, {
        method: "POST",
        headers: { Authorization: `Bearer ${sessionStorage.getItem("unione.token")}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.json() };
    };
    const get = async (path) => {
      const r = await fetch(path, { headers: { Authorization: `Bearer ${sessionStorage.getItem("unione.token")}` } });
      return { status: r.status, body: await r.json() };
    };
    return {
      certificate: await post("/api/certificates", { comune: istat, type: "HOUSEHOLD_STATUS" }),
      case: await post("/api/cases", { comune: istat, procedure_type: "EDIL", subject: "Veranda della signora Lombardi", data: "riservato" }),
      notices: await get(`/api/notices?comune=${istat}`),
    };
  }, SARZANA);
  check(made.certificate.status === 200 && made.case.status === 200 && made.notices.status === 200, `first citizen: ${JSON.stringify(made).slice(0, 400)}`);
  const certificate = made.certificate.body;
  const ownCase = made.case.body;
  const position = made.notices.body.positions[0];
  const unpaid = position.options.find((o) => !o.paid);

  // The second citizen: another seeded resident of Sarzana, with a token of their own.
  const residents = await callGrpc(d, "registry.v1.ResidentService", "ListResidents",
    { parent: `comuni/${SARZANA}`, page_size: 20 }, operator, SARZANA);
  const other = residents.residents.map((r) => r.codice_fiscale).find((cf) => cf !== d.citizen_fiscal_number);
  check(other, "another resident of Sarzana");
  const second = await newPage(browser);
  await signInAndChoose(second, d.web, citizenToken("citizen-2", other));
  check((await second.locator("#who").innerText()).includes(other), "the second citizen is signed in");

  const refused = async (hash, title, message, what) => {
    await second.goto(`${d.web}${hash}`);
    await heading(second, title);
    const refusal = second.locator(".refusal");
    await refusal.waitFor();
    check((await refusal.innerText()).includes(message), `${what}: ${await refusal.innerText()}`);
    check((await refusal.getAttribute("role")) === "alert", `${what}: the refusal is announced`);
    const text = await viewText(second);
    for (const secret of [d.citizen_fiscal_number, "Lombardi", "Veranda", certificate.verification_code, unpaid && unpaid.notice_number]) {
      if (secret) check(!text.includes(secret), `${what}: the page shows the first citizen's data (${secret})`);
    }
    await accessible(second, `refused-${what}`);
  };
  await refused(`#/cases/${SARZANA}/${ownCase.id}`, /^Pratica$/, "non è tua", "case");
  await refused(`#/certificates/${SARZANA}/${certificate.id}`, "Certificato", "non è tuo", "certificate");
  await refused(`#/notices/${SARZANA}/${position.id}`, "Avviso di pagamento", "non è tuo", "notice");
  if (unpaid) {
    await refused(`#/checkout/${SARZANA}/${position.id}/${unpaid.notice_number}`, "Pagamento", "non è tuo", "checkout");
  }

  // Nor through the JSON API directly: the PDF, and a payment of the first one's notice.
  const direct = await second.evaluate(async ({ istat, certificate, position, notice }) => {
    const auth = { Authorization: `Bearer ${sessionStorage.getItem("unione.token")}` };
    const pdf = await fetch(`/api/certificates/${istat}/${certificate}/pdf`, { headers: auth });
    const pay = await fetch("/api/psp/pay", {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ position, notice, payment_key: "second-citizen-0001" }),
    });
    return { pdf: pdf.status, pay: pay.status, payBody: await pay.json() };
  }, { istat: SARZANA, certificate: certificate.id, position: position.name, notice: unpaid ? unpaid.notice_number : "000" });
  check(direct.pdf === 404, `the PDF of another citizen's certificate: ${direct.pdf}`);
  check(direct.pay === 404, `paying another citizen's notice: ${JSON.stringify(direct)}`);
  const still = await callGrpc(d, "payments.v1.DebtPositionService", "GetDebtPosition", { name: position.name }, operator, SARZANA);
  check(still.state === position.state, `the first citizen's position is unchanged: ${still.state}`);

  // The second citizen's own lists hold none of the first one's records.
  await second.goto(`${d.web}#/cases`);
  await heading(second, "Pratiche online");
  check(!(await viewText(second)).includes("Veranda"), "the second citizen's cases hold none of the first one's");
  await screenshot(second, "second-citizen-cases");
});
