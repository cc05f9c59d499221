import {
  BLOCK,
  gridCell,
  gridEdges,
  histogramBin,
  histogramOffset,
  kmeansDimension,
  kmeansSensitivity,
  probit,
  realValue,
  VECTOR_FIELDS,
} from "@fedprofile/protocol/models";
import { KMeansSpec } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { applyKMeans, initialKMeansState, kmeansPlannedRounds, kmeansTask, labelSegments } from "./kmeans";
import { kmeansCost, weightedKMeans } from "./lloyd";

const spec = KMeansSpec.parse({ k: 2, init: { gridBins: 3, histogramBins: 8 } });

/** The noiseless aggregate a set of devices would produce (the device half's layout, by hand). */
function aggregateOf(phase: "init" | "lloyd", points: number[][], centroids?: number[][]) {
  const out = new Float64Array(kmeansDimension(spec, phase, centroids?.length));
  for (const z of points) {
    const norm = Math.hypot(...z);
    const x = norm > spec.clip ? z.map((v) => (v * spec.clip) / norm) : z;
    let block: number;
    if (phase === "init") {
      block = gridCell(spec, z);
      spec.init.histogramFields.forEach((field, h) => {
        const bin = histogramBin(spec.init.histogramBins, z[VECTOR_FIELDS.indexOf(field)] ?? 0);
        const at = histogramOffset(spec) + h * spec.init.histogramBins + bin;
        out[at] = (out[at] as number) + spec.init.histogramWeight;
      });
    } else {
      const d = (centroids ?? []).map((c) => c.reduce((s, v, i) => s + (v - (z[i] ?? 0)) ** 2, 0));
      block = d.indexOf(Math.min(...d));
    }
    out[block * BLOCK] = (out[block * BLOCK] as number) + spec.countWeight;
    x.forEach((v, i) => {
      out[block * BLOCK + 1 + i] = (out[block * BLOCK + 1 + i] as number) + v;
    });
  }
  return out;
}

const at = (values: Partial<Record<(typeof VECTOR_FIELDS)[number], number>>) =>
  VECTOR_FIELDS.map((f) => values[f] ?? 0);

