/**
 * End to end, all real: the compliance dashboard (`examples/compliance/`) served from 127.0.0.1
 * audits the privacy ledger of a `wrangler dev` (fresh D1 and Durable Object state) this test
 * starts and stops by PID. Three SDK devices in node run three distributed-DP SecAgg+ rounds
 * (two for one model, one for another, so the ledger holds two chains); then Playwright drives
 * Debian's Chromium on the dashboard:
 * - Verify with the pinned key: every chain OK, the entry counts, each chain's epsilon
 *   (recomputed in the browser) equal to the budget route's `epsilonSpent`, the entries table;
 * - Export CSV downloads exactly what the ledger package exports for those entries;
 * - a key that may not read the ledger is reported as an error (no verdict, nothing to export);
 * - unpinned, it uses the advertised key and says so; pinned to another key, every chain fails at
 *   its first row with reason `key`; a row altered in transit fails by `hash`, naming that row,
 *   and a row with a duplicate member fails by `json` (pages are read as strict I-JSON);
 * - the auditor key never appears in a URL the page requested.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  exportLedgerCsv,
  isReleaseEntry,
  keyIdOf,
  LedgerEntry,
  LedgerPage,
  signerFromSeedHex,
} from "@fedprofile/coordinator/ledger";
import {
  LedgerPublicKey,
  type OpenRoundInput,
  PrivacyBudgetStatus,
  RoundStatus,
} from "@fedprofile/coordinator/wire";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyLocalMigrations,
  ensureLocalSigningKey,
  type LocalCoordinator,
  seedLocalTenant,
  startLocalCoordinator,
  type TenantKeys,
} from "../../edge/scripts/local-dev";
import type { ComplianceSummary } from "../../examples/compliance/main";
import { type ExampleServer, startExampleServer } from "../../examples/serve";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";
import { callCoordinator } from "./coordinator-api";

const TENANT = "e2e-compliance";
/** Rounds per model, in the order the ledger returns their chains ((model, seq) order). */
const ROUNDS = { activity: 2, segments: 1 } as const;
const MODELS = Object.keys(ROUNDS) as Array<keyof typeof ROUNDS>;
const TOTAL = ROUNDS.activity + ROUNDS.segments;
/** Entries per chain: the budget's policy entry, then each round's. */
const ENTRIES = { activity: 3, segments: 2 } as const;
const ROWS = ENTRIES.activity + ENTRIES.segments;
const VECTORS = [
  [0.5, -0.25],
  [0.25, 0.5],
  [-0.125, 0.25],
];
const EPSILON_CAP = 6;

let persistTo: string;
let coordinator: LocalCoordinator;
let examples: ExampleServer;
let browser: Browser;
let keys: TenantKeys;
let page: Page;
let publicKey: string;
/** The ledger as the auditor API returns it, parsed in node. */
let ledger: LedgerEntry[] = [];
const budgets = new Map<string, PrivacyBudgetStatus>();
/** Every URL the dashboard page requested. */
const requested: string[] = [];

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "fedprofile-e2e-compliance-"));
  const started = (async () => {
    await applyLocalMigrations(persistTo);
    keys = await seedLocalTenant(persistTo, TENANT);
    coordinator = await startLocalCoordinator({ persistTo });
  })();
  // The page server and the browser do not need the coordinator to start.
  const [launched] = await Promise.all([
    chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true }),
    started,
  ]);
  browser = launched;
  examples = await startExampleServer({
    config: { endpoint: coordinator.url, apiKey: keys.publishable },
  });
});

afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await coordinator?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const api = (method: string, path: string, key: string, body?: unknown) =>
  callCoordinator(coordinator.url, method, path, key, body);

