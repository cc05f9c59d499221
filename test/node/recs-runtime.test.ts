/**
 * Recommendations on the training runtime, in-process: an operator declares an `fcf` model with
 * its public catalogue, the trainer publishes the seeded initial factors and opens every round by
 * itself, real SDK profilers take part through SecAgg+ with the distributed discrete Gaussian
 * (each solving its own user factor against the published factors, never sending it), and
 * `recommend()` then scores on the device. No request body carries a product id, an order id or an
 * event: the catalogue travels only from the coordinator to the devices.
 */
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { publicKeyFromHex, readAll, signerFromSeedHex, verifyLedger } from "@fedprofile/coordinator/ledger";
import {
  type ModelDeclarationInput,
  ModelStatus,
  ModelVersion,
  TrainingRoundPage,
} from "@fedprofile/coordinator/wire";
import { createProfiler, type Profiler } from "@fedprofile/sdk";
import { afterEach, describe, expect, it } from "vitest";

const TENANT = "recs-shop";
const SIGNER = signerFromSeedHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const NOW = Date.parse("2026-11-30T12:00:00Z");
const DAY = 86_400_000;

/**
 * Two tastes: candles (candle-sku-0 … 11) and mugs (mug-sku-0 … 11); the catalogue is both. The ids
 * are long enough that the random bytes of a SecAgg frame never spell one by chance.
 */
const CANDLES = Array.from({ length: 12 }, (_, i) => `candle-sku-${i}`);
const MUGS = Array.from({ length: 12 }, (_, i) => `mug-sku-${i}`);
const ITEMS = CANDLES.flatMap((c, i) => [c, MUGS[i] as string]);
const CATEGORIES = ITEMS.map((id) => (id.startsWith("candle-") ? "candles" : "mugs"));

function setup() {
  const memory = createMemoryCoordinator({ signer: SIGNER });
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: "Recs shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({
    tenants: memory.tenants,
    models: memory.models,
    rounds: memory.rounds,
    privacy: memory.privacy,
    training: memory.training,
    trainerFor: memory.trainerFor,
  });
  const bodies: Array<string | Uint8Array> = [];
  const appFetch: typeof fetch = async (input, init) => {
    if (init?.body instanceof Uint8Array || typeof init?.body === "string") bodies.push(init.body);
    return app.request(input instanceof Request ? input : String(input), init);
  };
  const ticker = setInterval(() => void memory.fireDueAlarms().catch(() => {}), 20);
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  };
  const device = () =>
    createProfiler({
      endpoint: "http://coordinator.test",
      // ε = 1000 over 24 devices is a mechanics test: above the production floors by design.
      privacyPolicy: "development",
      apiKey: keys.publishable.key,
      storage: "memory",
      fetch: appFetch,
      now: () => NOW,
      tfBackend: "cpu",
    });
  return { memory, keys, call, device, bodies, stop: () => clearInterval(ticker) };
}

let stop: (() => void) | undefined;
afterEach(() => stop?.());

/** Device i buys 5 of its taste's 12 items (a sliding window, so tastes overlap within a group). */
async function populate(profiler: Profiler, i: number) {
  const taste = i % 2 === 0 ? CANDLES : MUGS;
  const start = Math.floor(i / 2) % 12;
  for (let o = 0; o < 5; o++) {
    const id = taste[(start + o) % 12] as string;
    await profiler.track(
      "Order Completed",
      { order_id: `order-${i}-${o}`, revenue: 10, products: [{ product_id: id, price: 2, quantity: 1 }] },
      { timestamp: NOW - (o + 1) * DAY },
    );
  }
  await profiler.track("Product Viewed", { product_id: taste[(start + 7) % 12], price: 2 });
}

const DECLARATION: ModelDeclarationInput = {
  v: 1,
  kind: "fcf",
  spec: { rank: 4, blockSize: 12, lambda: 1, clipGram: 4, clipItems: 20, clipCurvature: 20, clipCounts: 3 },
  catalogue: { items: ITEMS, categories: CATEGORIES },
  dp: { targetEpsilon: 1000, population: 1000 },
  cohort: { minDevices: 24, maxDevices: 24, maxShardSize: 24, minShardSize: 2 },
  schedule: { stageSeconds: 10, maxRounds: 6, cadenceSeconds: 0 },
};

