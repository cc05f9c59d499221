/**
 * Fault injection against a real `wrangler dev` (issue 11): a DP SecAgg+ round runs over the
 * Worker's HTTP routes with the SDK's own device half; at a chosen point the whole `wrangler dev`
 * process group is SIGKILLed (only the group this harness started, by its PID) and restarted on
 * the same on-disk state (`--persist-to`). The devices keep retrying across the outage, as a phone
 * on a flaky link does. Once the round has ended, the harness checks what a crash must never break:
 * - a round that published has exactly one ledger entry, and every sum a shard revealed is in it;
 * - a round that aborted revealed nothing, or its revealed sums have exactly one entry;
 * - `fedprofile audit verify` (the real CLI, a child process) accepts the whole chain.
 * The ground truth of "revealed" is each shard itself: after the round, every device asks its
 * shard for its view, which says `done` (with the contributors of the revealed sum) or `aborted`.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerEntry } from "@fedprofile/coordinator/ledger";
import { type OpenRoundInput, RoundStatus, SecAggServerView } from "@fedprofile/coordinator/wire";
import {
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
} from "@fedprofile/sdk/sync";
import * as z from "zod";
import {
  applyLocalMigrations,
  ensureLocalSigningKey,
  freePort,
  type LocalCoordinator,
  REPO_ROOT,
  seedLocalTenant,
  startLocalCoordinator,
  type TenantKeys,
} from "../../edge/scripts/local-dev";

/** Where the kill lands: a stage boundary (after every device's message of a stage) or mid-stage. */
export const KILL_POINTS = {
  "after-open": { stage: null, after: 0 },
  "advertise-keys-mid": { stage: "advertise-keys", after: 0.5 },
  "share-keys-boundary": { stage: "share-keys", after: 1 },
  "masked-input-mid": { stage: "masked-input", after: 0.5 },
  "masked-input-boundary": { stage: "masked-input", after: 1 },
  "unmask-mid": { stage: "unmask", after: 0.5 },
  // Issue 11's reproduction: 40 ms after a shard's last unmask message.
  "unmask-end+40ms": { stage: "unmask", after: 1, delayMs: 40 },
} as const satisfies Record<string, { stage: string | null; after: number; delayMs?: number }>;
export type KillPoint = keyof typeof KILL_POINTS;

const TENANT = "fault-shop";
const MODEL = "activity";
const DEVICES = 6;
const STAGE_SECONDS = 20;

/** The outcome of one trial. */
export interface FaultTrial {
  killPoint: KillPoint;
  seed: number;
  killed: boolean;
  roundStage: string;
  outcome: string | null;
  contributions: number;
  /** Sums the shards say they revealed (ground truth from the shards' own views). */
  revealedShards: number;
  revealedContributors: number;
  ledgerEntriesForRound: number;
  published: boolean;
  auditVerified: boolean;
  /** Whether the invariant held; `violation` says which part did not. */
  ok: boolean;
  violation: string | null;
  seconds: number;
}

/** A seeded generator (mulberry32) for the per-trial jitter and the device vectors. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function call(url: string, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) as unknown };
}

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/fedprofile.mjs"), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", fail);
    child.on("exit", (code) => done({ code, output }));
  });
}

const LedgerPage = z.object({ entries: z.array(z.unknown()), nextCursor: z.string().nullable() });

/** Migrated, seeded local state that every trial starts from (a copy each, never shared). */
export interface FaultTemplate {
  dir: string;
  keys: TenantKeys;
  dispose(): void;
}

