/**
 * What the `maliciousServer` preset (t > k/2) costs against the default honest-but-curious
 * parameters (issue 13): the (k, t) each picks for the same design targets (30% dropout survived
 * in ≥ 99.9% of rounds, collusion ≤ 2^-40 at 5% colluders), and a whole simulated round at n = 100
 * with the real client and server functions (per-device ms, server ms, bytes a device sends).
 * The preset's signed key advertisements (`@fedprofile/protocol/secagg` identity.ts) are measured
 * on their own, in node and in Chromium: signing one advertisement, and checking k neighbours'
 * (k = 52 at n = 100, k = 118 at n = 1,000): k RSA-PSS token verifications and k Ed25519
 * signatures; plus the bytes an advertisement gains.
 *
 * Run: `npm run build && npx tsx --conditions=source bench/threat-preset.ts [--quick]` (Chromium
 * bundles the built packages). Writes `bench/results/threat-preset.json`.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chooseParameters } from "../coordinator/src/secagg/params.ts";
import { runSimulatedRound, seededRandomBytes } from "../test/secagg/driver.ts";
import { mintIdentity, testIssuer } from "../test/secagg/identities.ts";
import { runInChromium } from "./prg.ts";

/** The signed-advertisement measurement, run as is in node and bundled for Chromium. */
const MEASURE_SIGNED = `
import { bytesToBase64 } from "@fedprofile/protocol/bytes";
import { advertStatement, defaultSignatureVerifier, generateKeyPair, generateRoundIdentity, signStatement } from "@fedprofile/protocol/secagg";
import { encodeClientFrame } from "@fedprofile/protocol/wire";
import { verifyNeighbourAdverts } from "../sdk/src/secagg/identity.ts";
import { mintIdentity, testIssuer } from "../test/secagg/identities.ts";

const ROUND = "r_benchsignedadvertbench";
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function measureSigned(ks: number[], runs: number) {
  const issuer = await testIssuer("bench.example");
  const verifier = await defaultSignatureVerifier();
  const out = [];
  for (const k of ks) {
    const ids = [];
    for (let i = 0; i <= k; i++) ids.push(await mintIdentity(issuer, ROUND, 0, random));
    const neighbours = ids.slice(1).map((id, i) => {
      const slot = i + 1;
      const c = generateKeyPair(random);
      const s = generateKeyPair(random);
      const seed = Uint8Array.from(atob(id.seed), (ch) => ch.charCodeAt(0));
      const sig = signStatement(seed, advertStatement(ROUND, 0, slot, c.publicKey, s.publicKey));
      return { slot, cPk: bytesToBase64(c.publicKey), sPk: bytesToBase64(s.publicKey), identity: { idPk: id.publicKey, salt: id.salt, token: id.token, sig: bytesToBase64(sig) } };
    });
    const own = ids[0]!;
    const sign: number[] = [];
    const verify: number[] = [];
    for (let r = 0; r < runs; r++) {
      const c = generateKeyPair(random);
      const s = generateKeyPair(random);
      // The identity (one Ed25519 key pair) and its signature: what the preset adds to advertising.
      let t0 = performance.now();
      const id = generateRoundIdentity(random);
      signStatement(id.seed, advertStatement(ROUND, 0, 0, c.publicKey, s.publicKey));
      sign.push(performance.now() - t0);
      t0 = performance.now();
      await verifyNeighbourAdverts(ROUND, own, neighbours, verifier);
      verify.push(performance.now() - t0);
    }
    const n0 = neighbours[0]!;
    const unsigned = { v: 1 as const, roundId: ROUND, slot: 1, stage: "advertise-keys" as const, cPk: n0.cPk, sPk: n0.sPk };
    const frameBytes = encodeClientFrame(unsigned).length;
    const signedFrameBytes = encodeClientFrame({ ...unsigned, identity: n0.identity }).length;
    const { identity: _, ...bare } = n0;
    out.push({
      k,
      verifier: verifier.name,
      signMsMedian: median(sign),
      verifyNeighboursMsMedian: median(verify),
      advertFrameBytes: frameBytes,
      signedAdvertFrameBytes: signedFrameBytes,
      viewBytesPerNeighbour: JSON.stringify(bare).length,
      signedViewBytesPerNeighbour: JSON.stringify(n0).length,
    });
  }
  return out;
}
`;
type SignedRow = {
  k: number;
  verifier: string;
  signMsMedian: number;
  verifyNeighboursMsMedian: number;
  advertFrameBytes: number;
  signedAdvertFrameBytes: number;
  viewBytesPerNeighbour: number;
  signedViewBytesPerNeighbour: number;
};
const quick = process.argv.includes("--quick");

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIM = 1024;

const rows: Array<Record<string, number | string | boolean>> = [];
for (const n of [50, 100, 1000]) {
  for (const preset of ["honestButCurious", "maliciousServer"] as const) {
    const p = chooseParameters({ n, honestMajority: preset === "maliciousServer" });
    rows.push({ n, preset, k: p.k, t: p.t, failureBound: p.failureBound, collusionBound: p.collusionBound });
  }
}