describe("k-means layout", () => {
  it("probit matches reference quantiles of N(0, 1)", () => {
    // Φ⁻¹(0.975) = 1.959963984540054, Φ⁻¹(0.8413447460685429) = 1 (standard tables).
    expect(probit(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(probit(0.8413447460685429)).toBeCloseTo(1, 8);
    expect(probit(0.001)).toBeCloseTo(-3.090232306167813, 7);
    expect(gridEdges(2)).toEqual([0]);
  });

  it("states the L2 sensitivity of each phase from the spec alone", () => {
    expect(kmeansSensitivity(spec, "lloyd")).toBeCloseTo(Math.sqrt(2 ** 2 + 4 ** 2), 12);
    expect(kmeansSensitivity(spec, "init")).toBeCloseTo(Math.sqrt(2 ** 2 + 4 ** 2 + 4), 12);
    expect(kmeansDimension(spec, "lloyd")).toBe(2 * 10);
    expect(kmeansDimension(spec, "init")).toBe(27 * 10 + 4 * 8);
    expect(kmeansTask(spec, initialKMeansState())).toMatchObject({ phase: "init", dimension: 302 });
  });
});

describe("k-means server update", () => {
  const groupA = Array.from({ length: 40 }, (_, i) =>
    at({ recency: -1 + 0.01 * i, frequency: 1.2, monetary: 1.5 }),
  );
  const groupB = Array.from({ length: 60 }, (_, i) =>
    at({ recency: 1.4 - 0.01 * i, frequency: -0.8, monetary: -0.9 }),
  );
  const all = [...groupA, ...groupB];

  it("init: the coreset gives one centroid per group and DP quantiles for the tags", () => {
    const update = applyKMeans(spec, initialKMeansState(), aggregateOf("init", all), {
      noiseStddev: 0,
      contributors: 100,
    });
    expect(update.state.phase).toBe("lloyd");
    const centroids = update.state.centroids ?? [];
    const byRecency = [...centroids].sort((a, b) => (a[0] as number) - (b[0] as number));
    expect(byRecency[0]?.[0]).toBeCloseTo(-0.805, 2);
    expect(byRecency[1]?.[0]).toBeCloseTo(1.105, 2);
    expect(update.params.segments.map((s) => s.size).sort((a, b) => a - b)).toEqual([40, 60]);
    // 90% of monetary mass lies in group A's bin [1.0, 2.0): the quantile is inside it, in money.
    const high = update.params.tagThresholds.highValueMinMonetary ?? 0;
    expect(high).toBeGreaterThan(realValue("monetary", 1.0));
    expect(high).toBeLessThan(realValue("monetary", 2.0));
  });

  it("over-seeds: the coreset gives overseed · k centroids, one Lloyd round refines them, then they merge to k", () => {
    // Four tight groups in four cells: two near each other on the left, two on the right.
    const group = (n: number, r: number, f: number, m: number) =>
      Array.from({ length: n }, (_, i) => at({ recency: r + 0.001 * i, frequency: f, monetary: m }));
    const four = [
      ...group(30, -1, 1.2, 1.5),
      ...group(20, -1, -0.8, 1.5),
      ...group(25, 1.4, 1.2, -0.9),
      ...group(25, 1.4, -0.8, -0.9),
    ];
    const init = applyKMeans(spec, initialKMeansState(), aggregateOf("init", four), {
      noiseStddev: 0,
      contributors: 100,
    });
    const seeded = init.state.centroids ?? [];
    expect(seeded).toHaveLength(2 * spec.k);
    // The next round has one block per over-seeded centroid; the sensitivity is unchanged.
    expect(kmeansTask(spec, init.state)).toMatchObject({ phase: "lloyd", dimension: 4 * BLOCK });
    const step = applyKMeans(spec, init.state, aggregateOf("lloyd", four, seeded), {
      noiseStddev: 0,
      contributors: 100,
    });
    expect(step.metrics.merged).toBe(4);
    expect(step.converged).toBe(false);
    const merged = [...(step.state.centroids ?? [])].sort((a, b) => (a[0] as number) - (b[0] as number));
    expect(merged).toHaveLength(2);
    // Merging by recency (the widest gap) gives each side's weighted mean.
    expect(merged[0]?.[1]).toBeCloseTo((30 * 1.2 + 20 * -0.8) / 50, 9);
    expect(merged[1]?.[1]).toBeCloseTo((25 * 1.2 + 25 * -0.8) / 50, 9);
    expect(step.params.segments.map((s) => s.size).sort()).toEqual([50, 50]);
    expect(kmeansTask(spec, step.state).dimension).toBe(2 * BLOCK);
  });

  it("over-seeds only as far as the coreset reaches above the noise", () => {
    // Two occupied cells: k centroids, not overseed · k.
    const update = applyKMeans(spec, initialKMeansState(), aggregateOf("init", all), {
      noiseStddev: 0,
      contributors: 100,
    });
    expect(update.state.centroids).toHaveLength(spec.k);
  });

  it("plans the init round's budget share and the Lloyd rounds' so that they add up to at most the run", () => {
    // RDP of a Gaussian round calibrated as one of R rounds is 1/R of the run's curve.
    const share = (s: KMeansSpec, maxRounds: number) =>
      1 / kmeansPlannedRounds(s, maxRounds, "init") + maxRounds / kmeansPlannedRounds(s, maxRounds, "lloyd");
    for (const budgetShare of [0.1, 0.25, 0.4, 0.5, 0.7, 0.9]) {
      const s = KMeansSpec.parse({ k: 3, init: { budgetShare } });
      for (const maxRounds of [1, 2, 3, 5, 10]) {
        expect(share(s, maxRounds)).toBeLessThanOrEqual(1 + 1e-12);
        expect(1 / kmeansPlannedRounds(s, maxRounds, "init")).toBeLessThanOrEqual(budgetShare + 1e-12);
      }
    }
    expect(kmeansPlannedRounds(spec, 3, "init")).toBe(2);
    expect(kmeansPlannedRounds(spec, 3, "lloyd")).toBe(6);
    // A share of 1 / (1 + maxRounds) is the equal split.
    const equal = KMeansSpec.parse({ k: 3, init: { budgetShare: 0.25 } });
    expect([kmeansPlannedRounds(equal, 3, "init"), kmeansPlannedRounds(equal, 3, "lloyd")]).toEqual([4, 4]);
  });

  it("lloyd: centroids move to the cluster means; a still model is converged", () => {
    const start = {
      ...initialKMeansState(),
      phase: "lloyd" as const,
      centroids: [at({ recency: -0.5 }), at({ recency: 0.5 })],
    };
    const step = applyKMeans(spec, start, aggregateOf("lloyd", all, start.centroids), {
      noiseStddev: 0,
      contributors: 100,
    });
    expect(step.state.iteration).toBe(1);
    expect(step.state.centroids?.[0]?.[1]).toBeCloseTo(1.2, 12);
    expect(step.state.centroids?.[1]?.[1]).toBeCloseTo(-0.8, 12);
    expect(step.converged).toBe(false);
    const again = applyKMeans(spec, step.state, aggregateOf("lloyd", all, step.state.centroids ?? []), {
      noiseStddev: 0,
      contributors: 100,
    });
    expect(again.metrics.shift).toBeLessThan(1e-12);
    expect(again.converged).toBe(true);
  });

  it("a cluster whose noisy count is within the noise keeps its centroid", () => {
    const start = {
      ...initialKMeansState(),
      phase: "lloyd" as const,
      centroids: [at({ recency: -1 }), at({ recency: 3 })],
    };
    const step = applyKMeans(spec, start, aggregateOf("lloyd", groupA, start.centroids), {
      noiseStddev: 5,
      contributors: 40,
    });
    expect(step.state.centroids?.[1]).toEqual(start.centroids[1]);
    expect(step.metrics.clustersKept).toBe(1);
  });

  it("shrinks a noisy mean towards its old centroid by the James–Stein factor of its noise", () => {
    const start = {
      ...initialKMeansState(),
      phase: "lloyd" as const,
      centroids: [at({ recency: -0.5 }), at({ recency: 0.5 })],
    };
    // The exact sums, with a noise level stated: group A (40 devices) has noise 2/40 = 0.05 per
    // coordinate of its mean, so its move of about 2.2 is kept at factor 1 − 7·0.05²/‖move‖².
    const exact = aggregateOf("lloyd", all, start.centroids);
    const info = { noiseStddev: 2, contributors: 100 };
    const raw = applyKMeans({ ...spec, shrink: false }, start, exact, info).state.centroids ?? [];
    const shrunk = applyKMeans(spec, start, exact, info).state.centroids ?? [];
    const old = start.centroids[0] as number[];
    const move = (raw[0] as number[]).reduce((s, v, d) => s + (v - (old[d] as number)) ** 2, 0);
    const factor = 1 - (7 * 0.05 ** 2) / move;
    shrunk[0]?.forEach((v, d) => {
      expect(v).toBeCloseTo((old[d] as number) + factor * ((raw[0]?.[d] as number) - (old[d] as number)), 12);
    });
    // Ten times the noise (0.5 per coordinate of A's mean, 1.5 of its norm): about half the move.
    const noisy = applyKMeans(spec, start, exact, { noiseStddev: 20, contributors: 100 });
    const kept = (noisy.state.centroids?.[0] ?? []).reduce((s, v, d) => s + (v - (old[d] as number)) ** 2, 0);
    expect(Math.sqrt(kept / move)).toBeCloseTo(1 - (7 * 0.5 ** 2) / move, 12);
    expect(Math.sqrt(kept / move)).toBeLessThan(0.6);
  });

  it("refuses an aggregate of the wrong length or with a non-finite value", () => {
    expect(() =>
      applyKMeans(spec, initialKMeansState(), new Float64Array(3), { noiseStddev: 0, contributors: 1 }),
    ).toThrow(/expected 302/);
    const bad = aggregateOf("init", all);
    bad[5] = Number.POSITIVE_INFINITY;
    expect(() => applyKMeans(spec, initialKMeansState(), bad, { noiseStddev: 0, contributors: 1 })).toThrow(
      /not finite/,
    );
  });

  it("labels read like a marketer's, and are distinct", () => {
    const labels = labelSegments([
      at({ recency: -1, frequency: 1.2, monetary: 1.5 }),
      at({ recency: 1.5, frequency: -0.8 }),
      at({ tenure: -1.5, frequency: -0.5 }),
      at({ recency: -0.5, frequency: 1.2, monetary: 2.5 }),
    ]);
    expect(labels.slice(0, 3)).toEqual(["loyal high spenders (small spenders)", "lapsed one-timers", "new"]);
    expect(new Set(labels).size).toBe(4);
  });
});

describe("weighted Lloyd with k-means++", () => {
  it("finds the optimum of two separated blobs, and weights count as repeated points", () => {
    const points = [at({ recency: 0 }), at({ recency: 0.2 }), at({ recency: 5 }), at({ recency: 5.2 })];
    const run = weightedKMeans(points, null, { k: 2, seed: 3 });
    expect(run.cost).toBeCloseTo(0.04, 12);
    const weighted = weightedKMeans([points[0], points[2]] as number[][], [3, 1], { k: 1 });
    expect(weighted.centroids[0]?.[0]).toBeCloseTo(1.25, 12);
    expect(kmeansCost(points, run.centroids)).toBeCloseTo(run.cost, 12);
  });
});
