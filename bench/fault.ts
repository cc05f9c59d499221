/**
 * The fault-injection suite (issue 11), outside CI: every kill point of `test/fault/harness.ts`
 * times every seed, each a fresh `wrangler dev` SIGKILLed once and restarted on its own state.
 * Run: `npm run bench:fault [-- --seeds 1,2,3 --points after-open,unmask-mid]`; prints a table
 * and writes `bench/results/fault.json`. Exits 1 if any trial broke the invariant.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { KILL_POINTS, type KillPoint, runFaultSuite } from "../test/fault/harness";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: { seeds: { type: "string", default: "1,2,3" }, points: { type: "string" } },
});
const all = Object.keys(KILL_POINTS) as KillPoint[];
const points = values.points
  ? values.points.split(",").map((p) => {
      const found = all.find((k) => k === p);
      if (!found) throw new Error(`--points: unknown kill point ${p} (one of ${all.join(", ")})`);
      return found;
    })
  : all;
const seeds = values.seeds.split(",").map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`--seeds: ${s} is not an integer`);
  return n;
});

const started = Date.now();
const trials = await runFaultSuite(points, seeds, (t) =>
  console.log(
    `${t.ok ? "ok  " : "FAIL"} ${t.killPoint.padEnd(22)} seed ${t.seed}  ${t.roundStage.padEnd(8)} revealed ${t.revealedShards} shard(s) / ${t.revealedContributors} devices, ledger ${t.ledgerEntriesForRound}, published ${t.published}, verify ${t.auditVerified}  ${t.seconds.toFixed(1)} s${t.violation ? `  <- ${t.violation}` : ""}`,
  ),
);
const summary = {
  trials: trials.length,
  passed: trials.filter((t) => t.ok).length,
  published: trials.filter((t) => t.roundStage === "closed").length,
  aborted: trials.filter((t) => t.roundStage === "aborted").length,
  killPoints: points,
  seeds,
  seconds: (Date.now() - started) / 1000,
};
console.table(
  points.map((p) => {
    const mine = trials.filter((t) => t.killPoint === p);
    return {
      killPoint: p,
      trials: mine.length,
      ok: mine.filter((t) => t.ok).length,
      published: mine.filter((t) => t.roundStage === "closed").length,
      aborted: mine.filter((t) => t.roundStage === "aborted").length,
    };
  }),
);
console.log(summary);
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/fault.json"),
  `${JSON.stringify({ generatedAt: new Date().toISOString(), summary, trials }, null, 2)}\n`,
);
process.exit(summary.passed === summary.trials ? 0 : 1);
