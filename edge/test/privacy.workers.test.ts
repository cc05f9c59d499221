/**
 * Differentially private SecAgg+ rounds in real workerd (Worker, Durable Objects, D1): the signed
 * entries they append to `privacy_ledger` verify through the auditor API, a change to any stored
 * column of any row is caught at that row, and a round that would pass the budget cap is refused
 * before any shard object opens.
 */

import {
  createExecutionContext,
  createScheduledController,
  listDurableObjectIds,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { RdpAccountant } from "@fedprofile/coordinator/dp";
import {
  bodyOf,
  checkpointDigest,
  hashEntryBody,
  isReleaseEntry,
  keyIdOf,
  LedgerEntry,
  LedgerEntryBody,
  type LedgerVerification,
  LedgerWitness,
  publicKeyFromHex,
  signerFromSeedHex,
  verifyLedger,
} from "@fedprofile/coordinator/ledger";
import {
  CheckinResponse,
  ErrorEnvelope,
  LedgerPublicKey,
  LedgerRowsPage,
  ModelVersionPage,
  type OpenRoundInput,
  PrivacyBudgetStatus,
  RoundStatus,
} from "@fedprofile/coordinator/wire";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { hexToBytes } from "@noble/hashes/utils.js";
import nacl from "tweetnacl";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
// The CLI is runtime-neutral (all I/O goes through `CliIo`), so it runs here against the Worker.
import { auditVerifyParsed } from "../../cli/src/audit-command.ts";
import type { CliIo } from "../../cli/src/io.ts";
import worker from "../src/worker";
import { BASE, call, seedTenant } from "./helpers";

/** The seed `edge/vitest.config.ts` binds as LEDGER_SIGNING_KEY (RFC 8032 §7.1 TEST 1). */
const SIGNER = signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const PUBLIC_KEY_HEX = Array.from(SIGNER.publicKey, (b) => b.toString(16).padStart(2, "0")).join("");

const TENANT = "priv-shop";
/** Where a row "moved" to another tenant lands (a real tenant, so its auditor can look too). */
const ELSEWHERE = "priv-elsewhere";
const DISTRIBUTED = "segments";
const CENTRAL = "central";

const VECTORS = [
  [0.5, -0.25, 0.125, 0],
  [0.25, 0.25, -0.5, 0.5],
  [-0.125, 0.5, 0.25, 0.25],
  [0.5, 0.5, 0.5, -0.25],
  [0, -0.5, 0.25, 0.125],
];

/** A round's `dp` request as an operator writes it (defaults left out). */
type DpRoundRequest = NonNullable<OpenRoundInput["dp"]>;

/** Distributed discrete Gaussian with adaptive clipping: each round writes a round and a clip entry. */
const DISTRIBUTED_DP = {
  clipNorm: 0.5,
  targetEpsilon: 4,
  rounds: 2,
  adaptiveClipping: { targetQuantile: 0.5, learningRate: 0.2, countStddev: 1 },
} satisfies DpRoundRequest;
const CENTRAL_DP = {
  mechanism: "central_gaussian",
  clipNorm: 1,
  noiseMultiplier: 1.2,
} satisfies DpRoundRequest;

type Keys = Awaited<ReturnType<typeof seedTenant>>;

const workerFetch: typeof fetch = (input, init) =>
  exports.default.fetch(new Request(input instanceof Request ? input : String(input), init));

async function callJson(method: string, path: string, key: string, body?: unknown) {
  const response = await call(method, path, key, body);
  const json: unknown = await response.json();
  return { status: response.status, json };
}

function expectError(res: { status: number; json: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(ErrorEnvelope.parse(res.json).error.code).toBe(code);
}

function openRound(keys: Keys, modelId: string, dp: DpRoundRequest) {
  return callJson("POST", "/v1/rounds", keys.secret, {
    v: 1,
    modelId,
    dimension: 4,
    minContributions: 3,
    maxContributions: VECTORS.length,
    deadlineSeconds: 600,
    aggregation: "secagg",
    secagg: { minShardSize: 2, stageSeconds: 30, k: 4, t: 3 },
    dp,
  } satisfies OpenRoundInput);
}

/** Opens a DP round and runs every device through it with the SDK; returns the round's status. */
async function runRound(keys: Keys, modelId: string, dp: DpRoundRequest) {
  const opened = await openRound(keys, modelId, dp);
  expect(opened.status, JSON.stringify(opened.json)).toBe(201);
  const status = RoundStatus.parse(opened.json);
  expect(status.dp?.mechanism).toBe(dp.mechanism ?? "distributed_discrete_gaussian");
  const outcomes = await Promise.all(
    VECTORS.map(async (v) => {
      const client = createCoordinatorClient({
        endpoint: BASE,
        apiKey: keys.publishable,
        fetch: workerFetch,
        retry: { windowMs: 2_000, baseDelayMs: 20 },
      });
      const { round } = await client.checkin(modelId);
      if (round?.roundId !== status.roundId)
        throw new Error(`check-in offered ${round?.roundId ?? "no round"}`);
      return participateInSecAggRound(client, round, () => Float64Array.from(v), {
        policy: "development",
        pollMs: 10,
      });
    }),
  );
  expect(outcomes.map((o) => o.status)).toEqual(VECTORS.map(() => "contributed"));
  return status;
}

/** Every row of the tenant's ledger through `GET /v1/audit/ledger`, following the cursor. */
async function ledgerRows(auditor: string, limit = 100): Promise<unknown[]> {
  const rows: unknown[] = [];
  let cursor = "";
  for (let page = 0; page < 100; page++) {
    const res = await callJson(
      "GET",
      `/v1/audit/ledger?limit=${limit}&cursor=${encodeURIComponent(cursor)}`,
      auditor,
    );
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const body = LedgerRowsPage.parse(res.json);
    rows.push(...body.entries);
    if (!body.nextCursor) return rows;
    cursor = body.nextCursor;
  }
  throw new Error("the ledger's pages never end");
}

const RowScope = z.object({ tenant: z.string(), model: z.string() });

/** Splits rows into `tenant/model` chains, in the order the API returned them. */
function chainsOf(rows: readonly unknown[]): Map<string, unknown[]> {
  const chains = new Map<string, unknown[]>();
  for (const row of rows) {
    const { tenant, model } = RowScope.parse(row);
    const chain = chains.get(`${tenant}/${model}`) ?? [];
    chain.push(row);
    chains.set(`${tenant}/${model}`, chain);
  }
  return chains;
}

interface Head {
  seq: number;
  hash: string;
}

/**
 * Verifies every chain. The auditor pins each chain's head from an earlier audit, so a row
 * taken off the end (or a whole chain) is caught too: the chain alone cannot show it.
 */
function audit(rows: readonly unknown[], heads: ReadonlyMap<string, Head>): Map<string, LedgerVerification> {
  const chains = chainsOf(rows);
  for (const chain of heads.keys()) if (!chains.has(chain)) chains.set(chain, []);
  return new Map(
    [...chains].map(([chain, entries]) => {
      const head = heads.get(chain);
      return [chain, verifyLedger(entries, SIGNER.publicKey, head ? { expectedHead: head } : {})];
    }),
  );
}

// --- D1 rows as stored, for the attacker's edits -------------------------------------------------

const LedgerRow = z
  .object({
    tenant_id: z.string(),
    model_id: z.string(),
    seq: z.number().int(),
    prev_hash: z.string(),
    hash: z.string(),
    signature: z.string(),
    body: z.string(),
  })
  .strict();
type LedgerRow = z.infer<typeof LedgerRow>;
const COLUMNS = "tenant_id, model_id, seq, prev_hash, hash, signature, body";
const TRIGGERS = ["privacy_ledger_no_update", "privacy_ledger_no_delete"];

async function storedRows(): Promise<LedgerRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT ${COLUMNS} FROM privacy_ledger WHERE tenant_id IN (?1, ?2) ORDER BY tenant_id, model_id, seq`,
  )
    .bind(TENANT, ELSEWHERE)
    .all();
  return results.map((r) => LedgerRow.parse(r));
}

/** Replaces both tenants' ledger rows with `rows` (the triggers must be dropped). */
async function rewrite(rows: readonly LedgerRow[]) {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM privacy_ledger WHERE tenant_id IN (?1, ?2)").bind(TENANT, ELSEWHERE),
    ...rows.map((r) =>
      env.DB.prepare(`INSERT INTO privacy_ledger (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`).bind(
        r.tenant_id,
        r.model_id,
        r.seq,
        r.prev_hash,
        r.hash,
        r.signature,
        r.body,
      ),
    ),
  ]);
}

async function dropTriggers() {
  for (const name of TRIGGERS) await env.DB.prepare(`DROP TRIGGER IF EXISTS ${name}`).run();
}

/** Recreates the triggers from the migration itself, so they are exactly what production has. */
async function restoreTriggers() {
  await dropTriggers();
  const queries = env.TEST_MIGRATIONS.flatMap((m) => m.queries).filter((q) =>
    /CREATE TRIGGER privacy_ledger_no_/i.test(q),
  );
  expect(queries).toHaveLength(TRIGGERS.length);
  for (const q of queries) await env.DB.prepare(q).run();
}

/** A different lower-case hex digit at the end: still well-formed, no longer the value. */
const flipHex = (s: string) => s.slice(0, -1) + (s.endsWith("0") ? "1" : "0");

const SWAPS: Record<string, string> = {
  round: "clip_quantile",
  clip_quantile: "round",
  distributed: "central",
  central: "distributed",
  distributed_discrete_gaussian: "central_gaussian",
  central_gaussian: "distributed_discrete_gaussian",
};

/** A plausible edit of a JSON value: type and shape kept where possible. */
function tweak(value: unknown): unknown {
  if (typeof value === "number") return Number.isInteger(value) ? value + 1 : value * 1.001;
  if (typeof value === "boolean") return !value;
  if (typeof value === "string") {
    if (SWAPS[value]) return SWAPS[value];
    if (/^[0-9a-f]+$/.test(value)) return flipHex(value);
    if (!Number.isNaN(Date.parse(value))) return new Date(Date.parse(value) + 1000).toISOString();
    return `${value}x`;
  }
  if (Array.isArray(value)) return value.length ? [tweak(value[0]), ...value.slice(1)] : [{ count: 1 }];
  if (value !== null && typeof value === "object") {
    const [first] = Object.entries(value);
    return first ? { ...value, [first[0]]: tweak(first[1]) } : { x: 1 };
  }
  return 1;
}

const JsonObject = z.record(z.string(), z.unknown());

/** The row with one field inside its JSON body changed, or null when the body lacks the path. */
function withBodyEdit(row: LedgerRow, path: ReadonlyArray<string | number>): LedgerRow | null {
  const body = JsonObject.parse(JSON.parse(row.body));
  let parent: unknown = body;
  for (const step of path.slice(0, -1)) {
    parent = parent !== null && typeof parent === "object" ? Reflect.get(parent, step) : undefined;
  }
  const last = path.at(-1) as string | number;
  if (parent === null || typeof parent !== "object" || !Reflect.has(parent, last)) return null;
  const before = Reflect.get(parent, last);
  Reflect.set(parent, last, tweak(before));
  expect(JSON.stringify(Reflect.get(parent, last))).not.toBe(JSON.stringify(before));
  return { ...row, body: JSON.stringify(body) };
}

/** The entry a row stands for, as the D1 store assembles it for the auditor. */
function entryOfRow(row: LedgerRow) {
  return LedgerEntry.parse({
    ...JsonObject.parse(JSON.parse(row.body)),
    tenant: row.tenant_id,
    model: row.model_id,
    seq: row.seq,
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
  });
}

// --- the rounds ----------------------------------------------------------------------------------

let keys: Keys;
let elsewhere: Keys;
let distributedRounds: Array<z.infer<typeof RoundStatus>> = [];
let centralRound: z.infer<typeof RoundStatus>;

beforeAll(async () => {
  keys = await seedTenant(TENANT);
  elsewhere = await seedTenant(ELSEWHERE);
  const budget = await callJson("PUT", `/v1/privacy/budgets/${DISTRIBUTED}`, keys.secret, {
    v: 1,
    epsilonCap: 50,
    population: 10_000,
  });
  expect(budget.status, JSON.stringify(budget.json)).toBe(200);
  const central = await callJson("PUT", `/v1/privacy/budgets/${CENTRAL}`, keys.secret, {
    v: 1,
    epsilonCap: 20,
    delta: 1e-6,
  });
  expect(central.status, JSON.stringify(central.json)).toBe(200);
  distributedRounds = [
    await runRound(keys, DISTRIBUTED, DISTRIBUTED_DP),
    await runRound(keys, DISTRIBUTED, DISTRIBUTED_DP),
  ];
  centralRound = await runRound(keys, CENTRAL, CENTRAL_DP);
}, 60_000);

describe("DP rounds write a ledger that audit verification accepts (workerd, D1)", () => {
  it("the public key is the one derived from the configured seed, for every key kind", async () => {
    for (const key of [keys.publishable, keys.secret, keys.auditor]) {
      const res = await callJson("GET", "/v1/audit/public-key", key);
      expect(res.status).toBe(200);
      const doc = LedgerPublicKey.parse(res.json);
      expect(doc.publicKey).toBe(PUBLIC_KEY_HEX);
      expect(publicKeyFromHex(doc.publicKey)).toEqual(SIGNER.publicKey);
      expect(doc.keyId).toBe(keyIdOf(SIGNER.publicKey));
    }
  });

  it("two distributed rounds and a central one: every chain verifies, entries match rounds and models", async () => {
    // Pages of two, so the cursor crosses from one model's chain into the next.
    const rows = await ledgerRows(keys.auditor, 2);
    // Each chain starts with its budget's policy entry.
    expect(rows).toHaveLength(7);
    const advertised = LedgerPublicKey.parse(
      (await callJson("GET", "/v1/audit/public-key", keys.auditor)).json,
    );
    const chains = chainsOf(rows);
    expect([...chains.keys()]).toEqual([`${TENANT}/${CENTRAL}`, `${TENANT}/${DISTRIBUTED}`]);

    const [r1, r2] = distributedRounds.map((r) => r.roundId);
    const expected = {
      [DISTRIBUTED]: {
        kinds: ["policy", "round", "clip_quantile", "round", "clip_quantile"],
        roundIds: [undefined, r1, r1, r2, r2],
        trustModel: "distributed",
        mechanism: "distributed_discrete_gaussian",
        versions: [r2, r1],
      },
      [CENTRAL]: {
        kinds: ["policy", "round"],
        roundIds: [undefined, centralRound.roundId],
        trustModel: "central",
        mechanism: "central_gaussian",
        versions: [centralRound.roundId],
      },
    };
    for (const [model, want] of Object.entries(expected)) {
      const chainRows = chains.get(`${TENANT}/${model}`) ?? [];
      const verdict = verifyLedger(chainRows, publicKeyFromHex(advertised.publicKey));
      expect(verdict.ok, JSON.stringify(verdict)).toBe(true);

      const all = chainRows.map((row) => LedgerEntry.parse(row));
      expect(all.map((e) => e.kind)).toEqual(want.kinds);
      expect(all.map((e) => (isReleaseEntry(e) ? e.roundId : undefined))).toEqual(want.roundIds);
      expect(all.map((e) => e.seq)).toEqual(want.kinds.map((_, i) => i));
      expect(all[0]).toMatchObject({ kind: "policy", policy: { source: "budget" } });
      const entries = all.filter(isReleaseEntry);
      for (const e of entries) {
        expect(e).toMatchObject({
          tenant: TENANT,
          model,
          trustModel: want.trustModel,
          mechanism: want.mechanism,
          keyId: keyIdOf(SIGNER.publicKey),
          // Colluders are assumed among distributed noise shares (default 5%, at least 1); a
          // central round's noise is the coordinator's own, so it assumes none.
          cohort: {
            size: 5,
            survivors: 5,
            threshold: 3,
            colluders: want.trustModel === "distributed" ? 1 : 0,
          },
        });
      }

      // Each entry's cumulative epsilon is the accountant's over every event recorded so far.
      const accountant = new RdpAccountant();
      for (const e of entries) {
        for (const c of e.events) accountant.compose(c.event, c.count);
        expect(e.cumulative.epsilon).toBeCloseTo(accountant.getEpsilon(e.cumulative.delta).epsilon, 12);
      }
      const head = entries.at(-1)!;
      expect(head.cumulative.epsilon).toBeGreaterThan(0);
      if (verdict.ok) expect(verdict.epsilon).toBeCloseTo(head.cumulative.epsilon, 12);

      // The budget route states the same position, to the secret and the auditor key alike.
      for (const key of [keys.secret, keys.auditor]) {
        const res = await callJson("GET", `/v1/privacy/budgets/${model}`, key);
        expect(res.status).toBe(200);
        const budget = PrivacyBudgetStatus.parse(res.json);
        expect(budget.epsilonSpent).toBeCloseTo(head.cumulative.epsilon, 12);
        expect(budget.remaining).toBeCloseTo(budget.epsilonCap - head.cumulative.epsilon, 12);
        expect(budget).toMatchObject({
          entries: all.length,
          headHash: head.hash,
          delta: head.cumulative.delta,
        });
      }

      // Each round published a model version, and its round id is the one in the ledger.
      const res = await callJson("GET", `/v1/models/${model}/versions`, keys.secret);
      expect(res.status).toBe(200);
      const versions = ModelVersionPage.parse(res.json).items;
      expect(versions.map((v) => v.roundId)).toEqual(want.versions);
      expect(versions.map((v) => v.version)).toEqual(want.versions.map((_, i) => want.versions.length - i));
      for (const v of versions) {
        const status = RoundStatus.parse(
          (await callJson("GET", `/v1/rounds/${v.roundId}`, keys.secret)).json,
        );
        expect(status).toMatchObject({ stage: "closed", modelVersion: v.version, contributions: 5 });
      }
    }
    // The delta of a budget given by population is 1/population^1.1.
    expect(LedgerEntry.parse(chains.get(`${TENANT}/${DISTRIBUTED}`)?.[0]).cumulative.delta).toBeCloseTo(
      10_000 ** -1.1,
      20,
    );
    const central = LedgerEntry.parse(chains.get(`${TENANT}/${CENTRAL}`)?.[1]);
    expect(isReleaseEntry(central) && central.events[0]?.event).toMatchObject({
      kind: "poisson_gaussian",
      noiseMultiplier: 1.2,
      samplingRate: 1,
    });
  });

  it("the audit CLI runs inside workerd against the Worker and accepts the ledger", async () => {
    const run = await runAuditCli(["--public-key", PUBLIC_KEY_HEX]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.ok).toBe(true);
    expect(run.report.chains.map((c) => c.chain)).toEqual([
      `${TENANT}/${CENTRAL}`,
      `${TENANT}/${DISTRIBUTED}`,
    ]);
    // Without a pinned key it does not verify; trusting the advertised key is an explicit choice.
    const unpinned = await runAuditCli([]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toContain("no pinned key");
    expect(unpinned.stderr).toContain(PUBLIC_KEY_HEX);
    const trusting = await runAuditCli(["--trust-advertised-key", "yes"]);
    expect(trusting.code).toBe(0);
    expect(trusting.stderr).toContain("trusting the key advertised");
  });

  it("checkpoints are published on append and by the cron; audit verify --witness checks and keeps them", async () => {
    const published = async () => {
      const response = await call(
        "GET",
        `/v1/audit/checkpoints?model=${DISTRIBUTED}&limit=1000`,
        keys.auditor,
      );
      expect(response.status, await response.clone().text()).toBe(200);
      return LedgerWitness.parse(await response.json()).checkpoints;
    };
    const rows = (await ledgerRows(keys.auditor)).filter((r) => LedgerEntry.parse(r).model === DISTRIBUTED);
    const head = LedgerEntry.parse(rows.at(-1));
    // The chain's first append published one at once (there was none before).
    const before = await published();
    expect(before.length).toBeGreaterThan(0);
    expect(before[0]).toMatchObject({ tenant: TENANT, model: DISTRIBUTED, keyId: keyIdOf(SIGNER.publicKey) });
    // The cron publishes every moved head regardless of the append path's one-a-minute rate.
    await cron();
    const after = await published();
    expect(after.at(-1)).toMatchObject({ seq: head.seq, hash: head.hash });
    // An unchanged head is not signed again until its refresh is due.
    await cron();
    expect((await published()).length).toBe(after.length);
    // Every published checkpoint is signed by the ledger key over its RFC 8785 digest.
    for (const cp of after)
      expect(
        nacl.sign.detached.verify(
          hexToBytes(checkpointDigest(cp)),
          hexToBytes(cp.signature),
          SIGNER.publicKey,
        ),
      ).toBe(true);
    // A witness starting empty: verify checks the published ones against the chain and stores them.
    const files = new Map<string, string>();
    const run = await runAuditCli(["--public-key", PUBLIC_KEY_HEX, "--witness", "witness.json"], files);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const witness = LedgerWitness.parse(JSON.parse(files.get("witness.json") ?? "null"));
    const kept = witness.checkpoints.filter((c) => c.model === DISTRIBUTED).map((c) => `${c.seq}:${c.hash}`);
    for (const cp of after) expect(kept).toContain(`${cp.seq}:${cp.hash}`);
  });

  it("with the triggers in place, D1 refuses UPDATE and DELETE on privacy_ledger", async () => {
    const before = await storedRows();
    expect(before).toHaveLength(7);
    await expect(
      env.DB.prepare("UPDATE privacy_ledger SET body = body WHERE tenant_id = ?").bind(TENANT).run(),
    ).rejects.toThrow(/append-only/);
    await expect(
      env.DB.prepare("DELETE FROM privacy_ledger WHERE tenant_id = ? AND seq = 1").bind(TENANT).run(),
    ).rejects.toThrow(/append-only/);
    expect(await storedRows()).toEqual(before);
  });
});

const CliReport = z.object({
  ok: z.boolean(),
  chains: z.array(
    z.object({
      chain: z.string(),
      positions: z.array(z.number()),
      result: z.object({
        ok: z.boolean(),
        failure: z.object({ index: z.number(), seq: z.number().nullable(), reason: z.string() }).optional(),
      }),
    }),
  ),
});

/** Fires the Worker's cron handler once, as Cloudflare would, and waits for its work. */
async function cron() {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ cron: "*/10 * * * *", scheduledTime: Date.now() }),
    env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
}

/** `fedprofile audit verify --url … --json`, with the Worker's fetch as its network. */
async function runAuditCli(extra: string[], files?: Map<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    // workerd has no file system: `files` stands in for one (a missing file reads as ENOENT).
    readFile: async (p) => {
      const text = files?.get(p);
      if (text === undefined) throw Object.assign(new Error(`no file ${p}`), { code: "ENOENT" });
      return text;
    },
    writeFile: async (p, text) => {
      if (!files) throw new Error(`no files in workerd: ${p}`);
      files.set(p, text);
    },
    fetch: (url, init) => exports.default.fetch(new Request(url, init)),
    env: {},
  };
  // The CLI's own argv parsing is node's util.parseArgs, which workerd lacks: pass the options parsed.
  const flags = new Map<string, string | true>([
    ["url", BASE],
    ["auditor-key", keys.auditor],
    ["json", true],
  ]);
  for (let i = 0; i < extra.length; i += 2)
    flags.set((extra[i] as string).replace(/^--/, ""), extra[i + 1] as string);
  const code = await auditVerifyParsed({ positionals: [], flags }, io);
  const stdout = out.join("");
  return { code, stdout, stderr: err.join(""), report: CliReport.parse(JSON.parse(stdout)) };
}

// --- tampering -----------------------------------------------------------------------------------

/** Body fields an entry keeps in the `body` column (the rest are columns of their own). */
const BODY_FIELDS = [...new Set(LedgerEntryBody.options.flatMap((o) => Object.keys(o.shape)))].filter(
  // Rotation and publication entries are not in this ledger (the committed vectors cover them).
  (k) => !["tenant", "model", "seq", "prevHash", "rotation", "publication"].includes(k),
);

// Plausible edits inside the body's objects that keep the entry well-formed: only the hash can tell.
const DEEP: Array<{ path: Array<string | number>; rows: number }> = [
  { path: ["noise", "sigma"], rows: 5 },
  { path: ["noise", "varianceActual"], rows: 5 },
  { path: ["cohort", "survivors"], rows: 5 },
  { path: ["sampling", "uniform"], rows: 5 },
  { path: ["cumulative", "epsilon"], rows: 7 },
  { path: ["accountant", "rdp", 3], rows: 7 },
  { path: ["budget", "remaining"], rows: 7 },
  { path: ["policy", "epsilonCap"], rows: 2 },
  { path: ["events", 0, "count"], rows: 3 },
  { path: ["clipRelease", "nextClip"], rows: 2 },
];

describe("tampering with privacy_ledger in D1 is caught at the row it touched", () => {
  let original: LedgerRow[] = [];
  const heads = new Map<string, Head>();
  let baseline = new Map<string, unknown[]>();

  beforeAll(async () => {
    original = await storedRows();
    expect(original.map((r) => `${r.model_id}#${r.seq}`)).toEqual([
      "central#0",
      "central#1",
      "segments#0",
      "segments#1",
      "segments#2",
      "segments#3",
      "segments#4",
    ]);
    for (const r of original) heads.set(`${r.tenant_id}/${r.model_id}`, { seq: r.seq, hash: r.hash });
    baseline = chainsOf(await ledgerRows(keys.auditor));
    expect([...baseline.keys()]).toEqual([...heads.keys()]);
    // An attacker with database access simply removes the append-only guard.
    await dropTriggers();
  });

  afterAll(async () => {
    await dropTriggers();
    await rewrite(original);
    await restoreTriggers();
  });

  const isLast = (row: LedgerRow) => heads.get(`${row.tenant_id}/${row.model_id}`)?.seq === row.seq;

  /**
   * Stores `rows` in place of the original ones and audits through the auditor API: the chain of
   * `at` must fail at `at.seq` (its index in the chain), every other original chain must come back
   * unchanged, and any chain that was not there before (a moved row) must not verify.
   */
  async function expectCaught(rows: LedgerRow[], at: { model: string; seq: number }, reason?: string) {
    await rewrite(rows);
    const fetched = await ledgerRows(keys.auditor);
    const target = `${TENANT}/${at.model}`;
    // The other original chains come back exactly as they verified before (no need to redo it).
    const chains = chainsOf(fetched);
    for (const [chain, before] of baseline) if (chain !== target) expect(chains.get(chain)).toEqual(before);
    const results = audit(
      fetched.filter((row) => {
        const { tenant, model } = RowScope.parse(row);
        return `${tenant}/${model}` === target || !baseline.has(`${tenant}/${model}`);
      }),
      new Map([[target, heads.get(target)!]]),
    );
    const result = results.get(target);
    const caught = result && !result.ok ? result.failure : null;
    expect(caught, `${target} still verifies`).not.toBeNull();
    expect(caught?.index, caught?.message).toBe(at.seq);
    if (caught && !["sequence", "head", "schema"].includes(caught.reason)) expect(caught.seq).toBe(at.seq);
    if (reason) expect(caught?.reason, caught?.message).toBe(reason);
    // A chain that was not there before is made of a moved row: it must not verify either.
    for (const [chain, other] of results) if (chain !== target) expect(other.ok, chain).toBe(false);
    return results;
  }

  const replace = (row: LedgerRow, next: LedgerRow) => original.map((r) => (r === row ? next : r));
  const where = (row: LedgerRow) => ({ model: row.model_id, seq: row.seq });

  it("changing tenant_id of any row leaves a gap at its seq; where it lands, it does not verify", async () => {
    for (const row of original) {
      await expectCaught(
        replace(row, { ...row, tenant_id: ELSEWHERE }),
        where(row),
        isLast(row) ? "head" : "sequence",
      );
      const landed = chainsOf(await ledgerRows(elsewhere.auditor));
      expect([...landed.keys()]).toEqual([`${ELSEWHERE}/${row.model_id}`]);
      const verdict = verifyLedger(landed.get(`${ELSEWHERE}/${row.model_id}`) ?? [], SIGNER.publicKey);
      expect(verdict.ok ? null : verdict.failure.index).toBe(0);
    }
  });

  it("changing model_id of any row leaves a gap at its seq; the chain it joins does not verify", async () => {
    for (const row of original) {
      const results = await expectCaught(
        replace(row, { ...row, model_id: `${row.model_id}-moved` }),
        where(row),
        isLast(row) ? "head" : "sequence",
      );
      const moved = results.get(`${TENANT}/${row.model_id}-moved`);
      expect(moved?.ok === false ? moved.failure.index : null).toBe(0);
    }
  });

  it("changing seq of any row", async () => {
    for (const row of original)
      await expectCaught(replace(row, { ...row, seq: row.seq + 100 }), where(row), "sequence");
  });

  it("changing prev_hash of any row", async () => {
    for (const row of original)
      await expectCaught(replace(row, { ...row, prev_hash: flipHex(row.prev_hash) }), where(row), "chain");
  });

  it("changing hash of any row", async () => {
    for (const row of original)
      await expectCaught(replace(row, { ...row, hash: flipHex(row.hash) }), where(row), "hash");
  });

  it("changing signature of any row", async () => {
    for (const row of original)
      await expectCaught(
        replace(row, { ...row, signature: flipHex(row.signature) }),
        where(row),
        "signature",
      );
  });

  it("a body that is no longer JSON", async () => {
    for (const row of original)
      await expectCaught(replace(row, { ...row, body: row.body.slice(0, -1) }), where(row), "schema");
  });

  // Every other body field, edited as a whole.
  for (const field of BODY_FIELDS.filter((f) => !DEEP.some((d) => d.path[0] === f))) {
    it(`changing body.${field} of any row that has it`, async () => {
      let tampered = 0;
      for (const row of original) {
        const edited = withBodyEdit(row, [field]);
        if (!edited) continue;
        tampered++;
        await expectCaught(replace(row, edited), where(row));
      }
      // Members every kind has are in every row; the others in the rows of their kinds.
      expect(tampered).toBeGreaterThan(0);
    });
  }

  for (const { path, rows } of DEEP) {
    it(`changing body.${path.join(".")} of any row that has it is a hash mismatch`, async () => {
      let tampered = 0;
      for (const row of original) {
        const edited = withBodyEdit(row, path);
        if (!edited) continue;
        tampered++;
        await expectCaught(replace(row, edited), where(row), "hash");
      }
      expect(tampered).toBe(rows);
    });
  }

  it("an added or a removed body field", async () => {
    for (const row of original) {
      const body = JsonObject.parse(JSON.parse(row.body));
      await expectCaught(
        replace(row, { ...row, body: JSON.stringify({ ...body, note: "ok" }) }),
        where(row),
        "schema",
      );
      const { timestamp: _dropped, ...rest } = body;
      await expectCaught(replace(row, { ...row, body: JSON.stringify(rest) }), where(row), "schema");
    }
  });

  it("an edit with the hash recomputed still fails: nobody else can sign", async () => {
    for (const row of original) {
      const edited = withBodyEdit(row, ["budget", "remaining"]);
      if (!edited) throw new Error("every entry has a budget");
      const hash = hashEntryBody(bodyOf(entryOfRow(edited)));
      await expectCaught(replace(row, { ...edited, hash }), where(row), "signature");
    }
  });

  it("deleting a middle row", async () => {
    for (const seq of [1, 2]) {
      const rows = original.filter((r) => !(r.model_id === DISTRIBUTED && r.seq === seq));
      await expectCaught(rows, { model: DISTRIBUTED, seq }, "sequence");
    }
  });

  it("reordering: swapping the seq of two rows", async () => {
    for (const [a, b] of [
      [0, 1],
      [1, 2],
      [2, 3],
      [0, 3],
    ] as const) {
      const swap = (r: LedgerRow) =>
        r.model_id !== DISTRIBUTED ? r : { ...r, seq: r.seq === a ? b : r.seq === b ? a : r.seq };
      await expectCaught(original.map(swap), { model: DISTRIBUTED, seq: a }, "chain");
    }
  });

  it("the audit CLI in workerd also fails, naming the row", async () => {
    const row = original.find((r) => r.model_id === DISTRIBUTED && r.seq === 2)!;
    await rewrite(replace(row, withBodyEdit(row, ["noise", "sigma"])!));
    const run = await runAuditCli(["--public-key", PUBLIC_KEY_HEX]);
    expect(run.code).toBe(1);
    expect(run.report.ok).toBe(false);
    const chain = run.report.chains.find((c) => c.chain === `${TENANT}/${DISTRIBUTED}`);
    expect(chain?.result.failure).toMatchObject({ index: 2, seq: 2, reason: "hash" });
    expect(run.report.chains.find((c) => c.chain === `${TENANT}/${CENTRAL}`)?.result.ok).toBe(true);
  });

  it("the audit CLI with a pinned --expected-head catches rows cut off the end of a chain", async () => {
    for (const model of [DISTRIBUTED, CENTRAL]) {
      const head = heads.get(`${TENANT}/${model}`)!;
      const last = original.find((r) => r.model_id === model && r.seq === head.seq)!;
      await rewrite(replace(last, { ...last, tenant_id: ELSEWHERE }));
      const pinned = ["--public-key", PUBLIC_KEY_HEX, "--model", model];
      // Without the head the shortened chain is a valid chain; with it, the cut is named.
      if (head.seq > 0) expect((await runAuditCli(pinned)).code).toBe(0);
      const run = await runAuditCli([...pinned, "--expected-head", `${head.seq}:${head.hash}`]);
      expect(run.code, `${model}: ${run.stdout}`).toBe(1);
      expect(run.report.ok).toBe(false);
    }
  });

  it("restored rows verify again, and the restored triggers refuse changes", async () => {
    await rewrite(original);
    await restoreTriggers();
    const results = audit(await ledgerRows(keys.auditor), heads);
    expect([...results.values()].every((r) => r.ok)).toBe(true);
    await expect(
      env.DB.prepare("UPDATE privacy_ledger SET seq = seq + 100 WHERE tenant_id = ?").bind(TENANT).run(),
    ).rejects.toThrow(/append-only/);
    await expect(
      env.DB.prepare("DELETE FROM privacy_ledger WHERE tenant_id = ?").bind(TENANT).run(),
    ).rejects.toThrow(/append-only/);
    expect(await storedRows()).toEqual(original);
  });
});

