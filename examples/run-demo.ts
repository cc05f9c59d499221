/**
 * The main job (`npm start`): on the embedded default, local `wrangler dev` with D1 and
 * Durable Objects state on disk, it
 *   1. applies the D1 migrations and seeds a demo tenant,
 *   2. starts the coordinator and serves the example storefront,
 *   3. drives a population of simulated devices (SDK instances in node, plus one real
 *      Chromium page when Chromium is installed) through real rounds, printing progress,
 *   4. prints each published model and checks it against the devices' own contributions.
 *
 * Options: --devices N (default 8) --rounds R (default 2) --serve (keep serving afterwards)
 *          --persist-to DIR (default .wrangler/state)
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { decodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { createProfiler, type Profiler } from "@fedprofile/sdk";
import { applyLocalMigrations, seedLocalTenant, startLocalCoordinator } from "../edge/scripts/local-dev";
import { startExampleServer } from "./serve";
import { CATALOGUE } from "./storefront/catalogue";

const CHROMIUM = "/usr/bin/chromium";
/** Device vectors are [1, events], clipped to ±1024 and encoded with 16 bits per value. */
const ENCODING = { kind: "fixed-point" as const, clip: 1024, valueBits: 16 };

const step = (text: string) => console.log(`\n▶ ${text}`);
const info = (text: string) => console.log(`  ${text}`);

