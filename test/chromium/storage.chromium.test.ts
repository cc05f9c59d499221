/**
 * The device store in real Chromium tabs (playwright-core): reload and tab close in the middle
 * of a batch, two tabs writing one database, quota exhaustion (a real QuotaExceededError under
 * a CDP-lowered origin quota), IndexedDB unavailable (an opaque-origin sandboxed page), storage
 * cleared underneath (CDP), and forget() leaving nothing behind.
 */

import { createOperatorClient } from "@fedprofile/protocol/client";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plainActivityRound } from "../node/http-coordinator";
import { type Harness, startHarness } from "./harness";

let h: Harness;
let context: BrowserContext;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const TIMEOUT = { timeout: 60_000 };

/** Creates `globalThis.p`, a profiler on `dbName`, recording its events in `globalThis.log`. */
async function setUp(
  page: Page,
  dbName: string,
  options: { flushIntervalMs?: number; maxEvents?: number } = {},
) {
  await page.evaluate(
    async ({ dbName, flushIntervalMs, maxEvents }) => {
      const log: string[] = [];
      const p = fedprofile.createProfiler({
        dbName,
        ...(flushIntervalMs === undefined ? {} : { flushIntervalMs, maxBatch: 1_000_000 }),
        ...(maxEvents === undefined ? {} : { retention: { maxEvents } }),
      });
      p.on((event) => {
        if (event.type === "storage") log.push(`${event.kind}:${event.code ?? "ok"}`);
        if (event.type === "forget") log.push(`forget:${event.origin}`);
        if (event.type === "error") log.push(`error:${event.error.message}`);
      });
      Object.assign(globalThis, { p, log });
      await p.ready;
    },
    { dbName, ...options },
  );
}

/** What the page's profiler reports. */
async function state(page: Page) {
  return page.evaluate(async () => {
    const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
    const log: string[] = Reflect.get(globalThis, "log");
    const profile = await p.getProfile();
    return { eventCount: profile.eventCount, features: profile.features, storage: profile.storage, log };
  });
}

/** Counts what the database holds, read with raw IndexedDB (not through the SDK). */
function stored(page: Page, dbName: string) {
  return page.evaluate(async (dbName) => {
    const names = (await indexedDB.databases()).map((db) => db.name);
    if (!names.includes(dbName)) return null;
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const count = (store: string) =>
      new Promise<number>((resolve, reject) => {
        const request = db.transaction(store).objectStore(store).count();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const folded = await new Promise<number>((resolve, reject) => {
      const request = db.transaction("state").objectStore("state").get("features");
      request.onsuccess = () => {
        const value: unknown = request.result;
        resolve(
          value && typeof value === "object" && "eventCount" in value && typeof value.eventCount === "number"
            ? value.eventCount
            : 0,
        );
      };
      request.onerror = () => reject(request.error);
    });
    const result = { journal: await count("journal"), log: await count("events"), folded };
    db.close();
    return result;
  }, dbName);
}

async function trackViews(page: Page, count: number, prefix: string) {
  await page.evaluate(
    async ({ count, prefix }) => {
      const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
      for (let i = 0; i < count; i++) {
        await p.track("Product Viewed", { product_id: `${prefix}${i}`, category: "mugs", price: 3 });
      }
    },
    { count, prefix },
  );
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() - start > timeoutMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("reload and close in the middle of a batch", () => {
  beforeAll(async () => {
    context = await h.browser.newContext();
  });
  afterAll(async () => {
    await context.close();
  });

  it("a reload loses nothing that track() accepted", TIMEOUT, async () => {
    const page = await h.open(context);
    await setUp(page, "reload", { flushIntervalMs: 3_600_000 });
    await trackViews(page, 500, "r");
    // Mid-batch: accepted in memory, nothing written yet.
    expect(await stored(page, "reload")).toEqual({ journal: 0, log: 0, folded: 0 });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { state: "attached" });
    await setUp(page, "reload");
    expect(await state(page)).toMatchObject({ eventCount: 500, storage: "indexeddb" });
    expect(await stored(page, "reload")).toMatchObject({ journal: 0, log: 500, folded: 500 });
    expect(h.pageErrors).toEqual([]);
  });

  it("closing the tab and navigating away lose nothing either", TIMEOUT, async () => {
    const first = await h.open(context);
    await setUp(first, "close", { flushIntervalMs: 3_600_000 });
    await trackViews(first, 300, "c");
    expect(await stored(first, "close")).toEqual({ journal: 0, log: 0, folded: 0 });
    await first.close();

    const second = await h.open(context);
    await setUp(second, "close", { flushIntervalMs: 3_600_000 });
    expect((await state(second)).eventCount).toBe(300);
    await trackViews(second, 200, "n");
    await second.goto(`${h.origin}/other`);
    await second.waitForSelector("body[data-ready=true]", { state: "attached" });
    await setUp(second, "close");
    expect((await state(second)).eventCount).toBe(500);
  });
});

describe("a page that goes away while IndexedDB is still opening", () => {
  it("loses none of the events tracked before the database opened", TIMEOUT, async () => {
    const ctx = await h.browser.newContext();
    // Another tab holds version 1 of the database and ignores versionchange: the SDK's open
    // (version 2) stays blocked, as behind a slow or stuck open.
    const holder = await h.open(ctx);
    await holder.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const request = indexedDB.open("opening", 1);
          request.onsuccess = () => {
            Object.assign(globalThis, { held: request.result });
            resolve();
          };
          request.onerror = () => reject(request.error);
        }),
    );
    const page = await h.open(ctx);
    await page.evaluate(async () => {
      const log: string[] = [];
      const p = fedprofile.createProfiler({ dbName: "opening", tcfApi: null, openTimeoutMs: 30_000 });
      p.on((event) => {
        if (event.type === "storage") log.push(`${event.kind}:${event.code ?? "ok"}`);
      });
      Object.assign(globalThis, { p, log });
    });
    await trackViews(page, 40, "o");
    // Still opening (no storage event yet: neither IndexedDB nor a fallback) when the tab closes.
    expect(await page.evaluate(() => Reflect.get(globalThis, "log"))).toEqual([]);
    await page.close();

    await holder.evaluate(() => Reflect.get(globalThis, "held").close());
    const next = await h.open(ctx);
    await setUp(next, "opening");
    expect(await state(next)).toMatchObject({ eventCount: 40, storage: "indexeddb" });
    expect(await stored(next, "opening")).toMatchObject({ folded: 40 });
    expect(h.pageErrors).toEqual([]);
    await ctx.close();
  });
});

