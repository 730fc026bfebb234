// The views of the front office. Each renders into `ctx.view` and returns its title. Text from
// the API is always inserted as text (el() never interprets HTML).
import { ApiError, call, download, el, fileToBase64, signIn, signOut } from "/common/api.js";
import { date, euros, t } from "/common/i18n.js";

const MAX_DOCUMENTS = 5;
const MAX_DOCUMENT_BYTES = 6 * 1024 * 1024;

// ---- helpers ----------------------------------------------------------------------------

/** A random key for idempotent requests (works without a secure context). */
function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Appends `nodes` to the view, skipping the absent ones (DOM append would print "null"). */
function show(ctx, ...nodes) {
  ctx.view.append(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function back() {
  return el("p", { class: "back" }, el("a", { href: "#/" }, `← ${t("nav.back")}`));
}

/** The text of an API error, in the page's language. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return t("error.generic", { code: String(err && err.message) });
  const key = `error.${err.code}`;
  const base = t(key) === key ? t("error.generic", { code: err.code }) : t(key);
  if (err.status === 400 && err.message) return `${base} ${t("error.server", { message: err.message })}`;
  return base;
}

/** A labelled control with its hint and its (hidden) error, tied by aria-describedby. */
function field({ id, label, hint, control }) {
  control.id = id;
  const described = [];
  const parts = [el("label", { for: id }, label)];
  if (hint) {
    parts.push(el("p", { class: "hint", id: `${id}-hint` }, hint));
    described.push(`${id}-hint`);
  }
  parts.push(control);
  parts.push(el("p", { class: "field-error", id: `${id}-error`, hidden: true }));
  if (described.length) control.setAttribute("aria-describedby", described.join(" "));
  return el("div", { class: "field" }, parts);
}

function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (!error) return false;
  error.textContent = message;
  error.hidden = false;
  control.setAttribute("aria-invalid", "true");
  const ids = new Set((control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
  ids.add(error.id);
  control.setAttribute("aria-describedby", [...ids].join(" "));
  return true;
}

function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error")) {
    e.hidden = true;
    e.textContent = "";
  }
  for (const c of form.querySelectorAll("[aria-invalid]")) {
    c.removeAttribute("aria-invalid");
    const ids = (c.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && !x.endsWith("-error"));
    if (ids.length) c.setAttribute("aria-describedby", ids.join(" "));
    else c.removeAttribute("aria-describedby");
  }
  const alert = form.querySelector(".form-alert");
  if (alert) alert.replaceChildren();
}

/** Shows `message` on the control named by the API's `field` (or `fallback`), and in the
 *  form's alert, which screen readers announce. */
function showFormError(form, message, fieldName) {
  const control = fieldName ? form.querySelector(`[data-field="${CSS.escape(fieldName)}"]`) : null;
  if (control && setFieldError(control, message)) control.focus();
  const alert = form.querySelector(".form-alert");
  alert.replaceChildren(el("p", { class: "alert error" }, message));
}

/** A form whose submit runs `action(form)`; errors land on their field. */
function form(children, submitLabel, action) {
  const alert = el("div", { class: "form-alert", role: "alert" });
  const submit = el("button", { type: "submit" }, submitLabel);
  const node = el("form", { novalidate: true }, alert, children, el("div", { class: "actions" }, submit));
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(node);
    // Required fields first, each with its own message.
    for (const c of node.querySelectorAll("[required]")) {
      const empty = c.type === "file" ? c.files.length === 0 : !String(c.value).trim();
      if (empty) {
        setFieldError(c, t("required"));
        node.querySelector(".form-alert").replaceChildren(el("p", { class: "alert error" }, t("required")));
        c.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      await action(node);
    } catch (err) {
      if (err && err.localField) showFormError(node, err.message, err.localField);
      else showFormError(node, errorText(err), err && err.field);
    } finally {
      submit.disabled = false;
    }
  });
  return node;
}

/** An error of the page itself: the API's refusal, never anybody's data. */
function pageError(ctx, err, notFoundKey) {
  if (err instanceof ApiError && err.code === "UNAUTHENTICATED") {
    ctx.signedOut();
  }
  const refused = err instanceof ApiError && (err.code === "NOT_FOUND" || err.code === "PERMISSION_DENIED");
  const message = refused && notFoundKey ? t(notFoundKey) : errorText(err);
  return el("div", { class: "alert error refusal", role: "alert" }, message);
}

function localError(message, fieldName) {
  const err = new Error(message);
  err.localField = fieldName;
  return err;
}

function label(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

function strip(value, prefix) {
  return value && value.startsWith(prefix) ? value.slice(prefix.length) : value || "";
}

function table(caption, headers, rows) {
  return el(
    "table",
    { class: "responsive" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      rows.map((cells) => el("tr", {}, cells.map((c, i) => el("td", { "data-label": headers[i] }, c)))),
    ),
  );
}

function definitions(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "—")]));
}

