/**
 * End to end, all real: the segments model on `wrangler dev` (fresh D1 and Durable Object state,
 * started and stopped by PID) with four Chromium devices on the storefront. The operator only
 * declares the model; its TrainerDO opens the DP initialisation and the Lloyd round by itself
 * (the test never opens a round), the pages take part through SecAgg+ with the distributed
 * discrete Gaussian, and every device ends with a segment it computed itself from the published
 * centroids. No request body the pages sent carries an event, a product id or a profile value.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ModelDeclarationInput, ModelStatus, TrainingRoundPage } from "@fedprofile/coordinator/wire";
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
import { CATALOGUE } from "../../examples/storefront/catalogue";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";
import { callCoordinator } from "./coordinator-api";

const DEVICES = 4;
let persistTo: string;
let coordinator: LocalCoordinator;
let examples: ExampleServer;
let browser: Browser;
let keys: TenantKeys;
const bodies: Buffer[] = [];
const operatorCalls: string[] = [];

type DemoWindow = {
  fedprofileDemo: {
    sync(modelId?: string): Promise<{ status: string }>;
    profiler: {
      getProfile(): Promise<{ vector: number[]; segment: { label: string; version: number } | null }>;
    };
  };
};

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "fedprofile-e2e-segments-"));
  await applyLocalMigrations(persistTo);
  keys = await seedLocalTenant(persistTo, "e2e-segments");
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

const operator = (method: string, path: string, body?: unknown) => {
  operatorCalls.push(`${method} ${path}`);
  return callCoordinator(coordinator.url, method, path, keys.secret, body);
};

async function openDevice(): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on("request", (request) => {
    const body = request.postDataBuffer();
    if (body) bodies.push(body);
  });
  await page.goto(examples.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

const syncAll = (pages: Page[]) =>
  Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as DemoWindow).fedprofileDemo.sync())));

describe("segments on wrangler dev: a trainer that runs itself, browser devices that get a segment", () => {
  it("the trainer opens every round, four Chromium devices take part, each ends with its segment", async () => {
    const pages: Page[] = [];
    for (let i = 0; i < DEVICES; i++) pages.push(await openDevice());
    // Two shoppers who buy (several products), two who only look.
    for (const [i, page] of pages.entries()) {
      for (let v = 0; v < 2 + i; v++)
        await page.click(`button[data-action=view] >> nth=${(v + i) % CATALOGUE.length}`);
      if (i < 2) {
        for (let a = 0; a < 3; a++)
          await page.click(`button[data-action=add] >> nth=${(a + i) % CATALOGUE.length}`);
        await page.click("#checkout");
      }
    }

    const declaration: ModelDeclarationInput = {
      v: 1,
      kind: "kmeans",
      spec: { k: 2, init: { gridBins: 2, histogramBins: 8 } },
      // A handful of devices needs a large epsilon for a usable model; the mechanism is the same at any ε.
      dp: { targetEpsilon: 60, population: 10_000 },
      cohort: { minDevices: DEVICES, maxDevices: DEVICES, maxShardSize: DEVICES, minShardSize: 2 },
      schedule: { stageSeconds: 15, maxRounds: 1, cadenceSeconds: 0, untilConverged: false },
    };
    const put = await operator("PUT", "/v1/models/segments", declaration);
    expect(put.status, put.text).toBe(200);

    const deadline = Date.now() + 150_000;
    let status = ModelStatus.parse((await operator("GET", "/v1/models/segments")).json);
    while (status.trainer !== "stopped") {
      if (Date.now() > deadline) throw new Error(`training did not finish: ${JSON.stringify(status)}`);
      if (status.trainer === "in-round") await syncAll(pages);
      else await new Promise((r) => setTimeout(r, 250));
      status = ModelStatus.parse((await operator("GET", "/v1/models/segments")).json);
    }
    expect(status.stoppedReason).toMatch(/^max-rounds/);
    expect(status).toMatchObject({ latestVersion: 2, roundsOpened: 2 });

    const history = TrainingRoundPage.parse((await operator("GET", "/v1/models/segments/rounds")).json);
    expect(history.rounds.map((r) => [r.phase, r.stage, r.contributors])).toEqual([
      ["lloyd", "closed", DEVICES],
      ["init", "closed", DEVICES],
    ]);
    // The operator declared and watched; it never opened a round.
    expect(operatorCalls.filter((c) => c.startsWith("POST /v1/rounds"))).toEqual([]);

    await syncAll(pages);
    for (const page of pages) {
      await page.waitForFunction(() => document.getElementById("segment")?.dataset.segment !== undefined);
      const profile = await page.evaluate(() =>
        (window as unknown as DemoWindow).fedprofileDemo.profiler.getProfile(),
      );
      expect(profile.segment).toMatchObject({ version: 2 });
      expect(await page.textContent("#segment")).toContain(profile.segment?.label ?? "?");

      // Nothing the page sent carries a product id, an event name or a float64 of its profile vector.
      for (const body of bodies) {
        const text = body.toString("latin1");
        for (const item of CATALOGUE) expect(text).not.toContain(item.product_id);
        expect(text).not.toMatch(/Product Viewed|Order Completed|order_id/);
        for (const value of profile.vector.filter((v) => v !== 0)) {
          expect(body.includes(Buffer.from(Float64Array.of(value).buffer))).toBe(false);
        }
      }
    }
    expect(bodies.length).toBeGreaterThan(DEVICES * 8);
  });
});
