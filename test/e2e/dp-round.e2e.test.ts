/**
 * End to end, all real, with differential privacy: Playwright drives Debian's Chromium on the
 * storefront served from 127.0.0.1 against a `wrangler dev` (fresh D1 and Durable Object state)
 * this test starts and stops by PID. The operator sets a privacy budget and opens a SecAgg+ round
 * with the distributed discrete Gaussian (Kairouz, Liu & Steinke 2021); three devices (three
 * browser contexts) clip, rotate, round, noise and mask their vectors in the page; the root
 * Durable Object decodes, writes a signed ledger entry and publishes the noisy sum. Then:
 * - the published model is the devices' true sum within the noise the round's public config implies;
 * - no request body the pages sent carries an event, a product id, a feature value or a raw vector;
 * - the auditor API has one signed entry, and the real CLI (`bin/fedprofile.mjs`, a child
 *   process) verifies the chain and exports it as CSV.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type DistributedDiscreteGaussianConfig,
  dyadicValue,
  localStddev,
  paddedDim,
} from "@fedprofile/coordinator/dp";
import { LedgerEntry, signerFromSeedHex } from "@fedprofile/coordinator/ledger";
import { decodeClientFrame } from "@fedprofile/coordinator/secagg";
import {
  decodeFloat64Vector,
  type OpenRoundInput,
  PrivacyBudgetStatus,
  RoundStatus,
} from "@fedprofile/coordinator/wire";
import { SDK_VERSION } from "@fedprofile/sdk/sync";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import {
  applyLocalMigrations,
  ensureLocalSigningKey,
  type LocalCoordinator,
  REPO_ROOT,
  seedLocalTenant,
  startLocalCoordinator,
  type TenantKeys,
} from "../../edge/scripts/local-dev";
import { type ExampleServer, startExampleServer } from "../../examples/serve";
import { CATALOGUE } from "../../examples/storefront/catalogue";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";
import { expectMaskedUploads, expectNoPlaintext } from "../privacy";
import { callCoordinator } from "./coordinator-api";

const TENANT = "e2e-dp-shop";
const MODEL = "activity";
const DEVICES = 3;
/** Device i views i+1 products and adds one to the cart; the last also checks out. */
const EXPECTED_EVENTS = [2, 3, 5];
/** Above every device's norm (at most |(1, 5)| ≈ 5.1), so nothing is clipped and the sum is exact. */
const CLIP_NORM = 6;
/**
 * A high target epsilon keeps the noise small enough that, with only three devices, the check
 * against the true sum is tight enough to fail on a wrong decode (about ±2 on sums of 3 and 10);
 * the mechanism, planning and accounting are the same at any epsilon.
 */
const TARGET_EPSILON = 500;

let persistTo: string;
let coordinator: LocalCoordinator;
let examples: ExampleServer;
let browser: Browser;
let keys: TenantKeys;
let devices: Page[] = [];
let roundId: string;
let dpConfig: DistributedDiscreteGaussianConfig;
/** What each device actually contributed (`profiler.roundVector`) and its on-device profile. */
let trueVectors: number[][] = [];
let profiles: Array<{ features: unknown; vector: number[] }> = [];
const children = new Set<number>();

interface SentRequest {
  method: string;
  url: string;
  contentType: string | undefined;
  body: Buffer | null;
}
const sent: SentRequest[] = [];

type DemoWindow = {
  fedprofileDemo: {
    sync(
      modelId?: string,
    ): Promise<{ status: string; roundId?: string; contributions?: number; stage?: string }>;
    profiler: {
      roundVector(modelId: string, dimension: number): Promise<Float64Array>;
      getProfile(): Promise<{ features: unknown; vector: ArrayLike<number> }>;
    };
  };
};

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "fedprofile-e2e-dp-"));
  await applyLocalMigrations(persistTo);
  keys = await seedLocalTenant(persistTo, TENANT);
  coordinator = await startLocalCoordinator({ persistTo });
  examples = await startExampleServer({
    config: { endpoint: coordinator.url, apiKey: keys.publishable, modelId: MODEL },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
});