function addressText(a) {
  if (!a) return "—";
  return `${a.street} ${a.house_number}, ${a.postal_code}${a.locality ? ` (${a.locality})` : ""}`;
}

/** The chosen comune, or the chooser (then null). */
function needComune(ctx) {
  const istat = ctx.comune();
  if (istat) return istat;
  comuneChooser(ctx, location.hash);
  return null;
}

function comuneBar(ctx) {
  const istat = ctx.comune();
  return el(
    "p",
    { class: "comune-bar" },
    t("comune.current", { name: ctx.comuneName(istat) }),
    " ",
    el("a", { href: "#/comune" }, t("comune.change")),
  );
}

function comuneSelect(ctx, selected) {
  return el(
    "select",
    { name: "comune", "data-field": "comune", required: true },
    el("option", { value: "" }, "—"),
    ctx.comuni.map((c) =>
      el("option", { value: c.istat_code, selected: c.istat_code === selected }, `${c.display_name} (${c.province})`),
    ),
  );
}

function comuneChooser(ctx, returnTo) {
  const select = comuneSelect(ctx, ctx.comune());
  show(ctx, 
    back(),
    el("h1", {}, t("comune.title")),
    form(field({ id: "comune", label: t("comune.label"), hint: t("comune.hint"), control: select }), t("comune.submit"), async () => {
      ctx.setComune(select.value);
      ctx.navigate(returnTo && returnTo !== "#/comune" ? returnTo : "#/");
    }),
  );
  return t("comune.title");
}

// ---- sign-in, home -----------------------------------------------------------------------

export async function signInView(ctx, notice) {
  const input = el("textarea", { name: "token", "data-field": "authorization", required: true, rows: 3, autocomplete: "off", spellcheck: "false" });
  const returnTo = location.hash && location.hash !== "#/signin" ? location.hash : "#/";
  show(ctx, 
    el("h1", {}, t("signin.title")),
    notice ? el("p", { class: "alert" }, notice) : null,
    ctx.kioskSignedOut ? el("p", { class: "alert success", role: "status" }, t("kiosk.signedOut")) : null,
    el("p", {}, t("signin.intro")),
    el("p", { class: "hint spid" }, t("signin.spid")),
    form(field({ id: "token", label: t("signin.token"), hint: t("signin.token.hint"), control: input }), t("signin.submit"), async () => {
      signIn(input.value);
      let session;
      try {
        session = await call("/api/session");
      } catch (err) {
        signOut();
        throw err;
      }
      if (session.role !== "citizen") {
        signOut();
        throw localError(t("signin.notCitizen"), "authorization");
      }
      ctx.session = session;
      ctx.kioskSignedOut = false;
      if (returnTo === "#/") ctx.navigate("#/");
      else ctx.render();
    }),
    el("p", {}, el("a", { href: "#/verify" }, t("signin.verifyLink"))),
  );
  return t("signin.title");
}

async function homeView(ctx) {
  if (!ctx.session) return signInView(ctx);
  if (!ctx.comune()) return comuneChooser(ctx, "#/");
  const tile = (href, key) => el("li", {}, el("a", { class: "tile", href }, t(key)));
  show(ctx, 
    el("h1", {}, t("home.title")),
    comuneBar(ctx),
    el(
      "nav",
      { "aria-label": t("home.title") },
      el(
        "ul",
        { class: "tiles" },
        tile("#/residence", "home.residence"),
        tile("#/certificates", "home.certificates"),
        tile("#/cases", "home.cases"),
        tile("#/notices", "home.notices"),
        tile("#/complaints", "home.complaints"),
        tile("#/survey", "home.survey"),
        tile("#/verify", "home.verify"),
      ),
    ),
  );
  return t("home.title");
}

export async function notFoundView(ctx) {
  show(ctx, back(), el("h1", {}, t("error.NOT_FOUND")));
  return t("error.NOT_FOUND");
}

// ---- residence ---------------------------------------------------------------------------

async function residenceView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("residence.title");
  show(ctx, back(), el("h1", {}, title), comuneBar(ctx));
  let me;
  try {
    me = await call(`/api/me?comune=${istat}`);
  } catch (err) {
    show(ctx, pageError(ctx, err));
    return title;
  }
  if (!me.resident) {
    show(ctx, el("p", { class: "alert" }, t("residence.none")));
    return title;
  }
  const r = me.resident;
  show(ctx, 
    el("section", { "aria-labelledby": "person-title", class: "panel" },
      el("h2", { id: "person-title" }, t("residence.person")),
      definitions([
        [t("residence.name"), `${r.given_name} ${r.family_name}`],
        [t("residence.cf"), r.codice_fiscale],
        [t("residence.birth"), date(r.birth_date)],
        [t("residence.address"), addressText(me.residence.address || r.address)],
        [t("residence.since"), date(r.registration_date)],
      ])),
  );
  const section = el("section", { "aria-labelledby": "household-title", class: "panel" }, el("h2", { id: "household-title" }, t("residence.household")));
  if (!me.household) {
    section.append(el("p", {}, t("residence.noHousehold")));
  } else {
    section.append(
      table(t("residence.household"), [t("residence.member"), t("residence.relationship"), t("residence.memberSince")],
        me.household.members.map((m) => [
          m.self ? t("residence.you") : t("residence.other"),
          label("relationship", strip(m.relationship, "RELATIONSHIP_")),
          date(m.start_date),
        ])),
      el("p", { class: "hint" }, t("residence.othersHint")),
    );
  }
  show(ctx, section);
  return title;
}