/** Opens a distributed-DP SecAgg+ round for `model` and runs it with three SDK devices in node. */
async function runRound(model: string): Promise<string> {
  const open = await api("POST", "/v1/rounds", keys.secret, {
    v: 1,
    modelId: model,
    dimension: 2,
    minContributions: VECTORS.length,
    maxContributions: VECTORS.length,
    deadlineSeconds: 60,
    aggregation: "secagg",
    secagg: { minShardSize: 2, stageSeconds: 5, k: 2, t: 2 },
    dp: { clipNorm: 1, targetEpsilon: 4, rounds: 4 },
  } satisfies OpenRoundInput);
  expect(open.status, open.text).toBe(201);
  const roundId = RoundStatus.parse(open.json).roundId;
  const outcomes = await Promise.all(
    VECTORS.map(async (v) => {
      const client = createCoordinatorClient({ endpoint: coordinator.url, apiKey: keys.publishable });
      const { round } = await client.checkin(model);
      if (!round) throw new Error(`no open round for ${model}`);
      return participateInSecAggRound(client, round, () => Float64Array.from(v), {
        policy: "development",
        pollMs: 50,
      });
    }),
  );
  expect(
    outcomes.map((o) => o.status),
    coordinator.log(),
  ).toEqual(VECTORS.map(() => "contributed"));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = RoundStatus.parse((await api("GET", `/v1/rounds/${roundId}`, keys.secret)).json);
    if (status.stage === "closed") break;
    if (Date.now() > deadline) throw new Error(`round ${roundId} stuck in ${status.stage}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return roundId;
}

const summaryOf = (p: Page) => p.evaluate(() => window.fedprofileCompliance.lastSummary());
const verifyIn = (p: Page, pageSize?: number) =>
  p.evaluate(
    (size) => window.fedprofileCompliance.verify(size === null ? {} : { pageSize: size }),
    pageSize ?? null,
  );

const relativeError = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** Positions of each model's rows in the ledger as returned. */
const positionsOf = (model: string) => ledger.flatMap((e, i) => (e.model === model ? [i] : []));

describe("the compliance dashboard verifies a wrangler dev ledger in Chromium", () => {
  it("DP rounds for two models write a signed ledger of two chains", async () => {
    for (const model of MODELS) {
      const set = await api("PUT", `/v1/privacy/budgets/${model}`, keys.secret, {
        v: 1,
        epsilonCap: EPSILON_CAP,
        population: 10_000,
      });
      expect(set.status, set.text).toBe(200);
    }
    // The two models' first rounds run side by side; then activity's second.
    const firsts = await Promise.all(MODELS.map((model) => runRound(model)));
    const second = await runRound("activity");
    expect(new Set([...firsts, second]).size).toBe(TOTAL);

    const page1 = await api("GET", "/v1/audit/ledger?limit=500", keys.auditor);
    expect(page1.status, page1.text).toBe(200);
    const doc = LedgerPage.parse(page1.json);
    expect(doc.nextCursor).toBeNull();
    ledger = doc.entries.map((row) => LedgerEntry.parse(row));
    expect(ledger.map((e) => [e.model, e.seq, e.kind])).toEqual([
      ["activity", 0, "policy"],
      ["activity", 1, "round"],
      ["activity", 2, "round"],
      ["segments", 0, "policy"],
      ["segments", 1, "round"],
    ]);
    const rounds = ledger.filter(isReleaseEntry);
    expect(rounds.map((e) => e.roundId)).toEqual([firsts[0], second, firsts[1]]);
    for (const e of ledger.filter((x) => x.kind === "policy"))
      expect(e).toMatchObject({ policy: { source: "budget", epsilonCap: EPSILON_CAP } });
    for (const e of rounds)
      expect(e).toMatchObject({
        tenant: TENANT,
        kind: "round",
        mechanism: "distributed_discrete_gaussian",
        trustModel: "distributed",
        cohort: { size: 3, survivors: 3 },
      });

    for (const model of MODELS) {
      const budget = PrivacyBudgetStatus.parse(
        (await api("GET", `/v1/privacy/budgets/${model}`, keys.auditor)).json,
      );
      expect(budget.entries).toBe(ENTRIES[model]);
      expect(budget.epsilonSpent).toBeGreaterThan(0);
      budgets.set(model, budget);
    }
    // Two rounds spend more than one.
    expect(budgets.get("activity")!.epsilonSpent).toBeGreaterThan(budgets.get("segments")!.epsilonSpent);

    publicKey = LedgerPublicKey.parse(
      (await api("GET", "/v1/audit/public-key", keys.auditor)).json,
    ).publicKey;
    expect(publicKey).toBe(ensureLocalSigningKey().publicKey);
  });

  it("Verify with the pinned key: every chain OK, its epsilon the budget route's, every entry in the table", async () => {
    expect(ledger).toHaveLength(ROWS);
    const context = await browser.newContext();
    page = await context.newPage();
    page.on("request", (request) => requested.push(request.url()));
    // Without the trailing slash the server redirects, so `./app.js` is the dashboard's bundle.
    await page.goto(`${examples.url}/compliance`);
    expect(page.url()).toBe(`${examples.url}/compliance/`);
    await page.waitForSelector("body[data-ready=true]");
    // The coordinator comes from the examples server's config.json.
    expect(await page.inputValue("#endpoint")).toBe(coordinator.url);

    await page.fill("#auditor-key", keys.auditor);
    await page.fill("#public-key", publicKey);
    await page.click("#verify");
    await page.waitForSelector("#results-section[data-state=ok]", { timeout: 20_000 });
    const summary = await summaryOf(page);
    if (!summary) throw new Error("no summary after Verify");

    expect(summary).toMatchObject({
      ok: true,
      endpoint: coordinator.url,
      publicKey,
      keyId: ledger[0]!.keyId,
      pinned: true,
      advertisedPublicKey: publicKey,
      entries: ROWS,
      pages: 1,
    });
    expect(summary.chains.map((c) => c.chain)).toEqual(MODELS.map((m) => `${TENANT}/${m}`));
    for (const [i, model] of MODELS.entries()) {
      const chain = summary.chains[i]!;
      const budget = budgets.get(model)!;
      const rows = positionsOf(model);
      expect(chain).toMatchObject({
        tenant: TENANT,
        model,
        ok: true,
        entries: ENTRIES[model],
        rows,
        reason: null,
        index: null,
        headHash: ledger[rows[rows.length - 1]!]!.hash,
        budgetConsistent: true,
        budgetError: null,
      });
      expect(chain.epsilon).not.toBeNull();
      expect(relativeError(chain.epsilon!, budget.epsilonSpent)).toBeLessThanOrEqual(1e-9);
      expect(chain.budget).toMatchObject({
        epsilonCap: EPSILON_CAP,
        entries: ENTRIES[model],
        headHash: budget.headHash,
      });

      const box = page.locator(`.chain[data-chain="${TENANT}/${model}"]`);
      expect(await box.locator("h4 .verdict").textContent()).toBe("OK");
      expect(await box.locator(".failure").count()).toBe(0);
    }
    expect(await page.locator("#key").textContent()).toContain(publicKey);
    expect(await page.locator("#key .warning").count()).toBe(0);

    // One table row per entry, with the entry's own figures.
    const tableRows = page.locator("table.entries tbody tr");
    expect(await tableRows.count()).toBe(ROWS);
    for (const [i, e] of ledger.entries()) {
      const cells = await page.locator(`table.entries tbody tr[data-row="${i}"] td`).allTextContents();
      if (e.kind === "policy") {
        expect(cells.slice(0, 4)).toEqual([String(i), String(e.seq), String(e.round), "policy"]);
        expect(cells[4]).toContain(`cap ${EPSILON_CAP}`);
        continue;
      }
      expect(cells.slice(0, 7)).toEqual([
        String(i),
        String(e.seq),
        String(e.round),
        "round",
        "distributed_discrete_gaussian",
        "distributed",
        "3/3",
      ]);
      expect(cells[9]).toBe(e.cumulative.epsilon.toFixed(4));
      expect(cells[10]).toBe(e.budget.remaining.toFixed(4));
      expect(cells[11]).toBe(`${e.hash.slice(0, 12)}…`);
      expect(
        await page.locator(`table.entries tbody tr[data-row="${i}"] td >> nth=11`).getAttribute("title"),
      ).toBe(e.hash);
    }

    // The same verdict over pages of two entries (the cursor is followed).
    const paged = await verifyIn(page, 2);
    expect(paged.pages).toBe(3);
    expect(paged.chains.map((c) => [c.chain, c.ok, c.entries, c.epsilon])).toEqual(
      summary.chains.map((c) => [c.chain, c.ok, c.entries, c.epsilon]),
    );
  });

  it("Export CSV downloads the ledger package's CSV of exactly these entries", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^fedprofile-ledger-${TENANT}-.+\\.csv$`));
    const path = await download.path();
    const text = readFileSync(path, "utf8");
    expect(text).toBe(exportLedgerCsv(ledger));
    const lines = text.split("\r\n").filter((line) => line !== "");
    expect(lines).toHaveLength(1 + ROWS);
    expect(lines[0]).toMatch(/^seq,tenant,model,kind,round,/);
    for (const [i, e] of ledger.entries()) {
      expect(lines[i + 1]?.startsWith(`${e.seq},${TENANT},${e.model},${e.kind},${e.round},`)).toBe(true);
      expect(lines[i + 1]?.endsWith(e.signature)).toBe(true);
    }
  });

  it("a key that may not read the ledger is an error, not a verdict, and is never sent", async () => {
    // The typed auditor client refuses a secret key before any request (the server would 403).
    const sent: string[] = [];
    const onRequest = (request: { headers(): Record<string, string> }) => {
      const auth = request.headers()["authorization"];
      if (auth) sent.push(auth);
    };
    page.on("request", onRequest);
    await page.fill("#auditor-key", keys.secret);
    const message = await page.evaluate(() =>
      window.fedprofileCompliance.verify().then(
        () => "resolved",
        (error: Error) => error.message,
      ),
    );
    page.off("request", onRequest);
    expect(message).toBe("apiKey: expected an auditor key (fp_aud_…)");
    expect(message).not.toContain(keys.secret);
    expect(sent.filter((auth) => auth.includes(keys.secret))).toEqual([]);
    expect(await page.locator("#results-section").getAttribute("data-state")).toBe("error");
    expect(await page.locator("#results .error").textContent()).toBe(message);
    expect(await page.isDisabled("#export")).toBe(true);
    expect(await summaryOf(page)).toBeNull();
    await page.fill("#auditor-key", keys.auditor);
  });

  it("unpinned it is NOT VERIFIED (as audit verify) unless the advertised key is trusted on purpose; pinned to another key every chain fails (untrusted)", async () => {
    await page.fill("#public-key", "");
    const unpinned: ComplianceSummary = await verifyIn(page);
    expect(unpinned).toMatchObject({ ok: false, pinned: false, publicKey, advertisedPublicKey: publicKey });
    expect(unpinned.chains.every((c) => c.ok)).toBe(true);
    expect(await page.locator("#results .verdict").first().textContent()).toContain(
      "NOT VERIFIED: no pinned key",
    );
    expect(await page.locator("#key .warning").textContent()).toContain("Not pinned");
    await page.check("#trust-advertised");
    expect(await verifyIn(page)).toMatchObject({ ok: true, pinned: false, trustAdvertised: true });
    await page.uncheck("#trust-advertised");

    const other = Buffer.from(signerFromSeedHex(randomBytes(32).toString("hex")).publicKey).toString("hex");
    await page.fill("#public-key", other);
    const wrong = await verifyIn(page);
    expect(wrong).toMatchObject({
      ok: false,
      pinned: true,
      publicKey: other,
      advertisedPublicKey: publicKey,
    });
    expect(await page.locator("#results-section").getAttribute("data-state")).toBe("failed");
    expect(await page.locator("#key .warning").textContent()).toContain(publicKey);
    for (const [i, model] of MODELS.entries()) {
      const chain = wrong.chains[i]!;
      const first = positionsOf(model)[0]!;
      expect(chain).toMatchObject({
        ok: false,
        reason: "untrusted",
        index: 0,
        row: first,
        seq: 0,
        epsilon: null,
      });
      expect(chain.message).toContain("entry #0 (seq 0,");
      expect(chain.message).toContain(`signed by key ${ledger[0]!.keyId}, which is not pinned`);
      expect(keyIdOf(Buffer.from(other, "hex"))).not.toBe(ledger[0]!.keyId);
      const box = page.locator(`.chain[data-chain="${TENANT}/${model}"]`);
      expect(await box.locator("h4 .verdict").textContent()).toBe("FAILED");
      const failure = await box.locator(".failure").textContent();
      expect(failure).toContain(`FAILED at row ${first} of the ledger (chain entry #0, seq 0)`);
      expect(failure).toContain("untrusted: entry #0");
      expect(await page.locator(`table.entries tbody tr[data-row="${first}"]`).getAttribute("class")).toBe(
        "failed",
      );
    }
  });

  it("served from a shop origin that publishes the key file, the dashboard pins from it", async () => {
    const shop = await startExampleServer({
      config: { endpoint: coordinator.url, apiKey: keys.publishable },
      ledgerPublicKey: publicKey,
    });
    try {
      const doc = await (await fetch(`${shop.url}/.well-known/fedprofile-ledger-keys.json`)).json();
      expect(doc).toMatchObject({ v: 1, keys: [{ publicKey, keyId: ledger[0]!.keyId, status: "active" }] });
      const shopPage = await (await browser.newContext()).newPage();
      await shopPage.goto(`${shop.url}/compliance/`);
      await shopPage.waitForSelector("body[data-ready=true]");
      await shopPage.fill("#auditor-key", keys.auditor);
      await shopPage.fill("#public-key", "");
      expect(await verifyIn(shopPage)).toMatchObject({
        ok: true,
        pinned: true,
        pinSource: "well-known",
        publicKey,
      });
      await shopPage.close();
    } finally {
      await shop.close();
    }
  });

  it("a row altered between the coordinator and the page fails by hash, naming that row", async () => {
    await page.fill("#public-key", publicKey);
    const pattern = `${coordinator.url}/v1/audit/ledger?**`;
    await page.route(pattern, async (route) => {
      const response = await route.fetch();
      const doc = LedgerPage.parse(await response.json());
      // Lower the second activity round's cohort: the stored hash no longer covers the content.
      const rows = doc.entries.map((row, i) => {
        const e = LedgerEntry.parse(row);
        return i === 1 && e.kind === "round" ? { ...e, cohort: { ...e.cohort, survivors: 2 } } : row;
      });
      await route.fulfill({ response, json: { ...doc, entries: rows } });
    });
    try {
      const tampered = await verifyIn(page);
      expect(tampered.ok).toBe(false);
      expect(tampered.chains[0]).toMatchObject({ chain: `${TENANT}/activity`, ok: false, reason: "hash" });
      expect(tampered.chains[0]).toMatchObject({ index: 1, row: 1, seq: 1 });
      expect(tampered.chains[0]!.message).toContain("entry #1 (seq 1,");
      expect(tampered.chains[1]).toMatchObject({ chain: `${TENANT}/segments`, ok: true, reason: null });
      expect(await page.locator('table.entries tbody tr[data-row="1"]').getAttribute("class")).toBe("failed");
      expect(await page.locator('table.entries tbody tr[data-row="0"]').getAttribute("class")).toBeNull();
    } finally {
      await page.unroute(pattern);
    }
    // Untouched again, it verifies.
    expect((await verifyIn(page)).ok).toBe(true);

    // A duplicate member (I-JSON forbids it; JSON.parse keeps the last, so the row would still
    // verify if the page parsed leniently) fails that row by `json`: pages are read strictly.
    await page.route(pattern, async (route) => {
      const response = await route.fetch();
      const doc = LedgerPage.parse(await response.json());
      const rows = doc.entries.map((row, i) =>
        i === 1 ? JSON.stringify(row).replace(/^\{/, '{"seq":99,') : JSON.stringify(row),
      );
      const body = `{"v":1,"entries":[${rows.join(",")}],"nextCursor":${JSON.stringify(doc.nextCursor)}}`;
      await route.fulfill({ response, body, contentType: "application/json" });
    });
    try {
      const duplicated = await verifyIn(page);
      expect(duplicated.ok).toBe(false);
      expect(duplicated.chains[0]).toMatchObject({
        chain: `${TENANT}/activity`,
        ok: false,
        reason: "json",
        row: 1,
      });
      expect(duplicated.chains[0]!.message).toContain('duplicate member "seq"');
    } finally {
      await page.unroute(pattern);
    }

    // The auditor key went out only as a bearer header: no URL the page requested carries it.
    expect(
      requested.filter((url) => url.startsWith(`${coordinator.url}/v1/audit/ledger?`)).length,
    ).toBeGreaterThan(5);
    for (const url of [...requested, page.url()]) expect(url).not.toContain(keys.auditor);
    expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);
  });
});
