/**
 * The project's one test command (`npm test`): type-check, lint, then every vitest layer
 * (node, workers in workerd, browser in Chromium, e2e against `wrangler dev`), then a plain
 * `N passed, N failed, N skipped` line that CI reads. A failed gate counts as a failure.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as z from "zod";
import { CHROMIUM_PATH } from "./chromium";

const VitestReport = z.object({
  testResults: z.array(
    z.object({
      name: z.string(),
      assertionResults: z.array(z.object({ status: z.string(), fullName: z.string() })),
    }),
  ),
});

function run(label: string, command: string, args: string[]): boolean {
  console.log(`\n▶ ${label}: ${command} ${args.join(" ")}`);
  const started = Date.now();
  const result = spawnSync(command, args, { stdio: "inherit", env: process.env });
  const ok = result.status === 0;
  console.log(`${ok ? "✔" : "✘"} ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return ok;
}

function layerOf(file: string): string {
  if (file.endsWith(".workers.test.ts")) return "workers";
  if (file.endsWith(".browser.test.ts")) return "browser";
  if (file.endsWith(".e2e.test.ts")) return "e2e";
  return "node";
}

/**
 * The browser and e2e layers need Debian's Chromium (never a downloaded browser). On a fresh
 * Debian machine where we are root, install it, as `.ci/run` does.
 */
function ensureChromium(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.getuid?.() !== 0) {
    console.error(`${CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install chromium)`);
    return false;
  }
  return (
    run("apt-get update", "apt-get", ["update", "-q"]) &&
    run("install chromium", "apt-get", ["install", "-y", "-q", "chromium"])
  );
}

const gates: Array<[string, boolean]> = [
  ["chromium", ensureChromium()],
  // The packed-package and size tests use the built `dist/`: build it from the current sources.
  ["build", run("build", "npm", ["run", "--silent", "build"])],
  ["typecheck", run("typecheck", "npm", ["run", "--silent", "typecheck"])],
  ["lint", run("lint", "npx", ["biome", "ci", "--colors=off", "."])],
];

mkdirSync("test-results", { recursive: true });
const reportPath = "test-results/vitest.json";
const extra = process.argv.slice(2);
run("vitest", "npx", [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${reportPath}`,
  ...extra,
]);

const counts = new Map<string, { passed: number; failed: number; skipped: number }>();
let report: z.infer<typeof VitestReport> = { testResults: [] };
try {
  report = VitestReport.parse(JSON.parse(readFileSync(reportPath, "utf8")));
} catch (error) {
  console.error(`could not read ${reportPath}:`, error);
  gates.push(["vitest report", false]);
}
for (const file of report.testResults) {
  const layer = layerOf(file.name);
  const row = counts.get(layer) ?? { passed: 0, failed: 0, skipped: 0 };
  for (const test of file.assertionResults) {
    if (test.status === "passed") row.passed++;
    else if (test.status === "failed") row.failed++;
    else row.skipped++;
  }
  // A file that failed to load reports no assertions; count it as one failure.
  if (file.assertionResults.length === 0) row.failed++;
  counts.set(layer, row);
}

console.log("\nlayer     passed  failed  skipped");
const total = { passed: 0, failed: 0, skipped: 0 };
for (const layer of ["node", "workers", "browser", "e2e"]) {
  const row = counts.get(layer) ?? { passed: 0, failed: 0, skipped: 0 };
  console.log(
    `${layer.padEnd(9)} ${String(row.passed).padStart(6)}  ${String(row.failed).padStart(6)}  ${String(row.skipped).padStart(7)}`,
  );
  total.passed += row.passed;
  total.failed += row.failed;
  total.skipped += row.skipped;
}
for (const [gate, ok] of gates) {
  console.log(`gate ${gate}: ${ok ? "ok" : "FAILED"}`);
  if (!ok) total.failed++;
}
const summary = `${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`;
writeFileSync("test-results/summary.txt", `${summary}\n`);
console.log(summary);
process.exit(total.failed === 0 && total.passed > 0 ? 0 : 1);
