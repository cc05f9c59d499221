/**
 * `fedprofile eval recs`: federated collaborative filtering (FCF) on the Online Retail customers,
 * leave-last-out with a fixed seed, against popularity, item-kNN and centralised implicit ALS at
 * the same rank (α and λ tuned on a validation split carved from training), without DP and with
 * DP at each ε (δ = 1/N^1.1). HR@10 and NDCG@10 against 99 sampled negatives and against the full
 * catalogue. Writes `eval.json`, `report.md` and `hr-vs-epsilon.svg` to `--out`.
 *
 *   npx fedprofile eval recs                 # CI preset: 500 sampled customers, rank 8, ε ∈ {none, 8}
 *   npx fedprofile eval recs --preset full   # the 4,247 eligible real customers, rank 32, ε ∈ {none, 8, 3, 1}
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import * as z from "zod";
import { REPO_ROOT } from "../../edge/scripts/local-dev";
import { loadCustomers } from "./population";
import { trainAls } from "./recs-als";
import {
  evaluateRanking,
  factorScorer,
  itemKnnScorer,
  leaveLastOut,
  type PairedDifference,
  pairedBootstrap,
  popularityScorer,
  type RankingHits,
  type RankingMetrics,
  type RecsData,
  validationSplit,
} from "./recs-data";
import { trainFederatedRecs } from "./recs-harness";
import { POPULATION_NAME, recsCustomers } from "./recs-population";
import { chooseBlendWeight, fcfScorer } from "./recs-scorers";

export const RECS_EVAL_HELP = `fedprofile eval recs: federated CF (FCF) under DP vs popularity, item-kNN and implicit ALS

Options:
  --preset ci|full     ci (default): 500 sampled customers, rank 8, 24 rounds without DP and 12
                       with, ε ∈ {none, 8}
                       full: all eligible customers, rank 32 (8 with DP), 64 rounds without DP
                       and 12 with, curvature spread 8, ε ∈ {none, 8, 3, 1}
  --populations LIST   comma-separated: retail (every eligible real customer), sample-N (N real
                       customers sampled with the seed), synthetic-N (N synthetic customers
                       calibrated on the real ones, recs-population.ts); each in its own folder
                       under --out when there are several
  --sample N           the same as --populations sample-N (0: retail)
  --rank N             factor rank (federated and ALS)
  --rounds N           federated rounds without DP (one item block each)
  --dp-rounds N        federated rounds with DP (each spends a share of ε)
  --dp-rank N          federated rank with DP (default 8; ALS and no-DP FCF use --rank)
  --spread N           the server step's curvature spread (FcfSpec curvatureSpread)
  --epsilon LIST       comma-separated ε of the whole training, or "none"
  --full-turnout       with DP, calibrate each round's noise for every device surviving (the
                       simulation's turnout; minNoiseShares = a shard's fill) instead of the
                       trainer's default 30% dropout, so the run spends the whole ε
  --fcf-only           popularity (the paired baseline) and FCF only: no item-kNN or ALS
  --als-grid LIST      ALS's (α:λ) grid, e.g. 10:1,20:10; one pair skips the validation fits
  --plot DIRS          only plot: HR@10 vs ε, one line per N, from each folder's eval.json,
                       to --out/hr-vs-epsilon.svg
  --data PATH          the Online Retail CSV (default examples/data/online_retail.csv.gz)
  --out DIR            output folder (default bench/results/eval-recs)
  --seed N             seed of the sampling, the negatives and the initial factors
  -h, --help           this help
`;

interface RecsOptions {
  populations: string[];
  rank: number;
  rounds: number;
  dpRounds: number;
  /** The federated rank with DP (the block then spans as much of the catalogue as 2^16 values hold). */
  dpRank: number;
  curvatureSpread: number;
  epsilon: Array<number | null>;
  alsGrid: Array<{ alpha: number; lambda: number }>;
  alsIterations: number;
  /** `--fcf-only`: skip item-kNN and ALS (popularity stays: FCF is compared with it). */
  fcfOnly?: boolean;
  /** `--full-turnout`: minNoiseShares = a shard's fill (every simulated device survives). */
  fullTurnout?: boolean;
  data: string;
  out: string;
  seed: number;
  /** `--plot`: only plot these folders' eval.json. */
  plot?: string[];
}

