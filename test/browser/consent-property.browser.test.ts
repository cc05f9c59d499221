/**
 * Property (fast-check) in Chromium, against a real CMP built from the IAB Tech Lab's
 * libraries (`test/chromium/tcf-cmp.ts`) and real IndexedDB: over random sequences of grant,
 * refuse, banner shown, banner closed and tracks,
 * - nothing stored survives a refusal: while purpose 1 is refused (or was never granted) the
 *   origin has no database and no spilled batch, and a new profiler starts empty;
 * - nothing computed is lost: the profile counts every event tracked, through refusals, grants
 *   and banners, and once purpose 1 is granted at the end a new profiler reads all of them back.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createProfiler, type Profiler } from "../../sdk/src/core";
import "../chromium/tcf-cmp";

type Step =
  | { kind: "grant" }
  | { kind: "refuse" }
  | { kind: "banner-shown" }
  | { kind: "banner-closed" }
  | { kind: "track"; count: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: "grant" }),
  fc.constant<Step>({ kind: "refuse" }),
  fc.constant<Step>({ kind: "banner-shown" }),
  fc.constant<Step>({ kind: "banner-closed" }),
  fc.integer({ min: 1, max: 3 }).map((count): Step => ({ kind: "track", count })),
);
/** Where the CMP starts: a stored grant, a stored refusal, or a first banner (no decision). */
const start = fc.constantFrom<number[] | "">([1], [], "");

let run = 0;

async function onDevice(dbName: string) {
  return {
    databases: (await indexedDB.databases()).flatMap((db) => (db.name === dbName ? [db.name] : [])),
    spills: Object.keys(localStorage).filter((key) => key.startsWith(`fedprofile:${dbName}:`)),
  };
}

const open = (dbName: string) => createProfiler({ dbName, tcfTimeoutMs: 50, flushIntervalMs: 0 });

describe("consent property (IAB CMP, real IndexedDB)", () => {
  it("nothing stored survives a refusal; nothing computed is lost by a banner or a re-grant", async () => {
    testCmp.load();
    await fc.assert(
      fc.asyncProperty(start, fc.array(step, { maxLength: 12 }), async (initial, steps) => {
        const dbName = `consent-property-${run++}-${crypto.randomUUID()}`;
        let decision: number[] | "" = initial;
        testCmp.update(decision, decision === "");
        let profiler: Profiler = open(dbName);
        let tracked = 0;
        try {
          await profiler.ready;
          for (const s of steps) {
            if (s.kind === "grant" || s.kind === "refuse") {
              decision = s.kind === "grant" ? [1] : [];
              testCmp.update(decision, false);
            } else if (s.kind === "banner-shown") {
              testCmp.update(decision, true);
            } else if (s.kind === "banner-closed") {
              testCmp.update(decision, false);
            } else {
              for (let i = 0; i < s.count; i++) {
                await profiler.track("Product Viewed", { product_id: `p${tracked++}` });
              }
            }
            // A flush runs after every reconcile the CMP's event queued.
            await profiler.flush();
            const granted = Array.isArray(decision) && decision.includes(1);
            const profile = await profiler.getProfile();
            expect(profile.eventCount).toBe(tracked);
            expect(profile.storage).toBe(granted ? "indexeddb" : "memory");
            const device = await onDevice(dbName);
            if (granted) expect(device.databases).toEqual([dbName]);
            else expect(device).toEqual({ databases: [], spills: [] });
          }
          await profiler.close();
          // A reload: what the device kept, read by a new profiler under the same CMP decision.
          profiler = open(dbName);
          const granted = Array.isArray(decision) && decision.includes(1);
          expect((await profiler.getProfile()).eventCount).toBe(granted ? tracked : 0);
          expect((await onDevice(dbName)).databases).toEqual(granted ? [dbName] : []);
        } finally {
          await profiler.forget();
          await profiler.close();
        }
      }),
      { numRuns: 100 },
    );
  }, 120_000);
});
