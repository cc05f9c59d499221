import "fake-indexeddb/auto";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TcfApi } from "./consent";
import { createProfiler, type Profiler, type ProfilerEvent, type ProfilerOptions } from "./profiler";
import { openIndexedDbStore } from "./store/indexeddb-store";

const T0 = Date.UTC(2026, 5, 1);
let dbCounter = 0;
const freshDb = () => `profiler-test-${Date.now().toString(36)}-${dbCounter++}`;
const open: Profiler[] = [];

function device(options: ProfilerOptions = {}) {
  const events: ProfilerEvent[] = [];
  const profiler = createProfiler({ now: () => T0, flushIntervalMs: 5, ...options });
  profiler.on((event) => events.push(event));
  open.push(profiler);
  return { profiler, events };
}

async function databaseNames(): Promise<string[]> {
  return (await indexedDB.databases()).flatMap((db) => (db.name ? [db.name] : []));
}

const until = async (check: () => boolean | Promise<boolean>, timeoutMs = 2000) => {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

describe("track()", () => {
  it("resolves with what was kept, warns naming the field, and stores only kept events", async () => {
    const dbName = freshDb();
    const { profiler, events } = device({ dbName });
    await profiler.ready;
    await expect(profiler.track("Product Viewed", { product_id: "p1" })).resolves.toEqual({
      kept: true,
      warnings: [],
    });
    const refund = await profiler.track("Order Refunded", { total: 10 });
    expect(refund).toMatchObject({ kept: false, reason: "invalid_event" });
    expect(await profiler.track("Checkout Begun", {})).toMatchObject({
      kept: false,
      reason: "unknown_event",
    });
    const late = await profiler.track("Product Viewed", { price: "n/a" }, { timestamp: "not a date" });
    expect(late.kept).toBe(true);
    expect(late.warnings.map((w) => [w.code, w.field])).toEqual([
      ["invalid_field", "price"],
      ["invalid_timestamp", "timestamp"],
    ]);
    expect(late.warnings[0]?.message).toBe(
      'Product Viewed: price: expected a number ≥ 0 or a numeric string such as "1,234.50" or "$19.99", ' +
        'got "n/a" (3 characters); the field was dropped',
    );
    const warnings = events.flatMap((e) => (e.type === "warning" ? [e.warning] : []));
    expect(warnings.map((w) => w.field ?? w.code)).toEqual([
      "order_id",
      "unknown_event",
      "price",
      "timestamp",
    ]);
    expect(events.some((e) => e.type === "error")).toBe(false);
    await profiler.flush();
    const profile = await profiler.getProfile();
    expect(profile.eventCount).toBe(2);
    expect(profile.dropped).toEqual({
      total: 2,
      byReason: { invalid_event: 1, unknown_event: 1 },
      unusedEvents: {},
    });
    const store = await openIndexedDbStore({ name: dbName });
    expect((await store.events()).map((e) => e.name)).toEqual(["Product Viewed", "Product Viewed"]);
    store.close();
  });

  it("never throws synchronously, even for nonsense input", () => {
    const { profiler } = device({ storage: "memory" });
    const args: unknown[] = [undefined, null, 42, { name: "Product Viewed" }];
    for (const name of args) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = Reflect.apply(profiler.track, profiler, [name, "props"]);
      }).not.toThrow();
      promise?.catch(() => {});
    }
  });

  it("keeps nothing after close(): resolves { kept: false, reason: 'closed' }, rejects only when strict", async () => {
    const { profiler } = device({ storage: "memory" });
    await profiler.track("Cart Viewed", {});
    await profiler.close();
    await expect(profiler.track("Cart Viewed", {})).resolves.toMatchObject({ kept: false, reason: "closed" });
    const strict = device({ storage: "memory", strict: true }).profiler;
    await strict.close();
    await expect(strict.track("Cart Viewed", {})).rejects.toMatchObject({ code: "closed" });
  });

  it("batches writes: events reach IndexedDB in one flush, not one transaction each", async () => {
    const dbName = freshDb();
    const { profiler, events } = device({ dbName, flushIntervalMs: 60_000, maxBatch: 1000 });
    await profiler.ready;
    for (let i = 0; i < 200; i++) await profiler.track("Product Viewed", { product_id: `p${i}` });
    expect((await profiler.getProfile()).eventCount).toBe(200);
    await profiler.flush();
    expect(events.filter((e) => e.type === "flush")).toEqual([{ type: "flush", folded: 200 }]);
  });
});