// ---- certificates ------------------------------------------------------------------------

async function certificatesView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("certificates.title");
  const type = el("select", { name: "type", "data-field": "type", required: true },
    ["RESIDENCE", "HOUSEHOLD_STATUS", "HISTORICAL_RESIDENCE"].map((v) => el("option", { value: v }, t(`type.${v}`))));
  const asOf = el("input", { type: "date", name: "as_of", "data-field": "certificate.as_of" });
  const asOfField = field({ id: "as-of", label: t("certificates.asOf"), hint: t("certificates.asOf.hint"), control: asOf });
  asOfField.hidden = true;
  type.addEventListener("change", () => { asOfField.hidden = type.value !== "HISTORICAL_RESIDENCE"; });
  const result = el("div", { role: "status" });
  show(ctx, 
    back(),
    el("h1", {}, title),
    comuneBar(ctx),
    el("section", { "aria-labelledby": "request-title", class: "panel" },
      el("h2", { id: "request-title" }, t("certificates.request")),
      form([field({ id: "cert-type", label: t("certificates.type"), control: type }), asOfField], t("certificates.submit"), async () => {
        const issued = await call("/api/certificates", {
          method: "POST",
          body: { comune: istat, type: type.value, as_of: type.value === "HISTORICAL_RESIDENCE" ? asOf.value : null, kiosk: ctx.kiosk, request_id: randomKey() },
        });
        result.replaceChildren(el("p", { class: "alert success" }, t("certificates.issued", { code: issued.verification_code }), " ",
          el("a", { href: `#/certificates/${issued.comune}/${issued.id}` }, t("certificates.open"))));
        await listCertificates(ctx, istat, list);
      }),
      result),
  );
  const list = el("section", { "aria-labelledby": "mine-title" }, el("h2", { id: "mine-title" }, t("certificates.mine")));
  show(ctx, list);
  await listCertificates(ctx, istat, list);
  return title;
}

async function listCertificates(ctx, istat, section) {
  section.replaceChildren(section.firstChild);
  try {
    const { certificates } = await call(`/api/certificates?comune=${istat}`);
    if (!certificates.length) {
      section.append(el("p", {}, t("certificates.none")));
      return;
    }
    section.append(table(t("certificates.mine"), [t("certificates.type"), t("certificates.code"), t("certificates.issueTime"), ""],
      certificates.map((c) => [
        label("type", strip(c.type, "CERTIFICATE_TYPE_")),
        c.verification_code,
        date(c.issue_time),
        el("a", { href: `#/certificates/${c.comune}/${c.id}`, "aria-label": `${t("certificates.open")} ${c.verification_code}` }, t("certificates.open")),
      ])));
  } catch (err) {
    section.append(pageError(ctx, err));
  }
}

/** The sealed content of a certificate, as nested definitions with readable labels. */
function sealedContent(value) {
  const key = (k) => label("content", k);
  const render = (v) => {
    if (v === null || v === undefined || v === "") return "—";
    if (Array.isArray(v)) return el("ul", {}, v.map((item) => el("li", {}, render(item))));
    if (typeof v === "object") {
      if ("street" in v && "house_number" in v) return addressText(v);
      return el("dl", { class: "facts" }, Object.entries(v).flatMap(([k, x]) => [el("dt", {}, key(k)), el("dd", {}, render(x))]));
    }
    if (typeof v === "string" && /^[A-Z_]+$/.test(v)) return label("content", v);
    return String(v);
  };
  return render(value);
}

