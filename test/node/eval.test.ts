/**
 * `fedprofile eval` in its CI preset (N = 2,000 sampled real customers, k = 4, no DP and ε = 1,
 * three rounds): the real device and server halves against centralised k-means++, with SecAgg+ run
 * for real on a sampled shard of every DP round. It writes every output, and its figures hold.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main, parseEvalArgs, runEval } from "../../examples/eval/main";

describe("fedprofile eval (CI preset)", () => {
  it("trains federated k-means close to the centralised baseline and writes eval.json, report.md and plots", async () => {
    const out = mkdtempSync(join(tmpdir(), "fedprofile-eval-"));
    const options = parseEvalArgs(["--out", out]);
    if (options === "help") throw new Error("unexpected help");
    const lines: string[] = [];
    const report = await runEval(options, (line) => lines.push(line));
    expect(lines.some((l) => l.includes("SecAgg+ on 40 devices"))).toBe(true);
    const [plain, dp] = report.results;
    expect(plain).toMatchObject({ n: 2000, k: 4, epsilon: null, rounds: 3 });
    expect(plain?.costRatio).toBeGreaterThan(0.999);
    expect(plain?.costRatio).toBeLessThan(1.05);
    expect(dp).toMatchObject({ n: 2000, k: 4, epsilon: 1, rounds: 3 });
    expect(dp?.epsilonSpent).toBeGreaterThan(0);
    expect(dp?.epsilonSpent).toBeLessThanOrEqual(1);
    expect(dp?.costRatio).toBeLessThan(1.5);
    expect(dp?.secaggShards).toHaveLength(3);
    expect(dp?.secaggShards.every((s) => s.protocol === "secagg+" && s.matchesModularSum)).toBe(true);
    expect(dp?.segmentSizes.reduce((a, b) => a + b, 0)).toBe(2000);
    expect(dp?.centroids).toHaveLength(4);
    for (const c of dp?.centroids ?? []) {
      expect(Object.keys(c.real)).toEqual(
        expect.arrayContaining(["recency", "frequency", "monetary", "tenure"]),
      );
    }
    const written = JSON.parse(readFileSync(join(out, "eval.json"), "utf8")) as { results: unknown[] };
    expect(written.results).toHaveLength(2);
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(/\| sample-2000 \| 2,000 \| 4 \| 1 \|/);
    for (const svg of ["cost-ratio.svg", "segments.svg"]) {
      expect(existsSync(join(out, svg))).toBe(true);
      expect(readFileSync(join(out, svg), "utf8")).toMatch(
        /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/,
      );
    }
  }, 120_000);

  it("names a bad argument and prints help with --help", async () => {
    expect(() => parseEvalArgs(["--k", "abc"])).toThrow(/--k: "abc" is not a positive whole number/);
    expect(() => parseEvalArgs(["--epsilon", "-1"])).toThrow(/--epsilon/);
    expect(() => parseEvalArgs(["--populations", "mars"])).toThrow(/--populations/);
    expect(() => parseEvalArgs(["--bogus"])).toThrow(/bogus/);
    expect(parseEvalArgs(["-h"])).toBe("help");
    expect(await main(["--k", "1"])).toBe(2);
  });
});