describe("recommendations: a declared fcf model trains itself and devices recommend", () => {
  it("publishes the initial factors, runs block rounds, and recommend() serves with reasons", async () => {
    const t = setup();
    stop = t.stop;
    const devices = Array.from({ length: 24 }, () => t.device());
    await Promise.all(devices.map((d, i) => populate(d, i)));
    // Nothing to recommend before the device holds a model.
    expect(await devices[0]?.recommend(3)).toEqual([]);

    const declared = await t.call("PUT", "/v1/models/recommendations", t.keys.secret.key, DECLARATION);
    expect(declared.status).toBe(200);
    expect(ModelStatus.parse(declared.json)).toMatchObject({ kind: "fcf", phase: "train", latestVersion: 1 });

    const deadline = Date.now() + 100_000;
    let status = ModelStatus.parse(declared.json);
    while (status.trainer !== "stopped" && Date.now() < deadline) {
      if (status.trainer === "waiting") await new Promise((done) => setTimeout(done, 50));
      else await Promise.all(devices.map((d) => d.sync()));
      status = ModelStatus.parse((await t.call("GET", "/v1/models/recommendations", t.keys.secret.key)).json);
    }
    expect(status).toMatchObject({ trainer: "stopped", iteration: 6, latestVersion: 7 });
    const history = TrainingRoundPage.parse(
      (await t.call("GET", "/v1/models/recommendations/rounds", t.keys.secret.key)).json,
    );
    expect(history.rounds.map((r) => [r.phase, r.stage, r.contributors])).toEqual(
      Array.from({ length: 6 }, () => ["train", "closed", 24]),
    );
    // Blocks alternate round-robin over the two blocks of 12 items.
    expect(history.rounds.map((r) => r.metrics.block).reverse()).toEqual([0, 1, 0, 1, 0, 1]);
    // The ledger chain: the declaration's policy first, then each released round and its version.
    const entries = await readAll(t.memory.ledger, { tenant: TENANT, model: "recommendations" });
    expect(entries.map((e) => e.kind)).toEqual([
      "policy",
      ...Array.from({ length: 6 }, () => ["round", "publication"]).flat(),
    ]);
    expect(entries[0]).toMatchObject({
      kind: "policy",
      policy: { source: "model_declaration", epsilonCap: 1000, mechanism: "distributed_discrete_gaussian" },
    });
    const report = verifyLedger(entries, publicKeyFromHex(t.memory.privacy.publicKey.publicKey));
    expect(report.ok).toBe(true);
    expect(report.ok && report.epsilon).toBeGreaterThan(0);
    expect(report.ok && report.epsilon).toBeLessThanOrEqual(1000);

    const latest = ModelVersion.parse(
      (await t.call("GET", "/v1/models/recommendations/latest", t.keys.publishable.key)).json,
    );
    expect(latest).toMatchObject({ kind: "fcf", version: 7, dimension: 24 * 4 });
    await Promise.all(devices.map((d) => d.pullModel("recommendations")));

    let sameTaste = 0;
    let total = 0;
    for (const [i, device] of devices.entries()) {
      const recs = await device.recommend(4);
      expect(recs).toHaveLength(4);
      const taste = i % 2 === 0 ? "candle-sku-" : "mug-sku-";
      const start = Math.floor(i / 2) % 12;
      const bought = new Set(Array.from({ length: 5 }, (_, o) => `${taste}${(start + o) % 12}`));
      for (const r of recs) {
        // Never what it bought; the reason is one of its own purchases.
        expect(bought.has(r.productId)).toBe(false);
        expect(r.reason.kind).toBe("similar");
        if (r.reason.kind === "similar") {
          expect(bought.has(r.reason.productId)).toBe(true);
          expect(r.reason.text).toBe(`because you bought ${r.reason.productId}`);
        }
        total++;
        if (r.productId.startsWith(taste)) sameTaste++;
      }
      // Scores come sorted, highest first.
      expect(recs.map((r) => r.score)).toEqual([...recs.map((r) => r.score)].sort((a, b) => b - a));
    }
    // The factors learnt the two tastes: most picks are of the device's own taste.
    expect(sameTaste / total).toBeGreaterThan(0.8);

    // Category filter: a candle buyer asking for mugs gets only mugs.
    const mugs = await devices[0]?.recommend(3, { categories: ["mugs"] });
    expect(mugs?.map((r) => r.category)).toEqual(["mugs", "mugs", "mugs"]);

    // Cold start: a new visitor gets the DP popularity, labelled as such.
    const fresh = t.device();
    await fresh.pullModel("recommendations");
    const cold = await fresh.recommend(3);
    expect(cold.map((r) => r.reason.kind)).toEqual(["popular", "popular", "popular"]);

    // Devices sent SecAgg frames and JSON envelopes only: no product id, order id or event.
    expect(t.bodies.length).toBeGreaterThan(0);
    for (const body of t.bodies) {
      const text = typeof body === "string" ? body : new TextDecoder("latin1").decode(body);
      expect(text).not.toMatch(/candle-sku|mug-sku|Order Completed|Product Viewed|order_id|order-\d+-\d+/);
    }
  }, 150_000);
});