afterAll(async () => {
  for (const pid of children) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await browser?.close();
  await examples?.close();
  await coordinator?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const api = (method: string, path: string, key: string, body?: unknown) =>
  callCoordinator(coordinator.url, method, path, key, body);

async function openDevice(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Every request the page makes, to any origin, with its body bytes.
  page.on("request", (request) =>
    sent.push({
      method: request.method(),
      url: request.url(),
      contentType: request.headers()["content-type"],
      body: request.postDataBuffer(),
    }),
  );
  await page.goto(examples.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

/** Runs `node bin/fedprofile.mjs ...args` and collects its exit code and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/fedprofile.mjs"), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pid = child.pid;
    if (pid !== undefined) children.add(pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", fail);
    child.on("exit", (code) => {
      if (pid !== undefined) children.delete(pid);
      done({ code, stdout, stderr });
    });
  });
}

/** Every number in a JSON-like value (the profile's features, nested). */
function numbersIn(value: unknown): number[] {
  if (typeof value === "number") return Number.isFinite(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(numbersIn);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(numbersIn);
  return [];
}

const float64Bytes = (x: number) => Buffer.from(Float64Array.of(x).buffer);

describe("a distributed-DP SecAgg+ round in Chromium against wrangler dev", () => {
  it("three browser devices complete the round; the published model is their sum plus the planned noise", async () => {
    const budget = await api("PUT", `/v1/privacy/budgets/${MODEL}`, keys.secret, {
      v: 1,
      epsilonCap: 1000,
      population: 10_000,
    });
    expect(budget.status, budget.text).toBe(200);

    const open = await api("POST", "/v1/rounds", keys.secret, {
      v: 1,
      modelId: MODEL,
      dimension: 2,
      minContributions: DEVICES,
      maxContributions: DEVICES,
      deadlineSeconds: 120,
      aggregation: "secagg",
      secagg: { minShardSize: DEVICES, k: 2, t: 2, stageSeconds: 30 },
      dp: { clipNorm: CLIP_NORM, targetEpsilon: TARGET_EPSILON, rounds: 1, modulusBits: 24 },
    } satisfies OpenRoundInput);
    expect(open.status, open.text).toBe(201);
    const opened = RoundStatus.parse(open.json);
    roundId = opened.roundId;
    expect(opened.secagg?.encoding).toBeUndefined();
    const cfg = opened.dp;
    if (cfg?.mechanism !== "distributed_discrete_gaussian")
      throw new Error(`not a distributed round: ${open.text}`);
    expect(cfg).toMatchObject({ dim: 2, clipNorm: CLIP_NORM, modulusBits: 24 });
    dpConfig = cfg;

    devices = [];
    for (let i = 0; i < DEVICES; i++) devices.push(await openDevice());
    for (const [i, page] of devices.entries()) {
      for (let v = 0; v <= i; v++) await page.click(`button[data-action=view] >> nth=${v}`);
      await page.click(`button[data-action=add] >> nth=${i}`);
      if (i === DEVICES - 1) await page.click("#checkout");
      await page.waitForFunction(
        (n) => document.getElementById("profile")?.textContent?.includes(`"eventCount": ${n}`),
        EXPECTED_EVENTS[i],
      );
    }
    trueVectors = await Promise.all(
      devices.map((page) =>
        page.evaluate(async () =>
          Array.from(
            await (window as unknown as DemoWindow).fedprofileDemo.profiler.roundVector("activity", 2),
          ),
        ),
      ),
    );
    expect(trueVectors).toEqual(EXPECTED_EVENTS.map((n) => [1, n]));
    profiles = await Promise.all(
      devices.map((page) =>
        page.evaluate(async () => {
          const profile = await (window as unknown as DemoWindow).fedprofileDemo.profiler.getProfile();
          return { features: profile.features, vector: Array.from(profile.vector) };
        }),
      ),
    );

    // SecAgg stages need the cohort together: the pages sync at once.
    const outcomes = await Promise.all(
      devices.map((page) =>
        page.evaluate(() => (window as unknown as DemoWindow).fedprofileDemo.sync("activity")),
      ),
    );
    expect(outcomes, coordinator.log()).toEqual(
      Array(DEVICES).fill({ status: "contributed", roundId, contributions: DEVICES, stage: "done" }),
    );

    const status = RoundStatus.parse((await api("GET", `/v1/rounds/${roundId}`, keys.secret)).json);
    expect(status).toMatchObject({ stage: "closed", contributions: DEVICES, modelVersion: 1 });

    const latest = await api("GET", `/v1/models/${MODEL}/latest`, keys.secret);
    expect(latest.status, latest.text).toBe(200);
    const model = latest.json as { version: number; roundId: string; contributions: number; weights: string };
    expect(model).toMatchObject({ version: 1, roundId, contributions: DEVICES, aggregation: "secagg" });

    // The sum carries n local discrete Gaussian shares (stddev sqrt(n)·localStddev) plus the
    // rounding of n devices (under gamma each per coordinate): allow six of that.
    const sum = [0, 1].map((j) => trueVectors.reduce((s, v) => s + (v[j] as number), 0));
    expect(sum).toEqual([3, 10]);
    const sd = Math.sqrt(DEVICES) * localStddev(cfg) + DEVICES * cfg.gamma;
    const weights = Array.from(decodeFloat64Vector(model.weights, 2));
    const errors = weights.map((w, j) => w - (sum[j] as number));
    console.log(
      `DP round ${roundId}: true sum [${sum.join(", ")}], published [${weights.map((w) => w.toFixed(4)).join(", ")}], ` +
        `noise stddev ${sd.toFixed(4)}, tolerance ±${(6 * sd).toFixed(4)}`,
    );
    for (const e of errors) expect(Math.abs(e)).toBeLessThan(6 * sd);
    // And the noise is really there: rounding alone moves the sum by at most n·gamma·sqrt(padded
    // dimension) in L2; the published sum is off by far more (fails with probability ~1e-6).
    const roundingOnly = DEVICES * cfg.gamma * Math.sqrt(paddedDim(cfg));
    expect(Math.hypot(...errors)).toBeGreaterThan(10 * roundingOnly);
  });

  it("no request body the pages sent carries an event, product id, feature value or raw vector", () => {
    const coordinatorRequests = sent.filter((r) => r.url.startsWith(coordinator.url));
    // Requests to the storefront's own origin (page, bundle, config) carry no body at all.
    for (const r of sent.filter((r) => !r.url.startsWith(coordinator.url))) expect(r.body).toBeNull();

    // Only three kinds of body reach the coordinator: check-in, join, and SecAgg protocol frames.
    const json: Buffer[] = [];
    const frames: Buffer[] = [];
    const stagesBySlot = new Map<number, string[]>();
    for (const r of coordinatorRequests) {
      if (r.body === null) {
        expect(r.method).toBe("GET");
        continue;
      }
      const path = new URL(r.url).pathname;
      if (path === "/v1/checkin") {
        expect(r.contentType).toBe("application/json");
        expect(JSON.parse(r.body.toString("utf8"))).toEqual({
          v: 1,
          modelId: MODEL,
          sdkVersion: SDK_VERSION,
        });
        json.push(r.body);
      } else if (path === `/v1/rounds/${roundId}/join`) {
        expect(r.contentType).toBe("application/json");
        expect(JSON.parse(r.body.toString("utf8"))).toEqual({ v: 1 });
        json.push(r.body);
      } else if (/^\/v1\/rounds\/[^/]+\/shards\/\d+\/messages$/.test(path)) {
        expect(path.startsWith(`/v1/rounds/${roundId}/`)).toBe(true);
        expect(r.contentType).toBe("application/octet-stream");
        const message = decodeClientFrame(new Uint8Array(r.body));
        expect(message.roundId).toBe(roundId);
        stagesBySlot.set(message.slot, [...(stagesBySlot.get(message.slot) ?? []), message.stage]);
        frames.push(r.body);
      } else {
        throw new Error(`unexpected ${r.method} ${path} with a body`);
      }
    }
    expect(json.filter((b) => b.toString("utf8").includes("modelId"))).toHaveLength(DEVICES);
    expect(json).toHaveLength(2 * DEVICES);
    // Each device answered all five SecAgg stages, once.
    expect(stagesBySlot.size).toBe(DEVICES);
    for (const stages of stagesBySlot.values())
      expect(stages).toEqual(["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"]);

    const texts: string[] = [
      "Product Viewed",
      "Product Added",
      "Order Completed",
      "product_id",
      "order_id",
      "revenue",
      "currency",
      "quantity",
      "GBP",
      "demo-",
      ...CATALOGUE.flatMap((item) => [item.product_id, item.name, item.category, String(item.price)]),
    ];
    const values = new Set<number>(CATALOGUE.map((item) => item.price));
    for (const p of profiles) for (const x of [...numbersIn(p.features), ...p.vector]) values.add(x);
    for (const x of values) {
      // Decimal forms that cannot be confused with protocol numbers ("v": 1): fractions and long integers.
      if (!Number.isInteger(x) || Math.abs(x) >= 1000) texts.push(String(x));
    }
    const binaries: Buffer[] = [...values].filter((x) => x !== 0).map(float64Bytes);
    for (const v of [...trueVectors, ...profiles.map((p) => p.vector)]) {
      const raw = Buffer.from(Float64Array.from(v).buffer);
      binaries.push(raw);
      texts.push(raw.toString("base64"));
    }
    expect(texts.length).toBeGreaterThan(40);
    expect(binaries.length).toBeGreaterThan(10);

    for (const body of json) {
      // The SDK's version string is a known constant (checked above), not user data.
      const text = body.toString("utf8").replace(`"sdkVersion":"${SDK_VERSION}"`, "");
      for (const needle of texts) expect(text, needle).not.toContain(needle);
      for (const needle of binaries) expect(body.includes(needle)).toBe(false);
    }
    // Frames are mostly random bytes (keys, ciphertexts, masked values): strings shorter than four
    // bytes could occur by chance, so those are ruled out by the frames' structure (decoded above).
    for (const body of frames) {
      for (const needle of texts)
        if (needle.length >= 4) expect(body.includes(needle, 0, "latin1")).toBe(false);
      for (const needle of binaries) expect(body.includes(needle)).toBe(false);
    }
    // Every body in every encoding of the device vectors, and no masked upload is a DP-encoded
    // vector (unmasked, each word is within B of 0 mod 2^m; see test/node/dp-round.test.ts).
    const bodies = [...json, ...frames].map((b) => new Uint8Array(b));
    expectNoPlaintext(
      bodies,
      [...trueVectors, ...profiles.map((p) => p.vector)].map((v) => ({ values: v })),
      dpConfig.modulusBits,
    );
    const dim = paddedDim(dpConfig);
    const bound = Math.ceil(
      (dpConfig.clipNorm + dpConfig.gamma * Math.sqrt(dim)) / dpConfig.gamma +
        8 * dyadicValue(dpConfig.localSigma),
    );
    expectMaskedUploads(bodies, dim, [new Array<number>(dim).fill(0)], {
      slack: bound,
      uploads: DEVICES,
      minBits: dpConfig.modulusBits,
      jointly: true, // d = 2: one upload alone could land near 0 by chance
    });
  });

  it("the auditor sees one signed distributed-DP entry; the CLI verifies the chain and exports it", async () => {
    const ledger = await api("GET", "/v1/audit/ledger", keys.auditor);
    expect(ledger.status, ledger.text).toBe(200);
    const { entries } = ledger.json as { entries: unknown[] };
    // The budget's policy entry, then the round's.
    expect(entries).toHaveLength(2);
    expect(LedgerEntry.parse(entries[0])).toMatchObject({ kind: "policy", seq: 0 });
    const entry = LedgerEntry.parse(entries[1]);
    if (entry.kind !== "round") throw new Error("expected a round entry");
    expect(entry).toMatchObject({
      seq: 1,
      tenant: TENANT,
      model: MODEL,
      kind: "round",
      roundId,
      mechanism: "distributed_discrete_gaussian",
      trustModel: "distributed",
      clipNorm: CLIP_NORM,
      modulusBits: 24,
      cohort: { size: DEVICES, survivors: DEVICES, threshold: 2 },
    });
    // Counted noise shares: the survivors minus the colluders the round assumed (never 0 by default).
    expect(entry.cohort.colluders).toBeGreaterThanOrEqual(1);
    expect(entry.noise.noiseShares).toBe(DEVICES - entry.cohort.colluders);
    expect(entry.cumulative.epsilon).toBeGreaterThan(0);
    expect(entry.cumulative.epsilon).toBeLessThanOrEqual(TARGET_EPSILON);

    // The secret key may not read the ledger.
    expect((await api("GET", "/v1/audit/ledger", keys.secret)).status).toBe(403);
    const budget = PrivacyBudgetStatus.parse(
      (await api("GET", `/v1/privacy/budgets/${MODEL}`, keys.auditor)).json,
    );
    expect(budget).toMatchObject({ entries: 2, headHash: entry.hash });
    expect(budget.epsilonSpent).toBeCloseTo(entry.cumulative.epsilon, 9);

    const key = await api("GET", "/v1/audit/public-key", keys.auditor);
    expect(key.status, key.text).toBe(200);
    const publicKey = (key.json as { publicKey: string }).publicKey;
    // The Worker signs with the local key `.dev.vars` holds.
    expect(publicKey).toBe(ensureLocalSigningKey().publicKey);

    const verify = await runCli([
      "audit",
      "verify",
      "--url",
      coordinator.url,
      "--auditor-key",
      keys.auditor,
      "--public-key",
      publicKey,
    ]);
    console.log(`$ npx fedprofile audit verify --url ${coordinator.url} ...\n${verify.stdout}`);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain("the ledger verifies");
    expect(verify.stdout).toContain(`${TENANT}/${MODEL}: OK`);
    expect(verify.stdout).toContain("2 entries in 1 chain(s)");
    expect(verify.stdout).toMatch(/cap history\s+seq 0 .*: cap \d/);

    // Without a pinned key the verdict is not "verifies", whatever the coordinator advertises.
    const unpinned = await runCli([
      "audit",
      "verify",
      "--url",
      coordinator.url,
      "--auditor-key",
      keys.auditor,
    ]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stdout).toContain("NOT VERIFIED (no pinned key)");

    // The independent Python verifier (written from SPEC.md) agrees on this live chain.
    const dir = mkdtempSync(join(tmpdir(), "fedprofile-ledger-"));
    try {
      const file = join(dir, "ledger.json");
      const exported = await runCli([
        "audit",
        "export",
        "--url",
        coordinator.url,
        "--auditor-key",
        keys.auditor,
        "--format",
        "json",
        "--public-key",
        publicKey,
        "--out",
        file,
      ]);
      expect(exported.code, exported.stderr).toBe(0);
      const mine = await runCli(["audit", "verify", "--file", file, "--public-key", publicKey, "--json"]);
      expect(mine.code, mine.stderr).toBe(0);
      const py = spawnSync("python3", ["test/python/verify_ledger.py", "chain", file, publicKey], {
        encoding: "utf8",
      });
      expect(py.status, py.stderr + py.stdout).toBe(0);
      const pyVerdict = z
        .record(z.string(), z.object({ ok: z.boolean(), epsilon: z.number(), headHash: z.string() }).loose())
        .parse(JSON.parse(py.stdout));
      const tsVerdict = z
        .object({
          chains: z.array(
            z.object({
              chain: z.string(),
              result: z.object({ ok: z.boolean(), epsilon: z.number(), headHash: z.string() }).loose(),
            }),
          ),
        })
        .parse(JSON.parse(mine.stdout));
      for (const c of tsVerdict.chains) {
        expect(pyVerdict[c.chain]).toMatchObject({ ok: true, headHash: c.result.headHash });
        expect(pyVerdict[c.chain]?.epsilon).toBeCloseTo(c.result.epsilon, 12);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // Pinned to another key, the same ledger does not verify.
    const otherKey = Buffer.from(signerFromSeedHex(randomBytes(32).toString("hex")).publicKey).toString(
      "hex",
    );
    const wrong = await runCli([
      "audit",
      "verify",
      "--url",
      coordinator.url,
      "--auditor-key",
      keys.auditor,
      "--public-key",
      otherKey,
    ]);
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stdout).toContain("the ledger does NOT verify");

    const csv = await runCli([
      "audit",
      "export",
      "--url",
      coordinator.url,
      "--auditor-key",
      keys.auditor,
      "--format",
      "csv",
    ]);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.split("\r\n").filter((line) => line !== "");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^seq,tenant,model,kind,round,/);
    expect(lines[1]).toMatch(new RegExp(`^0,${TENANT},${MODEL},policy,`));
    expect(lines[2]).toMatch(new RegExp(`^1,${TENANT},${MODEL},round,\\d+,`));
    expect(lines[2]).toContain(",distributed_discrete_gaussian,distributed,");
    expect(lines[2]).toContain(entry.hash);
    expect(lines[2]?.endsWith(entry.signature)).toBe(true);
  });
});
