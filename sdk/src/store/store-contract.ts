/**
 * The one contract every `ProfileStore` implementation must meet. It is run by
 * `store.test.ts` (node: memory + IndexedDB on fake-indexeddb) and by `store.browser.test.ts`
 * (Chromium: memory + real IndexedDB). Test-only; nothing in the SDK imports it.
 */

import type { ModelVersion } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import type { EventName, EventProperties, StoredEvent } from "../events/schemas";
import { applyEvent, DEFAULT_FEATURE_CONFIG, emptyFeatureState } from "../features/state";
import type { FoldReducer, ProfileStore, RetentionLimits } from "./types";

/** How the suite gets stores. */
export interface StoreContractTarget {
  /** Opens a store on the database `name` (a second call with the same name = another tab). */
  open(name: string): Promise<ProfileStore>;
  /** True when two `open`s of one name share data (IndexedDB), false for memory. */
  shared: boolean;
  /** Lists database names, to check `destroy()` leaves nothing (IndexedDB only). */
  databases?: () => Promise<string[]>;
}

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const reduce: FoldReducer = (base, events) => {
  const state = base ?? emptyFeatureState();
  for (const event of events) applyEvent(state, event, DEFAULT_FEATURE_CONFIG);
  return state;
};
const limits = (over: Partial<RetentionLimits> = {}): RetentionLimits => ({
  maxEvents: 1000,
  maxAgeMs: 90 * DAY,
  now: T0 + DAY,
  ...over,
});