async function certificateView(ctx, { istat, id }) {
  const title = t("certificates.detail");
  show(ctx, el("p", { class: "back" }, el("a", { href: "#/certificates" }, `← ${t("certificates.title")}`)), el("h1", {}, title));
  let c;
  try {
    c = await call(`/api/certificates/${encodeURIComponent(istat)}/${encodeURIComponent(id)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "certificates.notFound"));
    return title;
  }
  const button = el("button", { type: "button", id: "download-pdf" }, t("certificates.download"));
  const status = el("div", { role: "status" });
  button.addEventListener("click", async () => {
    try {
      await download(`/api/certificates/${c.comune}/${c.id}/pdf`, `certificato-${c.verification_code}.pdf`);
    } catch (err) {
      status.replaceChildren(pageError(ctx, err, "certificates.notFound"));
    }
  });
  const content = sealedContent(c.content);
  show(ctx, 
    definitions([
      [t("certificates.type"), label("type", strip(c.type, "CERTIFICATE_TYPE_"))],
      [t("certificates.code"), c.verification_code],
      [t("certificates.issueTime"), date(c.issue_time)],
    ]),
    el("div", { class: "actions" }, button),
    status,
    el("section", { "aria-labelledby": "content-title", class: "panel" }, el("h2", { id: "content-title" }, t("certificates.content")), content),
  );
  return title;
}

async function verifyView(ctx) {
  const title = t("verify.title");
  const select = comuneSelect(ctx, ctx.comune());
  const code = el("input", { name: "code", "data-field": "verification_code", required: true, autocomplete: "off", autocapitalize: "characters", spellcheck: "false" });
  const result = el("div", { role: "status", class: "verify-result" });
  show(ctx, 
    back(),
    el("h1", {}, title),
    el("p", {}, t("verify.intro")),
    form([
      field({ id: "verify-comune", label: t("verify.comune"), control: select }),
      field({ id: "verify-code", label: t("verify.code"), hint: t("verify.code.hint"), control: code }),
    ], t("verify.submit"), async () => {
      result.replaceChildren();
      try {
        const v = await call(`/api/verify?comune=${encodeURIComponent(select.value)}&code=${encodeURIComponent(code.value)}`);
        const content = sealedContent(v.content);
        result.replaceChildren(
          el("p", { class: v.seal_valid ? "alert success" : "alert error", id: "verify-outcome" }, v.seal_valid ? t("verify.valid") : t("verify.invalid")),
          definitions([[t("certificates.issueTime"), date(v.issue_time)]]),
          content,
        );
      } catch (err) {
        if (err instanceof ApiError && err.code === "NOT_FOUND") throw localError(t("verify.notFound"), "verification_code");
        throw err;
      }
    }),
    result,
  );
  return title;
}

// ---- cases -------------------------------------------------------------------------------

function stateBadge(state) {
  const s = strip(state, "CASE_STATE_");
  return el("span", { class: `status state-${s.toLowerCase()}` }, label("state", s));
}

async function casesView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("cases.title");
  show(ctx, back(), el("h1", {}, title), comuneBar(ctx),
    el("p", {}, el("a", { class: "button", href: "#/cases/new" }, t("cases.new"))));
  const section = el("section", { "aria-labelledby": "cases-mine" }, el("h2", { id: "cases-mine" }, t("cases.mine")));
  show(ctx, section);
  try {
    const { cases } = await call(`/api/cases?comune=${istat}`);
    if (!cases.length) section.append(el("p", {}, t("cases.none")));
    else section.append(table(t("cases.mine"), [t("cases.subject"), t("cases.state"), t("cases.deadline"), t("cases.protocol"), ""],
      cases.map((c) => [
        c.subject,
        stateBadge(c.state),
        c.clock ? date(c.clock.deadline) : "—",
        `${c.protocol_number}/${c.protocol_year}`,
        el("a", { href: `#/cases/${c.comune}/${c.id}`, "aria-label": `${t("cases.open")}: ${c.subject}` }, t("cases.open")),
      ])));
  } catch (err) {
    section.append(pageError(ctx, err));
  }
  return title;
}

async function newCaseView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("cases.new");
  show(ctx, el("p", { class: "back" }, el("a", { href: "#/cases" }, `← ${t("cases.title")}`)), el("h1", {}, title), comuneBar(ctx));
  let types;
  try {
    types = (await call(`/api/procedure-types?comune=${istat}`)).procedure_types;
  } catch (err) {
    show(ctx, pageError(ctx, err));
    return title;
  }
  const type = el("select", { name: "procedure_type", "data-field": "case.procedure_type", required: true },
    el("option", { value: "" }, "—"),
    types.map((p) => el("option", { value: p.code }, `${p.title} (${t("cases.days", { days: p.legal_days })})`)));
  const subject = el("input", { name: "subject", "data-field": "case.subject", required: true, maxlength: 500 });
  const data = el("textarea", { name: "data", "data-field": "case.data", rows: 5 });
  const files = el("input", { type: "file", name: "documents", "data-field": "documents", multiple: true });
  const requestId = randomKey();
  show(ctx, form([
    field({ id: "case-type", label: t("cases.type"), hint: t("cases.type.hint"), control: type }),
    field({ id: "case-subject", label: t("cases.subject"), hint: t("cases.subject.hint"), control: subject }),
    field({ id: "case-data", label: t("cases.data"), control: data }),
    field({ id: "case-documents", label: t("cases.documents"), hint: t("cases.documents.hint"), control: files }),
  ], t("cases.submit"), async () => {
    const chosen = Array.from(files.files);
    if (chosen.length > MAX_DOCUMENTS) throw localError(t("cases.documents.tooMany"), "documents");
    if (chosen.reduce((n, f) => n + f.size, 0) > MAX_DOCUMENT_BYTES) throw localError(t("cases.documents.tooLarge"), "documents");
    const documents = [];
    for (const f of chosen) {
      documents.push({ file_name: f.name, media_type: f.type || "application/octet-stream", content_base64: await fileToBase64(f) });
    }
    const c = await call("/api/cases", {
      method: "POST",
      body: { comune: istat, procedure_type: type.value, subject: subject.value, data: data.value, documents, request_id: requestId },
    });
    ctx.flash = t("cases.submitted", { number: c.protocol_number, year: c.protocol_year });
    ctx.navigate(`#/cases/${c.comune}/${c.id}`);
  }));
  return title;
}