const PRESETS = {
  ci: {
    populations: ["sample-500"],
    rank: 8,
    rounds: 24,
    dpRounds: 12,
    dpRank: 8,
    curvatureSpread: 4,
    epsilon: [null, 8],
    alsGrid: [
      { alpha: 10, lambda: 1 },
      { alpha: 20, lambda: 10 },
    ],
    alsIterations: 6,
  },
  full: {
    populations: ["retail"],
    rank: 32,
    // Without DP the MM step converges slowly (bench/fcf-gap.ts, HR@10 sampled / full against
    // ALS): spread 4 reaches 0.953× / 0.885× in 24 rounds and 0.982× / 0.971× in 64; spread 8,
    // where an item's buyers span many of the 32 directions, 0.978× / 0.899× in 24 and 0.984× /
    // 0.940× in 32.
    rounds: 64,
    // With DP, fewer rounds: each spends less of ε the more there are, so σ grows about as
    // √rounds (bench/fcf-dp-sweep.ts on retail at ε = 8: 24 rounds HR@10 0.2738 / 0.0186, 12
    // rounds 0.3037 / 0.0275); below 11 one round spends more than the production floor's ε 2.
    dpRounds: 12,
    // Under DP a lower rank: each item row has rank noisy values, and at rank 8 one block holds
    // the whole catalogue, so every round updates every row (fcf-dp-sweep.ts, retail, ε = 8:
    // factors alone 0.3275 / 0.0257 at rank 32 in 4 blocks, 0.3353 / 0.0391 in 2, 0.4005 /
    // 0.0367 at rank 8 in 1). ALS stays at --rank: the baseline is not weakened.
    dpRank: 8,
    curvatureSpread: 8,
    epsilon: [null, 8, 3, 1],
    alsGrid: [
      { alpha: 10, lambda: 1 },
      { alpha: 20, lambda: 10 },
      { alpha: 40, lambda: 10 },
    ],
    alsIterations: 8,
  },
} satisfies Record<string, Omit<RecsOptions, "data" | "out" | "seed">>;

class UsageError extends Error {}