/** Applies the migrations and seeds the tenant once; trials copy the result. */
export async function prepareFaultTemplate(): Promise<FaultTemplate> {
  const dir = mkdtempSync(join(tmpdir(), "fedprofile-fault-template-"));
  await applyLocalMigrations(dir);
  const keys = await seedLocalTenant(dir, TENANT);
  return { dir, keys, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs one trial: fresh state, one DP round, one SIGKILL at `killPoint`, restart, checks. */
export async function runFaultTrial(
  killPoint: KillPoint,
  seed: number,
  template?: FaultTemplate,
): Promise<FaultTrial> {
  const own = template ? null : await prepareFaultTemplate();
  const base = template ?? own;
  if (!base) throw new Error("no template");
  const started = Date.now();
  const random = seeded(seed);
  const point: { stage: string | null; after: number; delayMs?: number } = KILL_POINTS[killPoint];
  const persistTo = mkdtempSync(join(tmpdir(), "fedprofile-fault-"));
  cpSync(base.dir, persistTo, { recursive: true });
  const keys = base.keys;
  let coordinator: LocalCoordinator | null = null;
  try {
    const { publicKey } = ensureLocalSigningKey();
    const port = await freePort();
    coordinator = await startLocalCoordinator({ persistTo, port });
    const url = coordinator.url;
    const budget = await call(url, "PUT", `/v1/privacy/budgets/${MODEL}`, keys.secret, {
      v: 1,
      epsilonCap: 100,
      delta: 1e-6,
    });
    if (budget.status !== 200) throw new Error(`budget: ${budget.text}`);

    let killed = false;
    let killing: Promise<void> | null = null;
    const kill = () => {
      if (killing) return;
      killed = true;
      const jitter = (point.delayMs ?? 0) + Math.floor(random() * 30);
      killing = (async () => {
        await new Promise((r) => setTimeout(r, jitter));
        await coordinator?.kill();
        coordinator = await startLocalCoordinator({ persistTo, port });
      })();
    };

    const opened = await call(url, "POST", "/v1/rounds", keys.secret, {
      v: 1,
      modelId: MODEL,
      dimension: 2,
      minContributions: 4,
      maxContributions: DEVICES,
      deadlineSeconds: 600,
      aggregation: "secagg",
      // Two shards of three: the root adds two revealed sums, as a sharded cohort does.
      secagg: { minShardSize: 3, maxShardSize: 3, stageSeconds: STAGE_SECONDS, k: 2, t: 2 },
      dp: { clipNorm: 4, targetEpsilon: 50, rounds: 4, modulusBits: 24 },
    } satisfies OpenRoundInput);
    if (opened.status !== 201) throw new Error(`open: ${opened.text}`);
    const round = RoundStatus.parse(opened.json);
    if (point.stage === null) kill();

    const sent = new Map<string, number>();
    const credentials: Array<{ shard: number; participant: string }> = [];
    const device = (i: number): CoordinatorClient => {
      // Retries span a restart of wrangler dev (about 5-15 s here).
      const base = createCoordinatorClient({
        endpoint: url,
        apiKey: keys.publishable,
        retry: { windowMs: 60_000, baseDelayMs: 200, maxDelayMs: 2000 },
      });
      return {
        ...base,
        join: async (roundId) => {
          const joined = await base.join(roundId);
          if (joined.secagg)
            credentials[i] = {
              shard: joined.secagg.shard,
              participant: `${joined.participantId}.${joined.participantToken}`,
            };
          return joined;
        },
        secaggMessage: async (roundId, shard, participant, frame) => {
          const ack = await base.secaggMessage(roundId, shard, participant, frame);
          const count = (sent.get(ack.stage) ?? 0) + 1;
          sent.set(ack.stage, count);
          if (point.stage === ack.stage && count >= Math.max(1, Math.round(point.after * DEVICES))) kill();
          return ack;
        },
      };
    };
    const vectors = Array.from({ length: DEVICES }, () => [random() * 2 - 1, random() * 2 - 1]);
    await Promise.allSettled(
      vectors.map((v, i) =>
        participateInSecAggRound(device(i), round, () => Float64Array.from(v), {
          pollMs: 100,
          policy: "development",
        }),
      ),
    );
    if (killing) await killing;
    const live = (): string => {
      if (!coordinator) throw new Error("no coordinator");
      return coordinator.url;
    };

    // Wait for the root to end (it gives up on silent shards at most ~2 min after opening).
    let status = RoundStatus.parse(
      (await call(live(), "GET", `/v1/rounds/${round.roundId}`, keys.secret)).json,
    );
    const waitUntil = Date.now() + (5 * STAGE_SECONDS + 60) * 1000;
    while (status.stage === "collecting" && Date.now() < waitUntil) {
      await new Promise((r) => setTimeout(r, 500));
      status = RoundStatus.parse(
        (await call(live(), "GET", `/v1/rounds/${round.roundId}`, keys.secret)).json,
      );
    }

    // Ground truth: what each shard says it revealed.
    const shardViews = new Map<number, SecAggServerView>();
    for (const credential of credentials) {
      if (!credential || shardViews.has(credential.shard)) continue;
      const response = await fetch(`${live()}/v1/rounds/${round.roundId}/shards/${credential.shard}/view`, {
        headers: { authorization: `Bearer ${keys.publishable}`, "x-participant": credential.participant },
      });
      if (response.status === 200)
        shardViews.set(credential.shard, SecAggServerView.parse(await response.json()));
    }
    const revealed = [...shardViews.values()].filter((v) => v.stage === "done" && v.contributors > 0);
    const revealedContributors = revealed.reduce((n, v) => n + (v.stage === "done" ? v.contributors : 0), 0);

    const page = LedgerPage.parse(
      (await call(live(), "GET", `/v1/audit/ledger?model=${MODEL}&limit=100`, keys.auditor)).json,
    );
    const entries = page.entries.map((e) => LedgerEntry.parse(e));
    const forRound = entries.filter(
      (e): e is Extract<LedgerEntry, { kind: "round" }> => e.kind === "round" && e.roundId === round.roundId,
    );
    const latest = await call(live(), "GET", `/v1/models/${MODEL}/latest`, keys.publishable);
    const published = latest.status === 200;
    const verify = await runCli([
      "audit",
      "verify",
      "--url",
      live(),
      "--auditor-key",
      keys.auditor,
      "--public-key",
      publicKey,
    ]);
    const auditVerified = verify.code === 0;

    let violation: string | null = null;
    if (status.stage === "collecting") violation = "the round never ended";
    else if (status.stage === "closed" && (forRound.length !== 1 || !published))
      violation = `published with ${forRound.length} ledger entries (model published: ${published})`;
    else if (revealed.length > 0 && forRound.length !== 1)
      violation = `${revealed.length} shard sums revealed, ${forRound.length} ledger entries`;
    else if (revealed.length === 0 && forRound.length !== 0)
      violation = `nothing revealed, but ${forRound.length} ledger entries`;
    else if (forRound[0] && forRound[0].cohort.survivors !== revealedContributors)
      violation = `ledger counts ${forRound[0].cohort.survivors} survivors, shards revealed ${revealedContributors}`;
    else if (!auditVerified) violation = `audit verify failed: ${verify.output.slice(0, 400)}`;
    return {
      killPoint,
      seed,
      killed,
      roundStage: status.stage,
      outcome: status.outcome,
      contributions: status.contributions,
      revealedShards: revealed.length,
      revealedContributors,
      ledgerEntriesForRound: forRound.length,
      published,
      auditVerified,
      ok: violation === null,
      violation,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await (coordinator as LocalCoordinator | null)?.stop();
    rmSync(persistTo, { recursive: true, force: true });
    own?.dispose();
  }
}

/** Runs every (kill point, seed) pair in turn. */
export async function runFaultSuite(
  killPoints: readonly KillPoint[],
  seeds: readonly number[],
  onTrial?: (trial: FaultTrial) => void,
): Promise<FaultTrial[]> {
  const trials: FaultTrial[] = [];
  const template = await prepareFaultTemplate();
  try {
    for (const seed of seeds) {
      for (const point of killPoints) {
        const trial = await runFaultTrial(point, seed, template);
        onTrial?.(trial);
        trials.push(trial);
      }
    }
  } finally {
    template.dispose();
  }
  return trials;
}