async function caseView(ctx, { istat, id }) {
  const title = t("cases.detail");
  show(ctx, el("p", { class: "back" }, el("a", { href: "#/cases" }, `← ${t("cases.title")}`)), el("h1", {}, title));
  const flash = ctx.flash;
  ctx.flash = null;
  if (flash) show(ctx, el("p", { class: "alert success", role: "status" }, flash));
  let c;
  try {
    c = await call(`/api/cases/${encodeURIComponent(istat)}/${encodeURIComponent(id)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "cases.notFound"));
    return title;
  }
  const clock = c.clock || {};
  show(ctx, 
    el("h2", { class: "case-subject" }, c.subject),
    definitions([
      [t("cases.state"), stateBadge(c.state)],
      [t("cases.protocol"), `${c.protocol_number}/${c.protocol_year}`],
      [t("cases.office"), c.office],
      [t("cases.submittedOn"), date(c.submission_date)],
      [t("cases.deadline"), `${date(clock.deadline)}${clock.overdue ? ` (${t("cases.overdue")})` : ""}`],
      [t("cases.remaining"), clock.suspension && clock.suspension !== "SUSPENSION_KIND_UNSPECIFIED" ? t("cases.suspended") : String(clock.days_remaining ?? "—")],
    ]),
  );
  if (c.documents.length) {
    show(ctx, el("h2", {}, t("cases.documentsList")),
      el("ul", {}, c.documents.map((d) => el("li", {}, `${d.file_name} (${d.size_bytes} B)`))));
  }
  const last = (action) => [...c.history].reverse().find((h) => h.action === action);
  const state = strip(c.state, "CASE_STATE_");
  const answerForm = (titleKey, request, answerKey, hintKey, submitKey, endpoint) => {
    const text = el("textarea", { name: "reason", "data-field": "reason", required: true, rows: 4 });
    return el("section", { class: "panel", "aria-labelledby": "answer-title" },
      el("h2", { id: "answer-title" }, t(titleKey)),
      request ? el("blockquote", {}, request.reason) : null,
      form(field({ id: "answer-text", label: t(answerKey), hint: t(hintKey), control: text }), t(submitKey), async () => {
        const updated = await call(`/api/cases/${c.comune}/${c.id}/${endpoint}`, { method: "POST", body: { reason: text.value } });
        ctx.flash = t("cases.answered", { state: label("state", strip(updated.state, "CASE_STATE_")) });
        ctx.render();
      }));
  };
  if (state === "INTEGRATION_REQUESTED") {
    show(ctx, answerForm("cases.integration.title", last("CASE_ACTION_REQUEST_INTEGRATION"), "cases.integration.answer",
      "cases.integration.hint", "cases.integration.submit", "integration"));
  } else if (state === "REFUSAL_NOTICE_SENT") {
    show(ctx, answerForm("cases.refusal.title", last("CASE_ACTION_SEND_REFUSAL_NOTICE"), "cases.refusal.answer",
      "cases.refusal.hint", "cases.refusal.submit", "refusal-answer"));
  }
  show(ctx, 
    el("h2", {}, t("cases.history")),
    table(t("cases.history"), [t("cases.when"), t("cases.what"), t("cases.state"), t("cases.why")],
      c.history.map((h) => [date(h.time), label("action", strip(h.action, "CASE_ACTION_")), stateBadge(h.to_state), h.reason || "—"])),
  );
  return title;
}

// ---- notices and the simulated checkout ----------------------------------------------------

function positionBadge(state) {
  const s = strip(state, "STATE_");
  return el("span", { class: `status position-${s.toLowerCase()}` }, label("position", s));
}

/** What a position asks for: the sum of its installments, or its payment in full. */
function positionTotal(p) {
  const installments = p.options.filter((o) => o.installment);
  if (installments.length) return installments.reduce((n, o) => n + o.amount_cents, 0);
  return p.options.length ? p.options[0].amount_cents : 0;
}

async function noticesView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("notices.title");
  show(ctx, back(), el("h1", {}, title), comuneBar(ctx));
  try {
    const { positions } = await call(`/api/notices?comune=${istat}`);
    if (!positions.length) show(ctx, el("p", {}, t("notices.none")));
    else show(ctx, table(title, [t("notices.description"), t("notices.state"), t("notices.total"), ""],
      positions.map((p) => [
        p.description,
        positionBadge(p.state),
        euros(positionTotal(p)),
        el("a", { href: `#/notices/${p.comune}/${p.id}`, "aria-label": `${t("notices.open")}: ${p.description}` }, t("notices.open")),
      ])));
  } catch (err) {
    show(ctx, pageError(ctx, err));
  }
  return title;
}

