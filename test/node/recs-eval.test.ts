/**
 * `fedprofile eval recs` in its CI preset (500 sampled customers, rank 8, 24 rounds without DP
 * and 12 at ε = 8): the real device step and server update against popularity, item-kNN and tuned implicit
 * ALS on the same leave-last-out split. Without DP, FCF stays close to ALS under both protocols.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hrPlot, parseRecsArgs, recsMain, runRecsEval } from "../../examples/eval/recs-main";
import { BLEND_WEIGHTS } from "../../examples/eval/recs-scorers";

describe("fedprofile eval recs (CI preset)", () => {
  it("trains FCF close to ALS without DP, spends at most ε with DP, and writes its outputs", async () => {
    const out = mkdtempSync(join(tmpdir(), "fedprofile-recs-"));
    const options = parseRecsArgs(["--out", out]);
    if (options === "help") throw new Error("unexpected help");
    const [report, ...more] = await runRecsEval(options, () => {});
    if (!report) throw new Error("no report");
    expect(more).toHaveLength(0);
    expect(report.population).toBe("sample-500");
    const by = (method: string, epsilon: number | null = null) =>
      report.results.find((r) => r.method === method && r.epsilon === epsilon);
    const als = by("als");
    const plain = by("fcf");
    const dp = by("fcf", 8);
    expect(report.rank).toBe(8);
    expect(als?.hyperParameters).toMatchObject({ rank: 8 });
    expect(plain?.metrics.hr10Sampled).toBeGreaterThan(0.85 * (als?.metrics.hr10Sampled ?? 1));
    expect(plain?.metrics.hr10Full).toBeGreaterThan(0.85 * (als?.metrics.hr10Full ?? 1));
    // Sampled metrics flatter every method several times over (Krichene & Rendle 2020).
    expect(plain?.metrics.hr10Sampled).toBeGreaterThan(3 * (plain?.metrics.hr10Full ?? 1));
    expect(dp?.epsilonSpent).toBeGreaterThan(0);
    expect(dp?.epsilonSpent).toBeLessThanOrEqual(8);
    expect(dp?.bytesPerDevicePerRound).toBeLessThanOrEqual(256 * 1024);
    // The DP run's counts and curvature: count slots of 10, curvature from the counts; the
    // popularity weight is the validation split's pick, and the factor score alone is reported.
    expect(dp?.hyperParameters).toMatchObject({ countScale: 10, curvature: "counts" });
    expect(BLEND_WEIGHTS).toContain(dp?.hyperParameters?.popularityWeight);
    expect(dp?.factorOnly?.hr10Sampled).toBeGreaterThan(0);
    expect(dp?.rounds).toBe(12);
    expect(JSON.parse(readFileSync(join(out, "eval.json"), "utf8")).results).toHaveLength(5);
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(/\| fcf no DP \|/);
    // FCF against popularity over the same users: a paired interval around the difference.
    const d = dp?.vsPopularity?.sampled;
    expect(d?.difference).toBeCloseTo(
      (dp?.metrics.hr10Sampled ?? 0) - (by("popularity")?.metrics.hr10Sampled ?? 0),
      9,
    );
    expect(d?.low).toBeLessThanOrEqual(d?.difference ?? Number.NaN);
    expect(d?.high).toBeGreaterThanOrEqual(d?.difference ?? Number.NaN);
    expect(readFileSync(join(out, "report.md"), "utf8")).toMatch(/paired bootstrap 95%/);
    expect(existsSync(join(out, "hr-vs-epsilon.svg"))).toBe(true);
    // One line per N: two reports give two coloured pairs of paths and two legend entries.
    const svg = hrPlot([report, { ...report, population: "other", users: 7 }]);
    expect(svg.match(/<path /g)).toHaveLength(4);
    expect(svg).toMatch(/N = 481 \(sample-500\)/);
    expect(svg).toMatch(/N = 7 \(other\)/);
  }, 180_000);

  it("names a bad argument", async () => {
    expect(() => parseRecsArgs(["--rank", "x"])).toThrow(/--rank: "x"/);
    expect(() => parseRecsArgs(["--epsilon", "0"])).toThrow(/--epsilon/);
    expect(parseRecsArgs(["-h"])).toBe("help");
    expect(parseRecsArgs(["--full-turnout", "--fcf-only"])).toMatchObject({
      fullTurnout: true,
      fcfOnly: true,
    });
    expect(await recsMain(["--preset", "huge"])).toBe(2);
    expect(() => parseRecsArgs(["--populations", "retail,huge-3"])).toThrow(/--populations: "huge-3"/);
    expect(() => parseRecsArgs(["--als-grid", "10"])).toThrow(/--als-grid: "10"/);
    expect(await recsMain(["--plot", mkdtempSync(join(tmpdir(), "fedprofile-recs-empty-"))])).not.toBe(0);
    const options = parseRecsArgs(["--populations", "retail,synthetic-10000"]);
    expect(options !== "help" && options.populations).toEqual(["retail", "synthetic-10000"]);
  });
});
