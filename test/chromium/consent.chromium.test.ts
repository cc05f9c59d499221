/**
 * Consent in real Chromium tabs: Global Privacy Control set (as Brave and Firefox expose
 * `navigator.globalPrivacyControl`; Chromium has no switch for it, so an init script defines it
 * before any page script runs, as those browsers do), and no CMP at all. The IAB TCF CMP cases
 * are in `tcf.chromium.test.ts`. Outcomes are read from the coordinator's request log and from
 * IndexedDB itself.
 */
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const TIMEOUT = { timeout: 60_000 };

async function profilerOn(page: Page, dbName: string) {
  await page.evaluate(
    async ({ dbName, endpoint, apiKey }) => {
      const log: string[] = [];
      const p = fedprofile.createProfiler({ dbName, endpoint, apiKey });
      p.on((event) => {
        if (event.type === "storage") log.push(`storage:${event.kind}`);
        if (event.type === "sync") log.push(`sync:${event.outcome.status}`);
      });
      Object.assign(globalThis, { p, log });
      await p.ready;
    },
    { dbName, endpoint: h.origin, apiKey: h.apiKey },
  );
}

const databases = (page: Page) =>
  page.evaluate(async () => (await indexedDB.databases()).map((db) => db.name));

async function reload(page: Page) {
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
}

async function withContext(
  init: (context: BrowserContext) => Promise<unknown>,
  test: (page: Page) => Promise<void>,
) {
  const context = await h.browser.newContext();
  try {
    await init(context);
    await test(await h.open(context));
  } finally {
    await context.close();
  }
}

describe("Global Privacy Control", () => {
  it("GPC set: tracking and profile work, sync sends nothing until the user opts in", TIMEOUT, async () => {
    await withContext(
      (context) =>
        context.addInitScript(() => {
          Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {
            get: () => true,
            configurable: true,
          });
        }),
      async (page) => {
        expect(await page.evaluate(() => Reflect.get(navigator, "globalPrivacyControl"))).toBe(true);
        await profilerOn(page, "gpc");
        const before = h.coordinatorRequests.length;
        const first = await page.evaluate(async () => {
          const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
          await p.track("Product Viewed", { product_id: "p1", category: "mugs" });
          return { consent: p.consentState(), outcome: await p.sync(), profile: await p.getProfile() };
        });
        expect(first.consent).toEqual({ storage: true, sync: false, publish: false });
        expect(first.outcome).toEqual({ status: "no-consent" });
        expect(first.profile.eventCount).toBe(1);
        expect(h.coordinatorRequests.length).toBe(before);

        const optedIn = await page.evaluate(async () => {
          const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
          await p.consent({ sync: true });
          return p.sync("activity");
        });
        expect(optedIn).toEqual({ status: "no-round", latestModelVersion: null });
        expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);

        // The opt-in is remembered on the device; GPC still turns publish off.
        await reload(page);
        await profilerOn(page, "gpc");
        expect(await page.evaluate(() => Reflect.get(globalThis, "p").consentState())).toEqual({
          storage: true,
          sync: true,
          publish: false,
        });
      },
    );
  });

  it("without GPC, sync reaches the coordinator by default", TIMEOUT, async () => {
    await withContext(
      async () => {},
      async (page) => {
        expect(await page.evaluate(() => "globalPrivacyControl" in navigator)).toBe(false);
        await profilerOn(page, "no-gpc");
        const before = h.coordinatorRequests.length;
        const outcome = await page.evaluate(() => Reflect.get(globalThis, "p").sync("activity"));
        expect(outcome).toEqual({ status: "no-round", latestModelVersion: null });
        expect(h.coordinatorRequests.slice(before)).toEqual(["/v1/checkin"]);
      },
    );
  });
});

describe("no CMP on the page", () => {
  it(
    "device storage is used once the CMP search times out, or at once with tcfApi: null",
    TIMEOUT,
    async () => {
      await withContext(
        async () => {},
        async (page) => {
          expect(await page.evaluate(() => "__tcfapi" in window)).toBe(false);
          const opened = (dbName: string, tcfApi: null | undefined) =>
            page.evaluate(
              async ({ dbName, tcfApi }) => {
                const started = performance.now();
                const p = fedprofile.createProfiler({ dbName, ...(tcfApi === null ? { tcfApi } : {}) });
                await p.ready;
                await p.track("Cart Viewed", {});
                await p.flush();
                const { storage } = await p.getProfile();
                await p.close();
                return { storage, ms: performance.now() - started };
              },
              { dbName, tcfApi },
            );
          const searched = await opened("tcf-absent", undefined);
          expect(searched.storage).toBe("indexeddb");
          expect(searched.ms).toBeGreaterThanOrEqual(500);
          const declared = await opened("tcf-none", null);
          expect(declared.storage).toBe("indexeddb");
          expect(declared.ms).toBeLessThan(500);
          expect(await databases(page)).toEqual(expect.arrayContaining(["tcf-absent", "tcf-none"]));
          expect(h.pageErrors).toEqual([]);
        },
      );
    },
  );
});
