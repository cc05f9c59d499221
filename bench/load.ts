/**
 * The load suite (issue 11), outside CI: 1,000 simulated devices in 4 node processes through
 * DP SecAgg+ rounds against `wrangler dev` on loopback, bounded in time.
 * Run: `npm run bench:load [-- --devices 1000 --processes 4 --rounds 2 --shard-size 100 --max-seconds 900
 * --transport push|poll --arrival-seconds 60 --refuse-every 0 --http-connections 32 --direct]`; prints a table and writes
 * `bench/results/load.json` (or `--out`). Devices hold stage sockets (`push`, issue 16) unless
 * `--transport poll`; the load average is recorded beside the figures (the machine is shared).
 * `--direct` sends devices to the user worker's own workerd socket instead of wrangler dev's proxy
 * (a dev-only hop Cloudflare does not have, and the process that ran out of fds at 8,000 devices);
 * `--http-connections` bounds the HTTP requests in flight, so connections, per device process.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runLoadSuite } from "../test/load/load-suite";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "1000" },
    processes: { type: "string", default: "4" },
    rounds: { type: "string", default: "2" },
    "shard-size": { type: "string", default: "100" },
    dimension: { type: "string", default: "16" },
    "stage-seconds": { type: "string", default: "180" },
    "max-seconds": { type: "string", default: "900" },
    transport: { type: "string", default: "push" },
    "arrival-seconds": { type: "string", default: "0" },
    "refuse-every": { type: "string", default: "0" },
    "http-connections": { type: "string", default: "32" },
    direct: { type: "boolean", default: false },
    out: { type: "string", default: join(ROOT, "bench/results/load.json") },
  },
});
const int = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive integer, got ${values[name]}`);
  return n;
};
const transport = values.transport;
if (transport !== "push" && transport !== "poll")
  throw new Error(`--transport: push or poll, got ${transport}`);
const nonNegative = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: a number >= 0, got ${values[name]}`);
  return n;
};
const loadBefore = loadavg();
const report = await runLoadSuite({
  transport,
  arrivalSeconds: nonNegative("arrival-seconds"),
  refuseEvery: Math.floor(nonNegative("refuse-every")),
  httpConnections: Math.floor(nonNegative("http-connections")),
  direct: values.direct,
  devices: int("devices"),
  processes: int("processes"),
  rounds: int("rounds"),
  shardSize: int("shard-size"),
  dimension: int("dimension"),
  stageSeconds: int("stage-seconds"),
  maxSeconds: int("max-seconds"),
});
console.table(report.routes);
console.table(report.rounds);
console.log({
  roundsFinished: report.roundsFinished,
  roundsPublished: report.roundsPublished,
  roundsPerMinute: report.roundsPerMinute,
  requests: report.requests,
  errors: report.errors,
  outcomes: report.outcomes,
  errorSamples: report.errorSamples,
  coordinatorRssMiB: report.coordinatorRssMiB,
  seconds: report.seconds,
  requestsPerDevicePerRound: report.requestsPerDevicePerRound,
  viewPollsPerDevicePerRound: report.viewPollsPerDevicePerRound,
  sockets: report.sockets,
  loadAverage: { before: loadBefore, after: loadavg() },
  loadAverage1mPeak: report.loadAverage1mPeak,
  coordinatorFdsPeak: report.coordinatorFdsPeak,
  coordinatorProcesses: report.coordinatorProcesses,
  devicePath: report.devicePath,
  httpGateWait: report.httpGateWait,
  coordinatorFailure: report.coordinatorFailure,
});
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify({ generatedAt: new Date().toISOString(), loadAverage: { before: loadBefore, after: loadavg() }, ...report }, null, 2)}\n`,
);