/** Deterministic per-device browsing (mulberry32), so reruns tell the same story. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function browse(profiler: Profiler, random: () => number, orderPrefix: string): Promise<number> {
  let tracked = 0;
  const views = 1 + Math.floor(random() * 5);
  for (let i = 0; i < views; i++) {
    const item = CATALOGUE[Math.floor(random() * CATALOGUE.length)]!;
    await profiler.track("Product Viewed", {
      product_id: item.product_id,
      name: item.name,
      category: item.category,
      price: item.price,
    });
    tracked++;
    if (random() < 0.4) {
      await profiler.track("Product Added", {
        product_id: item.product_id,
        name: item.name,
        category: item.category,
        price: item.price,
        quantity: 1,
      });
      tracked++;
      if (random() < 0.5) {
        await profiler.track("Order Completed", {
          order_id: `${orderPrefix}-${i}`,
          revenue: item.price,
          currency: "GBP",
          products: [
            {
              product_id: item.product_id,
              name: item.name,
              category: item.category,
              price: item.price,
              quantity: 1,
            },
          ],
        });
        tracked++;
      }
    }
  }
  return tracked;
}

/** Runs the demo; `argv` takes the options listed above. Resolves to the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      devices: { type: "string", default: "8" },
      rounds: { type: "string", default: "2" },
      serve: { type: "boolean", default: false },
      "persist-to": { type: "string", default: ".wrangler/state" },
    },
  });
  const deviceCount = Math.max(3, Number(values.devices));
  const roundCount = Math.max(1, Number(values.rounds));
  const persistTo = values["persist-to"];
  let exitCode = 0;

  const started = Date.now();
  console.log(`fedprofile demo: ${deviceCount} devices, ${roundCount} rounds, state in ${persistTo}`);

  step("Applying D1 migrations and seeding the demo tenant");
  await applyLocalMigrations(persistTo);
  const keys = await seedLocalTenant(persistTo, "demo", "Demo storefront");
  info(`publishable key: ${keys.publishable}`);
  info(`secret key:      ${keys.secret}`);
  info(`auditor key:     ${keys.auditor}`);

  step("Starting the coordinator (wrangler dev, local D1 + Durable Objects)");
  const coordinator = await startLocalCoordinator({ persistTo });
  info(`coordinator: ${coordinator.url} (pid ${coordinator.pid})`);
  const examples = await startExampleServer({
    config: { endpoint: coordinator.url, apiKey: keys.publishable },
  });
  info(`storefront:  ${examples.url}/ (bundle ${(examples.bundleBytes / 1024).toFixed(1)} KiB minified)`);

  const stopAll = async () => {
    await examples.close();
    await coordinator.stop();
  };
  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));

  try {
    // Each node device may "lose its connection" (a mobile webview going offline): from then on
    // its SecAgg messages from masked-input onward never reach the coordinator.
    const offline = new Set<number>();
    const deviceFetch =
      (index: number): typeof fetch =>
      async (input, init) => {
        const frame = init?.body instanceof Uint8Array ? init.body : null;
        // Frame byte 5 is the SecAgg stage (0 advertise … 2 masked-input …).
        if (offline.has(index) && frame && (frame[5] ?? 0) >= 2)
          throw new TypeError("network connection lost");
        return fetch(input, init);
      };
    const nodeCount = existsSync(CHROMIUM) ? deviceCount - 1 : deviceCount;
    const nodeDevices = Array.from({ length: nodeCount }, (_, i) =>
      createProfiler({
        endpoint: coordinator.url,
        apiKey: keys.publishable,
        storage: "memory",
        fetch: deviceFetch(i),
      }),
    );
    const randoms = nodeDevices.map((_, i) => rng(1000 + i));
    const eventTotals = nodeDevices.map(() => 0);

    // One device is a real browser on the storefront, when Chromium is available.
    const browserDevice = nodeCount < deviceCount ? await openBrowserDevice(examples.url) : null;
    info(
      browserDevice
        ? "device 1 is headless Chromium on the storefront page"
        : "Chromium not found: all devices run in node",
    );
    const firstNode = browserDevice ? 2 : 1;
    const { clip, valueBits } = ENCODING;
    const quantum = (2 * clip) / (2 ** valueBits - 1);

    for (let round = 1; round <= roundCount; round++) {
      step(
        `Round ${round}/${roundCount}: devices browse, then run SecAgg+ (only the sum reaches the coordinator)`,
      );
      for (const [i, device] of nodeDevices.entries())
        eventTotals[i] = (eventTotals[i] ?? 0) + (await browse(device, randoms[i]!, `r${round}d${i}`));
      if (browserDevice) await browserDevice.browse(round);

      // In the last of several rounds one device drops out mid-round, to show recovery.
      const dropout = round === roundCount && roundCount > 1 ? nodeDevices.length - 1 : -1;
      offline.clear();
      if (dropout >= 0) offline.add(dropout);
      const stageSeconds = 5;
      const open = await fetch(`${coordinator.url}/v1/rounds`, {
        method: "POST",
        headers: { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" },
        body: JSON.stringify({
          v: 1,
          modelId: "activity",
          dimension: 2,
          minContributions: 3,
          maxContributions: deviceCount,
          deadlineSeconds: 120,
          aggregation: "secagg",
          secagg: { encoding: ENCODING, minShardSize: 3, k: 4, t: 3, stageSeconds },
        }),
      });
      if (open.status !== 201) throw new Error(`could not open a round: ${await open.text()}`);
      const opened = (await open.json()) as { roundId: string; secagg?: { shards: number } };
      info(
        `opened ${opened.roundId}: SecAgg+ over ${deviceCount} devices, k=4 neighbours, threshold t=3, ${stageSeconds} s per stage`,
      );
      if (dropout >= 0) info(`device ${dropout + firstNode} will lose its connection after sharing its keys`);

      let finished = 0;
      const report = (who: string, outcome: { status: string; stage?: string }) => {
        finished++;
        const bar = "█".repeat(finished).padEnd(deviceCount, "·");
        info(`[${bar}] ${who}: ${outcome.status}`);
      };
      // SecAgg stages need the cohort together: every device syncs at once.
      const contributed: number[] = [];
      await Promise.all([
        browserDevice
          ? browserDevice.sync().then((o) => {
              if (o.status === "contributed") contributed.push(-1);
              report("device 1 (Chromium)", o);
            })
          : Promise.resolve(),
        ...nodeDevices.map((device, i) =>
          device.sync().then(
            (o) => {
              if (o.status === "contributed") contributed.push(i);
              report(`device ${i + firstNode} (node)`, o);
            },
            (error: Error) =>
              report(`device ${i + firstNode} (node)`, { status: `dropped (${error.message})` }),
          ),
        ),
      ]);

      await waitFor(async () => {
        const status = (await (
          await fetch(`${coordinator.url}/v1/rounds/${opened.roundId}`, {
            headers: { authorization: `Bearer ${keys.secret}` },
          })
        ).json()) as { stage: string };
        return status.stage !== "collecting";
      }, 60_000);
      const latest = await fetch(`${coordinator.url}/v1/models/activity/latest`, {
        headers: { authorization: `Bearer ${keys.secret}` },
      });
      const model = (await latest.json()) as {
        version: number;
        weights: string;
        contributions: number;
        roundId: string;
      };
      if (model.roundId !== opened.roundId) throw new Error(`round ${opened.roundId} published nothing`);
      const [devicesSeen = 0, eventsSeen = 0] = Array.from(decodeFloat64Vector(model.weights, 2));
      const expectedDevices = contributed.length;
      const expectedEvents = contributed.reduce(
        (sum, i) => sum + (i < 0 ? (browserDevice?.events() ?? 0) : (eventTotals[i] ?? 0)),
        0,
      );
      const tolerance = expectedDevices * quantum;
      const ok =
        Math.abs(devicesSeen - expectedDevices) <= tolerance &&
        Math.abs(eventsSeen - expectedEvents) <= tolerance;
      info(
        `published activity v${model.version}: ≈${devicesSeen.toFixed(3)} devices, ≈${eventsSeen.toFixed(3)} events (sum of ${model.contributions} devices)`,
      );
      info(
        `devices' own count: ${expectedDevices} devices, ${expectedEvents} events → ${ok ? "match ✔" : "MISMATCH ✘"} (fixed-point tolerance ${tolerance.toFixed(4)})`,
      );
      if (!ok) exitCode = 1;
    }
    await browserDevice?.close();

    step(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (values.serve) {
      info(`still serving: storefront ${examples.url}/ → coordinator ${coordinator.url}. Ctrl-C to stop.`);
      await new Promise(() => {});
    }
  } finally {
    if (!values.serve) await stopAll();
  }
  return exitCode;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("timed out waiting for the round to close");
}

async function openBrowserDevice(storefront: string) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const page = await browser.newPage();
  await page.goto(storefront);
  await page.waitForSelector("body[data-ready=true]");
  let events = 0;
  return {
    events: () => events,
    async browse(round: number) {
      const before = events;
      await page.click(`button[data-action=view] >> nth=${round % CATALOGUE.length}`);
      await page.click(`button[data-action=add] >> nth=${round % CATALOGUE.length}`);
      await page.click("#checkout");
      events += 3;
      await page.waitForFunction(
        (n) => document.getElementById("profile")?.textContent?.includes(`"eventCount": ${n}`),
        events,
      );
      return events - before;
    },
    sync: () =>
      page.evaluate(() =>
        (
          window as unknown as { fedprofileDemo: { sync(): Promise<{ status: string; stage?: string }> } }
        ).fedprofileDemo.sync(),
      ),
    close: () => browser.close(),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();