async function noticeView(ctx, { istat, id }) {
  const title = t("notices.detail");
  show(ctx, el("p", { class: "back" }, el("a", { href: "#/notices" }, `← ${t("notices.title")}`)), el("h1", {}, title));
  let p;
  try {
    p = await call(`/api/notices/${encodeURIComponent(istat)}/${encodeURIComponent(id)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "notices.notFound"));
    return title;
  }
  const status = el("div", { role: "status" });
  show(ctx, 
    el("h2", {}, p.description),
    definitions([[t("notices.state"), positionBadge(p.state)]]),
    table(t("notices.detail"), [t("notices.number"), t("notices.kind"), t("notices.amount"), t("notices.due"), ""],
      p.options.map((o) => {
        let actionCell;
        if (o.paid && o.receipt) {
          const button = el("button", { type: "button", class: "secondary", "aria-label": t("notices.receiptLabel", { number: o.notice_number }) }, t("notices.receipt"));
          const [, comune, , notice, , receipt] = o.receipt.split("/");
          button.addEventListener("click", async () => {
            try {
              await download(`/api/receipts/${comune}/${notice}/${receipt}`, `ricevuta-${notice}.json`);
            } catch (err) {
              status.replaceChildren(pageError(ctx, err, "notices.notFound"));
            }
          });
          actionCell = el("span", {}, el("span", { class: "status position-paid" }, t("notices.paid")), " ", button);
        } else if (o.paid) {
          actionCell = el("span", { class: "status position-paid" }, t("notices.paid"));
        } else if (ctx.settings.simulated_psp && ["STATE_VALID", "STATE_PARTIALLY_PAID"].includes(p.state)) {
          actionCell = el("a", { class: "button", href: `#/checkout/${p.comune}/${p.id}/${o.notice_number}`, "aria-label": t("notices.payLabel", { number: o.notice_number }) }, t("notices.pay"));
        } else {
          actionCell = t("notices.toPay");
        }
        return [o.notice_number, o.installment ? t("notices.installment") : t("notices.full"), euros(o.amount_cents), date(o.due_date), actionCell];
      })),
    status,
    ctx.settings.simulated_psp ? null : el("p", { class: "hint" }, t("notices.noPsp")),
  );
  return title;
}

async function checkoutView(ctx, { istat, id, notice }) {
  const title = t("checkout.title");
  const position = `comuni/${istat}/debtPositions/${id}`;
  show(ctx, 
    el("p", { class: "back" }, el("a", { href: `#/notices/${istat}/${id}` }, `← ${t("checkout.back")}`)),
    el("h1", {}, title),
    el("p", { class: "alert simulated" }, t("checkout.simulated")),
  );
  let info;
  try {
    info = await call(`/api/psp/checkout?position=${encodeURIComponent(position)}&notice=${encodeURIComponent(notice)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "notices.notFound"));
    return title;
  }
  const v = info.verified;
  const noticeStatus = strip(v.status, "NOTICE_STATUS_");
  show(ctx, definitions([
    [t("checkout.creditor"), v.creditor_name],
    [t("notices.description"), v.description],
    [t("notices.number"), v.notice_number],
    [t("notices.amount"), euros(v.amount_cents)],
    [t("notices.due"), date(v.due_date)],
    [t("checkout.status"), label("notice", noticeStatus)],
  ]));
  if (noticeStatus !== "PAYABLE") return title;
  const key = randomKey();
  const result = el("div", { role: "status" });
  show(ctx, form([], t("checkout.pay", { amount: euros(v.amount_cents) }), async (f) => {
    const paid = await call("/api/psp/pay", { method: "POST", body: { position, notice, payment_key: key } });
    f.remove();
    result.replaceChildren(
      el("p", { class: "alert success", id: "payment-outcome" }, t("checkout.done", { state: label("position", strip(paid.position_state, "STATE_")) })),
      el("p", {}, el("a", { class: "button", href: `#/notices/${istat}/${id}` }, t("checkout.back"))),
    );
    ctx.announce(result.textContent);
  }), result);
  return title;
}