const rounds: Array<Record<string, number | string>> = [];
const n = 100;
const issuer = await testIssuer("bench.example");
const ROUND = "r_benchpresetbenchpreset";
for (const preset of ["honestButCurious", "maliciousServer", "maliciousServer (signed)"] as const) {
  const p = chooseParameters({ n, honestMajority: preset !== "honestButCurious" });
  const signed = preset === "maliciousServer (signed)";
  const idRandom = seededRandomBytes("preset-identities");
  const identities = [];
  if (signed) for (let u = 0; u < n; u++) identities.push(await mintIdentity(issuer, ROUND, 0, idRandom));
  const inputs = Array.from({ length: n }, (_, u) =>
    Uint32Array.from({ length: DIM }, (_, i) => (u + i) % 256),
  );
  const start = performance.now();
  const outcome = await runSimulatedRound({
    roundId: ROUND,
    ...(signed ? { identities, signedKeys: true } : {}),
    cohortSize: n,
    k: p.k,
    t: p.t,
    dimension: DIM,
    valueBits: 8,
    modulusBits: 16,
    consistencyCheck: true,
    inputs,
    randomBytes: seededRandomBytes(`preset-${preset}`),
  });
  const wall = performance.now() - start;
  if (outcome.abort) throw new Error(`${preset}: round aborted: ${outcome.abort.reason}`);
  const clientMs = Array.from(outcome.stats.clientMs).sort((a, b) => a - b);
  const sent = Array.from(outcome.stats.bytesSent).reduce((a, b) => a + b, 0) / n;
  const serverMs = Object.values(outcome.stats.serverMs).reduce((a, b) => a + b, 0);
  rounds.push({
    preset,
    k: p.k,
    t: p.t,
    deviceMsMedian: clientMs[Math.floor(n / 2)] ?? Number.NaN,
    serverMs,
    bytesSentPerDevice: sent,
    wallMs: wall,
  });
}

console.log("(k, t) for 30% dropout, failure ≤ 1e-3, collusion ≤ 2^-40 at 5% colluders");
console.log("| n | preset | k | t | failure bound | collusion bound |");
console.log("|---:|---|---:|---:|---:|---:|");
for (const r of rows)
  console.log(
    `| ${r.n} | ${r.preset} | ${r.k} | ${r.t} | ${Number(r.failureBound).toExponential(2)} | ${Number(r.collusionBound).toExponential(2)} |`,
  );
console.log(`\nOne simulated round, n = ${n}, d = ${DIM}, consistency check on (no dropout)`);
console.log("| preset | k | t | device ms (median) | server ms | bytes sent / device |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rounds)
  console.log(
    `| ${r.preset} | ${r.k} | ${r.t} | ${Number(r.deviceMsMedian).toFixed(1)} | ${Number(r.serverMs).toFixed(0)} | ${Number(r.bytesSentPerDevice).toFixed(0)} |`,
  );

// Signed advertisements: node (the generated module is imported, then removed), then Chromium.
const ks = [52, 118];
const runs = quick ? 3 : 9;
const file = join(ROOT, "bench", ".signed-measure.ts");
writeFileSync(file, MEASURE_SIGNED);
let signedNode: SignedRow[];
try {
  const { measureSigned } = (await import(file)) as {
    measureSigned: (ks: number[], runs: number) => Promise<SignedRow[]>;
  };
  signedNode = await measureSigned(ks, runs);
} finally {
  rmSync(file);
}
const signedChromium = await runInChromium<SignedRow[]>(
  `${MEASURE_SIGNED}\n(window as unknown as { __bench: () => Promise<unknown> }).__bench = () => measureSigned(${JSON.stringify(ks)}, ${runs});`,
);
console.log(`\nSigned advertisements (median of ${runs}): sign one, check k neighbours (token + signature)`);
console.log(
  "| k | node identity + sign ms | node check ms | Chromium identity + sign ms | Chromium check ms | advert frame B (signed) | view B / neighbour (signed) |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (const [i, r] of signedNode.entries()) {
  const c = signedChromium[i] as SignedRow;
  console.log(
    `| ${r.k} | ${r.signMsMedian.toFixed(2)} | ${r.verifyNeighboursMsMedian.toFixed(1)} | ${c.signMsMedian.toFixed(2)} | ${c.verifyNeighboursMsMedian.toFixed(1)} | ${r.advertFrameBytes} (${r.signedAdvertFrameBytes}) | ${r.viewBytesPerNeighbour} (${r.signedViewBytesPerNeighbour}) |`,
  );
}
console.log(`verifiers: node ${signedNode[0]?.verifier}, Chromium ${signedChromium[0]?.verifier}`);

mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench", "results", "threat-preset.json"),
  `${JSON.stringify({ bench: "threat-preset", date: new Date().toISOString(), node: process.version, parameters: rows, rounds, signedAdverts: { node: signedNode, chromium: signedChromium } }, null, 2)}\n`,
);
