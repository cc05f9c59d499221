/**
 * The main job (`npm start`): on the embedded default, local `wrangler dev` with D1 and
 * Durable Objects state on disk, it
 *   1. applies the D1 migrations and seeds a demo tenant,
 *   2. starts the coordinator and serves the example storefront,
 *   3. drives a population of simulated devices (SDK instances in node, plus one real
 *      Chromium page when Chromium is installed) through real rounds, printing progress,
 *   4. prints each published model and checks it against the devices' own contributions,
 *   5. with DP (the default), sets the model's privacy budget first, prints the ledger entry of
 *      every round, shows the round past the budget refused before any device joins, trains the
 *      segments (k-means) and recommendations (FCF) models by their trainers, shows each device's
 *      recommendations with their reasons (the storefront's panel for the Chromium device), and
 *      runs `fedprofile audit verify` against the coordinator as an auditor would.
 *
 * Options: --devices N (default 8) --rounds R (default 2) --serve (keep serving afterwards)
 *          --persist-to DIR (default .wrangler/state)
 *          --dp distributed|central|off (default distributed: the distributed discrete Gaussian)
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import {
  createTokenIssuer,
  generateIssuerKeys,
  ISSUER_DIRECTORY_PATH,
} from "@fedprofile/coordinator/admission";
import { localStddev } from "@fedprofile/coordinator/dp";
import { isReleaseEntry, LEDGER_KEYS_PATH, LedgerEntry } from "@fedprofile/coordinator/ledger";
import { seededUniform } from "@fedprofile/coordinator/models";
import { decodeFloat64Vector, type ModelStatus } from "@fedprofile/coordinator/wire";
import {
  CoordinatorError,
  createAuditorClient,
  createOperatorClient,
  type OperatorClient,
} from "@fedprofile/protocol/client";
import { createProfiler, type Profiler, type SyncOutcome } from "@fedprofile/sdk";
import {
  applyLocalMigrations,
  ensureLocalSigningKey,
  REPO_ROOT,
  seedLocalTenant,
  startLocalCoordinator,
} from "../edge/scripts/local-dev";
import { customerEvents } from "../sdk/cli/replay";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../test/chromium";
import { loadCustomers, RETAIL_AS_OF } from "./eval/population";
import { nodeBlindSigner } from "./node-blind-signer";
import { startExampleServer } from "./serve";
import { CATALOGUE } from "./storefront/catalogue";

const execFileAsync = promisify(execFile);

const CHROMIUM = CHROMIUM_PATH;

/** Without DP, device vectors [1, events] are clipped to ±1024 and encoded with 16 bits per value. */
const ENCODING = { kind: "fixed-point" as const, clip: 1024, valueBits: 16 };
/** With DP: the L2 clip of [1, events], and the epsilon all `rounds` together are calibrated to. */
const DP_CLIP = 48;
const DP_TARGET_EPSILON = 4;
/** Users the model may ever see: the default delta is 1/population^1.1 (DESIGN.md). */
const POPULATION = 10_000;

const step = (text: string) => console.log(`\n▶ ${text}`);
const info = (text: string) => console.log(`  ${text}`);

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

/** `npm start -- --help` and `fedprofile simulate --help`. */
export const DEMO_HELP = `Usage: npm start -- [options]    (or: fedprofile simulate [options])

Runs the demo on local wrangler dev: seeds a tenant, starts the coordinator and the storefront,
and drives simulated devices through real SecAgg+ rounds with distributed DP, then audits the
privacy ledger.

Options:
  --devices N          devices per round, at least 3 (default 8)
  --rounds R           rounds, at least 1 (default 2)
  --dp MODE            distributed | central | off (default distributed)
  --serve              keep the coordinator and storefront running afterwards
  --persist-to DIR     wrangler state directory (default .wrangler/state)
  -h, --help           this help
`;

