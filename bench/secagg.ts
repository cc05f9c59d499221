/**
 * SecAgg+ benchmark. By default the server round budget (`./secagg-round.ts`): n = 1,000,
 * d = 65,536, 10% dropout, accept over every survivor + unmask, median of 3 rounds (`--runs R`),
 * at k = 6, t = 4 (Flower's setting, ratio to its 28,379 ms) and at our k = 54, t = 21.
 * With `--grid`, also the grid n ∈ {100, 1000, 5000} × d ∈ {1024, 65536} × dropout ∈ {0, 10%, 30%},
 * a complete-graph (plain Bonawitz) run at n = 1000, and the client in Chromium at d = 65536,
 * n = 1000. Run: `npx tsx bench/secagg.ts [--grid [--quick] | --client-only]`; writes `bench/results/secagg.json`
 * (`secagg-client.json` with `--client-only`: the client budget cell alone, eleven runs).
 *
 * How each number is obtained (simulating 5,000 full clients at d = 65,536 would take hours):
 * - Client: one representative device runs the real stage functions against real neighbour
 *   material (`probeClient`): wall-clock ms in node and Chromium, exact bytes sent and received.
 * - Server: a real unmask-stage state is generated, exactly what the coordinator would hold:
 *   real X25519 mask keys for every device, real Shamir shares of every needed b_u and s_u^SK
 *   placed with the neighbours that reveal them, devices dropped uniformly after sharing keys
 *   (the costliest place to drop: their pairwise masks must be rebuilt), and a random masked sum.
 *   `finalizeUnmask` then does all the real work (Lagrange, X25519, PRG, subtraction). "Sum" is
 *   unpacking and adding every survivor's masked vector. CPU time is process user+system time,
 *   which includes WebCrypto's worker threads, so it is the one-core figure.
 * - Cohorts above 1,000 are sharded (`planShards`, shards of ≤ 1,000); per-shard figures are
 *   measured for every shard and the total is their sum (one core, one shard after another).
 * - Correctness cross-check: n = 100 cells are also run end to end with every client
 *   (`runSimulatedRound`) and the result is compared with the plain sum.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  addMaskInPlace,
  bytesToBase64,
  chooseParameters,
  collusionBound,
  defaultKeyAgreement,
  encodeShareValues,
  failureBound,
  finalizeUnmask,
  generateKeyPair,
  type KeyPair,
  modulusBitsFor,
  packWords,
  planShards,
  type ServerRoundState,
  SIZES,
  sharePoint,
  simulateSurvival,
  splitSecret,
  tweetnaclKeyAgreement,
  unpackWords,
} from "../coordinator/src/secagg/index";
import { type ProbeResult, probeClient } from "../sdk/src/secagg/probe";
import { plainSum, runSimulatedRound, seededRandomBytes } from "../test/secagg/driver";
import { runInChromium } from "./prg";
import { benchShard, blankDevices, FLOWER_MS, roundBudget } from "./secagg-round";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const VALUE_BITS = 16;
const MAX_SHARD = 1000;

interface ServerShard {
  n: number;
  unmaskCpuMs: number;
  unmaskWallMs: number;
  sumCpuMs: number;
  survivors: number;
  rebuiltPairs: number;
}

/** Real unmask-stage state for one shard (see the module comment), then the timed work. */
async function measureShard(
  n: number,
  k: number,
  t: number,
  d: number,
  dropout: number,
  seed: string,
  keys: KeyPair[],
): Promise<ServerShard> {
  const { random, m, base, all, graph } = benchShard(n, d, k, t, seed);
  const order = [...all];
  for (let i = n - 1; i > 0; i--) {
    const j = (random(4).reduce((a, b) => a * 256 + b, 0) >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const dropped = new Set(order.slice(0, Math.round(dropout * n)));
  const survivors = all.filter((u) => !dropped.has(u));
  const survivorSet = new Set(survivors);
  const devices = blankDevices(all, keys);
  let rebuiltPairs = 0;
  for (const u of all) {
    const nb = graph.neighbours(u);
    const survivingNb = nb.filter((v) => survivorSet.has(v));
    if (dropped.has(u) && survivingNb.length === 0) continue;
    if (dropped.has(u)) rebuiltPairs += survivingNb.length;
    const secret = dropped.has(u) ? (keys[u] as KeyPair).secretKey : random(SIZES.selfSeed);
    const shares = splitSecret(secret, t, nb.map(sharePoint), random);
    nb.forEach((v, i) => {
      if (!survivorSet.has(v)) return;
      const list = dropped.has(u) ? devices[String(v)]?.sShares : devices[String(v)]?.bShares;
      list?.push([u, bytesToBase64(encodeShareValues(shares[i] as (typeof shares)[number]))]);
    });
  }
  const masked = Uint32Array.from(
    random(4 * d).subarray(0, d),
    (b, i) => (b * 65599 + i * 2654435761) % 2 ** m,
  );
  const state: ServerRoundState = {
    ...base,
    phase: "unmask",
    members: all,
    sharers: all,
    survivors,
    checked: survivors,
    revealers: survivors,
    devices,
    maskedSum: masked,
  };
  // Sum: unpack and add every survivor's masked vector (what handleMaskedInput does per message).
  const packed = packWords(masked, m);
  const acc = new Uint32Array(d);
  const s0 = process.cpuUsage();
  for (let i = 0; i < survivors.length; i++) addMaskInPlace(acc, unpackWords(packed, d, m), 1, m);
  const sumCpu = process.cpuUsage(s0);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const out = await finalizeUnmask(state, graph, 1, { keyAgreement: await defaultKeyAgreement() });
  const wallMs = performance.now() - w0;
  const cpu = process.cpuUsage(c0);
  if (out.state.phase !== "done") throw new Error(`synthetic shard aborted: ${out.state.abort?.reason}`);
  return {
    n,
    unmaskCpuMs: (cpu.user + cpu.system) / 1000,
    unmaskWallMs: wallMs,
    sumCpuMs: (sumCpu.user + sumCpu.system) / 1000,
    survivors: survivors.length,
    rebuiltPairs,
  };
}

interface Cell {
  graph: "secagg+" | "complete";
  n: number;
  shards: number;
  shardSize: number;
  k: number;
  t: number;
  d: number;
  dropout: number;
  modulusBits: number;
  client: ProbeResult;
  server: ServerShard[];
  serverPerShardCpuMs: number;
  serverTotalCpuMs: number;
  rawBytes: number;
  uploadExpansion: number;
  validated?: { exact: boolean; serverUnmaskMs: number };
}

const keyCache = new Map<string, KeyPair[]>();
function keysFor(label: string, n: number): KeyPair[] {
  const cached = keyCache.get(label);
  if (cached && cached.length >= n) return cached;
  const random = seededRandomBytes(`keys-${label}`);
  const keys = Array.from({ length: n }, () => generateKeyPair(random));
  keyCache.set(label, keys);
  return keys;
}

async function runCell(graphKind: Cell["graph"], n: number, d: number, dropout: number): Promise<Cell> {
  const shards =
    n > MAX_SHARD
      ? planShards(
          Array.from({ length: n }, (_, i) => i),
          { maxShardSize: MAX_SHARD, minShardSize: 100, seed: new Uint8Array(32) },
        )
      : [Array.from({ length: n }, (_, i) => i)];
  const shardSize = Math.max(...shards.map((s) => s.length));
  const params =
    graphKind === "complete"
      ? { k: shardSize % 2 ? shardSize + 1 : shardSize, t: 51 }
      : chooseParameters({ n: shardSize });
  const m = modulusBitsFor(VALUE_BITS, shardSize);
  const client = await probeClient({
    n: shardSize,
    k: params.k,
    t: params.t,
    dimension: d,
    valueBits: VALUE_BITS,
    modulusBits: m,
    dropout,
    randomBytes: seededRandomBytes(`probe-${n}-${d}-${dropout}`),
  });
  const server: ServerShard[] = [];
  for (const [i, shard] of shards.entries()) {
    server.push(
      await measureShard(
        shard.length,
        params.k,
        params.t,
        d,
        dropout,
        `srv-${n}-${d}-${dropout}-${i}`,
        keysFor(`shard${i}`, shard.length),
      ),
    );
  }
  const per = server.map((s) => s.unmaskCpuMs + s.sumCpuMs);
  const cell: Cell = {
    graph: graphKind,
    n,
    shards: shards.length,
    shardSize,
    k: params.k,
    t: params.t,
    d,
    dropout,
    modulusBits: m,
    client,
    server,
    serverPerShardCpuMs: Math.max(...per),
    serverTotalCpuMs: per.reduce((a, b) => a + b, 0),
    rawBytes: 2 * d,
    uploadExpansion: client.bytesSent / (2 * d),
  };
  if (n === 100 && graphKind === "secagg+")
    cell.validated = await validate(n, params.k, params.t, d, dropout, m);
  return cell;
}

/** End-to-end run with every client: the result must equal the plain sum. */
async function validate(n: number, k: number, t: number, d: number, dropout: number, m: number) {
  const random = seededRandomBytes(`validate-${d}-${dropout}`);
  const inputs = Array.from({ length: n }, () =>
    Uint32Array.from(random(2 * d).subarray(0, d), (b, i) => (b * 257 + i) % 2 ** VALUE_BITS),
  );
  const dropouts = new Map<number, "masked-input">();
  for (let i = 0; i < Math.round(dropout * n); i++) dropouts.set((i * 7 + 3) % n, "masked-input");
  const out = await runSimulatedRound({
    cohortSize: n,
    k,
    t,
    dimension: d,
    valueBits: VALUE_BITS,
    modulusBits: m,
    inputs,
    dropouts,
    randomBytes: random,
  });
  const exact = out.sum !== null && plainSum(inputs, out.contributors, m).every((v, i) => v === out.sum?.[i]);
  return { exact, serverUnmaskMs: out.stats.serverMs.unmask };
}

function row(c: Cell): string {
  const kb = (b: number) => (b / 1024).toFixed(1);
  return [
    c.graph,
    c.n,
    c.shards,
    `${c.k}/${c.t}`,
    c.d,
    `${Math.round(c.dropout * 100)}%`,
    c.client.totalMs.toFixed(1),
    c.serverPerShardCpuMs.toFixed(0),
    c.serverTotalCpuMs.toFixed(0),
    kb(c.client.bytesSent),
    kb(c.client.bytesReceived),
    c.uploadExpansion.toFixed(3),
    c.validated ? (c.validated.exact ? "exact" : "WRONG") : "",
  ].join(" | ");
}

/** k/t analysis: union bounds and Monte Carlo survival, ours against Flower's example setting. */
function parameterReport(rounds: number) {
  const ours = chooseParameters({ n: 1000 });
  const rows = [
    { name: "ours (γ = 5%, σ = 40)", k: ours.k, t: ours.t, countSelf: false },
    { name: "honest-majority t > k/2", k: 118, t: 60, countSelf: false },
    { name: "Flower example", k: 6, t: 4, countSelf: true },
  ];
  const out = [];
  console.log("\nNeighbour-graph parameters at n = 1000 (failure = some device has < t share holders):");
  console.log(
    `setting | k | t | union bound P(fail) @10% | simulated survival @10% | union bound P(fail) @30% | simulated survival @30% | collusion bound (5%) | rounds`,
  );
  console.log("---|---:|---:|---:|---:|---:|---:|---:|---:");
  for (const r of rows) {
    const q = { n: 1000, k: r.k, t: r.t, countSelf: r.countSelf };
    const f10 = failureBound({ ...q, dropout: 0.1 });
    const f30 = failureBound({ ...q, dropout: 0.3 });
    const s10 = simulateSurvival({ ...q, dropout: 0.1, rounds, seed: 11 });
    const s30 = simulateSurvival({ ...q, dropout: 0.3, rounds, seed: 13 });
    const col = collusionBound(1000, r.k, r.t, 0.05);
    out.push({
      ...r,
      failure10: f10,
      survival10: s10,
      failure30: f30,
      survival30: s30,
      collusion: col,
      rounds,
    });
    console.log(
      `${r.name} | ${r.k} | ${r.t} | ${f10.toExponential(2)} | ${s10.toFixed(5)} | ${f30.toExponential(2)} | ${s30.toFixed(5)} | ${col.toExponential(2)} | ${rounds}`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const grid = process.argv.includes("--grid");
  const runsAt = process.argv.indexOf("--runs");
  const roundRuns = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
  // --client-only: just the client budget cell, with more runs (for a quiet moment on a shared box).
  const clientOnly = process.argv.includes("--client-only");
  const loadAtStart = loadavg();
  console.log(
    `load average at start: ${loadAtStart.map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} cores`,
  );
  const round = clientOnly ? [] : await roundBudget(roundRuns);
  if (round.length > 0) {
    console.log(
      `\nServer round at n = 1000, d = 65536, 10% dropout, one core (CPU ms, median of ${roundRuns} rounds; accept = every survivor):`,
    );
    console.log(
      "setting | k/t | survivors | accept | unmask | round | per input median / p99 / max | Flower | ratio | ≤ 5,000 ms",
    );
    console.log("---|---|---:|---:|---:|---:|---|---:|---:|---");
    for (const c of round) {
      console.log(
        `${c.name} | ${c.k}/${c.t} | ${c.survivors} | ${c.acceptMs.toFixed(0)} | ${c.unmaskMs.toFixed(0)} | ${c.roundMs.toFixed(0)} | ${c.perInput.medianMs.toFixed(3)} / ${c.perInput.p99Ms.toFixed(3)} / ${c.perInput.maxMs.toFixed(3)} | ${FLOWER_MS} | ${c.speedupVsFlower.toFixed(2)}× | ${c.holds ? "holds" : "MISSED"}`,
      );
    }
  }
  if (!grid && !clientOnly) {
    const loadAtEnd = loadavg();
    console.log(`load average at end: ${loadAtEnd.map((x) => x.toFixed(2)).join(" ")}`);
    mkdirSync(join(ROOT, "bench/results"), { recursive: true });
    writeFileSync(
      join(ROOT, "bench/results/secagg.json"),
      `${JSON.stringify({ bench: "secagg", date: new Date().toISOString(), node: process.version, loadAverage: { start: loadAtStart, end: loadAtEnd, cores: cpus().length }, x25519: (await defaultKeyAgreement()).name, prg: "aes-128-ctr", round: round.map(({ runsMs, ...c }) => ({ ...c, runsMs })) }, null, 2)}\n`,
    );
    console.log("wrote bench/results/secagg.json");
    return;
  }
  const ns = clientOnly ? [] : quick ? [100, 1000] : [100, 1000, 5000];
  const ds = [1024, 65536];
  const drops = quick ? [0.1] : [0, 0.1, 0.3];
  const agreement = await defaultKeyAgreement();
  const parameters = clientOnly ? [] : parameterReport(quick ? 20_000 : 200_000);
  console.log(
    `SecAgg+ benchmark (${quick ? "quick" : "full"}), X25519 backend: ${agreement.name}, PRG: AES-128-CTR`,
  );
  console.log(
    "graph | n | shards | k/t | d | drop | client ms (node) | server CPU ms/shard | server CPU ms total | sent KiB | recv KiB | upload / 2d | e2e",
  );
  console.log("---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---");
  const cells: Cell[] = [];
  for (const n of ns) {
    for (const d of ds) {
      for (const dropout of drops) {
        const cell = await runCell("secagg+", n, d, dropout);
        cells.push(cell);
        console.log(row(cell));
      }
    }
  }
  for (const d of clientOnly ? [] : quick ? [1024] : ds) {
    const cell = await runCell("complete", 1000, d, 0.1);
    cells.push(cell);
    console.log(row(cell));
  }

  // The budget cell in Chromium: the default (native X25519 if present) and tweetnacl only.
  const p = chooseParameters({ n: 1000 });
  const shape = {
    n: 1000,
    k: p.k,
    t: p.t,
    dimension: 65536,
    valueBits: VALUE_BITS,
    modulusBits: modulusBitsFor(VALUE_BITS, 1000),
    dropout: 0.1,
  };
  const runs = clientOnly ? 11 : quick ? 3 : 5;
  const chromium = await runInChromium<Array<{ backend: string; totalMs: number[]; stageMs: unknown }>>(`
    import { probeClient } from "../sdk/src/secagg/probe";
    import { tweetnaclKeyAgreement } from "@fedprofile/protocol/secagg";
    (window as unknown as { __bench: () => Promise<unknown> }).__bench = async () => {
      const out = [];
      for (const backend of ["default", "tweetnacl"]) {
        const totals = []; let stages;
        for (let r = 0; r < ${runs + 1}; r++) {
          const res = await probeClient({ ...${JSON.stringify(shape)}, ...(backend === "tweetnacl" ? { keyAgreement: tweetnaclKeyAgreement } : {}) });
          if (r > 0) { totals.push(res.totalMs); stages = res.stageMs; } // first run warms the JIT
        }
        out.push({ backend, totalMs: totals, stageMs: stages });
      }
      return out;
    };`);
  const node: Array<{ backend: string; totalMs: number[] }> = [];
  for (const backend of ["default", "tweetnacl"]) {
    const totals: number[] = [];
    for (let r = 0; r < runs + 1; r++) {
      const res = await probeClient({
        ...shape,
        ...(backend === "tweetnacl" ? { keyAgreement: tweetnaclKeyAgreement } : {}),
      });
      if (r > 0) totals.push(res.totalMs);
    }
    node.push({ backend, totalMs: totals });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  console.log("\nClient per round at d = 65536, n = 1000, 10% dropout (median of runs, ms):");
  console.log("X25519 backend | node | Chromium");
  console.log("---|---:|---:");
  for (const b of ["default", "tweetnacl"]) {
    const c = chromium.find((x) => x.backend === b);
    const nd = node.find((x) => x.backend === b);
    console.log(
      `${b === "default" ? `default (${agreement.name} in node, native if present)` : b} | ${med(nd?.totalMs ?? [0]).toFixed(1)} | ${med(c?.totalMs ?? [0]).toFixed(1)}`,
    );
  }
  const budget = cells.find(
    (c) => c.graph === "secagg+" && c.n === 1000 && c.d === 65536 && c.dropout === 0.1,
  );
  const chrome = med(chromium.find((x) => x.backend === "default")?.totalMs ?? [0]);
  console.log("\nBudgets at d = 65536, n = 1000, 10% dropout:");
  console.log(
    `- client ≤ 150 ms in Chromium: ${chrome.toFixed(1)} ms → ${chrome <= 150 ? "holds" : "MISSED"}`,
  );
  if (budget) {
    console.log(
      `- server ≤ 5 s on one core: ${(budget.serverTotalCpuMs / 1000).toFixed(2)} s CPU → ${budget.serverTotalCpuMs <= 5000 ? "holds" : "MISSED"}`,
    );
    console.log(
      `- upload ≤ 1.7× raw 16-bit: ${budget.uploadExpansion.toFixed(3)}× → ${budget.uploadExpansion <= 1.7 ? "holds" : "MISSED"}`,
    );
  }
  const loadAtEnd = loadavg();
  console.log(`load average at end: ${loadAtEnd.map((x) => x.toFixed(2)).join(" ")}`);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, clientOnly ? "bench/results/secagg-client.json" : "bench/results/secagg.json"),
    `${JSON.stringify({ bench: "secagg", date: new Date().toISOString(), node: process.version, quick, clientOnly, loadAverage: { start: loadAtStart, end: loadAtEnd, cores: cpus().length }, x25519: agreement.name, prg: "aes-128-ctr", parameters, round, cells, clientBudgetCell: { shape, node, chromium } }, null, 2)}\n`,
  );
  console.log(`wrote bench/results/${clientOnly ? "secagg-client" : "secagg"}.json`);
}

await main();