describe("two tabs of one origin", () => {
  it(
    "interleaved writes, a cross-tab cancellation and a reload mid-batch: nothing lost or double-counted",
    TIMEOUT,
    async () => {
      const ctx = await h.browser.newContext();
      const [a, b] = [await h.open(ctx), await h.open(ctx)];
      await setUp(a, "tabs");
      await setUp(b, "tabs");
      const burst = (page: Page, prefix: string) =>
        page.evaluate(async (prefix) => {
          const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
          for (let i = 0; i < 400; i++) {
            await p.track(i % 3 === 0 ? "Product Added" : "Product Viewed", {
              product_id: `${prefix}${i}`,
              category: prefix,
            });
            if (i % 17 === 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
          }
          await p.flush();
        }, prefix);
      await Promise.all([burst(a, "a"), burst(b, "b")]);
      const settled = (page: Page, count: number) =>
        until(
          () => state(page),
          (s) => s.eventCount === count,
        );
      expect((await settled(a, 800)).eventCount).toBe(800);
      expect((await settled(b, 800)).eventCount).toBe(800);

      await a.evaluate(async () => {
        const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
        await p.track("Order Completed", { order_id: "o-1", revenue: 40 });
        await p.flush();
      });
      await b.evaluate(async () => {
        const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
        await p.track("Order Cancelled", { order_id: "o-1" });
        await p.flush();
      });
      const seenByA = await until(
        () => state(a),
        (s) => s.eventCount === 802,
      );
      expect(seenByA.features).toMatchObject({ frequency: 0, monetary: 0 });

      // Tab A reloads with a batch pending while tab B keeps writing.
      await setUp(a, "tabs", { flushIntervalMs: 3_600_000 });
      await trackViews(a, 100, "late");
      const writing = burst(b, "more");
      await a.reload();
      await a.waitForSelector("body[data-ready=true]", { state: "attached" });
      await writing;
      await setUp(a, "tabs");
      const final = await until(
        () => state(a),
        (s) => s.eventCount === 1302,
      );
      expect(final.eventCount).toBe(1302);
      expect(final.features.counts).toEqual({
        "Product Viewed": 2 * 266 + 266 + 100,
        "Product Added": 3 * 134,
        "Order Completed": 1,
        "Order Cancelled": 1,
      });
      expect(await stored(a, "tabs")).toMatchObject({ journal: 0, log: 1000, folded: 1302 });
      expect(h.pageErrors).toEqual([]);
      await ctx.close();
    },
  );
});

describe("degradation", () => {
  it(
    "quota exhaustion: compacts first, then falls back to memory; the page never breaks",
    TIMEOUT,
    async () => {
      const ctx = await h.browser.newContext();
      const page = await h.open(ctx);
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: h.origin, quotaSize: 400_000 });
      await setUp(page, "quota", { maxEvents: 100_000 });
      const result = await page.evaluate(async () => {
        const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
        const log: string[] = Reflect.get(globalThis, "log");
        // Events the device stores at about 6 KB each: only fields a feature reads are stored
        // (a review body would not be), so the bulk is three long product ids and skus per order.
        const order = (id: string) => ({
          order_id: id,
          products: [1, 2, 3].map((k) => ({
            product_id: `${id}.${k}.${"x".repeat(990)}`,
            sku: "y".repeat(1000),
          })),
        });
        // Phase 1: small batches fill the raw log until a write hits the quota; compaction frees it.
        let phase1 = 0;
        while (!log.includes("indexeddb:storage_quota") && phase1 < 3000) {
          for (let j = 0; j < 10; j++) await p.track("Order Completed", order(`p${phase1++}`));
          await p.flush();
        }
        const afterCompaction = (await p.getProfile()).storage;
        // Phase 2: one batch larger than the whole quota cannot be written even after compaction.
        const accepted = await Promise.allSettled(
          Array.from({ length: 100 }, (_, i) => p.track("Order Completed", order(`big${i}`))),
        );
        await p.flush();
        return {
          phase1,
          afterCompaction,
          rejected: accepted.filter((r) => r.status === "rejected").length,
          final: await p.getProfile(),
          log,
        };
      });
      expect(result.afterCompaction).toBe("indexeddb");
      expect(result.rejected).toBe(0);
      expect(result.log).toContain("indexeddb:storage_quota");
      expect(result.log.at(-1)).toBe("memory:storage_quota");
      expect(result.final.eventCount).toBe(result.phase1 + 100);
      expect(result.final.storage).toBe("memory");
      // What was written before the fallback survives a reload.
      await page.reload();
      await page.waitForSelector("body[data-ready=true]", { state: "attached" });
      await setUp(page, "quota");
      expect((await state(page)).eventCount).toBe(result.phase1);
      expect(h.pageErrors).toEqual([]);
      await ctx.close();
    },
  );

  it(
    "IndexedDB unavailable (sandboxed, opaque origin): memory, a storage event, tracking works",
    TIMEOUT,
    async () => {
      const ctx = await h.browser.newContext();
      const page = await h.open(ctx, "/sandboxed");
      expect(await page.evaluate(() => origin)).toBe("null");
      await setUp(page, "sandboxed");
      await trackViews(page, 5, "s");
      const s = await state(page);
      expect(s).toMatchObject({ eventCount: 5, storage: "memory" });
      expect(s.log).toEqual(["memory:storage_unavailable"]);
      expect(h.pageErrors).toEqual([]);
      await ctx.close();
    },
  );

  it(
    "storage cleared underneath (site data wiped): continues in memory with the whole profile",
    TIMEOUT,
    async () => {
      const ctx = await h.browser.newContext();
      const page = await h.open(ctx);
      await setUp(page, "wiped");
      await trackViews(page, 20, "w");
      await page.evaluate(() => Reflect.get(globalThis, "p").flush());
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Storage.clearDataForOrigin", { origin: h.origin, storageTypes: "indexeddb" });
      const wiped = await until(
        () => state(page),
        (s) => s.log.includes("memory:storage_wiped"),
      );
      expect(wiped.log).toContain("memory:storage_wiped");
      await trackViews(page, 5, "after");
      expect(await state(page)).toMatchObject({ eventCount: 25, storage: "memory" });
      expect(h.pageErrors).toEqual([]);
      await ctx.close();
    },
  );
});