/** A whole number of at least `min`; the error names the option and the value. */
function countOption(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name}: ${raw} is not a number`);
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`--${name} must be a whole number of at least ${min}, got ${raw}`);
  return n;
}

/** Parses the demo's options strictly (node's util.parseArgs): an unknown option is an error. */
function parseDemoArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      devices: { type: "string", default: "8" },
      rounds: { type: "string", default: "2" },
      serve: { type: "boolean", default: false },
      "persist-to": { type: "string", default: ".wrangler/state" },
      dp: { type: "string", default: "distributed" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  return {
    ...values,
    devices: countOption("devices", values.devices, 3),
    rounds: countOption("rounds", values.rounds, 1),
  };
}

/** Runs the demo; `argv` takes the options listed above. Resolves to the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: ReturnType<typeof parseDemoArgs>;
  try {
    values = parseDemoArgs(argv);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}\n\n${DEMO_HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const mechanisms = {
    distributed: "distributed_discrete_gaussian",
    central: "central_gaussian",
    off: null,
  } as const;
  const dpOption = String(values.dp);
  if (!Object.hasOwn(mechanisms, dpOption)) {
    console.error(`error: --dp must be distributed, central or off, not ${dpOption}\n\n${DEMO_HELP}`);
    return 2;
  }
  const mechanism = mechanisms[dpOption as keyof typeof mechanisms];
  const deviceCount = values.devices;
  const roundCount = values.rounds;
  const persistTo = values["persist-to"];
  let exitCode = 0;

  const started = Date.now();
  console.log(`fedprofile demo: ${deviceCount} devices, ${roundCount} rounds, state in ${persistTo}`);

  step("Applying D1 migrations and seeding the demo tenant");
  await applyLocalMigrations(persistTo);
  // A tenant per run: its models' budgets and ledger chains start empty, so every run can show
  // a budget being spent and then refusing a round.
  const tenantId = `demo-${Date.now().toString(36)}`;
  const keys = await seedLocalTenant(persistTo, tenantId, "Demo storefront");
  info(`tenant:          ${tenantId}`);
  info(`publishable key: ${keys.publishable}`);
  info(`secret key:      ${keys.secret}`);
  info(`auditor key:     ${keys.auditor}`);

  step("Starting the coordinator (wrangler dev, local D1 + Durable Objects)");
  const coordinator = await startLocalCoordinator({ persistTo });
  info(`coordinator: ${coordinator.url} (pid ${coordinator.pid})`);
  // The shop's own Privacy Pass issuer: one token per round joined, so a customer's quota is the
  // demo's rounds: the activity rounds, the segments model's init and two Lloyd rounds, and the
  // recommendations model's rounds.
  const roundsJoined = roundCount + 3 + RECS_ROUNDS;
  const issuerKeys = await generateIssuerKeys();
  const issuer = await createTokenIssuer({
    name: "demo-shop.example",
    keys: issuerKeys,
    // The RSA private operation on OpenSSL: ~5 ms a token instead of 0.5-2 s in JavaScript.
    blindSign: nodeBlindSigner(issuerKeys),
    limits: { perCustomer: roundsJoined, perClient: roundsJoined },
  });
  const examples = await startExampleServer({
    config: { endpoint: coordinator.url, apiKey: keys.publishable },
    issuer,
    // The shop publishes its coordinator's ledger key on its own origin, for auditors to pin.
    ledgerPublicKey: ensureLocalSigningKey().publicKey,
  });
  info(`storefront:  ${examples.url}/ (bundle ${(examples.bundleBytes / 1024).toFixed(1)} KiB minified)`);
  info(
    `compliance:  ${examples.url}/compliance/ (verifies the ledger in the browser; paste the auditor key)`,
  );

  const operator = createOperatorClient({ endpoint: coordinator.url, apiKey: keys.secret });
  // Registered before any round opens: every demo round admits devices by token only.
  const registered = await operator.registerAdmissionIssuer(issuer.registration());
  info(
    `admission:   Privacy Pass issuer ${registered.issuerName} (key id ${registered.keyId.slice(0, 12)}…)`,
  );
  const auditor = createAuditorClient({ endpoint: coordinator.url, apiKey: keys.auditor });
  // The SDK's walking-skeleton model: every device contributes [1, events].
  const modelId = "activity";
  const noiseShares = Math.max(3, deviceCount - 2);
  const roundRequest = (rounds = roundCount) => ({
    v: 1 as const,
    modelId,
    dimension: 2,
    minContributions: 3,
    maxContributions: deviceCount,
    deadlineSeconds: 120,
    aggregation: "secagg" as const,
    // 8 s stages: the join window is the first stage, and every device first gets its admission
    // token from the shop's issuer (blinding ~0.1 s on the device, ~5 ms to sign on OpenSSL).
    secagg: { ...(mechanism ? {} : { encoding: ENCODING }), minShardSize: 3, k: 4, t: 3, stageSeconds: 8 },
    ...(mechanism
      ? {
          dp: {
            mechanism,
            clipNorm: DP_CLIP,
            targetEpsilon: DP_TARGET_EPSILON,
            rounds,
            modulusBits: 24,
            // Calibrate for all but two devices rather than t = 3: less noise, and the round
            // still survives the dropout shown in the last round.
            minNoiseShares: noiseShares,
          },
        }
      : {}),
  });

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
        privacyPolicy: "development",
        apiKey: keys.publishable,
        storage: "memory",
        currency: "GBP",
        fetch: deviceFetch(i),
        // Each simulated device is a logged-in customer of the shop (the header stands for its session).
        admission: {
          directoryUrl: `${examples.url}${ISSUER_DIRECTORY_PATH}`,
          fetch: (input, init) =>
            fetch(input, {
              ...init,
              headers: {
                ...Object.fromEntries(new Headers(init?.headers)),
                "x-demo-customer": `customer-${i}`,
              },
            }),
        },
        // A device that lost its connection gives up after 5 s (default 90 s) so the demo moves on.
        syncRetry: { windowMs: 5_000 },
      }),
    );
    const randoms = nodeDevices.map((_, i) => seededUniform(1000 + i));
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

    if (mechanism) {
      step(`Setting ${modelId}'s privacy budget (operator, secret key)`);
      const cap = DP_TARGET_EPSILON * 1.05;
      const budget = await operator.setBudget(modelId, { v: 1, epsilonCap: cap, population: POPULATION });
      info(
        `epsilon cap ${cap}, delta ${budget.delta.toExponential(2)} (1/population^1.1, population ${POPULATION}); ` +
          `${roundCount} round(s) calibrated to epsilon ${DP_TARGET_EPSILON} in all, for ${noiseShares} noise shares per sum`,
      );
    }

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
      const opened = await operator.openRound(roundRequest());
      info(
        `opened ${opened.roundId}: SecAgg+ over ${deviceCount} devices, k=4 neighbours, threshold t=3, ${opened.secagg?.stageSeconds} s per stage`,
      );
      const dp = opened.dp;
      if (dp) {
        const local =
          dp.mechanism === "distributed_discrete_gaussian"
            ? `each device adds discrete Gaussian noise of stddev ${localStddev(dp).toFixed(2)} before masking`
            : `the coordinator adds Gaussian noise (multiplier ${dp.noiseMultiplier.toFixed(3)}) after unmasking`;
        info(`DP: ${dp.mechanism}, clip ${dp.clipNorm}, ${dp.modulusBits}-bit modulus; ${local}`);
        if (round === 1)
          info(
            `(calibrated for ${noiseShares} noise shares: a sum over fewer is never unmasked; with a handful of devices the noise still swamps the signal, DP needs big cohorts)`,
          );
      }
      if (dropout >= 0) info(`device ${dropout + firstNode} will lose its connection after sharing its keys`);

      let finished = 0;
      const report = (who: string, outcome: { status: string; stage?: string; reason?: string }) => {
        finished++;
        const bar = "█".repeat(finished).padEnd(deviceCount, "·");
        const why = outcome.status === "contributed" || !outcome.reason ? "" : ` (${outcome.reason})`;
        info(`[${bar}] ${who}: ${outcome.status}${why}`);
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
          device.sync("activity").then(
            (o) => {
              if (o.status === "contributed") contributed.push(i);
              report(`device ${i + firstNode} (node)`, o);
            },
            (error: Error) =>
              report(`device ${i + firstNode} (node)`, { status: `dropped (${error.message})` }),
          ),
        ),
      ]);

      await waitFor(async () => (await operator.roundStatus(opened.roundId)).stage !== "collecting", 60_000);
      const model = await operator.latestModel(modelId);
      if (model?.roundId !== opened.roundId) throw new Error(`round ${opened.roundId} published nothing`);
      const [devicesSeen = 0, eventsSeen = 0] = Array.from(decodeFloat64Vector(model.weights, 2));
      const expectedDevices = contributed.length;
      const expectedEvents = contributed.reduce(
        (sum, i) => sum + (i < 0 ? (browserDevice?.events() ?? 0) : (eventTotals[i] ?? 0)),
        0,
      );
      // DP: the published sum carries the noise; 6 standard deviations (plus rounding) bound it.
      const noiseSd = !dp
        ? 0
        : dp.mechanism === "distributed_discrete_gaussian"
          ? Math.sqrt(model.contributions) * localStddev(dp)
          : dp.noiseMultiplier * dp.clipNorm;
      const tolerance = dp ? 6 * noiseSd + expectedDevices * dp.gamma : expectedDevices * quantum;
      const ok =
        Math.abs(devicesSeen - expectedDevices) <= tolerance &&
        Math.abs(eventsSeen - expectedEvents) <= tolerance;
      info(
        `published ${modelId} v${model.version}: ≈${devicesSeen.toFixed(3)} devices, ≈${eventsSeen.toFixed(3)} events (sum of ${model.contributions} devices${dp ? ", noised" : ""})`,
      );
      info(
        `devices' own count: ${expectedDevices} devices, ${expectedEvents} events → ${ok ? "match ✔" : "MISMATCH ✘"} (${dp ? `DP noise stddev ${noiseSd.toFixed(2)}, tolerance 6σ = ${tolerance.toFixed(2)}` : `fixed-point tolerance ${tolerance.toFixed(4)}`})`,
      );
      if (!ok) exitCode = 1;
      if (dp) {
        const page = await auditor.ledgerPage({ model: modelId, limit: 500 });
        const entry = page.entries
          .map((e) => LedgerEntry.parse(e))
          .filter(isReleaseEntry)
          .find((e) => e.roundId === opened.roundId);
        if (!entry) throw new Error(`the ledger has no entry for round ${opened.roundId}`);
        info(
          `ledger #${entry.seq} (${entry.trustModel} trust): ${entry.cohort.survivors} survivors, ${entry.noise.noiseShares ?? "-"} noise shares counted; ` +
            `cumulative epsilon ${entry.cumulative.epsilon.toFixed(3)} of ${entry.budget.epsilonCap.toFixed(2)} (delta ${entry.cumulative.delta.toExponential(2)}), hash ${entry.hash.slice(0, 12)}…`,
        );
      }
    }

    if (mechanism) {
      step(`One more round, calibrated to epsilon ${DP_TARGET_EPSILON} on its own: past the cap`);
      const refused = await operator.openRound(roundRequest(1)).then(
        (round) => new Error(`round ${round.roundId} opened`),
        (error: unknown) => error,
      );
      if (refused instanceof CoordinatorError && refused.code === "privacy_budget_exceeded") {
        info(`refused before any device joined (HTTP ${refused.status}): ${refused.message}`);
      } else {
        info(`expected a 409 privacy_budget_exceeded, got: ${String(refused)}`);
        exitCode = 1;
      }

      // Both models' steps read the Online Retail customers: parse the file once.
      const customers = await loadCustomers(join(REPO_ROOT, "examples/data/online_retail.csv.gz"));
      await trainSegments({
        customers,
        coordinatorUrl: coordinator.url,
        operator,
        devices: nodeDevices,
        browser: browserDevice,
        deviceCount,
      }).catch((error: Error) => {
        info(`segments FAILED: ${error.message}`);
        exitCode = 1;
      });
      await trainRecommendations({
        customers,
        operator,
        devices: nodeDevices,
        browser: browserDevice,
        deviceCount,
      }).catch((error: Error) => {
        info(`recommendations FAILED: ${error.message}`);
        exitCode = 1;
      });

      step("Audit: `fedprofile audit verify` against the coordinator, as a compliance team would");
      const key = await auditor.publicKey();
      const budget = await auditor.budget(modelId);
      info(
        `coordinator key ${key.keyId} (Ed25519); budget: epsilon ${budget.epsilonSpent.toFixed(3)} spent, ${budget.remaining.toFixed(3)} left`,
      );
      info(`ledger public key (pin it with --public-key): ${key.publicKey}`);
      info(`the shop publishes it with its fingerprint at ${examples.url}${LEDGER_KEYS_PATH} (--keys-url)`);
      info(
        `verify it yourself: npx fedprofile audit verify --url ${coordinator.url} --auditor-key ${keys.auditor} --public-key ${key.publicKey}`,
      );
      try {
        // Asynchronous: the shop's key file is served by this process's examples server.
        const { stdout: out } = await execFileAsync(
          process.execPath,
          [
            "bin/fedprofile.mjs",
            "audit",
            "verify",
            "--url",
            coordinator.url,
            "--keys-url",
            `${examples.url}${LEDGER_KEYS_PATH}`,
          ],
          {
            env: { ...process.env, FEDPROFILE_AUDITOR_KEY: keys.auditor },
            cwd: REPO_ROOT,
            encoding: "utf8",
          },
        );
        for (const line of out.trimEnd().split("\n")) info(`│ ${line}`);
      } catch (error) {
        // Show what the CLI said: its verdict and the row it names.
        const said = (error as { stdout?: unknown; stderr?: unknown }) ?? {};
        for (const text of [said.stdout, said.stderr])
          if (typeof text === "string") for (const line of text.trimEnd().split("\n")) info(`│ ${line}`);
        info(`audit verify FAILED: ${error instanceof Error ? error.message : String(error)}`);
        exitCode = 1;
      }
    }
    await browserDevice?.close();

    step(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (values.serve) {
      info(
        `still serving: storefront ${examples.url}/ and compliance dashboard ${examples.url}/compliance/ → coordinator ${coordinator.url}. Ctrl-C to stop.`,
      );
      await new Promise(() => {});
    }
  } finally {
    if (!values.serve) await stopAll();
  }
  return exitCode;
}