describe("persistence and compaction", () => {
  it("a new page load on the same database sees the profile; raw events are bounded, counts are not", async () => {
    const dbName = freshDb();
    const first = device({ dbName, retention: { maxEvents: 5 } }).profiler;
    for (let i = 0; i < 20; i++)
      await first.track("Product Viewed", { product_id: `p${i}`, category: "mugs" });
    await first.track("Order Completed", { order_id: "o1", revenue: 42 }, { timestamp: T0 - 86_400_000 });
    await first.close();

    const second = device({ dbName }).profiler;
    const profile = await second.getProfile();
    expect(profile.eventCount).toBe(21);
    expect(profile.features).toMatchObject({ frequency: 1, monetary: 42, recencyDays: 1 });
    expect(profile.storage).toBe("indexeddb");
    expect(Array.from(await second.roundVector("activity", 2))).toEqual([1, 21]);
    const store = await openIndexedDbStore({ name: dbName });
    expect((await store.events()).length).toBe(5);
    store.close();
  });

  it("returns features, tags, summary and vector", async () => {
    const { profiler } = device({ storage: "memory" });
    await profiler.track("Order Completed", {
      order_id: "o",
      revenue: 2000,
      products: [{ category: "lamps", price: 80 }],
    });
    const profile = await profiler.getProfile({ asOf: T0 + 2 * 86_400_000 });
    expect(profile.tags).toEqual(expect.arrayContaining(["new", "high_value", "premium_buyer"]));
    expect(profile.summary).toContain("1 order worth 2,000.00");
    expect(profile.features.affinities).toEqual([{ category: "lamps", share: 1 }]);
    expect(profile.vector).toHaveLength(9);
  });
});

describe("several tabs on one database", () => {
  it("interleaved tracking and flushing in two tabs loses and double-counts nothing", async () => {
    const dbName = freshDb();
    const a = device({ dbName, flushIntervalMs: 1, maxBatch: 7 }).profiler;
    const b = device({ dbName, flushIntervalMs: 3, maxBatch: 5 }).profiler;
    await Promise.all([a.ready, b.ready]);
    const perTab = 150;
    for (let i = 0; i < perTab; i++) {
      await a.track("Product Viewed", { product_id: `a${i}` });
      await b.track("Product Added", { product_id: `b${i}` });
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await a.track("Order Completed", { order_id: "shared", revenue: 10 });
    await b.flush();
    await a.flush();
    await b.track("Order Cancelled", { order_id: "shared" });
    await b.flush();
    await until(async () => (await a.getProfile()).eventCount === 2 * perTab + 2);
    const [pa, pb] = await Promise.all([a.getProfile(), b.getProfile()]);
    expect(pa.features.counts).toEqual({
      "Product Viewed": perTab,
      "Product Added": perTab,
      "Order Completed": 1,
      "Order Cancelled": 1,
    });
    expect(pb.features.counts).toEqual(pa.features.counts);
    expect(pa.features.frequency).toBe(0);
    await Promise.all([a.close(), b.close()]);
    const reloaded = device({ dbName }).profiler;
    expect((await reloaded.getProfile()).eventCount).toBe(2 * perTab + 2);
  });

  it("forget() in one tab erases the database and the other tab's in-memory profile", async () => {
    const dbName = freshDb();
    const a = device({ dbName });
    const b = device({ dbName });
    await a.profiler.track("Product Viewed", { product_id: "x" });
    await b.profiler.track("Product Viewed", { product_id: "y" });
    await Promise.all([a.profiler.flush(), b.profiler.flush()]);
    expect(await databaseNames()).toContain(dbName);
    await a.profiler.forget();
    expect(await databaseNames()).not.toContain(dbName);
    expect((await a.profiler.getProfile()).eventCount).toBe(0);
    await until(() => b.events.some((e) => e.type === "forget" && e.origin === "other-tab"));
    expect((await b.profiler.getProfile()).eventCount).toBe(0);
    expect(await databaseNames()).not.toContain(dbName);
    // Tracking after forget starts a new profile.
    await a.profiler.track("Product Viewed", { product_id: "z" });
    await a.profiler.flush();
    expect((await a.profiler.getProfile()).eventCount).toBe(1);
    expect(await databaseNames()).toContain(dbName);
  });
});

describe("degradation", () => {
  it("IndexedDB missing: falls back to memory, emits a storage event, keeps tracking", async () => {
    const saved = globalThis.indexedDB;
    vi.stubGlobal("indexedDB", undefined);
    try {
      const { profiler, events } = device({ dbName: freshDb() });
      await profiler.ready;
      await profiler.track("Product Viewed", { product_id: "p" });
      expect(events).toContainEqual(
        expect.objectContaining({ type: "storage", kind: "memory", code: "storage_unavailable" }),
      );
      expect(await profiler.getProfile()).toMatchObject({ eventCount: 1, storage: "memory" });
    } finally {
      vi.stubGlobal("indexedDB", saved);
    }
  });

  it("open blocked by another tab's old connection: gives up after the timeout, memory", async () => {
    const dbName = freshDb();
    const old = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName, 1);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const { profiler, events } = device({ dbName, openTimeoutMs: 100 });
    await profiler.ready;
    expect(events).toContainEqual(
      expect.objectContaining({ type: "storage", kind: "memory", code: "storage_blocked" }),
    );
    await profiler.track("Cart Viewed", {});
    expect((await profiler.getProfile()).eventCount).toBe(1);
    old.close();
  });

  it("database deleted underneath (storage wiped): continues in memory without losing the profile", async () => {
    const dbName = freshDb();
    const { profiler, events } = device({ dbName });
    await profiler.track("Product Viewed", { product_id: "p" });
    await profiler.flush();
    await profiler.track("Product Added", { product_id: "p" });
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase(dbName);
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
    });
    await until(() => events.some((e) => e.type === "storage" && e.code === "storage_wiped"));
    await profiler.track("Checkout Started", {});
    await profiler.flush();
    expect(await profiler.getProfile()).toMatchObject({ eventCount: 3, storage: "memory" });
  });
});

