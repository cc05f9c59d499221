/**
 * Consent with a real CMP in fresh Chromium contexts: the CMP is built only from the IAB Tech
 * Lab's TCF libraries (`tcf-cmp.ts`: stub, cmpapi, core, with a local vendor list), injected
 * into the top frame before any page script, or later, as a late CMP is. Outcomes are read from
 * IndexedDB itself, localStorage, the coordinator's request log, and the CMP's own listener
 * queue. Numbers in the test names are the cases of issue 17.
 */
import { join } from "node:path";
import { build } from "esbuild";
import type { BrowserContext, Frame, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProfilerOptions } from "../../sdk/src/core";
import { type Harness, startHarness } from "./harness";

let h: Harness;
let cmpScript: string;
beforeAll(async () => {
  h = await startHarness();
  const bundle = await build({
    entryPoints: [join(import.meta.dirname, "tcf-cmp.ts")],
    bundle: true,
    format: "iife",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  cmpScript = bundle.outputFiles[0]?.text ?? "";
});
afterAll(async () => {
  await h?.close();
});

const TIMEOUT = { timeout: 60_000 };

/** How the top frame's CMP starts: `stub` only, or loaded with a decision (`[]` refuses all). */
type CmpStart =
  | { stub: boolean; load: false }
  | { stub: boolean; load: true; initial: number[] | "" | null; gpc?: boolean };

async function cmpContext(start: CmpStart, gpc = false): Promise<BrowserContext> {
  const context = await h.browser.newContext();
  await context.addInitScript({ content: cmpScript });
  await context.addInitScript(
    ({ start, gpc }) => {
      if (gpc) {
        Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {
          get: () => true,
          configurable: true,
        });
      }
      if (window !== window.top) return; // the CMP lives in the top frame only
      if (start.stub) testCmp.stub();
      if (!start.load) return;
      testCmp.load();
      const remembered = testCmp.remembered();
      const initial = remembered ?? start.initial;
      // A first visit shows the banner (no TC string yet); a return visit loads the stored one.
      testCmp.update(initial, initial === "");
    },
    { start, gpc },
  );
  return context;
}

type Target = Page | Frame;

/** Creates `p` in `target` and records its storage, consent and sync events in `log`. */
async function profilerOn(target: Target, dbName: string, options: ProfilerOptions = {}) {
  await target.evaluate(
    async ({ dbName, endpoint, apiKey, options }) => {
      const log: string[] = [];
      const p = fedprofile.createProfiler({ dbName, endpoint, apiKey, ...options });
      p.on((event) => {
        if (event.type === "storage") log.push(`storage:${event.kind}`);
        if (event.type === "sync") log.push(`sync:${event.outcome.status}`);
      });
      Object.assign(globalThis, { fp: p, log });
      await p.ready;
    },
    { dbName, endpoint: h.origin, apiKey: h.apiKey, options },
  );
}

/** Tracks `n` events in `target`'s profiler and flushes them. */
const trackSome = (target: Target, n: number, prefix = "p") =>
  target.evaluate(
    async ({ n, prefix }) => {
      for (let i = 0; i < n; i++) await fp.track("Product Viewed", { product_id: `${prefix}${i}` });
      await fp.flush();
    },
    { n, prefix },
  );

const profileOf = (target: Target) =>
  target.evaluate(async () => {
    const profile = await fp.getProfile();
    return { eventCount: profile.eventCount, storage: profile.storage, consent: fp.consentState() };
  });

/** Database names of the origin, and the SDK's localStorage keys (spilled batches). */
const stored = (target: Target) =>
  target.evaluate(async () => ({
    databases: (await indexedDB.databases()).map((db) => db.name),
    spills: Object.keys(localStorage).filter((key) => key.startsWith("fedprofile:")),
  }));

const until = (target: Target, check: string) =>
  target.waitForFunction(check, undefined, { timeout: 10_000, polling: 20 });

async function reload(page: Page) {
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
}

declare global {
  /** The profiler `profilerOn` created in the page, and what it logged. */
  var fp: ReturnType<typeof fedprofile.createProfiler>;
  var log: string[];
}

async function withCmp(start: CmpStart, test: (page: Page) => Promise<void>, gpc = false) {
  const context = await cmpContext(start, gpc);
  try {
    await test(await h.open(context));
  } finally {
    await context.close();
  }
}

describe("IAB TCF v2.2 CMP (cmpapi + core + stub)", () => {
  it(
    "refusing purpose 1: memory only, nothing in IndexedDB or localStorage, nothing survives a reload",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: [] }, async (page) => {
        await profilerOn(page, "refused");
        await trackSome(page, 5);
        expect(await profileOf(page)).toEqual({
          eventCount: 5,
          storage: "memory",
          consent: { storage: false, sync: false, publish: false },
        });
        expect(await stored(page)).toEqual({ databases: [], spills: [] });
        await reload(page);
        await profilerOn(page, "refused");
        expect((await profileOf(page)).eventCount).toBe(0);
        expect((await stored(page)).databases).toEqual([]);
      });
    },
  );

  it(
    "granting purpose 1: stored, survives a reload; publish needs purposes 3 and 4 too",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: [1] }, async (page) => {
        await profilerOn(page, "granted");
        await trackSome(page, 5);
        expect(await profileOf(page)).toEqual({
          eventCount: 5,
          storage: "indexeddb",
          consent: { storage: true, sync: true, publish: false },
        });
        await page.evaluate(() => testCmp.decide([1, 3, 4]));
        await until(page, "fp.consentState().publish === true");
        await reload(page);
        await profilerOn(page, "granted");
        expect(await profileOf(page)).toEqual({
          eventCount: 5,
          storage: "indexeddb",
          consent: { storage: true, sync: true, publish: true },
        });
      });
    },
  );

  it(
    "a first banner, then the user accepts: memory until then, then everything in IndexedDB",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: "" }, async (page) => {
        await profilerOn(page, "later");
        await trackSome(page, 3);
        expect((await stored(page)).databases).toEqual([]);
        expect((await profileOf(page)).consent.storage).toBe(false);
        await page.evaluate(() => testCmp.decide([1]));
        await until(page, "log.includes('storage:indexeddb')");
        await trackSome(page, 1, "q");
        await reload(page);
        await profilerOn(page, "later");
        expect(await profileOf(page)).toMatchObject({ eventCount: 4, storage: "indexeddb" });
      });
    },
  );

  it("1. reopening the banner keeps the stored profile; only a refusal erases it", TIMEOUT, async () => {
    await withCmp({ stub: true, load: true, initial: [1] }, async (page) => {
      await profilerOn(page, "reopen");
      await trackSome(page, 3);
      // The banner is shown again over the standing TC string, then closed unchanged.
      await page.evaluate(() => testCmp.update([1], true));
      await page.waitForTimeout(100);
      expect(await profileOf(page)).toMatchObject({ eventCount: 3, storage: "indexeddb" });
      await page.evaluate(() => testCmp.update([1], false));
      await page.waitForTimeout(100);
      expect(await profileOf(page)).toMatchObject({ eventCount: 3, storage: "indexeddb" });
      expect((await stored(page)).databases).toEqual(["reopen"]);
      await reload(page);
      await profilerOn(page, "reopen");
      expect(await profileOf(page)).toMatchObject({ eventCount: 3, storage: "indexeddb" });
      // Reopened once more, and this time purpose 1 is refused: that is a withdrawal.
      await page.evaluate(() => testCmp.update([1], true));
      await page.evaluate(() => testCmp.decide([]));
      await until(page, "log.includes('storage:memory')");
      expect(await stored(page)).toEqual({ databases: [], spills: [] });
      expect(await profileOf(page)).toMatchObject({ eventCount: 3, storage: "memory" });
    });
  });

  it(
    "2. refuse, track, grant again: nothing tracked before or during the refusal is lost",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: [1] }, async (page) => {
        await profilerOn(page, "reconsent");
        await trackSome(page, 3);
        await page.evaluate(() => testCmp.decide([]));
        await until(page, "log.includes('storage:memory')");
        expect((await stored(page)).databases).toEqual([]);
        await trackSome(page, 1, "during");
        expect(await profileOf(page)).toMatchObject({ eventCount: 4, storage: "memory" });
        await page.evaluate(() => testCmp.decide([1]));
        await until(page, "log.filter((l) => l === 'storage:indexeddb').length === 2");
        expect(await profileOf(page)).toMatchObject({ eventCount: 4, storage: "indexeddb" });
        await trackSome(page, 1, "after");
        await reload(page);
        await profilerOn(page, "reconsent");
        expect(await profileOf(page)).toMatchObject({ eventCount: 5, storage: "indexeddb" });
      });
    },
  );

  it("3. a CMP that loads after the SDK, within the timeout: nothing is ever stored", TIMEOUT, async () => {
    await withCmp({ stub: false, load: false }, async (page) => {
      await page.evaluate(() => {
        setTimeout(() => {
          testCmp.load();
          testCmp.update([]);
        }, 200);
      });
      await profilerOn(page, "late-early");
      await trackSome(page, 3);
      expect(await profileOf(page)).toEqual({
        eventCount: 3,
        storage: "memory",
        consent: { storage: false, sync: false, publish: false },
      });
      expect(await page.evaluate(() => log)).not.toContain("storage:indexeddb");
      expect((await stored(page)).databases).toEqual([]);
    });
  });

  it(
    "3. a CMP that loads a second after the SDK and refuses: what was stored meanwhile is erased",
    TIMEOUT,
    async () => {
      await withCmp({ stub: false, load: false }, async (page) => {
        await profilerOn(page, "late");
        await trackSome(page, 3);
        // No CMP within the 500 ms timeout: the page is taken to have none, for now.
        expect((await stored(page)).databases).toEqual(["late"]);
        await page.waitForTimeout(500);
        await page.evaluate(() => {
          testCmp.stub();
          testCmp.load();
          testCmp.update([]);
        });
        await until(page, "log.includes('storage:memory')");
        expect(await stored(page)).toEqual({ databases: [], spills: [] });
        expect(await profileOf(page)).toEqual({
          eventCount: 3,
          storage: "memory",
          consent: { storage: false, sync: false, publish: false },
        });
      });
    },
  );

  it(
    "4. the CMP replaces the stub: its decisions arrive, and close() removes the listener from the CMP",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: false }, async (page) => {
        await page.evaluate(() => {
          setTimeout(() => {
            testCmp.load();
            testCmp.update([1]);
          }, 100);
        });
        await profilerOn(page, "stub");
        await trackSome(page, 2);
        expect(await profileOf(page)).toMatchObject({ eventCount: 2, storage: "indexeddb" });
        expect(await page.evaluate(() => testCmp.listeners())).toBe(1);
        await page.evaluate(() => testCmp.decide([]));
        await until(page, "log.includes('storage:memory')");
        await page.evaluate(() => fp.close());
        expect(await page.evaluate(() => testCmp.listeners())).toBe(0);
      });
    },
  );

  it(
    "5. a same-origin iframe reaches the top frame's CMP through __tcfapiLocator and postMessage",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: [] }, async (page) => {
        const frame = await openFrame(page);
        expect(await frame.evaluate(() => typeof Reflect.get(window, "__tcfapi"))).toBe("undefined");
        await profilerOn(frame, "framed");
        await trackSome(frame, 2);
        expect(await profileOf(frame)).toEqual({
          eventCount: 2,
          storage: "memory",
          consent: { storage: false, sync: false, publish: false },
        });
        expect((await stored(frame)).databases).toEqual([]);
        await page.evaluate(() => testCmp.decide([1]));
        await until(frame, "log.includes('storage:indexeddb')");
        expect(await profileOf(frame)).toMatchObject({ eventCount: 2, storage: "indexeddb" });
        expect(await page.evaluate(() => testCmp.listeners())).toBe(1);
        await frame.evaluate(() => fp.close());
        await until(page, "testCmp.listeners() === 0");
      });
    },
  );

  it("6. a purpose 1 refusal stops sync() unless tcfPurposes.sync says otherwise", TIMEOUT, async () => {
    await withCmp({ stub: true, load: true, initial: [] }, async (page) => {
      await profilerOn(page, "sync-refused");
      await trackSome(page, 2);
      const before = h.coordinatorRequests.length;
      expect(await page.evaluate(() => fp.sync("activity"))).toEqual({ status: "no-consent" });
      expect(h.coordinatorRequests.length).toBe(before);
      await reload(page);
      await profilerOn(page, "sync-refused", { tcfPurposes: { sync: [] } });
      expect(await page.evaluate(() => fp.consentState())).toEqual({
        storage: false,
        sync: true,
        publish: false,
      });
      expect(await page.evaluate(() => fp.sync("activity"))).toEqual({
        status: "no-round",
        latestModelVersion: null,
      });
      expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);
    });
  });

  it(
    "7. the CMP answered inside createProfiler: a listener attached later still gets the consent",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: true, initial: [1] }, async (page) => {
        const seen = await page.evaluate(async () => {
          const profiler = fedprofile.createProfiler({ dbName: "replay" });
          await profiler.ready;
          const typed: unknown[] = [];
          const all: unknown[] = [];
          profiler.on("consent", (event) => typed.push(event.consent));
          profiler.on((event) => {
            if (event.type === "consent") all.push(event.consent);
          });
          await new Promise((resolve) => setTimeout(resolve, 0));
          await profiler.close();
          return { typed, all, now: profiler.consentState() };
        });
        const granted = { storage: true, sync: true, publish: false };
        expect(seen).toEqual({ typed: [granted], all: [granted], now: granted });
      });
    },
  );

  it(
    "a CMP that never answers: ready within the timeout, nothing stored, nothing sent",
    TIMEOUT,
    async () => {
      await withCmp({ stub: true, load: false }, async (page) => {
        const started = Date.now();
        await profilerOn(page, "silent");
        expect(Date.now() - started).toBeLessThan(5_000);
        await trackSome(page, 2);
        expect(await profileOf(page)).toEqual({
          eventCount: 2,
          storage: "memory",
          consent: { storage: false, sync: false, publish: false },
        });
        const before = h.coordinatorRequests.length;
        expect(await page.evaluate(() => fp.sync("activity"))).toEqual({ status: "no-consent" });
        expect(h.coordinatorRequests.length).toBe(before);
        await page.waitForTimeout(600);
        expect(await stored(page)).toEqual({ databases: [], spills: [] });
      });
    },
  );

  it("gdprApplies false: TCF gates nothing", TIMEOUT, async () => {
    await withCmp({ stub: true, load: true, initial: null }, async (page) => {
      await profilerOn(page, "no-gdpr");
      await trackSome(page, 2);
      expect(await profileOf(page)).toEqual({
        eventCount: 2,
        storage: "indexeddb",
        consent: { storage: true, sync: true, publish: true },
      });
      const before = h.coordinatorRequests.length;
      expect(await page.evaluate(() => fp.sync("activity"))).toEqual({
        status: "no-round",
        latestModelVersion: null,
      });
      expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);
    });
  });

  it(
    "GPC with TCF: both must allow; an explicit opt-in lifts GPC, never a CMP refusal",
    TIMEOUT,
    async () => {
      await withCmp(
        { stub: true, load: true, initial: [1, 3, 4] },
        async (page) => {
          await profilerOn(page, "gpc-tcf");
          expect(await page.evaluate(() => fp.consentState())).toEqual({
            storage: true,
            sync: false,
            publish: false,
          });
          const before = h.coordinatorRequests.length;
          expect(await page.evaluate(() => fp.sync("activity"))).toEqual({ status: "no-consent" });
          expect(await page.evaluate(() => fp.consent({ sync: true }))).toEqual({
            storage: true,
            sync: true,
            publish: false,
          });
          expect(await page.evaluate(() => fp.sync("activity"))).toEqual({
            status: "no-round",
            latestModelVersion: null,
          });
          expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);
          await page.evaluate(() => testCmp.decide([]));
          await until(page, "fp.consentState().storage === false");
          expect(await page.evaluate(() => fp.consentState())).toEqual({
            storage: false,
            sync: false,
            publish: false,
          });
          expect(await page.evaluate(() => fp.sync("activity"))).toEqual({ status: "no-consent" });
          expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);
        },
        true,
      );
    },
  );
});

/** Adds a same-origin iframe running the SDK page and returns its frame. */
async function openFrame(page: Page): Promise<Frame> {
  await page.evaluate(() => {
    const iframe = document.createElement("iframe");
    iframe.name = "shop-widget";
    iframe.src = "/other";
    document.body.append(iframe);
  });
  const frame = await (await page.waitForSelector("iframe[name=shop-widget]")).contentFrame();
  if (!frame) throw new Error("the iframe has no frame");
  await frame.waitForSelector("body[data-ready=true]", { state: "attached" });
  return frame;
}