describe("storage evicted between visits", () => {
  it(
    "is told from a first visit, reported, starts a fresh profile, and the model cache re-downloads",
    TIMEOUT,
    async () => {
      const ctx = await h.browser.newContext();
      const setUpSynced = (page: Page) =>
        page.evaluate(
          async ({ endpoint, apiKey }) => {
            const log: string[] = [];
            const p = fedprofile.createProfiler({
              dbName: "evict",
              endpoint,
              apiKey,
              tcfApi: null,
              privacyPolicy: "development",
            });
            p.on((event) => {
              if (event.type === "storage") log.push(`${event.kind}:${event.code ?? "ok"}`);
              if (event.type === "model") log.push(`model:${event.modelId}.${event.version}`);
            });
            Object.assign(globalThis, { p, log });
            await p.ready;
          },
          { endpoint: h.origin, apiKey: h.apiKey },
        );
      const first = await h.open(ctx);
      await setUpSynced(first);
      await trackViews(first, 5, "e");
      // A published model, cached on the device.
      const operator = createOperatorClient({ endpoint: h.origin, apiKey: h.secretKey });
      await operator.openRound(plainActivityRound(1));
      const synced = await first.evaluate(async () => {
        const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
        const outcome = await p.sync("activity");
        await p.pullModel("activity");
        return { outcome: outcome.status, cached: (await p.cachedModel("activity"))?.version ?? null };
      });
      expect(synced).toEqual({ outcome: "contributed", cached: 1 });
      // A first visit is not an eviction.
      expect((await state(first)).log).toEqual(["indexeddb:ok", "model:activity.1"]);
      await first.close();

      // The browser evicts the origin's storage buckets (pressure eviction keeps cookies).
      const second = await h.open(ctx);
      const cdp = await ctx.newCDPSession(second);
      await cdp.send("Storage.clearDataForOrigin", {
        origin: h.origin,
        storageTypes: "indexeddb,local_storage,cache_storage,service_workers",
      });
      const conditional: Array<string | undefined> = [];
      second.on("request", (request) => {
        if (request.url().includes("/v1/models/activity/"))
          conditional.push(request.headers()["if-none-match"]);
      });
      await setUpSynced(second);
      const after = await state(second);
      expect(after.log).toEqual(["indexeddb:storage_evicted", "indexeddb:ok"]);
      expect(after).toMatchObject({ eventCount: 0, storage: "indexeddb" });
      const again = await second.evaluate(async () => {
        const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
        const before = await p.cachedModel("activity");
        const pulled = await p.pullModel("activity");
        return {
          before,
          pulled: pulled?.version ?? null,
          cached: (await p.cachedModel("activity"))?.version,
        };
      });
      expect(again).toEqual({ before: null, pulled: 1, cached: 1 });
      expect(conditional).toEqual([undefined]); // a full download, no If-None-Match
      await trackViews(second, 2, "f");
      expect((await state(second)).eventCount).toBe(2);

      // forget() erases the stamp too: the next profile is new, not evicted.
      await second.evaluate(() => Reflect.get(globalThis, "p").forget());
      await second.reload();
      await second.waitForSelector("body[data-ready=true]", { state: "attached" });
      await setUpSynced(second);
      expect((await state(second)).log).toEqual(["indexeddb:ok"]);
      expect(h.pageErrors).toEqual([]);
      await ctx.close();
    },
  );
});