describe("consent", () => {
  const fetchSpy = () =>
    vi.fn<typeof fetch>(async () => Response.json({ v: 1, round: null, latestModelVersion: null }));

  it("GPC: no sync (no network) unless the user opts in", async () => {
    const fetch = fetchSpy();
    const { profiler } = device({
      storage: "memory",
      gpc: true,
      endpoint: "http://c.test",
      apiKey: "fp_pub_x",
      fetch,
    });
    expect(profiler.consentState()).toEqual({ storage: true, sync: false, publish: false });
    expect(await profiler.sync()).toEqual({ status: "no-consent" });
    expect(fetch).not.toHaveBeenCalled();
    await profiler.consent({ sync: true });
    expect(await profiler.sync("activity")).toEqual({ status: "no-round", latestModelVersion: null });
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it("an explicit refusal of sync is remembered on the device", async () => {
    const dbName = freshDb();
    const first = device({ dbName }).profiler;
    await first.consent({ sync: false });
    await first.close();
    const fetch = fetchSpy();
    const second = device({ dbName, endpoint: "http://c.test", apiKey: "k", fetch }).profiler;
    await second.ready;
    expect(second.consentState().sync).toBe(false);
    expect(await second.sync()).toEqual({ status: "no-consent" });
    expect(fetch).not.toHaveBeenCalled();
  });

  function cmp(initial: boolean | null) {
    let callback: ((tcData: unknown, success: boolean) => void) | undefined;
    const data = (consent: boolean | null) => ({
      gdprApplies: true,
      listenerId: 7,
      eventStatus: consent === null ? "cmpuishown" : "useractioncomplete",
      purpose: { consents: consent === null ? {} : { "1": consent } },
    });
    const api: TcfApi = (command, _version, cb) => {
      if (command !== "addEventListener") return;
      callback = cb;
      queueMicrotask(() => cb(data(initial), true));
    };
    return { api, decide: (consent: boolean) => callback?.(data(consent), true) };
  }

  it("TCF CMP refusing purpose 1: memory only, no database is created", async () => {
    const dbName = freshDb();
    const { profiler } = device({ dbName, tcfApi: cmp(false).api });
    await profiler.track("Product Viewed", { product_id: "p" });
    await profiler.flush();
    expect(profiler.consentState().storage).toBe(false);
    expect((await profiler.getProfile()).storage).toBe("memory");
    expect(await databaseNames()).not.toContain(dbName);
  });

  it("TCF CMP granting purpose 1 later: what was tracked in memory moves to IndexedDB", async () => {
    const dbName = freshDb();
    const consent = cmp(null);
    const { profiler, events } = device({ dbName, tcfApi: consent.api, tcfTimeoutMs: 20 });
    await profiler.ready;
    await profiler.track("Product Viewed", { product_id: "p" });
    await profiler.flush();
    expect(await databaseNames()).not.toContain(dbName);
    consent.decide(true);
    await until(() => events.some((e) => e.type === "storage" && e.kind === "indexeddb"));
    await profiler.track("Product Added", { product_id: "p" });
    await profiler.close();
    const reloaded = device({ dbName, tcfApi: cmp(true).api }).profiler;
    expect(await reloaded.getProfile()).toMatchObject({ eventCount: 2, storage: "indexeddb" });
  });

  it("withdrawing storage consent erases the database and keeps the session in memory", async () => {
    const dbName = freshDb();
    const { profiler } = device({ dbName });
    await profiler.track("Product Viewed", { product_id: "p" });
    await profiler.flush();
    expect(await databaseNames()).toContain(dbName);
    await profiler.consent({ storage: false });
    expect(await databaseNames()).not.toContain(dbName);
    expect(await profiler.getProfile()).toMatchObject({ eventCount: 1, storage: "memory" });
  });
});