// --- the budget ----------------------------------------------------------------------------------

describe("the privacy budget refuses rounds before any device is invited (workerd)", () => {
  it("a cap that fits one round but not two: the second is refused with 409, nothing opens", async () => {
    const cap = await seedTenant("priv-cap");
    const set = await callJson("PUT", `/v1/privacy/budgets/${DISTRIBUTED}`, cap.secret, {
      v: 1,
      epsilonCap: 1.05,
      delta: 1e-6,
    });
    expect(set.status).toBe(200);
    // Each round is calibrated to spend epsilon 1 at the threshold: two cannot fit under 1.05.
    const dp = { clipNorm: 1, targetEpsilon: 1, rounds: 1 } satisfies DpRoundRequest;
    const first = await runRound(cap, DISTRIBUTED, dp);
    const shardsBefore = (await listDurableObjectIds(env.SHARD)).length;
    expect(shardsBefore).toBeGreaterThan(0);

    const refused = await openRound(cap, DISTRIBUTED, dp);
    expectError(refused, 409, "privacy_budget_exceeded");
    expect(ErrorEnvelope.parse(refused.json).error.message).toMatch(/cap 1\.05.*refused before any device/);

    // Nothing opened: no shard object, no round in D1, and check-in offers no round.
    expect((await listDurableObjectIds(env.SHARD)).length).toBe(shardsBefore);
    const { results } = await env.DB.prepare("SELECT round_id FROM rounds WHERE tenant_id = ?")
      .bind("priv-cap")
      .all();
    expect(results.map((r) => r["round_id"])).toEqual([first.roundId]);
    // The closed round gave its budget reservation back; the refused one never took one.
    const reserved = await env.DB.prepare("SELECT round_id FROM privacy_reservations WHERE tenant_id = ?")
      .bind("priv-cap")
      .all();
    expect(reserved.results).toEqual([]);
    const checkin = await callJson("POST", "/v1/checkin", cap.publishable, {
      v: 1,
      modelId: DISTRIBUTED,
      sdkVersion: "0.1.0",
    });
    expect(checkin.status).toBe(200);
    expect(CheckinResponse.parse(checkin.json)).toMatchObject({ round: null, latestModelVersion: 1 });

    // The ledger still holds exactly the first round's entry, and it verifies.
    const rows = await ledgerRows(cap.auditor);
    const entries = rows.map((r) => LedgerEntry.parse(r));
    expect(entries.map((e) => e.kind)).toEqual(["policy", "round"]);
    expect(entries.filter(isReleaseEntry).map((e) => e.roundId)).toEqual([first.roundId]);
    expect(verifyLedger(rows, SIGNER.publicKey).ok).toBe(true);
    const budget = PrivacyBudgetStatus.parse(
      (await callJson("GET", `/v1/privacy/budgets/${DISTRIBUTED}`, cap.auditor)).json,
    );
    expect(budget.entries).toBe(2);
    expect(budget.epsilonSpent).toBeCloseTo(LedgerEntry.parse(rows[1]).cumulative.epsilon, 12);
    // Five survivors carried more noise than the threshold of three the round was planned for,
    // so less than 1 was spent; still, another round planned to spend 1 does not fit.
    expect(budget.epsilonSpent).toBeGreaterThan(0);
    expect(budget.remaining).toBeLessThan(1);
  });

  it("a DP round for a model without a budget is refused with 409 privacy_budget_missing", async () => {
    const none = await seedTenant("priv-nobudget");
    const shardsBefore = (await listDurableObjectIds(env.SHARD)).length;
    expectError(
      await openRound(none, DISTRIBUTED, { clipNorm: 1, targetEpsilon: 1, rounds: 1 }),
      409,
      "privacy_budget_missing",
    );
    expectError(await callJson("GET", `/v1/privacy/budgets/${DISTRIBUTED}`, none.secret), 404, "not_found");
    const checkin = CheckinResponse.parse(
      (
        await callJson("POST", "/v1/checkin", none.publishable, {
          v: 1,
          modelId: DISTRIBUTED,
          sdkVersion: "0.1.0",
        })
      ).json,
    );
    expect(checkin.round).toBeNull();
    expect((await listDurableObjectIds(env.SHARD)).length).toBe(shardsBefore);
    expect(await ledgerRows(none.auditor)).toEqual([]);
  });
});