export function parseRecsArgs(argv: readonly string[]): RecsOptions | "help" {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      preset: { type: "string" },
      sample: { type: "string" },
      populations: { type: "string" },
      rank: { type: "string" },
      rounds: { type: "string" },
      "dp-rounds": { type: "string" },
      "dp-rank": { type: "string" },
      spread: { type: "string" },
      epsilon: { type: "string" },
      "als-grid": { type: "string" },
      "full-turnout": { type: "boolean" },
      "fcf-only": { type: "boolean" },
      plot: { type: "string" },
      data: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const name = values.preset ?? "ci";
  if (name !== "ci" && name !== "full") throw new UsageError(`--preset: "${name}" is not ci or full`);
  const preset = PRESETS[name];
  const int = (flag: string, v: string | undefined, fallback: number, min: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${flag}: "${v}" is not a whole number ≥ ${min}`);
    return n;
  };
  const epsilon = values.epsilon
    ? values.epsilon.split(",").map((v) => {
        if (v.trim() === "none") return null;
        const e = Number(v);
        if (!(e > 0 && e <= 1000))
          throw new UsageError(`--epsilon: "${v}" is not "none" or a number in (0, 1000]`);
        return e;
      })
    : preset.epsilon;
  const sample = values.sample === undefined ? null : int("sample", values.sample, 0, 0);
  const populations = values.populations
    ? values.populations.split(",").map((p) => p.trim())
    : sample !== null
      ? [sample === 0 ? "retail" : `sample-${sample}`]
      : preset.populations;
  for (const p of populations) {
    if (!POPULATION_NAME.test(p))
      throw new UsageError(`--populations: "${p}" is not retail, sample-N or synthetic-N`);
  }
  const alsGrid = values["als-grid"]
    ? values["als-grid"].split(",").map((pair) => {
        const [a, l] = pair.split(":").map(Number);
        if (!(a !== undefined && l !== undefined && a > 0 && l > 0 && a <= 1000 && l <= 1000))
          throw new UsageError(`--als-grid: "${pair}" is not α:λ with both in (0, 1000]`);
        return { alpha: a, lambda: l };
      })
    : preset.alsGrid;
  return {
    ...preset,
    alsGrid,
    populations,
    rank: int("rank", values.rank, preset.rank, 2),
    rounds: int("rounds", values.rounds, preset.rounds, 1),
    dpRounds: int("dp-rounds", values["dp-rounds"], preset.dpRounds, 1),
    dpRank: int("dp-rank", values["dp-rank"], preset.dpRank, 2),
    curvatureSpread: int("spread", values.spread, preset.curvatureSpread, 1),
    epsilon,
    ...(values["full-turnout"] ? { fullTurnout: true } : {}),
    ...(values["fcf-only"] ? { fcfOnly: true } : {}),
    data: resolve(values.data ?? join(REPO_ROOT, "examples/data/online_retail.csv.gz")),
    out: resolve(values.out ?? join(REPO_ROOT, "bench/results/eval-recs")),
    ...(values.plot ? { plot: values.plot.split(",").map((d) => resolve(d.trim())) } : {}),
    seed: int("seed", values.seed, 1, 0),
  };
}

export interface RecsResult {
  method: string;
  epsilon: number | null;
  metrics: RankingMetrics;
  epsilonSpent?: number;
  delta?: number | null;
  rounds?: number;
  bytesPerDevicePerRound?: number;
  deviceMs?: number;
  downloadBytes?: number;
  hyperParameters?: Record<string, number | string>;
  /** FCF: the factor score alone (popularity weight 0). */
  factorOnly?: RankingMetrics;
  /** FCF: HR@10 minus popularity's over the same test users, paired bootstrap 95% interval. */
  vsPopularity?: { sampled: PairedDifference; full: PairedDifference };
}

export interface RecsReport {
  population: string;
  users: number;
  items: number;
  rank: number;
  seed: number;
  results: RecsResult[];
}

const pct = (v: number) => v.toFixed(4);

/**
 * Runs the whole comparison on each population and writes its outputs: to `--out`, or with
 * several populations to a folder per population under it.
 */
export async function runRecsEval(
  options: RecsOptions,
  log: (line: string) => void = console.log,
): Promise<RecsReport[]> {
  await tf.setBackend("cpu");
  const customers = await loadCustomers(options.data);
  const reports: RecsReport[] = [];
  for (const population of options.populations) {
    const out = options.populations.length > 1 ? join(options.out, population) : options.out;
    const data = leaveLastOut(recsCustomers(customers, population, options.seed));
    reports.push(await runOnPopulation(options, population, data, out, log));
  }
  if (reports.length > 1) {
    mkdirSync(options.out, { recursive: true });
    writeFileSync(join(options.out, "hr-vs-epsilon.svg"), hrPlot(reports));
  }
  return reports;
}

async function runOnPopulation(
  options: RecsOptions,
  population: string,
  data: RecsData,
  out: string,
  log: (line: string) => void,
): Promise<RecsReport> {
  const r = options.rank;
  log(
    `recs eval ${population}: ${data.users.length} users, ${data.items.length} items, rank ${r}, seed ${options.seed}`,
  );
  const results: RecsResult[] = [];
  const evaluate = (label: string, metrics: RankingMetrics) =>
    log(
      `  ${label.padEnd(28)} HR@10 ${pct(metrics.hr10Sampled)} NDCG@10 ${pct(metrics.ndcg10Sampled)} (99 sampled) · HR@10 ${pct(metrics.hr10Full)} NDCG@10 ${pct(metrics.ndcg10Full)} (full)`,
    );
  const hitsOf = (): RankingHits => ({
    sampled: new Uint8Array(data.users.length),
    full: new Uint8Array(data.users.length),
  });
  const popHits = hitsOf();
  const pop = evaluateRanking(data, popularityScorer(data), options.seed, popHits);
  evaluate("popularity", pop);
  results.push({ method: "popularity", epsilon: null, metrics: pop });
  // Written after each method, so a run stopped by its time bound keeps what it measured.
  const reportSoFar = (): RecsReport => ({
    population,
    users: data.users.length,
    items: data.items.length,
    rank: r,
    seed: options.seed,
    results,
  });
  const save = () => writeOutputs(out, reportSoFar(), log);
  save();
  // ALS's α and λ (tuned below unless --fcf-only) are also the federated model's.
  let best = options.alsGrid[0] ?? { alpha: 10, lambda: 1 };
  if (!options.fcfOnly) {
    const knn = evaluateRanking(data, itemKnnScorer(data), options.seed);
    evaluate("item-kNN (cosine)", knn);
    results.push({ method: "item-knn", epsilon: null, metrics: knn });
    save();

    // ALS hyper-parameters on a validation split carved from the training interactions.
    const validation = validationSplit(data, options.seed + 1);
    let bestHr = -1;
    for (const hp of options.alsGrid.length > 1 ? options.alsGrid : []) {
      const fit = trainAls(validation, {
        rank: r,
        ...hp,
        iterations: options.alsIterations,
        seed: options.seed,
      });
      const m = evaluateRanking(validation, factorScorer(fit.items, fit.users, r), options.seed + 2);
      log(
        `  ALS validation α=${hp.alpha} λ=${hp.lambda}: HR@10 ${pct(m.hr10Sampled)} (sampled) ${pct(m.hr10Full)} (full)`,
      );
      if (m.hr10Full + m.hr10Sampled > bestHr) {
        bestHr = m.hr10Full + m.hr10Sampled;
        best = hp;
      }
    }
    const als = trainAls(data, { rank: r, ...best, iterations: options.alsIterations, seed: options.seed });
    const alsMetrics = evaluateRanking(data, factorScorer(als.items, als.users, r), options.seed);
    evaluate(`ALS (α=${best.alpha}, λ=${best.lambda})`, alsMetrics);
    results.push({
      method: "als",
      epsilon: null,
      metrics: alsMetrics,
      hyperParameters: { ...best, rank: r, iterations: options.alsIterations },
    });
    save();
  }

  for (const epsilon of options.epsilon) {
    const t0 = performance.now();
    // The federated model uses ALS's tuned confidence and λ; clips bound the DP sensitivity.
    // With DP (bench/fcf-dp-sweep.ts, retail, ε = 8, 12 rounds): a bought item's count slot
    // holds 10 (clip 30: nine bought items a block) so the DP counts are precise enough to rank
    // by, and the curvature comes from those counts instead of its own release (its clip was half
    // the sensitivity): HR@10 0.3037 / 0.0275 → 0.3275 / 0.0257, DP popularity alone 0.1375 /
    // 0.0009 → 0.4245 / 0.0617. A clip of 20 on the item part loses (0.2891 / 0.0210).
    const fr = epsilon === null ? r : options.dpRank;
    const spec = {
      rank: fr,
      // With DP as many items a block as a round's 2^16 values hold (the upload stays ≤ 256 KiB).
      ...(epsilon === null
        ? {}
        : { blockSize: Math.min(data.items.length, Math.floor((65_536 - fr * fr) / (fr + 2))) }),
      alpha: best.alpha,
      lambda: best.lambda,
      curvatureSpread: options.curvatureSpread,
      ...(epsilon === null
        ? { clipGram: 1000, clipItems: 1000, clipCurvature: 1000, clipCounts: 1000 }
        : {
            clipGram: 4,
            clipItems: 40,
            clipCurvature: 40,
            clipCounts: 30,
            countScale: 10,
            curvature: "counts" as const,
          }),
    };
    const rounds = epsilon === null ? options.rounds : options.dpRounds;
    // The harness's shards hold at most 1,000 devices, filled evenly (its declaration).
    const shardFill = Math.floor(data.users.length / Math.ceil(data.users.length / 1000));
    const run = await trainFederatedRecs(data, {
      spec,
      epsilon,
      rounds,
      seed: options.seed,
      ...(options.fullTurnout && epsilon !== null ? { minNoiseShares: shardFill } : {}),
    });
    const factorHits = hitsOf();
    const factorOnly = evaluateRanking(
      data,
      factorScorer(run.items, run.users, fr),
      options.seed,
      factorHits,
    );
    // The device ranks by the factor score blended with the DP popularity (recommendItems), its
    // weight chosen on the validation split (recs-scorers.ts).
    const blend = chooseBlendWeight(
      data,
      run.items,
      run.popularity,
      {
        rank: fr,
        lambda: best.lambda,
        alpha: best.alpha,
        purchaseWeight: 1,
        cartWeight: 0.3,
        viewWeight: 0.05,
      },
      options.seed,
    );
    log(
      `  FCF popularity weight on validation: ${blend.validation.map((v) => `${v.weight}: ${pct(v.hr10Sampled)} / ${pct(v.hr10Full)}`).join(" · ")} → ${blend.weight}`,
    );
    const blendHits = blend.weight === 0 ? factorHits : hitsOf();
    const metrics =
      blend.weight === 0
        ? factorOnly
        : evaluateRanking(
            data,
            fcfScorer(data, run.items, run.users, run.popularity, fr, blend.weight),
            options.seed,
            blendHits,
          );
    const vsPopularity = {
      sampled: pairedBootstrap(blendHits.sampled, popHits.sampled, options.seed + 3),
      full: pairedBootstrap(blendHits.full, popHits.full, options.seed + 4),
    };
    const ci = (d: PairedDifference) =>
      `${d.difference.toFixed(4)} [${d.low.toFixed(4)}, ${d.high.toFixed(4)}]`;
    log(
      `  FCF − popularity, HR@10 (paired bootstrap 95%): ${ci(vsPopularity.sampled)} sampled · ${ci(vsPopularity.full)} full`,
    );
    evaluate(`FCF ${epsilon === null ? "no DP" : `ε = ${epsilon}`}, factors only`, factorOnly);
    evaluate(
      `FCF ${epsilon === null ? "no DP" : `ε = ${epsilon}`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      metrics,
    );
    // Upload per device per round: the DP rotation pads to a power of two; SecAgg+ bit-packs 24-bit words, base64.
    const padded = 2 ** Math.ceil(Math.log2(run.dimension));
    results.push({
      method: "fcf",
      epsilon,
      metrics,
      epsilonSpent: run.epsilonSpent,
      delta: run.delta,
      rounds: run.rounds,
      bytesPerDevicePerRound: Math.ceil((padded * 24) / 8 / 3) * 4,
      deviceMs: run.deviceMs,
      downloadBytes: run.factorBytes + run.paramsBytes,
      hyperParameters: {
        ...spec,
        optimizer: "mm",
        popularityWeight: blend.weight,
        ...(options.fullTurnout && epsilon !== null ? { minNoiseShares: shardFill } : {}),
      },
      factorOnly,
      vsPopularity,
    });
    save();
  }
  const report = reportSoFar();
  writeOutputs(out, report, log);
  return report;
}

