/**
 * Replay throughput in node: the whole UCI Online Retail file (541,909 rows; 406,789 lines kept;
 * 22,273 events, one per invoice or matched refund, for 4,371 customers) through the SDK, one
 * simulated device per customer (`fedprofile replay`). Reports events/s (one event = one
 * invoice) and product lines/s for the SDK phase, the gunzip + CSV read/parse phase, and the
 * wall time. Target (issue 11): at least 50,000 events/s.
 *
 * Each run is a fresh process (a cold JIT, as a user's `fedprofile replay` is); the figures are
 * the median of `--runs` (default 3) runs, with the load average (1 min) before each run and the
 * CPU time of each phase (the process's, all threads), which a busy machine distorts less than
 * wall time.
 *
 * Run: `npx tsx --conditions=source bench/replay.ts [--runs 3] [--fake-indexeddb]`.
 * Writes `bench/results/replay.json`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as z from "zod";
import { replay } from "../sdk/cli/replay";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DATA = join(ROOT, "examples/data/online_retail.csv.gz");
const asOf = Date.parse("2011-12-10T00:00:00Z");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "fake-indexeddb": { type: "boolean", default: false },
    child: { type: "string" },
  },
});

const Run = z.object({
  store: z.enum(["memory", "fake-indexeddb"]),
  customers: z.number(),
  profiles: z.number(),
  events: z.number(),
  productLines: z.number(),
  fileRows: z.number(),
  readMs: z.number(),
  replayMs: z.number(),
  readCpuMs: z.number(),
  replayCpuMs: z.number(),
  wallMs: z.number(),
  load1: z.number(),
});
type Run = z.infer<typeof Run>;

if (values.child) {
  const store = z.enum(["memory", "fake-indexeddb"]).parse(values.child);
  const load1 = loadavg()[0] ?? 0;
  const wallStart = performance.now();
  const report = await replay({ data: DATA, asOf, store });
  const run: Run = {
    store,
    customers: report.customers,
    profiles: report.profiles.length,
    events: report.events,
    productLines: report.read.keptLines,
    fileRows: report.read.rows,
    readMs: report.readMs,
    replayMs: report.replayMs,
    readCpuMs: report.readCpuMs,
    replayCpuMs: report.replayCpuMs,
    wallMs: performance.now() - wallStart,
    load1,
  };
  console.log(JSON.stringify(run));
} else {
  const runs = Number(values.runs);
  const stores = values["fake-indexeddb"] ? (["memory", "fake-indexeddb"] as const) : (["memory"] as const);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? Number.NaN;
  };
  const rows = [];
  for (const store of stores) {
    const all: Run[] = [];
    for (let i = 0; i < runs; i++) {
      // A fresh process per run, with the same node flags (tsx's loader, --conditions=source).
      const out = execFileSync(
        process.execPath,
        [...process.execArgv, fileURLToPath(import.meta.url), "--child", store],
        {
          encoding: "utf8",
          maxBuffer: 1 << 20,
        },
      );
      const run = Run.parse(JSON.parse(out.trim().split("\n").at(-1) ?? ""));
      all.push(run);
      console.error(
        `${store} run ${i + 1}: read ${(run.readMs / 1000).toFixed(2)} s, SDK ${(run.replayMs / 1000).toFixed(2)} s ` +
          `(${Math.round(run.events / (run.replayMs / 1000)).toLocaleString("en")} events/s), load ${run.load1.toFixed(2)}`,
      );
    }
    const first = all[0] as Run;
    const replayMs = median(all.map((r) => r.replayMs));
    const wallMs = median(all.map((r) => r.wallMs));
    rows.push({
      store,
      runs: all.length,
      customers: first.customers,
      profiles: first.profiles,
      events: first.events,
      productLines: first.productLines,
      readMs: median(all.map((r) => r.readMs)),
      replayMs,
      wallMs,
      readCpuMs: median(all.map((r) => r.readCpuMs)),
      replayCpuMs: median(all.map((r) => r.replayCpuMs)),
      eventsPerSecond: first.events / (replayMs / 1000),
      linesPerSecond: first.productLines / (replayMs / 1000),
      endToEndLinesPerSecond: first.fileRows / (wallMs / 1000),
      loadAverages: all.map((r) => r.load1),
      perRun: all,
    });
  }
  const int = (v: number) => Math.round(v).toLocaleString("en");
  const s = (ms: number) => (ms / 1000).toFixed(2);
  console.log(
    [
      `median of ${runs} runs (fresh process each)`,
      "| store | events | product lines | read+parse s (CPU s) | SDK replay s (CPU s) | wall s | events/s | product lines/s | load avg (1 min) per run |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---|",
      ...rows.map(
        (r) =>
          `| ${r.store} | ${int(r.events)} | ${int(r.productLines)} | ${s(r.readMs)} (${s(r.readCpuMs)}) | ` +
          `${s(r.replayMs)} (${s(r.replayCpuMs)}) | ${s(r.wallMs)} | ${int(r.eventsPerSecond)} | ` +
          `${int(r.linesPerSecond)} | ${r.loadAverages.map((l) => l.toFixed(2)).join(", ")} |`,
      ),
    ].join("\n"),
  );
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = {
    bench: "replay",
    date: new Date().toISOString(),
    node: process.version,
    command: "npx tsx --conditions=source bench/replay.ts",
    targetEventsPerSecond: 50_000,
    rows,
  };
  writeFileSync(join(ROOT, "bench/results/replay.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/replay.json");
}
