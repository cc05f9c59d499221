/**
 * What one Privacy Pass admission token (RFC 9578 type 2, blind RSA-PSS 2048) costs (issue 13):
 * the device's blinded request and its unblinding, the issuer's signature, and the coordinator's
 * redemption at join (RSA verification, challenge check, spent-set lookup), plus the bytes on the
 * wire. Device steps are timed in node and in Chromium (what a storefront visitor runs).
 *
 * Run: `npx tsx --conditions=source bench/admission.ts [--quick]`. Writes `bench/results/admission.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTokenIssuer, generateIssuerKeys } from "@fedprofile/coordinator/admission";
import { createTokenRequest } from "@fedprofile/protocol/admission";
import { nodeBlindSigner } from "../examples/node-blind-signer.ts";
import { runInChromium } from "./prg.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The measuring code, run as is in node and bundled for Chromium. */
const MEASURE = `
import { createTokenIssuer, generateIssuerKeys, MemorySpentTokens, redeemJoinToken, roundAdmission, registeredIssuer } from "@fedprofile/coordinator/admission";
import { createTokenRequest } from "@fedprofile/protocol/admission";
import { bytesToBase64 } from "@fedprofile/protocol/bytes";

export async function measure(runs: number) {
  const issuer = await createTokenIssuer({ name: "bench.example", keys: await generateIssuerKeys(), limits: { perCustomer: 1e9 } });
  const admission = roundAdmission(await registeredIssuer("bench.example", issuer.registration().publicKey, 0));
  const spent = new MemorySpentTokens();
  const t = { request: [] as number[], issue: [] as number[], finalize: [] as number[], redeem: [] as number[] };
  let sizes = { request: 0, response: 0, token: 0, tokenBase64: 0 };
  for (let i = 0; i < runs; i++) {
    const roundId = "r_bench" + i;
    let start = performance.now();
    const pending = await createTokenRequest(issuer.name, roundId, issuer.publicKey);
    t.request.push(performance.now() - start);
    start = performance.now();
    const response = await issuer.issue({ customerId: "c" + i }, pending.request);
    t.issue.push(performance.now() - start);
    start = performance.now();
    const token = await pending.finalize(response);
    t.finalize.push(performance.now() - start);
    const b64 = bytesToBase64(token);
    start = performance.now();
    await redeemJoinToken(roundId, admission, b64, spent, async () => undefined);
    t.redeem.push(performance.now() - start);
    sizes = { request: pending.request.length, response: response.length, token: token.length, tokenBase64: b64.length };
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  return {
    runs,
    medianMs: { request: median(t.request), issue: median(t.issue), finalize: median(t.finalize), redeem: median(t.redeem) },
    sizes,
  };
}
`;

type Result = {
  runs: number;
  medianMs: { request: number; issue: number; finalize: number; redeem: number };
  sizes: { request: number; response: number; token: number; tokenBase64: number };
};

async function main(): Promise<void> {
  const runs = process.argv.includes("--quick") ? 5 : 21;
  const file = join(ROOT, "bench", ".admission-measure.ts");
  writeFileSync(file, MEASURE);
  let node: Result;
  try {
    const { measure } = (await import(file)) as { measure: (runs: number) => Promise<Result> };
    node = await measure(runs);
  } finally {
    // The measuring module is generated: keep the tree clean.
    (await import("node:fs")).rmSync(file);
  }
  // The same signature on OpenSSL (what a node storefront backend plugs in), node only.
  const keys = await generateIssuerKeys();
  const openssl = await createTokenIssuer({
    name: "bench.example",
    keys,
    blindSign: nodeBlindSigner(keys),
    limits: { perCustomer: 1e9 },
  });
  const issueOpenSsl: number[] = [];
  for (let i = 0; i < runs; i++) {
    const pending = await createTokenRequest(openssl.name, `r_openssl${i}`, openssl.publicKey);
    const start = performance.now();
    await openssl.issue({ customerId: `c${i}` }, pending.request);
    issueOpenSsl.push(performance.now() - start);
  }
  const issueOpenSslMs = [...issueOpenSsl].sort((a, b) => a - b)[Math.floor(runs / 2)] ?? Number.NaN;
  const chromium = await runInChromium<Result>(
    `${MEASURE}\n(window as unknown as { __bench: () => Promise<unknown> }).__bench = () => measure(${runs});`,
  );
  const rows: [string, string, keyof Result["medianMs"]][] = [
    ["device: blinded token request", "device", "request"],
    ["issuer: blind signature (storefront backend)", "issuer", "issue"],
    ["device: unblind + verify the signature", "device", "finalize"],
    ["coordinator: redeem at join (verify + spent set)", "coordinator", "redeem"],
  ];
  const lines = [
    `Privacy Pass token cost, median of ${runs} (blind RSA-PSS 2048, @cloudflare/privacypass-ts 0.8.1)`,
    "| step | who | node ms | Chromium ms |",
    "|---|---|---:|---:|",
    ...rows.map(
      ([label, who, key]) =>
        `| ${label} | ${who} | ${node.medianMs[key].toFixed(2)} | ${chromium.medianMs[key].toFixed(2)} |`,
    ),
    `| issuer: blind signature on OpenSSL (examples/node-blind-signer.ts) | issuer | ${issueOpenSslMs.toFixed(2)} | — |`,
    `bytes: token request ${node.sizes.request}, token response ${node.sizes.response}, token ${node.sizes.token} (${node.sizes.tokenBase64} as base64 in the join body)`,
  ];
  console.log(lines.join("\n"));
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench", "results", "admission.json"),
    `${JSON.stringify({ bench: "admission", date: new Date().toISOString(), node: process.version, results: { node, chromium, issueOpenSslMs } }, null, 2)}\n`,
  );
}

await main();