// ---- complaints ----------------------------------------------------------------------------

async function complaintsView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("complaints.title");
  const categories = ["waste-collection", "roads", "registry-office", "green-areas", "other"];
  const category = el("select", { name: "category", "data-field": "complaint.category", required: true },
    categories.map((c) => el("option", { value: c }, t(`category.${c}`))));
  const text = el("textarea", { name: "text", "data-field": "complaint.text", required: true, rows: 5, maxlength: 10000 });
  const contact = el("input", { name: "contact", "data-field": "complaint.contact", maxlength: 256, autocomplete: "email" });
  const result = el("div", { role: "status" });
  const requestId = randomKey();
  show(ctx, back(), el("h1", {}, title), comuneBar(ctx),
    el("section", { class: "panel", "aria-labelledby": "complaint-new" },
      el("h2", { id: "complaint-new" }, t("complaints.new")),
      form([
        field({ id: "complaint-category", label: t("complaints.category"), control: category }),
        field({ id: "complaint-text", label: t("complaints.text"), hint: t("complaints.text.hint"), control: text }),
        field({ id: "complaint-contact", label: t("complaints.contact"), hint: t("complaints.contact.hint"), control: contact }),
      ], t("complaints.submit"), async () => {
        const c = await call("/api/complaints", {
          method: "POST",
          body: { comune: istat, category: category.value, text: text.value, contact: contact.value, kiosk: ctx.kiosk, request_id: requestId },
        });
        ctx.flash = t("complaints.filed", { id: c.id, deadline: date(c.response_deadline) });
        ctx.navigate(`#/complaints/${c.comune}/${c.id}`);
      }),
      result));
  // The complaints this citizen filed in this comune, as the quality office has them.
  let filed = [];
  try {
    filed = (await call(`/api/complaints?comune=${encodeURIComponent(istat)}`)).complaints;
  } catch (err) {
    show(ctx, pageError(ctx, err, "complaints.notFound"));
  }
  if (filed.length) {
    show(ctx, el("h2", {}, t("complaints.session")),
      el("ul", { id: "my-complaints" }, filed.map((c) => el("li", {}, el("a", { href: `#/complaints/${c.comune}/${c.id}` }, `${c.id} · ${t(`category.${c.category}`)} · ${label("complaint", strip(c.status, "COMPLAINT_STATUS_"))}`)))));
  }
  const code = el("input", { name: "code", "data-field": "name", required: true, autocomplete: "off" });
  show(ctx, el("section", { class: "panel", "aria-labelledby": "complaint-find" },
    el("h2", { id: "complaint-find" }, t("complaints.lookup")),
    form(field({ id: "complaint-code", label: t("complaints.lookup.code"), control: code }), t("complaints.lookup.submit"), async () => {
      ctx.navigate(`#/complaints/${istat}/${encodeURIComponent(code.value.trim())}`);
    })));
  return title;
}

async function complaintView(ctx, { istat, id }) {
  const title = t("complaints.detail");
  show(ctx, el("p", { class: "back" }, el("a", { href: "#/complaints" }, `← ${t("complaints.title")}`)), el("h1", {}, title));
  const flash = ctx.flash;
  ctx.flash = null;
  if (flash) show(ctx, el("p", { class: "alert success", role: "status" }, flash));
  let c;
  try {
    c = await call(`/api/complaints/${encodeURIComponent(istat)}/${encodeURIComponent(id)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "complaints.notFound"));
    return title;
  }
  const status = (s) => label("complaint", strip(s, "COMPLAINT_STATUS_"));
  show(ctx, 
    definitions([
      [t("complaints.lookup.code"), c.id],
      [t("complaints.category"), label("category", c.category)],
      [t("complaints.status"), status(c.status)],
      [t("complaints.received"), date(c.receive_time)],
      [t("complaints.ackBy"), date(c.acknowledgement_deadline)],
      [t("complaints.answerBy"), date(c.response_deadline)],
    ]),
    el("h2", {}, t("complaints.text")),
    el("blockquote", { class: "complaint-text" }, c.text),
  );
  return title;
}

// ---- satisfaction survey -------------------------------------------------------------------

async function surveyStartView(ctx) {
  const istat = needComune(ctx);
  if (!istat) return t("comune.title");
  const title = t("survey.title");
  const code = el("input", { name: "survey", "data-field": "survey", required: true, autocomplete: "off" });
  show(ctx, back(), el("h1", {}, title), comuneBar(ctx), el("p", {}, t("survey.intro")));
  // The surveys the comune offers; the office may also hand out a survey's code.
  try {
    const offered = (await call(`/api/surveys?comune=${encodeURIComponent(istat)}`)).surveys;
    if (offered.length) {
      show(ctx, el("ul", { id: "offered-surveys" }, offered.map((o) =>
        el("li", {}, el("a", { class: "button secondary", href: `#/survey/${o.comune}/${o.id}` }, o.title)))));
    }
  } catch (err) {
    show(ctx, pageError(ctx, err, "survey.notFound"));
  }
  show(ctx,
    form(field({ id: "survey-code", label: t("survey.code"), control: code }), t("survey.open"), async () => {
      ctx.navigate(`#/survey/${istat}/${encodeURIComponent(code.value.trim())}`);
    }));
  return title;
}

