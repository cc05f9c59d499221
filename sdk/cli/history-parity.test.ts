/**
 * The replay's batch path (`importHistory`) against the per-event path, on real customers of the
 * UCI data: for a sample of customers, one profiler each with one `track()` per event (flushing
 * every 50 events, the default) then `getProfile()`, must give exactly the batch profile.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { importHistory } from "../src/history";
import { createProfiler } from "../src/profiler";
import { customerEvents, deviceOptions, readInvoices } from "./replay";

const DATA = join(import.meta.dirname, "../../examples/data/online_retail.csv.gz");
const asOf = Date.parse("2011-12-10T00:00:00Z");
let sample: Array<{ customerId: string; events: ReturnType<typeof customerEvents> }> = [];

beforeAll(async () => {
  const { customers } = await readInvoices(DATA);
  const all = [...customers].map(([customerId, invoices]) => ({
    customerId,
    events: customerEvents(invoices.values()),
  }));
  all.sort((a, b) => (a.customerId < b.customerId ? -1 : 1));
  // Every 40th customer, and the five with the most events (up to a few thousand product lines).
  const busiest = [...all].sort((a, b) => b.events.length - a.events.length).slice(0, 5);
  sample = [...all.filter((_, i) => i % 40 === 0), ...busiest];
}, 60_000);

describe("history import on the UCI data", () => {
  it("gives, per customer, exactly the profile of track() + getProfile()", { timeout: 60_000 }, async () => {
    let refunds = 0;
    let ignored = 0;
    for (const { customerId, events } of sample) {
      const options = deviceOptions(customerId, asOf);
      const profiler = createProfiler({ ...options, storage: "memory", maxBatch: 50 });
      const results = [];
      for (const event of events) {
        results.push(await profiler.track(event.name, event.properties, { timestamp: event.timestamp }));
      }
      const profile = await profiler.getProfile({ asOf });
      await profiler.close();
      const batch = await importHistory(events, { ...options, asOf });
      expect(batch.profile, `customer ${customerId}`).toEqual(profile);
      expect(batch.results, `customer ${customerId}`).toEqual(results);
      refunds += events.filter((e) => e.name === "Order Refunded").length;
      ignored += profile.dropped.total;
    }
    // The sample covers what can differ: refunds folded and refunds ignored.
    expect(sample.length).toBeGreaterThan(100);
    expect(refunds).toBeGreaterThan(50);
    expect(ignored).toBeGreaterThan(0);
  });
});
