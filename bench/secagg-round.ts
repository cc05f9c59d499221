/**
 * The server round budget (DESIGN.md, budgets): one SecAgg+ shard at n = 1,000, d = 65,536, 10%
 * dropout, one core, timed as accept + unmask, against Flower's SecAgg+ workflow measured at
 * 28,379 ms CPU (k = 6, t = 4; issue 11). Used by `bench/secagg.ts`.
 *
 * - Accept: every survivor's masked input, as the binary frame a device sends, goes through
 *   `handleFrame` (decode once, SHA-256 over the frame, guard, add into the running sum) and the
 *   changed storage entries are structured-cloned, as the shard host's store write does. Each
 *   input is timed on its own (process CPU, which includes WebCrypto's threads).
 * - Unmask: `finalizeUnmask` over the state accept left, with real Shamir shares of every b_u
 *   and dropped s_u^SK placed with the neighbours that reveal them, and real X25519 keys.
 * - Dropout: 10% of devices drop after sharing keys (the costliest point: their pairwise masks are
 *   rebuilt). At k = 6, t = 4 a uniformly random 10% drop leaves some device with fewer than t
 *   share holders in most rounds, and such a round aborts early and costs little; the dropped set
 *   is therefore drawn uniformly among those that keep every device recoverable, so every timed
 *   round really unmasks.
 */
import {
  buildNeighbourGraph,
  bytesToBase64,
  createRoundState,
  defaultKeyAgreement,
  encodeClientFrame,
  encodeShareValues,
  finalizeUnmask,
  generateKeyPair,
  handleFrame,
  type KeyPair,
  modulusBitsFor,
  type NeighbourGraph,
  packWords,
  type ServerRoundState,
  SIZES,
  sharePoint,
  splitSecret,
  storageEntry,
} from "../coordinator/src/secagg/index";
import { seededRandomBytes } from "../test/secagg/driver";

const ROUND_ID = "r_benchbenchbenchbenchbe";
const VALUE_BITS = 16;

/** Flower's SecAgg+ server round at n = 1,000, d = 65,536, 10% dropout, k = 6, t = 4 (CPU ms). */
export const FLOWER_MS = 28_379;

/** One timed round. */
export interface RoundRun {
  acceptMs: number;
  unmaskMs: number;
  roundMs: number;
  /** CPU ms of each accepted input, in arrival order. */
  perInputMs: number[];
  survivors: number;
}