/** k-means with a handful of devices: ε is large because DP needs big cohorts (the eval shows N = 4,338 to 100,000). */
const SEGMENTS_EPSILON = 30;

/**
 * Segments: the operator declares a k-means model once; its trainer (a Durable Object) opens the
 * DP initialisation and every Lloyd round by itself. The node devices carry real purchase
 * histories (UCI Online Retail customers, tracked with their own timestamps); the browser device
 * carries what it clicked on the storefront.
 */
async function trainSegments(context: {
  customers: Awaited<ReturnType<typeof loadCustomers>>;
  coordinatorUrl: string;
  operator: OperatorClient;
  devices: Profiler[];
  browser: Awaited<ReturnType<typeof openBrowserDevice>> | null;
  deviceCount: number;
}) {
  const { operator, devices, browser, deviceCount } = context;
  step("Segments: devices replay real customers' orders (UCI Online Retail) on the device");
  const { customers } = context;
  const buyers = customers.filter((c) => c.some((invoice) => !invoice.refund));
  const offset = RETAIL_AS_OF - Date.now();
  for (const [i, device] of devices.entries()) {
    const invoices = buyers[(i * 541) % buyers.length] ?? [];
    for (const event of customerEvents(invoices)) {
      // Shifted so the customer's last day in the data set is today.
      await device.track(event.name, event.properties, { timestamp: event.t - offset });
    }
    const profile = await device.getProfile();
    const f = profile.features;
    info(
      `device ${i + (browser ? 2 : 1)}: ${invoices.length} invoices → ${f.frequency} orders, £${f.monetary.toFixed(0)}, last order ${f.recencyDays?.toFixed(0) ?? "-"} days ago`,
    );
  }

  step("Segments: declaring the k-means model (operator, secret key); its trainer takes it from here");
  const declaration = {
    v: 1 as const,
    kind: "kmeans" as const,
    spec: { k: 3, init: { gridBins: 3, histogramBins: 16 } },
    dp: { targetEpsilon: SEGMENTS_EPSILON, population: POPULATION },
    cohort: {
      minDevices: Math.max(3, deviceCount - 1),
      maxDevices: deviceCount,
      maxShardSize: deviceCount,
      minShardSize: 3,
    },
    schedule: { stageSeconds: 8, maxRounds: 2, cadenceSeconds: 0, untilConverged: false },
  };
  await operator.declareModel("segments", declaration);
  info(
    `k = 3 over the 9-field profile vector; DP initialisation + 2 Lloyd rounds, ε ${SEGMENTS_EPSILON} for the whole training (distributed discrete Gaussian)`,
  );
  await followTrainer({
    operator,
    modelId: "segments",
    async showVersion(shown) {
      const latest = await operator.latestModel("segments");
      if (!latest) throw new Error(`segments v${shown} is listed but not served`);
      const params = latest.params?.kind === "kmeans" ? latest.params : null;
      info(`published segments v${latest.version} (${params?.phase}, iteration ${params?.iteration}):`);
      for (const s of params?.segments ?? []) {
        info(
          `  ${s.id}. ${s.label.padEnd(28)} ≈${String(s.size).padStart(3)} devices · ${s.real.recency.toFixed(0)} days since the last order · ${s.real.frequency.toFixed(1)} orders · £${s.real.monetary.toFixed(0)}`,
        );
      }
    },
    roundLabel: (now) => `${now.phase}${now.phase === "lloyd" ? ` ${now.iteration + 1}` : ""}`,
    sync: () =>
      Promise.all([
        ...(browser ? [browser.sync("*")] : []),
        ...devices.map((d) => d.sync().catch((e: Error) => ({ status: `failed: ${e.message}` }))),
      ]),
  });
  // One more sync pulls the newest version; every device reads its own segment.
  await Promise.all([...devices.map((d) => d.sync()), ...(browser ? [browser.sync("*")] : [])]);
  const profiles = await Promise.all(devices.map((d) => d.getProfile()));
  for (const [i, p] of profiles.entries()) {
    info(
      `device ${i + (browser ? 2 : 1)} (node): ${p.segment ? `${p.segment.label} (v${p.segment.version})` : "no segment"}; tags ${p.tags.join(", ") || "-"}`,
    );
  }
  if (browser) info(`device 1 (Chromium): ${await browser.segment()}`);
  if (profiles.some((p) => !p.segment)) throw new Error("a device has no segment");
}

