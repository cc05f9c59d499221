/**
 * Replay throughput in node: the whole UCI Online Retail file (541,909 rows; 406,789 lines kept;
 * 22,186 invoices → 22,186 events averaging 18 product lines) through the SDK path, one
 * simulated device per customer (`fedprofile replay`). Reports events/s (one event = one
 * invoice) and product lines/s for the SDK phase, and the wall time including the gunzip and
 * CSV parse. Target (issue 3): at least 50,000 events/s.
 *
 * Run: `npx tsx bench/replay.ts [--fake-indexeddb]`. Writes `bench/results/replay.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { replay } from "../sdk/cli/replay";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DATA = join(ROOT, "examples/data/online_retail.csv.gz");
const asOf = Date.parse("2011-12-10T00:00:00Z");

const stores = process.argv.includes("--fake-indexeddb")
  ? (["memory", "fake-indexeddb"] as const)
  : (["memory"] as const);
const rows = [];
for (const store of stores) {
  const wallStart = performance.now();
  const report = await replay({ data: DATA, asOf, store });
  const wallMs = performance.now() - wallStart;
  rows.push({
    store,
    customers: report.customers,
    profiles: report.profiles.length,
    events: report.events,
    productLines: report.read.keptLines,
    readMs: report.readMs,
    replayMs: report.replayMs,
    wallMs,
    eventsPerSecond: report.events / (report.replayMs / 1000),
    linesPerSecond: report.read.keptLines / (report.replayMs / 1000),
    endToEndLinesPerSecond: report.read.rows / (wallMs / 1000),
  });
}
const int = (v: number) => Math.round(v).toLocaleString("en");
console.log(
  [
    "| store | events | product lines | read+parse s | SDK replay s | wall s | events/s | product lines/s | file rows/s (wall) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.store} | ${int(r.events)} | ${int(r.productLines)} | ${(r.readMs / 1000).toFixed(2)} | ` +
        `${(r.replayMs / 1000).toFixed(2)} | ${(r.wallMs / 1000).toFixed(2)} | ${int(r.eventsPerSecond)} | ` +
        `${int(r.linesPerSecond)} | ${int(r.endToEndLinesPerSecond)} |`,
    ),
  ].join("\n"),
);
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
const out = {
  bench: "replay",
  date: new Date().toISOString(),
  node: process.version,
  targetEventsPerSecond: 50_000,
  rows,
};
writeFileSync(join(ROOT, "bench/results/replay.json"), `${JSON.stringify(out, null, 2)}\n`);
console.log("wrote bench/results/replay.json");
