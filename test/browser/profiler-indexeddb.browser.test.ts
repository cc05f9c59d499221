/**
 * The SDK in real Chromium with real IndexedDB: events persist across profiler instances
 * (a reload), and forget() leaves nothing behind.
 */
import { createProfiler } from "@fedprofile/sdk";
import { describe, expect, it } from "vitest";

const endpoint = "http://127.0.0.1:9"; // never contacted in these tests

describe("createProfiler on real IndexedDB", () => {
  it("keeps tracked events across a new profiler on the same database", async () => {
    const dbName = `fp-browser-${crypto.randomUUID()}`;
    const first = createProfiler({ endpoint, apiKey: "fp_pub_demo.x", dbName });
    await first.ready;
    await first.track("Product Viewed", { product_id: "p1", price: 2.5 });
    await first.track("Product Viewed", { product_id: "p2", price: 3 });
    expect((await first.getProfile()).eventCount).toBe(2);
    // A page unload flushes the batched writes (pagehide); close() does the same.
    await first.close();

    const second = createProfiler({ endpoint, apiKey: "fp_pub_demo.x", dbName });
    await second.ready;
    expect((await second.getProfile()).eventCount).toBe(2);
    expect(Array.from(await second.roundVector("activity", 2))).toEqual([1, 2]);
    await second.forget();
  });

  it("forget() erases what IndexedDB held", async () => {
    const dbName = `fp-browser-${crypto.randomUUID()}`;
    const profiler = createProfiler({ endpoint, apiKey: "fp_pub_demo.x", dbName });
    await profiler.track("Product Added", { product_id: "p1", price: 1, quantity: 1 });
    await profiler.forget();
    const reopened = createProfiler({ endpoint, apiKey: "fp_pub_demo.x", dbName });
    expect((await reopened.getProfile()).eventCount).toBe(0);
    await reopened.forget();
  });
});