/** FCF with a handful of devices: like the segments, ε is large because DP needs big cohorts. */
const RECS_EPSILON = 30;
const RECS_ROUNDS = 2;

/**
 * Recommendations: the operator declares an fcf model over the shop's public catalogue (the
 * storefront's products and the data set's most bought StockCodes); its trainer publishes seeded
 * factors and opens every round. Each device solves its own user factor against them (it never
 * leaves the device) and sends its clipped item-gradient vector through SecAgg+ with the
 * distributed discrete Gaussian; then each device ranks the catalogue on the device.
 */
async function trainRecommendations(context: {
  customers: Awaited<ReturnType<typeof loadCustomers>>;
  operator: OperatorClient;
  devices: Profiler[];
  browser: Awaited<ReturnType<typeof openBrowserDevice>> | null;
  deviceCount: number;
}) {
  const { operator, devices, browser, deviceCount } = context;
  step("Recommendations: declaring the fcf model over the public catalogue; its trainer takes it from here");
  const { customers } = context;
  const buyers = new Map<string, { count: number; category: string | null }>();
  for (const invoices of customers) {
    const seen = new Set<string>();
    for (const invoice of invoices)
      for (const p of invoice.refund ? [] : invoice.products)
        if (p.product_id && !seen.has(p.product_id)) {
          seen.add(p.product_id);
          const b = buyers.get(p.product_id) ?? { count: 0, category: p.category ?? null };
          b.count++;
          buyers.set(p.product_id, b);
        }
  }
  const shop = CATALOGUE.map((item) => item.product_id);
  const top = [...buyers.entries()]
    // Products only: StockCodes start with five digits (POST, DOT, M … are postage and fees).
    .filter(([id]) => !shop.includes(id) && /^\d{5}/.test(id))
    .sort((a, b) => b[1].count - a[1].count)
    .slice(0, 120 - shop.length);
  const items = [...shop, ...top.map(([id]) => id)];
  const categories = [...CATALOGUE.map((item) => item.category), ...top.map(([, b]) => b.category)];
  await operator.declareModel("recommendations", {
    v: 1,
    kind: "fcf",
    spec: { rank: 8, blockSize: items.length, lambda: 1, alpha: 10 },
    catalogue: { items, categories },
    dp: { targetEpsilon: RECS_EPSILON, population: POPULATION },
    cohort: {
      minDevices: Math.max(3, deviceCount - 1),
      maxDevices: deviceCount,
      maxShardSize: deviceCount,
      minShardSize: 3,
    },
    // Stages end early once every device answered; 15 s leaves room for a slow first tfjs start.
    schedule: { stageSeconds: 15, maxRounds: RECS_ROUNDS, cadenceSeconds: 0 },
  });
  info(
    `${items.length} items (the storefront's ${shop.length} and the data set's most bought), rank 8, ${RECS_ROUNDS} rounds, ε ${RECS_EPSILON} for the whole training; the catalogue is public, what each device touched is not`,
  );
  // Each device fetches v1 (seeded, untrained factors) and starts tfjs before the first round.
  await Promise.all(devices.map((d) => d.pullModel("recommendations").then(() => d.recommend(1))));
  info("v1 (the seeded, untrained factors) is on every node device, and tfjs has started there");
  await followTrainer({
    operator,
    modelId: "recommendations",
    async showVersion() {
      const latest = await operator.latestModel("recommendations");
      const params = latest?.params?.kind === "fcf" ? latest.params : null;
      info(
        `published recommendations v${latest?.version} (${params?.iteration ?? 0} rounds applied; int8 factors ${latest ? Math.ceil((latest.weights.length * 3) / 4) : 0} B)`,
      );
    },
    roundLabel: (now) => `fcf ${now.iteration + 1}/${RECS_ROUNDS}`,
    sync: () =>
      Promise.all([
        ...(browser ? [browser.sync("recommendations")] : []),
        ...devices.map((d) =>
          d.sync("recommendations").catch((e: Error) => ({ status: `failed: ${e.message}` })),
        ),
      ]),
  });
  await Promise.all(devices.map((d) => d.pullModel("recommendations")));
  for (const [i, device] of devices.slice(0, 3).entries()) {
    const picks = await device.recommend(3);
    info(
      `device ${i + (browser ? 2 : 1)} (node): ${picks.map((p) => `${p.productId} (${p.reason.text})`).join("; ") || "none"}`,
    );
    if (picks.length === 0) throw new Error("a device has no recommendation");
  }
  if (browser) {
    await browser.sync("recommendations");
    info(`device 1 (Chromium), the storefront's panel: ${(await browser.recommendations()).join("; ")}`);
  }
}