function writeOutputs(out: string, report: RecsReport, log: (line: string) => void): void {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "eval.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "report.md"), reportMarkdown(report));
  writeFileSync(join(out, "hr-vs-epsilon.svg"), hrPlot([report]));
  log(
    `  wrote ${join(out, "eval.json")}, report.md and hr-vs-epsilon.svg (${report.results.length} methods)`,
  );
}

function reportMarkdown(report: RecsReport): string {
  const als = report.results.find((r) => r.method === "als");
  const ratio = (v: number, base: number | undefined) => (base ? (v / base).toFixed(3) : "–");
  const rows = report.results.map((r) => {
    const m = r.metrics;
    const label = r.method === "fcf" ? `fcf ${r.epsilon === null ? "no DP" : `ε=${r.epsilon}`}` : r.method;
    return `| ${label} | ${pct(m.hr10Sampled)} | ${pct(m.ndcg10Sampled)} | ${pct(m.hr10Full)} | ${pct(m.ndcg10Full)} | ${ratio(m.hr10Sampled, als?.metrics.hr10Sampled)} | ${ratio(m.hr10Full, als?.metrics.hr10Full)} | ${r.epsilonSpent?.toFixed(3) ?? "–"} | ${r.rounds ?? "–"} | ${r.hyperParameters?.rank ?? "–"} | ${r.hyperParameters?.popularityWeight ?? "–"} | ${r.bytesPerDevicePerRound ?? "–"} | ${r.deviceMs?.toFixed(2) ?? "–"} | ${r.downloadBytes ?? "–"} |`;
  });
  return `# Recommendations eval (FCF vs baselines)

Population ${report.population}: N = ${report.users} users (leave-last-out), ${report.items} items, rank ${report.rank}, seed ${report.seed}.
ALS hyper-parameters (validation split): ${JSON.stringify(als?.hyperParameters ?? {})}.

| method | HR@10 (99 neg.) | NDCG@10 (99 neg.) | HR@10 (full) | NDCG@10 (full) | HR/ALS (sampled) | HR/ALS (full) | ε spent | rounds | rank | popularity weight | upload B/device/round | device ms/round | download B |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
${vsPopularityTable(report)}`;
}

