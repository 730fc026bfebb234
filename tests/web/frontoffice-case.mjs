// The front office (issue 8): the citizen submits a case with a document; the operator,
// THROUGH THE gRPC API, takes it in charge and asks for an integration (L. 241/1990: the
// clock is suspended); the citizen answers in the page and sees the new status. Then the
// citizen files a complaint and reads it back, and answers a satisfaction survey the office
// defined (DOMAIN.md "Quality": anonymous responses).
import { check, demo, newPage, run, screenshot } from "./lib.mjs";
import { callGrpc } from "./frontoffice-grpc.mjs";
import { SARZANA, accessible, errorTiedTo, heading, settled, signInAndChoose, viewText } from "./frontoffice-lib.mjs";

const d = demo();
const operator = d.tokens.operators[SARZANA];
const cases = (method, request) => callGrpc(d, "registry.v1.CaseService", method, request, operator, SARZANA);

await run("front office: case, complaint, survey", async (browser) => {
  const page = await newPage(browser);
  await signInAndChoose(page, d.web, d.tokens.citizen);

  // A new case with a document; first too large a document, refused in the page on its field.
  await page.getByRole("link", { name: "Pratiche online" }).click();
  await heading(page, "Pratiche online");
  await page.getByRole("link", { name: "Presenta una nuova pratica" }).click();
  await heading(page, "Presenta una nuova pratica");
  const subject = `Dehors estivo ${Date.now()}`;
  await page.selectOption("#case-type", "SUOLO");
  await page.fill("#case-subject", subject);
  await page.fill("#case-data", "Tavolini e sedie davanti al bar, 20 mq, da giugno a settembre.");
  await page.setInputFiles("#case-documents", {
    name: "planimetria-enorme.pdf",
    mimeType: "application/pdf",
    buffer: Buffer.alloc(7 * 1024 * 1024, 1),
  });
  await page.getByRole("button", { name: "Invia la pratica" }).click();
  await page.locator("#case-documents-error:not([hidden])").waitFor();
  await errorTiedTo(page, "#case-documents", "6 MB");
  await accessible(page, "case-new-error");
  // The API refuses it too, with the same reason on the same field, whatever the client.
  const direct = await page.evaluate(async () => {
    const r = await fetch("/api/cases", {
      method: "POST",
      headers: { Authorization: `Bearer ${sessionStorage.getItem("unione.token")}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        comune: "011027", procedure_type: "SUOLO", subject: "troppo grande",
        documents: [{ file_name: "a.bin", content_base64: btoa("A".repeat(7 * 1024 * 1024)) }],
      }),
    });
    return { status: r.status, error: (await r.json()).error };
  });
  check(direct.status === 400 && direct.error.reason === "DOCUMENTS_TOO_LARGE" && direct.error.field === "documents",
    `the API refuses too large documents: ${JSON.stringify(direct)}`);

  const document = Buffer.from("%PDF-1.4\n% planimetria dell'area occupata\n");
  await page.setInputFiles("#case-documents", { name: "planimetria.pdf", mimeType: "application/pdf", buffer: document });
  await page.getByRole("button", { name: "Invia la pratica" }).click();
  await heading(page, /^Pratica$/);
  const [, istat, id] = page.url().match(/#\/cases\/(\d{6})\/([0-9a-f]+)$/) || [];
  check(istat === SARZANA && id, `the case has an address: ${page.url()}`);
  let text = await viewText(page);
  check(text.includes(subject) && text.includes("Presentata"), "the new case shows its subject and status");
  check(text.includes("Pratica inviata con protocollo"), "the page confirms the protocol number");
  check(text.includes(`planimetria.pdf (${document.length} B)`), "the document is attached");
  await accessible(page, "case-submitted");

  // The operator, through the gRPC API.
  const name = `comuni/${SARZANA}/cases/${id}`;
  const taken = await cases("TakeCaseInCharge", { name, reason: "" });
  check(taken.state === "CASE_STATE_IN_PROGRESS", `taken in charge: ${taken.state}`);
  check(taken.documents.length === 1 && taken.documents[0].file_name === "planimetria.pdf", "the operator sees the document");
  const asked = await cases("RequestIntegration", { name, reason: "Manca la firma sulla planimetria" });
  check(asked.state === "CASE_STATE_INTEGRATION_REQUESTED", `integration requested: ${asked.state}`);

  // The citizen sees the request and answers it.
  await page.reload();
  await heading(page, /^Pratica$/);
  await page.locator("#answer-title").waitFor();
  text = await viewText(page);
  check(text.includes("Integrazione richiesta") && text.includes("Manca la firma sulla planimetria"), "the page shows the request");
  check(text.includes("Termine sospeso"), "the clock is shown as suspended");
  await accessible(page, "case-integration-requested");
  await page.getByRole("button", { name: "Invia l'integrazione" }).click();
  await page.locator("#answer-text-error:not([hidden])").waitFor();
  await errorTiedTo(page, "#answer-text", "Campo obbligatorio");
  await page.fill("#answer-text", "Planimetria firmata consegnata allo sportello SUAP");
  await page.getByRole("button", { name: "Invia l'integrazione" }).click();
  await page.locator(".alert.success", { hasText: "Nuovo stato: In lavorazione" }).waitFor();
  await settled(page);
  text = await viewText(page);
  check(text.includes("Integrazione inviata"), "the history shows the integration");
  await accessible(page, "case-integration-answered");
  const after = await cases("GetCase", { name });
  check(after.state === "CASE_STATE_IN_PROGRESS", `the operator sees the case running again: ${after.state}`);
  check(after.history.at(-1).reason === "Planimetria firmata consegnata allo sportello SUAP", "the answer is in the history");

  // A refusal notice (art. 10-bis), answered in the page within its 10 days.
  const notice = await cases("SendRefusalNotice", { name, reason: "L'area richiesta ostruisce il passaggio pedonale" });
  check(notice.state === "CASE_STATE_REFUSAL_NOTICE_SENT", `refusal notice: ${notice.state}`);
  await page.reload();
  await heading(page, /^Pratica$/);
  await page.locator("#answer-title", { hasText: "Preavviso di rigetto" }).waitFor();
  check((await viewText(page)).includes("ostruisce il passaggio pedonale"), "the page shows the reasons");
  await accessible(page, "case-refusal-notice");
  await page.fill("#answer-text", "Ridurremo l'area a 12 mq lasciando 2 metri di passaggio");
  await page.getByRole("button", { name: "Invia le osservazioni" }).click();
  await page.locator(".alert.success", { hasText: "Nuovo stato:" }).waitFor();
  await settled(page);
  const answered = await cases("GetCase", { name });
  check(answered.history.at(-1).action === "CASE_ACTION_ANSWER_REFUSAL_NOTICE", `answered: ${answered.history.at(-1).action}`);
  check(answered.history.at(-1).reason.startsWith("Ridurremo l'area"), "the observations are in the history");

  // The list of my cases shows it with its deadline.
  await page.goto(`${d.web}#/cases`);
  await heading(page, "Pratiche online");
  await page.getByRole("link", { name: `Apri: ${subject}` }).waitFor();
  await accessible(page, "cases");

  // A complaint, read back by its address.
  await page.goto(`${d.web}#/complaints`);
  await heading(page, "Reclami e segnalazioni");
  await accessible(page, "complaints");
  await page.selectOption("#complaint-category", "roads");
  await page.fill("#complaint-text", "Lampione spento in via Mazzini da una settimana.");
  await page.fill("#complaint-contact", "cittadino@example.org");
  await page.getByRole("button", { name: "Invia", exact: true }).click();
  await heading(page, "Reclamo");
  check(/#\/complaints\/011027\/[0-9a-f]+$/.test(page.url()), `the complaint has an address: ${page.url()}`);
  text = await viewText(page);
  check(text.includes("Lampione spento in via Mazzini") && text.includes("Ricevuto"), "the complaint reads back");
  await accessible(page, "complaint");
  await page.reload();
  await heading(page, "Reclamo");
  check((await viewText(page)).includes("Lampione spento"), "the complaint reads back after a reload");
  const complaintId = page.url().split("/").pop();
  // Listed among the citizen's own complaints, from the quality office (not the browser).
  await page.goto(`${d.web}#/complaints`);
  await page.locator("#my-complaints").waitFor();
  check((await page.locator("#my-complaints").innerText()).includes(complaintId), "the complaint is listed as the citizen's own");

  // A satisfaction survey the office defined (through the gRPC API), answered in the page.
  const survey = await callGrpc(d, "quality.v1.SurveyService", "CreateSurvey", {
    parent: `comuni/${SARZANA}`,
    survey: {
      title: "Sportello online",
      channel: "CHANNEL_WEB",
      questions: [
        { text: "Quanto è stato facile presentare la pratica?", scale: "SCALE_LIKERT_5", importance: 1 },
        { text: "Consiglieresti lo sportello online?", scale: "SCALE_NPS_0_10", importance: 1 },
      ],
    },
    request_id: `fo-survey-${Date.now()}`,
  }, operator, SARZANA);
  await page.goto(`${d.web}#/survey`);
  await heading(page, "Questionario di soddisfazione");
  // The comune's surveys are offered by title; the office's code opens one too.
  await page.locator("#offered-surveys").getByRole("link", { name: "Sportello online" }).first().waitFor();
  await page.fill("#survey-code", survey.survey_id);
  await page.getByRole("button", { name: "Apri il questionario" }).click();
  await page.locator("fieldset.scale").first().waitFor();
  await accessible(page, "survey");
  await page.getByRole("button", { name: "Invia le risposte" }).click();
  await page.locator("#q0-error:not([hidden])").waitFor();
  check(
    await page.evaluate(() => document.querySelector('[data-question="0"]').getAttribute("aria-describedby").includes("q0-error")),
    "the missing answer is tied to its question",
  );
  await page.getByRole("radio", { name: "4" }).first().check();
  await page.locator('[data-question="1"]').getByRole("radio", { name: "9" }).check();
  await page.getByRole("button", { name: "Invia le risposte" }).click();
  await page.locator("#survey-thanks").waitFor();
  await accessible(page, "survey-answered");
  await screenshot(page, "done");
});