let counter = 0;
function event(name: EventName = "Product Viewed", p: EventProperties = {}, t = T0): StoredEvent {
  counter += 1;
  return { id: `tab.${counter}`, name, t, p };
}
const model = (modelId: string, version: number): ModelVersion => ({
  v: 1,
  modelId,
  version,
  roundId: "r1",
  dimension: 1,
  contributions: 1,
  aggregation: "plain-sum",
  weights: "AAAAAAAA8D8=",
  publishedAt: new Date(T0).toISOString(),
});
const uniqueName = (label: string) =>
  `contract-${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Registers the contract suite for one implementation. */
export function describeStoreContract(label: string, target: StoreContractTarget): void {
  describe(`ProfileStore contract: ${label}`, () => {
    const open = (suffix: string) => target.open(uniqueName(suffix));

    it("folds an empty journal into an empty state", async () => {
      const store = await open("empty");
      const result = await store.fold(reduce, limits());
      expect(result.folded).toBe(0);
      expect(result.state.eventCount).toBe(0);
      store.close();
    });

    it("folds each appended event exactly once and keeps it in the raw log", async () => {
      const store = await open("once");
      const batch = [
        event(),
        event("Product Added", { category: "bags" }),
        event("Order Completed", { order_id: "o1", revenue: 20 }),
      ];
      await store.append(batch);
      const first = await store.fold(reduce, limits());
      expect(first.folded).toBe(3);
      expect(first.state.eventCount).toBe(3);
      expect(first.state.orders.get("o1")?.value).toBe(20);
      const second = await store.fold(reduce, limits());
      expect(second.folded).toBe(0);
      expect(second.state.eventCount).toBe(3);
      expect((await store.events()).map((e) => e.id).sort()).toEqual(batch.map((e) => e.id).sort());
      store.close();
    });

    it("adopts a profile computed elsewhere only while it holds none, log included", async () => {
      const store = await open("adopt");
      const elsewhere = [event(), event("Product Added", { category: "bags" })];
      const state = reduce(null, elsewhere);
      expect(await store.adopt(state, elsewhere)).toBe(true);
      // An adopted event is folded: appending it again counts nothing twice.
      await store.append([elsewhere[0]!, event()]);
      const result = await store.fold(reduce, limits());
      expect(result).toMatchObject({ folded: 1, state: { eventCount: 3 } });
      // Once there are accumulators, adopt changes nothing.
      expect(await store.adopt(reduce(null, [event()]), [])).toBe(false);
      expect((await store.fold(reduce, limits())).state.eventCount).toBe(3);
      store.close();
    });

    it("is idempotent: an event id appended twice, before or after folding, counts once", async () => {
      const store = await open("idempotent");
      const e = event();
      await store.append([e]);
      await store.append([e]);
      expect((await store.fold(reduce, limits())).state.eventCount).toBe(1);
      await store.append([e]);
      const again = await store.fold(reduce, limits());
      expect(again.folded).toBe(0);
      expect(again.state.eventCount).toBe(1);
      store.close();
    });

    it("orders operations by call: a fold sees appends called before it, not after", async () => {
      const store = await open("order");
      const before = store.append([event()]);
      const fold = store.fold(reduce, limits());
      const after = store.append([event()]);
      await Promise.all([before, after]);
      expect((await fold).folded).toBe(1);
      const next = await store.fold(reduce, limits());
      expect(next.folded).toBe(1);
      expect(next.state.eventCount).toBe(2);
      store.close();
    });

    it("hands the caller its own copy of the state", async () => {
      const store = await open("copy");
      await store.append([event()]);
      const { state } = await store.fold(reduce, limits());
      state.eventCount = 999;
      state.orders.delete("none");
      state.cart.set("x", [1, 0]);
      const again = await store.fold(reduce, limits());
      expect(again.state.eventCount).toBe(1);
      expect(again.state.cart.size).toBe(0);
      store.close();
    });

    it("bounds the raw log by count and age while the features keep every event", async () => {
      const store = await open("retention");
      const old = [event("Product Viewed", {}, T0 - 200 * DAY), event("Product Viewed", {}, T0 - 100 * DAY)];
      const recent = Array.from({ length: 6 }, (_, i) => event("Product Viewed", {}, T0 + i));
      await store.append([...old, ...recent]);
      const result = await store.fold(reduce, limits({ maxEvents: 4 }));
      expect(result.state.eventCount).toBe(8);
      const kept = await store.events();
      expect(kept.map((e) => e.id)).toEqual(recent.slice(2).map((e) => e.id));
      store.close();
    });

    it("compacts: drops the raw log and model cache, keeps features and unfolded events", async () => {
      const store = await open("compact");
      await store.append([event(), event()]);
      await store.fold(reduce, limits());
      await store.putModel({ modelId: "m", storedAt: T0, model: model("m", 1) });
      const unfolded = event();
      await store.append([unfolded]);
      await store.compact();
      expect((await store.events()).map((e) => e.id)).toEqual([unfolded.id]);
      expect(await store.getModel("m")).toBeUndefined();
      const result = await store.fold(reduce, limits());
      expect(result.state.eventCount).toBe(3);
      store.close();
    });

    it("keeps a model cache, an outbox and meta records", async () => {
      const store = await open("aux");
      const cached = model("activity", 3);
      await store.putModel({ modelId: "activity", storedAt: T0, model: cached });
      expect((await store.getModel("activity"))?.model).toEqual(cached);
      await store.enqueue({ id: "a", kind: "contribution", createdAt: T0, body: { round: "r1" } });
      await store.enqueue({ id: "b", kind: "publish", createdAt: T0 + 1, body: [1, 2] });
      expect((await store.outbox()).map((item) => item.id).sort()).toEqual(["a", "b"]);
      await store.dequeue(["a"]);
      expect(await store.outbox()).toEqual([{ id: "b", kind: "publish", createdAt: T0 + 1, body: [1, 2] }]);
      await store.setMeta("consent", { sync: false });
      await store.setMeta("rounds", ["r1", "r2"]);
      expect(await store.getMeta("consent")).toEqual({ sync: false });
      expect(await store.getMeta("rounds")).toEqual(["r1", "r2"]);
      store.close();
    });

    it("clear() empties every store", async () => {
      const store = await open("clear");
      await store.append([event()]);
      await store.fold(reduce, limits());
      await store.append([event()]);
      await store.enqueue({ id: "a", kind: "k", createdAt: T0, body: null });
      await store.setMeta("rounds", ["r"]);
      await store.clear();
      expect(await store.events()).toEqual([]);
      expect(await store.outbox()).toEqual([]);
      expect(await store.getMeta("rounds")).toBeUndefined();
      expect((await store.fold(reduce, limits())).state.eventCount).toBe(0);
      store.close();
    });

    if (target.shared) {
      it("two connections (tabs) appending and folding concurrently lose and double-count nothing", async () => {
        const name = uniqueName("tabs");
        const [a, b] = await Promise.all([target.open(name), target.open(name)]);
        const perTab = 60;
        const work: Array<Promise<unknown>> = [];
        for (let i = 0; i < perTab; i++) {
          work.push(a.append([event("Product Viewed", { product_id: `a${i}` })]));
          work.push(b.append([event("Product Added", { product_id: `b${i}` })]));
          if (i % 7 === 0) work.push(a.fold(reduce, limits()), b.fold(reduce, limits()));
        }
        await Promise.all(work);
        const [fa, fb] = await Promise.all([a.fold(reduce, limits()), b.fold(reduce, limits())]);
        expect(fa.state.eventCount).toBe(2 * perTab);
        expect(fb.state.eventCount).toBe(2 * perTab);
        expect(fb.state.counts).toEqual({ "Product Viewed": perTab, "Product Added": perTab });
        expect(new Set((await a.events()).map((e) => e.id)).size).toBe(2 * perTab);
        a.close();
        b.close();
      });
    }

    it("destroy() erases everything and leaves no database behind", async () => {
      const name = uniqueName("destroy");
      const store = await target.open(name);
      await store.append([event()]);
      await store.fold(reduce, limits());
      await store.destroy();
      if (target.databases) expect(await target.databases()).not.toContain(name);
      const reopened = await target.open(name);
      expect(await reopened.events()).toEqual([]);
      expect((await reopened.fold(reduce, limits())).state.eventCount).toBe(0);
      await reopened.destroy();
    });
  });
}