function vsPopularityTable(report: RecsReport): string {
  const ci = (d: PairedDifference) =>
    `${d.difference >= 0 ? "+" : ""}${pct(d.difference)} [${pct(d.low)}, ${pct(d.high)}]`;
  const rows = report.results.flatMap((r) =>
    r.vsPopularity
      ? [
          `| fcf ${r.epsilon === null ? "no DP" : `ε=${r.epsilon}`} | ${ci(r.vsPopularity.sampled)} | ${ci(r.vsPopularity.full)} |`,
        ]
      : [],
  );
  if (rows.length === 0) return "";
  return `
HR@10 of FCF minus popularity over the same test users, paired bootstrap 95% interval (${report.results.find((r) => r.vsPopularity)?.vsPopularity?.sampled.resamples} resamples):

| method | Δ HR@10 (99 neg.) | Δ HR@10 (full) |
|---|---|---|
${rows.join("\n")}
`;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

/**
 * HR@10 of FCF against ε, one line per population (N), solid for 99 sampled negatives and dashed
 * for the full catalogue; ε on a log axis, no DP at the right. Popularity per N as a dotted level.
 */
export function hrPlot(reports: readonly RecsPlotInput[]): string {
  const w = 560;
  const h = 300;
  const left = 50;
  const right = w - 130;
  const top = 30;
  const bottom = h - 40;
  const eps = [
    ...new Set(reports.flatMap((r) => r.results.filter((x) => x.method === "fcf").map((x) => x.epsilon))),
  ];
  const finite = eps.filter((e): e is number => e !== null).sort((a, b) => a - b);
  const lo = Math.log(Math.min(...finite, 1));
  const hi = Math.log(Math.max(...finite, 8));
  const noDpX = right;
  const x = (e: number | null) =>
    e === null ? noDpX : left + ((Math.log(e) - lo) / Math.max(1e-9, hi - lo)) * (right - 60 - left);
  const maxHr = Math.max(
    0.1,
    ...reports.flatMap((r) => r.results.map((x) => Math.max(x.metrics.hr10Sampled, x.metrics.hr10Full))),
  );
  const y = (v: number) => bottom - (v / maxHr) * (bottom - top);
  const parts: string[] = [];
  reports.forEach((report, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const fed = report.results
      .filter((r) => r.method === "fcf")
      .sort((a, b) => (a.epsilon ?? Number.POSITIVE_INFINITY) - (b.epsilon ?? Number.POSITIVE_INFINITY));
    for (const [key, dash] of [
      ["hr10Sampled", ""],
      ["hr10Full", ' stroke-dasharray="5 3"'],
    ] as const) {
      const d = fed
        .map((r, k) => `${k === 0 ? "M" : "L"}${x(r.epsilon).toFixed(1)},${y(r.metrics[key]).toFixed(1)}`)
        .join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
      for (const r of fed)
        parts.push(
          `<circle cx="${x(r.epsilon).toFixed(1)}" cy="${y(r.metrics[key]).toFixed(1)}" r="3" fill="${colour}"/>`,
        );
    }
    const pop = report.results.find((r) => r.method === "popularity");
    if (pop)
      parts.push(
        `<line x1="${left}" x2="${right}" y1="${y(pop.metrics.hr10Sampled).toFixed(1)}" y2="${y(pop.metrics.hr10Sampled).toFixed(1)}" stroke="${colour}" stroke-dasharray="1 3"/>`,
      );
    parts.push(
      `<text x="${right + 12}" y="${top + 16 * i + 10}" font-size="11" fill="${colour}">N = ${report.users} (${report.population})</text>`,
    );
  });
  const ticks = [...finite.map((e) => [e, String(e)] as const), [null, "no DP"] as const]
    .map(
      ([e, label]) =>
        `<text x="${x(e).toFixed(1)}" y="${bottom + 16}" font-size="11" text-anchor="middle">${label}</text>`,
    )
    .join("");
  const yTicks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => f * maxHr)
    .map(
      (v) =>
        `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${v.toFixed(2)}</text>`,
    )
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
<rect width="${w}" height="${h}" fill="white"/>
<text x="10" y="16" font-size="12">FCF HR@10 vs ε (solid: 99 sampled negatives, dashed: full catalogue, dotted: popularity, sampled)</text>
<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#444"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#444"/>
${ticks}${yTicks}
<text x="${(left + right) / 2}" y="${h - 6}" font-size="11" text-anchor="middle">ε (whole training, δ = 1/N^1.1)</text>
${parts.join("\n")}
</svg>
`;
}

/** What `hrPlot` reads of an eval.json (validated when read back with `--plot`). */
const RecsPlotInput = z.object({
  population: z.string(),
  users: z.int().check(z.positive()),
  results: z.array(
    z.object({
      method: z.string(),
      epsilon: z.nullable(z.number()),
      metrics: z.object({ hr10Sampled: z.number(), hr10Full: z.number() }),
    }),
  ),
});
type RecsPlotInput = z.infer<typeof RecsPlotInput>;

/** `--plot DIRS`: one plot of the eval.json in each folder, written to `out`. */
export function plotFromFolders(dirs: readonly string[], out: string): string {
  const reports = dirs.map((dir) => {
    const file = join(dir, "eval.json");
    const parsed = RecsPlotInput.safeParse(JSON.parse(readFileSync(file, "utf8")));
    if (!parsed.success) throw new UsageError(`--plot: ${file}: ${z.prettifyError(parsed.error)}`);
    return parsed.data;
  });
  mkdirSync(out, { recursive: true });
  const path = join(out, "hr-vs-epsilon.svg");
  writeFileSync(path, hrPlot(reports));
  return path;
}

export async function recsMain(argv: readonly string[]): Promise<number> {
  let options: RecsOptions | "help";
  try {
    options = parseRecsArgs(argv);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}\n\n${RECS_EVAL_HELP}`);
    return 2;
  }
  if (options === "help") {
    console.log(RECS_EVAL_HELP);
    return 0;
  }
  if (options.plot) {
    try {
      console.log(`wrote ${plotFromFolders(options.plot, options.out)}`);
    } catch (error) {
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      return 2;
    }
    return 0;
  }
  await runRecsEval(options);
  return 0;
}
