/**
 * End to end, all real: the recommendations (fcf) model on `wrangler dev` (fresh D1 and Durable
 * Object state, started and stopped by PID) with four Chromium devices on the storefront. The
 * operator only declares the model over the shop's public catalogue; its TrainerDO publishes the
 * seeded factors and opens every round by itself; each page solves its own user factor with tfjs
 * (WASM backend) and sends its clipped item-gradient vector through SecAgg+ with the distributed
 * discrete Gaussian. Each storefront then shows "Recommended for you" with the reason behind
 * "Why am I seeing this?", scored on the device. No request body a page sent carries a product
 * id, an order id or an event.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ModelDeclarationInput,
  ModelStatus,
  ModelVersion,
  StagePush,
  TrainingRoundPage,
} from "@fedprofile/coordinator/wire";
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
const ROUNDS = 2;
let persistTo: string;
let coordinator: LocalCoordinator;
let examples: ExampleServer;
let browser: Browser;
let keys: TenantKeys;
const bodies: Buffer[] = [];
const urls: string[] = [];
const operatorCalls: string[] = [];
/** Per page: the stage sockets it opened, with the frames it got and sent (issue 16, push). */
const sockets: Array<Array<{ url: string; received: string[]; sent: string[] }>> = [];

type DemoWindow = {
  fedprofileDemo: {
    sync(modelId?: string): Promise<{ status: string }>;
    profiler: {
      recommend(
        n: number,
      ): Promise<Array<{ productId: string; reason: { kind: string; productId?: string } }>>;
    };
  };
};

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), "fedprofile-e2e-recs-"));
  await applyLocalMigrations(persistTo);
  keys = await seedLocalTenant(persistTo, "e2e-recs");
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
  const opened: (typeof sockets)[number] = [];
  sockets.push(opened);
  page.on("websocket", (ws) => {
    const socket = { url: ws.url(), received: [] as string[], sent: [] as string[] };
    opened.push(socket);
    ws.on("framereceived", ({ payload }) => socket.received.push(payload.toString()));
    ws.on("framesent", ({ payload }) => socket.sent.push(payload.toString()));
  });
  page.on("request", (request) => {
    urls.push(request.url());
    const body = request.postDataBuffer();
    if (body) bodies.push(body);
  });
  await page.goto(examples.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

const syncAll = (pages: Page[]) =>
  Promise.all(
    pages.map((p) =>
      p.evaluate(() => (window as unknown as DemoWindow).fedprofileDemo.sync("recommendations")),
    ),
  );

/** Two tastes over the storefront's catalogue: devices 0 and 2 buy its first half, 1 and 3 the second. */
const boughtBy = (i: number) =>
  CATALOGUE.slice(i % 2 === 0 ? 0 : 3, i % 2 === 0 ? 3 : 6).map((item) => item.product_id);

describe("recommendations on wrangler dev: browser devices see on-device picks with reasons", () => {
  it("the trainer runs fcf rounds with four Chromium devices; each storefront shows its recommendations", async () => {
    const pages: Page[] = [];
    for (let i = 0; i < DEVICES; i++) pages.push(await openDevice());
    for (const [i, page] of pages.entries()) {
      for (const id of boughtBy(i)) {
        await page.click(`button[data-action=view][data-product="${id}"]`);
        await page.click(`button[data-action=add][data-product="${id}"]`);
      }
      await page.click("#checkout");
    }
    // Nothing to show before a model reached the device.
    expect(await pages[0]?.textContent("#recommendations-empty")).toMatch(/nothing yet/);

    const declaration: ModelDeclarationInput = {
      v: 1,
      kind: "fcf",
      spec: { rank: 4, blockSize: CATALOGUE.length, lambda: 1, alpha: 10 },
      catalogue: { items: CATALOGUE.map((c) => c.product_id), categories: CATALOGUE.map((c) => c.category) },
      // A handful of devices needs a large epsilon; the mechanism is the same at any ε.
      dp: { targetEpsilon: 60, population: 10_000 },
      cohort: { minDevices: DEVICES, maxDevices: DEVICES, maxShardSize: DEVICES, minShardSize: 2 },
      schedule: { stageSeconds: 15, maxRounds: ROUNDS, cadenceSeconds: 0 },
    };
    const put = await operator("PUT", "/v1/models/recommendations", declaration);
    expect(put.status, put.text).toBe(200);

    const deadline = Date.now() + 100_000;
    let status = ModelStatus.parse((await operator("GET", "/v1/models/recommendations")).json);
    while (status.trainer !== "stopped") {
      if (Date.now() > deadline) throw new Error(`training did not finish: ${JSON.stringify(status)}`);
      if (status.trainer === "in-round") await syncAll(pages);
      else await new Promise((r) => setTimeout(r, 250));
      status = ModelStatus.parse((await operator("GET", "/v1/models/recommendations")).json);
    }
    expect(status.stoppedReason).toMatch(/^max-rounds/);
    // Version 1 is the seeded initial factors; each round publishes the next.
    expect(status).toMatchObject({ latestVersion: 1 + ROUNDS, roundsOpened: ROUNDS });
    const history = TrainingRoundPage.parse(
      (await operator("GET", "/v1/models/recommendations/rounds")).json,
    );
    expect(history.rounds.map((r) => [r.phase, r.stage, r.contributors])).toEqual(
      Array.from({ length: ROUNDS }, () => ["train", "closed", DEVICES]),
    );
    expect(operatorCalls.filter((c) => c.startsWith("POST /v1/rounds"))).toEqual([]);
    const latest = ModelVersion.parse((await operator("GET", "/v1/models/recommendations/latest")).json);
    expect(latest).toMatchObject({ kind: "fcf", version: 1 + ROUNDS });

    await syncAll(pages);
    for (const [i, page] of pages.entries()) {
      await page.waitForSelector("#recommendations li");
      const shown = await page.$$eval("#recommendations li", (lis) =>
        lis.map((li) => ({
          product: li.getAttribute("data-product"),
          kind: li.getAttribute("data-reason"),
          name: li.querySelector("strong")?.textContent ?? "",
          why: li.querySelector("details summary")?.textContent ?? "",
          reason: li.querySelector(".reason")?.textContent ?? "",
        })),
      );
      const bought = boughtBy(i);
      const names = new Map(CATALOGUE.map((c) => [c.product_id, c.name]));
      expect(shown).toHaveLength(3);
      for (const pick of shown) {
        // Never what this visitor bought; the reason names one of its own purchases.
        expect(bought).not.toContain(pick.product);
        expect(pick.name).toBe(names.get(pick.product ?? ""));
        expect(pick.why).toBe("Why am I seeing this?");
        expect(pick.kind).toBe("similar");
        expect(bought.some((id) => pick.reason.includes(`Because you bought ${names.get(id)}`))).toBe(true);
      }
      // The panel is the SDK's own answer, computed on the device.
      const recs = await page.evaluate(() =>
        (window as unknown as DemoWindow).fedprofileDemo.profiler.recommend(3),
      );
      expect(recs.map((r) => r.productId)).toEqual(shown.map((s) => s.product));
      for (const r of recs) expect(bought).toContain(r.reason.productId);
    }

    // Chromium's own WebSocket held a stage socket to its shard in every round, and the shard
    // pushed this device's views over it; the device sends nothing on it.
    for (const opened of sockets) {
      expect(opened.length).toBeGreaterThanOrEqual(ROUNDS);
      for (const socket of opened) {
        expect(new URL(socket.url).protocol).toBe("ws:");
        expect(socket.sent).toEqual([]);
      }
      const pushed = opened.flatMap((socket) =>
        socket.received.map((text) => StagePush.parse(JSON.parse(text))),
      );
      expect(new Set(pushed.map((p) => p.view.roundId)).size).toBe(ROUNDS);
      expect(new Set(pushed.map((p) => p.view.stage))).toContain("unmask");
    }

    // The math ran on tfjs' WASM backend: the pages fetched its binary from the shop.
    expect(urls.some((u) => /\/wasm\/tfjs-backend-wasm(-simd)?\.wasm$/.test(u))).toBe(true);
    // Nothing the pages sent carries a product id, an order id or an event.
    expect(bodies.length).toBeGreaterThan(DEVICES * ROUNDS * 3);
    for (const body of bodies) {
      const text = body.toString("latin1");
      for (const item of CATALOGUE) expect(text).not.toContain(item.product_id);
      expect(text).not.toMatch(/Product Viewed|Product Added|Order Completed|order_id|demo-\d+-\d/);
    }
  });
});