describe("forget()", () => {
  it("erases every store in every tab and leaves no database", TIMEOUT, async () => {
    const ctx = await h.browser.newContext();
    const [a, b] = [await h.open(ctx), await h.open(ctx)];
    await setUp(a, "forget");
    await setUp(b, "forget");
    await trackViews(a, 30, "a");
    await trackViews(b, 20, "b");
    await a.evaluate(() => Reflect.get(globalThis, "p").flush());
    await b.evaluate(() => Reflect.get(globalThis, "p").flush());
    await until(
      () => state(a),
      (s) => s.eventCount === 50,
    );
    expect(await stored(a, "forget")).toMatchObject({ folded: 50 });

    await a.evaluate(() => Reflect.get(globalThis, "p").forget());
    const names = (page: Page) =>
      page.evaluate(async () => (await indexedDB.databases()).map((db) => db.name));
    expect(await names(a)).not.toContain("forget");
    expect(await names(b)).not.toContain("forget");
    expect(await state(a)).toMatchObject({ eventCount: 0 });
    const other = await until(
      () => state(b),
      (s) => s.log.includes("forget:other-tab"),
    );
    expect(other.eventCount).toBe(0);
    expect(other.features.counts).toEqual({});
    expect(await names(b)).not.toContain("forget");
    expect(h.pageErrors).toEqual([]);
    await ctx.close();
  });
});
