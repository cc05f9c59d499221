/**
 * End to end, all real: Playwright drives Debian's Chromium on a storefront served from
 * 127.0.0.1; the page embeds the SDK (IndexedDB) and talks to a `wrangler dev` this test
 * starts and stops by PID. Three devices (three browser contexts) complete one round, and the
 * published model is their sum. Every request body is checked for raw events.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyLocalMigrations,
  type LocalCoordinator,
  seedLocalTenant,
  startLocalCoordinator,
  type TenantKeys,
} from "../../edge/scripts/local-dev";
import { type ExampleServer, startExampleServer } from "../../examples/serve";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";

let persistTo: string;
let coordinator: LocalCoordinator;
let examples: ExampleServer;
let browser: Browser;
let keys: TenantKeys;
const bodies: string[] = [];
let devices: Page[] = [];

type DemoWindow = {
  fedprofileDemo: {
    sync(modelId?: string): Promise<{ status: string; stage?: string; contributions?: number }>;
  };
};

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "fedprofile-e2e-"));
  await applyLocalMigrations(persistTo);
  keys = await seedLocalTenant(persistTo, "e2e-shop");
  coordinator = await startLocalCoordinator({ persistTo });
  examples = await startExampleServer({ config: { endpoint: coordinator.url, apiKey: keys.publishable } });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await examples?.close();
  await coordinator?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

async function openDevice(): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("request", (request) => {
    if (request.url().startsWith(coordinator.url)) bodies.push(request.postData() ?? "");
  });
  await page.goto(examples.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

describe("walking skeleton in Chromium against wrangler dev", () => {
  it("three browser devices complete a round and the published model is their sum", async () => {
    const open = await fetch(`${coordinator.url}/v1/rounds`, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" },
      body: JSON.stringify({
        v: 1,
        modelId: "activity",
        dimension: 2,
        minContributions: 3,
        maxContributions: 3,
        deadlineSeconds: 120,
      }),
    });
    expect(open.status).toBe(201);

    devices = [await openDevice(), await openDevice(), await openDevice()];
    // Device i views i+1 products and adds one to the cart; device 2 also checks out.
    const expectedEvents = [2, 3, 5];
    for (const [i, page] of devices.entries()) {
      for (let v = 0; v <= i; v++) await page.click(`button[data-action=view] >> nth=${v}`);
      await page.click("button[data-action=add] >> nth=0");
      if (i === 2) await page.click("#checkout");
      await page.waitForFunction(
        (n) => document.getElementById("profile")?.textContent?.includes(`"eventCount": ${n}`),
        expectedEvents[i],
      );
    }

    const outcomes = [];
    for (const page of devices)
      outcomes.push(
        await page.evaluate(() =>
          (
            window as unknown as {
              fedprofileDemo: { sync(modelId?: string): Promise<{ status: string; stage?: string }> };
            }
          ).fedprofileDemo.sync("activity"),
        ),
      );
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    expect(outcomes[2]?.stage).toBe("closed");

    const latest = await fetch(`${coordinator.url}/v1/models/activity/latest`, {
      headers: { authorization: `Bearer ${keys.secret}` },
    });
    const model = (await latest.json()) as { version: number; weights: string; contributions: number };
    expect(model).toMatchObject({ version: 1, contributions: 3 });
    expect(Array.from(decodeFloat64Vector(model.weights, 2))).toEqual([3, 10]);

    // The page itself can pull the new model.
    const pulled = await devices[0]!.evaluate(() =>
      (
        window as unknown as {
          fedprofileDemo: { profiler: { pullModel(): Promise<{ version: number } | null> } };
        }
      ).fedprofileDemo.profiler.pullModel(),
    );
    expect(pulled?.version).toBe(1);
  });

  it("the same three browser devices complete a SecAgg+ round: the coordinator learns only the sum", async () => {
    const clip = 64;
    const valueBits = 16;
    const open = await fetch(`${coordinator.url}/v1/rounds`, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" },
      body: JSON.stringify({
        v: 1,
        modelId: "activity",
        dimension: 2,
        minContributions: 3,
        maxContributions: 3,
        deadlineSeconds: 120,
        aggregation: "secagg",
        secagg: {
          encoding: { kind: "fixed-point", clip, valueBits },
          minShardSize: 3,
          k: 2,
          t: 2,
          stageSeconds: 30,
        },
      }),
    });
    expect(open.status, await open.clone().text()).toBe(201);

    // SecAgg stages need the cohort together: the three pages sync at once.
    const outcomes = await Promise.all(
      devices.map((page) =>
        page.evaluate(() => (window as unknown as DemoWindow).fedprofileDemo.sync("activity")),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);

    const latest = await fetch(`${coordinator.url}/v1/models/activity/latest`, {
      headers: { authorization: `Bearer ${keys.secret}` },
    });
    const model = (await latest.json()) as {
      version: number;
      weights: string;
      contributions: number;
      aggregation: string;
    };
    expect(model).toMatchObject({ version: 2, contributions: 3, aggregation: "secagg" });
    // Fixed-point with stochastic rounding: each device is off by less than one step.
    const step = (2 * clip) / (2 ** valueBits - 1);
    const [count, events] = Array.from(decodeFloat64Vector(model.weights, 2));
    expect(Math.abs((count as number) - 3)).toBeLessThan(3 * step);
    expect(Math.abs((events as number) - 10)).toBeLessThan(3 * step);
  });

  it("no request body carries a raw event, product id, order id or price", () => {
    expect(bodies.length).toBeGreaterThanOrEqual(9);
    const forbidden = [
      "Product Viewed",
      "Product Added",
      "Order Completed",
      "product_id",
      "order_id",
      "85123A",
      "22423",
      "revenue",
      "2.55",
      "GBP",
    ];
    for (const body of bodies) for (const needle of forbidden) expect(body).not.toContain(needle);
  });
});
