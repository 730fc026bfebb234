// The front office tests' gRPC client: what an operator or an auditor does THROUGH THE gRPC
// API of the gateway (not the web front), with the .proto files of the repository, the
// demo's CA (server name `localhost`), a bearer token and the routing header.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "../../proto");

const definition = protoLoader.loadSync(
  [
    "unione/registry/v1/cases.proto",
    "unione/registry/v1/certificates.proto",
    "unione/registry/v1/residents.proto",
    "unione/payments/v1/debt_positions.proto",
    "unione/payments/v1/payment_provider.proto",
    "unione/quality/v1/surveys.proto",
  ],
  { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const loaded = grpc.loadPackageDefinition(definition);

/** A client of `service` (e.g. "registry.v1.CaseService") on the demo's gateway. */
function client(demo, service) {
  const Service = service.split(".").reduce((node, part) => node[part], loaded.unione);
  const address = demo.gateway.replace(/^https:\/\//, "");
  const credentials = grpc.credentials.createSsl(readFileSync(demo.ca));
  return new Service(address, credentials, { "grpc.ssl_target_name_override": demo.gateway_tls_name || "localhost" });
}

/** Calls `method` of `service` for comune `istat` with `token`; resolves to the response. */
export function callGrpc(demo, service, method, request, token, istat) {
  const c = client(demo, service);
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  metadata.set("x-goog-request-params", `comune=comuni%2F${istat}`);
  return new Promise((resolve, reject) => {
    c[method](request, metadata, { deadline: Date.now() + 20000 }, (err, response) => {
      c.close();
      if (err) reject(new Error(`${service}/${method}: ${err.code} ${err.details}`));
      else resolve(response);
    });
  });
}

/** Mints a citizen token with the demo's keys (`unione token`). */
export function citizenToken(sub, fiscalNumber) {
  return execFileSync(
    process.env.UNIONE_BIN,
    ["token", "--keys", join(process.env.UNIONE_DEMO_DATA, "keys"), "--role", "citizen", "--sub", sub, "--fiscal-number", fiscalNumber, "--days", "1"],
    { encoding: "utf8" },
  ).trim();
}
