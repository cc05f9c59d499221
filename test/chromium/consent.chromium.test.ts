/**
 * Consent in real Chromium tabs: Global Privacy Control set (as Brave and Firefox expose
 * `navigator.globalPrivacyControl`; Chromium has no switch for it, so an init script defines it
 * before any page script runs, as those browsers do), and an IAB TCF v2 CMP present (a CMP
 * installed as `window.__tcfapi` by an init script, refusing, granting, or granting later) or
 * absent. Outcomes are read from the coordinator's request log and from IndexedDB itself.
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

/** Installs a TCF v2 CMP before page scripts run: `initial` is purpose 1 consent (null = undecided). */
function installCmp(context: BrowserContext, initial: boolean | null) {
  return context.addInitScript((initial: boolean | null) => {
    // Like a real CMP, the decision outlives the page (real ones keep the TC string in a cookie).
    const remembered = localStorage.getItem("test-cmp-consent");
    let consent = remembered === null ? initial : remembered === "true";
    const listeners = new Map<number, (tcData: unknown, success: boolean) => void>();
    let nextId = 1;
    const tcData = (listenerId: number, status: string) => ({
      tcString: "test",
      gdprApplies: true,
      cmpStatus: "loaded",
      eventStatus: status,
      listenerId,
      purpose: { consents: consent === null ? {} : { "1": consent, "2": consent } },
    });
    Object.assign(window, {
      __tcfapi(
        command: string,
        _version: number,
        callback: (data: unknown, success: boolean) => void,
        id?: number,
      ) {
        if (command === "addEventListener") {
          const listenerId = nextId++;
          listeners.set(listenerId, callback);
          setTimeout(
            () => callback(tcData(listenerId, consent === null ? "cmpuishown" : "tcloaded"), true),
            5,
          );
        } else if (command === "removeEventListener" && id !== undefined) {
          callback(listeners.delete(id), true);
        }
      },
      /** What the CMP's banner does when the user decides. */
      __cmpDecide(value: boolean) {
        consent = value;
        localStorage.setItem("test-cmp-consent", String(value));
        for (const [id, callback] of listeners) callback(tcData(id, "useractioncomplete"), true);
      },
    });
  }, initial);
}

describe("IAB TCF v2 CMP", () => {
  it(
    "present and refusing purpose 1: memory only, nothing reaches IndexedDB, nothing survives a reload",
    TIMEOUT,
    async () => {
      await withContext(
        (context) => installCmp(context, false),
        async (page) => {
          await profilerOn(page, "tcf-refused");
          const result = await page.evaluate(async () => {
            const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
            for (let i = 0; i < 5; i++) await p.track("Product Viewed", { product_id: `p${i}` });
            await p.flush();
            return { consent: p.consentState(), profile: await p.getProfile() };
          });
          expect(result.consent.storage).toBe(false);
          expect(result.profile).toMatchObject({ eventCount: 5, storage: "memory" });
          expect(await databases(page)).not.toContain("tcf-refused");
          await reload(page);
          await profilerOn(page, "tcf-refused");
          expect(
            await page.evaluate(async () => (await Reflect.get(globalThis, "p").getProfile()).eventCount),
          ).toBe(0);
          expect(await databases(page)).not.toContain("tcf-refused");
        },
      );
    },
  );

  it("present and granting purpose 1: the profile is stored and survives a reload", TIMEOUT, async () => {
    await withContext(
      (context) => installCmp(context, true),
      async (page) => {
        await profilerOn(page, "tcf-granted");
        await page.evaluate(async () => {
          const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
          for (let i = 0; i < 5; i++) await p.track("Product Added", { product_id: `p${i}` });
          await p.flush();
        });
        expect(await databases(page)).toContain("tcf-granted");
        await reload(page);
        await profilerOn(page, "tcf-granted");
        expect(await page.evaluate(() => Reflect.get(globalThis, "p").getProfile())).toMatchObject({
          eventCount: 5,
          storage: "indexeddb",
        });
      },
    );
  });

  it(
    "present, undecided, then the user accepts: what was tracked in memory moves to IndexedDB",
    TIMEOUT,
    async () => {
      await withContext(
        (context) => installCmp(context, null),
        async (page) => {
          await profilerOn(page, "tcf-later");
          await page.evaluate(async () => {
            const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
            for (let i = 0; i < 3; i++) await p.track("Product Viewed", { product_id: `p${i}` });
            await p.flush();
          });
          expect(await databases(page)).not.toContain("tcf-later");
          await page.evaluate(() => Reflect.get(window, "__cmpDecide")(true));
          await page.waitForFunction(() => Reflect.get(globalThis, "log").includes("storage:indexeddb"));
          await page.evaluate(async () => {
            const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
            await p.track("Order Completed", { order_id: "o1", revenue: 9 });
            await p.flush();
          });
          await reload(page);
          await profilerOn(page, "tcf-later");
          const profile = await page.evaluate(() => Reflect.get(globalThis, "p").getProfile());
          expect(profile).toMatchObject({ eventCount: 4, storage: "indexeddb" });
          expect(profile.features.frequency).toBe(1);
        },
      );
    },
  );

  it("absent: device storage is used without waiting for a CMP", TIMEOUT, async () => {
    await withContext(
      async () => {},
      async (page) => {
        expect(await page.evaluate(() => "__tcfapi" in window)).toBe(false);
        await profilerOn(page, "tcf-absent");
        await page.evaluate(async () => {
          const p: ReturnType<typeof fedprofile.createProfiler> = Reflect.get(globalThis, "p");
          await p.track("Cart Viewed", {});
          await p.flush();
        });
        expect(await databases(page)).toContain("tcf-absent");
        expect(h.pageErrors).toEqual([]);
      },
    );
  });
});