/**
 * Follows a declared model's trainer until it stops: shows each version it publishes, and has
 * the devices sync in each round it opens. Three rounds in a row that nobody could join stop the
 * demo with the devices' outcomes (such a round would repeat forever).
 */
async function followTrainer(o: {
  operator: OperatorClient;
  modelId: string;
  showVersion: (version: number) => Promise<void>;
  roundLabel: (status: ModelStatus) => string;
  sync: () => Promise<Array<SyncOutcome | { status: string }>>;
}) {
  const status = () => o.operator.modelStatus(o.modelId);
  const deadline = Date.now() + 300_000;
  let shown = 0;
  let emptyRounds = 0;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${o.modelId} training did not finish in 5 minutes`);
    const now = await status();
    if ((now.latestVersion ?? 0) > shown) {
      shown = now.latestVersion ?? 0;
      await o.showVersion(shown);
    }
    if (now.trainer === "stopped") {
      info(`trainer stopped: ${now.stoppedReason}`);
      return;
    }
    if (now.trainer !== "in-round") {
      await new Promise((r) => setTimeout(r, 300));
      continue;
    }
    info(`round ${now.currentRound} (${o.roundLabel(now)}) opened by the trainer: devices sync`);
    const statuses = (await o.sync()).map((x) =>
      "outcomes" in x ? (x.outcomes[0]?.outcome.status ?? "no-round") : x.status,
    );
    const contributed = statuses.filter((x) => x === "contributed").length;
    info(`  ${contributed}/${statuses.length} devices contributed`);
    emptyRounds = contributed === 0 ? emptyRounds + 1 : 0;
    if (emptyRounds >= 3)
      throw new Error(
        `3 ${o.modelId} rounds in a row got no contribution: ${[...new Set(statuses)].join(", ")}`,
      );
    await waitFor(async () => (await status()).currentRound !== now.currentRound, 60_000);
  }
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
    args: CHROMIUM_ARGS,
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
    sync: (modelId = "activity") =>
      page.evaluate(
        (id) =>
          (
            window as unknown as {
              fedprofileDemo: { sync(modelId?: string): Promise<{ status: string; stage?: string }> };
            }
          ).fedprofileDemo.sync(id),
        modelId,
      ),
    segment: async () => {
      await page.waitForFunction(
        () => document.getElementById("segment")?.dataset.segment !== undefined,
        null,
        {
          timeout: 30_000,
        },
      );
      return (await page.textContent("#segment")) ?? "";
    },
    /** The storefront's "Recommended for you" panel: each pick and its "why am I seeing this?". */
    recommendations: async () => {
      await page.waitForSelector("#recommendations li", { timeout: 30_000 });
      return page.$$eval("#recommendations li", (lis) =>
        lis.map(
          (li) => `${li.querySelector("strong")?.textContent} — ${li.querySelector(".reason")?.textContent}`,
        ),
      );
    },
    close: () => browser.close(),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();
