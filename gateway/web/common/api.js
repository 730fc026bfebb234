// Unione web front: calls to the gateway's JSON API. The token lives in this tab's session
// storage only (never a cookie), and goes with every call as `Authorization: Bearer`.

const TOKEN_KEY = "unione.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answered by the API: `code` (gRPC), `reason` (ErrorInfo), `field`, `status`. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "UNKNOWN";
    this.reason = e.reason || "";
    this.field = e.field || null;
  }
}

/** Calls `path` (`/api/...`) with `method` and an optional JSON `body`; resolves to the JSON
 *  answer, or rejects with an ApiError. */
export async function call(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, parsed);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Downloads the answer of `path` as a file named `filename`. */
export async function download(path, filename) {
  const response = await call(path, { raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Reads a File as base64 (no data: prefix), for uploading documents in JSON. */
export function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(reader.error);
    reader.onload = () => {
      const s = String(reader.result);
      resolve(s.slice(s.indexOf(",") + 1));
    };
    reader.readAsDataURL(file);
  });
}

/** Builds an element: el("p", {class: "hint"}, "text", child...). Text is always text, never
 *  HTML, so nothing from the API is ever interpreted as markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
