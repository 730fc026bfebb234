// The web front's shared endpoints, called from a page of the web front itself (same origin):
// the member list, the session of a token, JSON errors with the gRPC reason, the security
// headers on every response.
import { check, demo, newPage, run, screenshot } from "./lib.mjs";

const d = demo();

await run("shared endpoints", async (browser) => {
  const page = await newPage(browser);
  const response = await page.goto(`${d.web}api/comuni`);
  check(response.ok(), `comuni: ${response.status()}`);
  const headers = response.headers();
  check(headers["content-security-policy"]?.includes("default-src 'self'"), "CSP header");
  check(headers["x-content-type-options"] === "nosniff", "nosniff header");
  check(headers["x-frame-options"] === "DENY", "frame header");
  await screenshot(page, "comuni-json");

  const answers = await page.evaluate(async (tokens) => {
    const get = async (path, token) => {
      const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      return { status: r.status, body: await r.json() };
    };
    return {
      comuni: await get("/api/comuni"),
      citizen: await get("/api/session", tokens.citizen),
      anonymous: await get("/api/session"),
      forged: await get("/api/session", tokens.citizen.slice(0, -4) + "AAAA"),
      missing: await get("/api/nowhere"),
    };
  }, d.tokens);

  check(answers.comuni.status === 200, `comuni: ${JSON.stringify(answers.comuni)}`);
  const names = answers.comuni.body.comuni.map((c) => c.display_name);
  check(names.length === 6 && names.includes("Sarzana") && names.includes("Ameglia"), `members: ${names}`);
  check(answers.citizen.status === 200 && answers.citizen.body.role === "citizen", `session: ${JSON.stringify(answers.citizen)}`);
  check(answers.citizen.body.fiscal_number === d.citizen_fiscal_number, "the session names the citizen's codice fiscale");
  check(answers.anonymous.status === 401 && answers.anonymous.body.error.reason === "TOKEN_MISSING", `anonymous: ${JSON.stringify(answers.anonymous)}`);
  check(answers.forged.status === 401 && answers.forged.body.error.reason === "TOKEN_INVALID", `forged: ${JSON.stringify(answers.forged)}`);
  check(answers.missing.status === 404 && answers.missing.body.error.code === "NOT_FOUND", `missing: ${JSON.stringify(answers.missing)}`);
});