/** Survivors (dropped uniformly, conditioned on every device keeping ≥ t surviving neighbours). */
function chooseDropped(
  graph: NeighbourGraph,
  n: number,
  t: number,
  count: number,
  random: (n: number) => Uint8Array,
) {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = (random(4).reduce((a, b) => a * 256 + b, 0) >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const alive = new Array<number>(n);
  for (let u = 0; u < n; u++) alive[u] = graph.neighbours(u).length;
  const dropped = new Set<number>();
  for (const c of order) {
    if (dropped.size === count) break;
    // Dropping c costs each neighbour one surviving neighbour; c itself keeps its count.
    if (graph.neighbours(c).every((w) => (alive[w] as number) - 1 >= t) && (alive[c] as number) >= t) {
      dropped.add(c);
      for (const w of graph.neighbours(c)) alive[w] = (alive[w] as number) - 1;
    }
  }
  if (dropped.size !== count) throw new Error(`could not drop ${count} devices and stay recoverable`);
  return dropped;
}

/** One round at (n, d, k, t) with `dropout`, fully timed. */
/**
 * A shard's server state at round start, from `seed` (deterministic), with its neighbour graph:
 * what both SecAgg benches start from. `random` continues the seeded stream.
 */
export function benchShard(n: number, d: number, k: number, t: number, seed: string) {
  const random = seededRandomBytes(seed);
  const m = modulusBitsFor(VALUE_BITS, n);
  const base = createRoundState(
    {
      roundId: ROUND_ID,
      cohortSize: n,
      k,
      t,
      dimension: d,
      valueBits: VALUE_BITS,
      modulusBits: m,
      randomBytes: random,
    },
    0,
  );
  const all = Array.from({ length: n }, (_, i) => i);
  const graph = buildNeighbourGraph(
    Uint8Array.from(atob(base.config.graphSeed), (c) => c.charCodeAt(0)),
    all,
    k,
  );
  return { random, m, base, all, graph };
}

/** Every device's server-side record before any share arrives: its advertised key only. */
export function blankDevices(all: readonly number[], keys: readonly KeyPair[]): ServerRoundState["devices"] {
  const devices: ServerRoundState["devices"] = {};
  for (const u of all)
    devices[String(u)] = {
      digests: {},
      sPk: bytesToBase64((keys[u] as KeyPair).publicKey),
      bShares: [],
      sShares: [],
    };
  return devices;
}

/**
 * A shard at the masked-input stage with every device a sharer, and a pool of 8 packed masked
 * vectors to send as inputs: where both accept benches (node, workerd) start.
 */
export function maskedInputStage(
  base: ServerRoundState,
  all: readonly number[],
  keys: readonly KeyPair[],
  random: (n: number) => Uint8Array,
): { state: ServerRoundState; pool: Uint8Array[] } {
  const { dimension: d, modulusBits: m } = base.config;
  const state: ServerRoundState = {
    ...base,
    phase: "masked-input",
    deadline: 1e12,
    members: [...all],
    sharers: [...all],
    devices: blankDevices(all, keys),
  };
  const pool = Array.from({ length: 8 }, () =>
    packWords(
      Uint32Array.from(random(4 * d).subarray(0, d), (b, i) => (b * 65599 + i * 2654435761) % 2 ** m),
      m,
    ),
  );
  return { state, pool };
}

export async function measureRound(
  n: number,
  d: number,
  k: number,
  t: number,
  dropout: number,
  seed: string,
  keys: KeyPair[],
): Promise<RoundRun> {
  const { random, base, all, graph } = benchShard(n, d, k, t, seed);
  const dropped = chooseDropped(graph, n, t, Math.round(dropout * n), random);
  const survivors = all.filter((u) => !dropped.has(u));
  const survivorSet = new Set(survivors);

  // Accept, input by input, from the masked-input stage.
  const stage = maskedInputStage(base, all, keys, random);
  let state = stage.state;
  const pool = stage.pool;
  const perInputMs: number[] = [];
  for (const [i, u] of survivors.entries()) {
    const frame = encodeClientFrame({
      v: 1,
      roundId: ROUND_ID,
      slot: u,
      stage: "masked-input",
      masked: pool[i % pool.length] as Uint8Array,
    });
    const c0 = process.cpuUsage();
    const step = await handleFrame(state, frame, 1, { consumeSum: true }); // as the shard host runs it
    for (const key of step.changed) structuredClone(storageEntry(step.state, key)); // the host's store write
    const c = process.cpuUsage(c0);
    perInputMs.push((c.user + c.system) / 1000);
    state = step.state;
  }
  if (state.phase !== "masked-input") throw new Error("the stage closed before every survivor was accepted");

  // Unmask: the shares the survivors reveal.
  for (const u of all) {
    const nb = graph.neighbours(u);
    if (dropped.has(u) && !nb.some((v) => survivorSet.has(v))) continue;
    const secret = dropped.has(u) ? (keys[u] as KeyPair).secretKey : random(SIZES.selfSeed);
    const shares = splitSecret(secret, t, nb.map(sharePoint), random);
    nb.forEach((v, i) => {
      if (!survivorSet.has(v)) return;
      const record = state.devices[String(v)];
      const list = dropped.has(u) ? record?.sShares : record?.bShares;
      list?.push([u, bytesToBase64(encodeShareValues(shares[i] as (typeof shares)[number]))]);
    });
  }
  const unmaskState: ServerRoundState = {
    ...state,
    phase: "unmask",
    survivors,
    checked: survivors,
    revealers: survivors,
  };
  const agreement = await defaultKeyAgreement();
  const c0 = process.cpuUsage();
  const out = await finalizeUnmask(unmaskState, graph, 1, { keyAgreement: agreement });
  const c = process.cpuUsage(c0);
  if (out.state.phase !== "done") throw new Error(`round aborted: ${out.state.abort?.reason}`);
  const acceptMs = perInputMs.reduce((a, b) => a + b, 0);
  const unmaskMs = (c.user + c.system) / 1000;
  return { acceptMs, unmaskMs, roundMs: acceptMs + unmaskMs, perInputMs, survivors: survivors.length };
}

/** Median of a list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The p-th quantile (0..1) of a list, nearest rank. */
export function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] as number;
}

/** Budget cells: medians over `runs` rounds for each (k, t). */
export async function roundBudget(runs: number) {
  const n = 1000;
  const d = 65536;
  const dropout = 0.1;
  const random = seededRandomBytes("round-keys");
  const keys = Array.from({ length: n }, () => generateKeyPair(random));
  const settings = [
    { name: "Flower's example", k: 6, t: 4 },
    { name: "ours (chooseParameters)", k: 54, t: 21 },
  ];
  const cells = [];
  for (const s of settings) {
    const rounds: RoundRun[] = [];
    for (let r = 0; r < runs; r++)
      rounds.push(await measureRound(n, d, s.k, s.t, dropout, `round-${s.k}-${r}`, keys));
    const inputs = rounds.flatMap((x) => x.perInputMs);
    const roundMs = median(rounds.map((x) => x.roundMs));
    cells.push({
      ...s,
      n,
      d,
      dropout,
      runs,
      survivors: rounds[0]?.survivors ?? 0,
      acceptMs: median(rounds.map((x) => x.acceptMs)),
      unmaskMs: median(rounds.map((x) => x.unmaskMs)),
      roundMs,
      perInput: {
        medianMs: median(inputs),
        p99Ms: quantile(inputs, 0.99),
        maxMs: Math.max(...inputs),
        meanMs: inputs.reduce((a, b) => a + b, 0) / inputs.length,
        count: inputs.length,
      },
      runsMs: rounds.map(({ acceptMs, unmaskMs, roundMs }) => ({ acceptMs, unmaskMs, roundMs })),
      flowerMs: FLOWER_MS,
      speedupVsFlower: FLOWER_MS / roundMs,
      budgetMs: 5000,
      holds: roundMs <= 5000,
    });
  }
  return cells;
}