async function surveyView(ctx, { istat, id }) {
  const title = t("survey.title");
  show(ctx, back(), el("h1", {}, title));
  let s;
  try {
    s = await call(`/api/surveys/${encodeURIComponent(istat)}/${encodeURIComponent(id)}`);
  } catch (err) {
    show(ctx, pageError(ctx, err, "survey.notFound"));
    return title;
  }
  show(ctx, el("h2", {}, s.title), el("p", { class: "hint" }, t("survey.intro")));
  const groups = s.questions.map((q, i) => {
    const nps = q.scale === "SCALE_NPS_0_10";
    const values = nps ? [...Array(11).keys()] : [1, 2, 3, 4, 5];
    const hintId = `q${i}-hint`;
    const errorId = `q${i}-error`;
    return el("fieldset", { class: "scale", "data-question": i, "aria-describedby": hintId },
      el("legend", {}, `${i + 1}. ${q.text}`),
      el("p", { class: "hint", id: hintId }, nps ? t("survey.nps") : t("survey.likert")),
      el("div", { class: "scale-options" }, values.map((v) => el("label", { class: "scale-option" },
        el("input", { type: "radio", name: `q${i}`, value: v }), el("span", {}, String(v))))),
      el("p", { class: "field-error", id: errorId, hidden: true }));
  });
  const requestId = randomKey();
  const node = form(groups, t("survey.submit"), async (f) => {
    const answers = [];
    let missing = null;
    groups.forEach((g, i) => {
      const chosen = g.querySelector(`input[name="q${i}"]:checked`);
      const error = g.querySelector(".field-error");
      if (!chosen) {
        error.textContent = t("survey.missing");
        error.hidden = false;
        g.setAttribute("aria-describedby", `q${i}-hint q${i}-error`);
        if (!missing) missing = g;
      } else {
        error.hidden = true;
        g.setAttribute("aria-describedby", `q${i}-hint`);
        answers.push(Number(chosen.value));
      }
    });
    if (missing) {
      missing.querySelector("input").focus();
      throw new Error(t("survey.missing"));
    }
    await call(`/api/surveys/${encodeURIComponent(istat)}/${encodeURIComponent(id)}/responses`, {
      method: "POST",
      body: { answers, request_id: requestId },
    });
    f.replaceWith(el("p", { class: "alert success", role: "status", id: "survey-thanks" }, t("survey.thanks")));
  });
  show(ctx, node);
  return title;
}

// ---- routes ----------------------------------------------------------------------------------

const is = (...parts) => (path) => path.length === parts.length && parts.every((p, i) => p === null || p === path[i]);

export const routes = [
  { match: is(), view: homeView, params: () => ({}) },
  { match: is("signin"), view: (ctx) => signInView(ctx), params: () => ({}) },
  { match: is("verify"), view: verifyView, params: () => ({}) },
  { match: is("comune"), signedIn: true, view: (ctx) => comuneChooser(ctx, "#/"), params: () => ({}) },
  { match: is("residence"), signedIn: true, view: residenceView, params: () => ({}) },
  { match: is("certificates"), signedIn: true, view: certificatesView, params: () => ({}) },
  { match: is("certificates", null, null), signedIn: true, view: certificateView, params: (p) => ({ istat: p[1], id: p[2] }) },
  { match: is("cases"), signedIn: true, view: casesView, params: () => ({}) },
  { match: is("cases", "new"), signedIn: true, view: newCaseView, params: () => ({}) },
  { match: is("cases", null, null), signedIn: true, view: caseView, params: (p) => ({ istat: p[1], id: p[2] }) },
  { match: is("notices"), signedIn: true, view: noticesView, params: () => ({}) },
  { match: is("notices", null, null), signedIn: true, view: noticeView, params: (p) => ({ istat: p[1], id: p[2] }) },
  { match: is("checkout", null, null, null), signedIn: true, view: checkoutView, params: (p) => ({ istat: p[1], id: p[2], notice: p[3] }) },
  { match: is("complaints"), signedIn: true, view: complaintsView, params: () => ({}) },
  { match: is("complaints", null, null), signedIn: true, view: complaintView, params: (p) => ({ istat: p[1], id: p[2] }) },
  { match: is("survey"), signedIn: true, view: surveyStartView, params: () => ({}) },
  { match: is("survey", null, null), signedIn: true, view: surveyView, params: (p) => ({ istat: p[1], id: p[2] }) },
];
