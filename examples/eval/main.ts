/**
 * `fedprofile eval`: federated k-means under user-level DP against centralised k-means, on the
 * real Online Retail customers and on synthetic scale-ups, with the real device and server
 * halves in-process (see `harness.ts`). Writes `eval.json`, `report.md` and SVG plots.
 *
 *   npx fedprofile eval                      # the CI preset: N = 2,000, k = 4, no DP and ε = 1, 3 rounds
 *   npx fedprofile eval --preset full        # N ∈ {4,338, 10,000, 100,000}, k ∈ {3..6}, ε ∈ {none, 0.5, 1, 3}
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { realUnits } from "@fedprofile/coordinator/models";
import { REPO_ROOT } from "../../edge/scripts/local-dev";
import { median, type TrainingRun, trainFederated } from "./harness";
import { centralisedKMeans, costOf, segmentSizes, silhouette } from "./metrics";
import { costRatioPlot, segmentPlot } from "./plots";
import { loadCustomers, type Population, retailPopulation, syntheticPopulation } from "./population";
import { type WorkerdAgreement, workerdAgreement } from "./workerd";

export const EVAL_HELP = `fedprofile eval: federated k-means under DP vs centralised k-means++ (best of 10)

  fedprofile eval recs [--preset ci|full]   the recommendations eval (FCF vs ALS); --help there

Options:
  --preset ci|full        ci (default): N = 2,000 sampled customers, k = 4, no DP and ε = 1, 2 Lloyd rounds
                          full: N ∈ {4338, 10000, 100000}, k ∈ {3,4,5,6}, ε ∈ {none, 0.5, 1, 3}
  --populations LIST      comma-separated: retail (the 4,338 real customers), sample-N, synthetic-N
  --k LIST                comma-separated cluster counts (2-16)
  --epsilon LIST          comma-separated ε for the whole training, or "none" for no DP
  --rounds N              Lloyd iterations after the DP initialisation, at the most
  --shard N               devices per shard (maxShardSize)
  --secagg-shard N        devices of the sampled shard that run SecAgg+ for real each round
  --data PATH             the Online Retail CSV (default examples/data/online_retail.csv.gz)
  --out DIR               output folder (default bench/results/eval)
  --seed N                seed of the sampling, the synthetic population and the baselines
  --workerd               also run a small configuration (40 devices, k = 3, ε = 20) through a
                          wrangler dev it starts, and check it agrees with in-process runs
  -h, --help              this help
`;

interface Options {
  populations: string[];
  k: number[];
  epsilon: Array<number | null>;
  rounds: number;
  shard: number;
  secaggShard: number;
  data: string;
  out: string;
  seed: number;
  workerd: boolean;
}

const PRESETS: Record<string, Omit<Options, "data" | "out" | "seed" | "workerd">> = {
  ci: { populations: ["sample-2000"], k: [4], epsilon: [null, 1], rounds: 2, shard: 1000, secaggShard: 40 },
  full: {
    populations: ["retail", "synthetic-10000", "synthetic-100000"],
    k: [3, 4, 5, 6],
    epsilon: [null, 0.5, 1, 3],
    rounds: 5,
    shard: 1000,
    secaggShard: 100,
  },
};

class UsageError extends Error {}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name}: "${value}" is not a positive whole number`);
  return n;
}

export function parseEvalArgs(argv: readonly string[]): Options | "help" {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      preset: { type: "string" },
      populations: { type: "string" },
      k: { type: "string" },
      epsilon: { type: "string" },
      rounds: { type: "string" },
      shard: { type: "string" },
      "secagg-shard": { type: "string" },
      data: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      workerd: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const preset = PRESETS[values.preset ?? "ci"];
  if (!preset)
    throw new UsageError(`--preset: "${values.preset}" is not one of ${Object.keys(PRESETS).join(", ")}`);
  const list = (v: string) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const populations = values.populations ? list(values.populations) : preset.populations;
  for (const p of populations) {
    if (p !== "retail" && !/^(sample|synthetic)-[1-9][0-9]*$/.test(p)) {
      throw new UsageError(`--populations: "${p}" is not retail, sample-N or synthetic-N`);
    }
  }
  const k = values.k ? list(values.k).map((v) => positiveInt("k", v)) : preset.k;
  if (k.some((v) => v < 2 || v > 16)) throw new UsageError("--k: each k must be from 2 to 16");
  const epsilon = values.epsilon
    ? list(values.epsilon).map((v) => {
        if (v === "none") return null;
        const e = Number(v);
        if (!(e > 0 && e <= 1000))
          throw new UsageError(`--epsilon: "${v}" is not "none" or a number in (0, 1000]`);
        return e;
      })
    : preset.epsilon;
  return {
    populations,
    k,
    epsilon,
    rounds: values.rounds ? positiveInt("rounds", values.rounds) : preset.rounds,
    shard: values.shard ? positiveInt("shard", values.shard) : preset.shard,
    secaggShard: values["secagg-shard"]
      ? positiveInt("secagg-shard", values["secagg-shard"])
      : preset.secaggShard,
    data: resolve(values.data ?? join(REPO_ROOT, "examples/data/online_retail.csv.gz")),
    out: resolve(values.out ?? join(REPO_ROOT, "bench/results/eval")),
    seed: values.seed ? positiveInt("seed", values.seed) : 1,
    workerd: values.workerd ?? false,
  };
}

/** One configuration's result, as written to eval.json. */
export interface EvalResult {
  population: string;
  n: number;
  k: number;
  epsilon: number | null;
  delta: number | null;
  epsilonSpent: number;
  rounds: number;
  converged: boolean;
  costRatio: number;
  federatedCost: number;
  centralisedCost: number;
  silhouette: number;
  centralisedSilhouette: number;
  segmentSizes: number[];
  secaggShards: Array<{ devices: number; protocol: string; matchesModularSum: boolean }>;
  deviceMsPerRound: number;
  serverMsPerRound: number;
  wallMs: number;
  /** The published centroids in real units, for independent scoring. */
  centroids: Array<{ label: string; standardised: number[]; real: Record<string, number> }>;
}

function sample(vectors: number[][], n: number, seed: number): number[][] {
  if (n >= vectors.length) return vectors;
  let a = seed >>> 0;
  const random = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
  const copy = [...vectors];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as number[], copy[i] as number[]];
  }
  return copy.slice(0, n);
}

export async function runEval(options: Options, log: (line: string) => void = console.log) {
  const started = performance.now();
  log(`reading ${options.data}`);
  const customers = await loadCustomers(options.data);
  const retail = retailPopulation(customers);
  const results: EvalResult[] = [];
  const total = options.populations.length * options.k.length * options.epsilon.length;
  let done = 0;
  for (const name of options.populations) {
    const population: Population =
      name === "retail"
        ? retail
        : name.startsWith("sample-")
          ? { name, vectors: sample(retail.vectors, Number(name.slice(7)), options.seed) }
          : syntheticPopulation(customers, Number(name.slice(10)), options.seed);
    const n = population.vectors.length;
    for (const k of options.k) {
      const central = centralisedKMeans(population.vectors, k, 10, options.seed);
      const centralSilhouette = silhouette(population.vectors, central.centroids);
      log(
        `${name} (N = ${n}) k = ${k}: centralised k-means++ best of 10: cost ${central.cost.toFixed(1)} in ${central.ms.toFixed(0)} ms`,
      );
      for (const epsilon of options.epsilon) {
        const t0 = performance.now();
        const label = epsilon === null ? "no DP" : `ε = ${epsilon}`;
        const run: TrainingRun = await trainFederated(
          population.vectors,
          {
            k,
            epsilon,
            maxRounds: options.rounds,
            maxShardSize: options.shard,
            secaggShardSize: options.secaggShard,
            seed: options.seed,
          },
          (round, index) =>
            log(
              `  [${done + 1}/${total}] ${label}: round ${index} (${round.phase}, d = ${round.dimension}, ${round.shards} shard${round.shards === 1 ? "" : "s"}` +
                `${round.sampledShard ? `, SecAgg+ on ${round.sampledShard.devices} devices ${round.sampledShard.ms.toFixed(0)} ms` : ""})` +
                ` ε ${round.epsilonAfter.toFixed(3)}${round.shift === null ? "" : ` shift ${round.shift.toFixed(4)}`}`,
            ),
        );
        const federatedCost = costOf(population.vectors, run.centroids);
        const result: EvalResult = {
          population: name,
          n,
          k,
          epsilon,
          delta: run.delta,
          epsilonSpent: run.epsilonSpent,
          rounds: run.rounds.length,
          converged: run.converged,
          costRatio: federatedCost / central.cost,
          federatedCost,
          centralisedCost: central.cost,
          silhouette: silhouette(population.vectors, run.centroids),
          centralisedSilhouette: centralSilhouette,
          segmentSizes: segmentSizes(population.vectors, run.centroids),
          secaggShards: run.rounds.flatMap((r) => (r.sampledShard ? [r.sampledShard] : [])),
          deviceMsPerRound: median(run.rounds.map((r) => r.deviceMs)),
          serverMsPerRound: median(run.rounds.map((r) => r.serverMs)),
          wallMs: performance.now() - t0,
          centroids: run.params.segments.map((s) => ({
            label: s.label,
            standardised: s.centroid,
            real: realUnits(s.centroid),
          })),
        };
        results.push(result);
        done++;
        log(
          `  [${done}/${total}] ${label}: cost ratio ${result.costRatio.toFixed(4)}, silhouette ${result.silhouette.toFixed(3)} ` +
            `(central ${centralSilhouette.toFixed(3)}), ε spent ${result.epsilonSpent.toFixed(3)}, ${result.rounds} rounds, ${(result.wallMs / 1000).toFixed(1)} s`,
        );
      }
    }
  }
  const workerd = options.workerd
    ? await workerdAgreement({ data: options.data, devices: 40, k: 3, epsilon: 20, rounds: 2, log })
    : null;
  mkdirSync(options.out, { recursive: true });
  const report = {
    generatedAt: new Date().toISOString(),
    options: { ...options, data: "online_retail.csv.gz" },
    results,
    workerd,
    wallMs: performance.now() - started,
  };
  writeFileSync(join(options.out, "eval.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.out, "report.md"), markdownReport(results, workerd));
  writeFileSync(join(options.out, "cost-ratio.svg"), costRatioPlot(results));
  writeFileSync(join(options.out, "segments.svg"), segmentPlot(results));
  log(`wrote eval.json, report.md, cost-ratio.svg and segments.svg to ${options.out}`);
  return report;
}

const fmt = (v: number, digits = 1) =>
  v.toLocaleString("en-GB", { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function markdownReport(
  results: readonly EvalResult[],
  workerd: WorkerdAgreement | null = null,
): string {
  const lines = [
    "# fedprofile eval: federated k-means under user-level DP",
    "",
    "Cost ratio = k-means cost of the published centroids / cost of centralised k-means++ (best of 10 seeds, Lloyd to convergence), both on every device's standardised profile vector. ε is for the whole training (DP initialisation and every Lloyd round), at δ = 1/N^1.1, distributed discrete Gaussian.",
    "",
    "| population | N | k | ε target | ε spent | rounds | cost ratio | silhouette (central) | device ms/round | server ms/round | SecAgg+ sampled |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...results.map(
      (r) =>
        `| ${r.population} | ${r.n.toLocaleString("en-GB")} | ${r.k} | ${r.epsilon ?? "none"} | ${r.epsilon === null ? "—" : fmt(r.epsilonSpent, 3)} | ${r.rounds} | ${fmt(r.costRatio, 4)} | ${fmt(r.silhouette, 3)} (${fmt(r.centralisedSilhouette, 3)}) | ${fmt(r.deviceMsPerRound, 3)} | ${fmt(r.serverMsPerRound, 1)} | ${r.secaggShards.length ? `${r.secaggShards.length}× ${r.secaggShards[0]?.devices} devices, all exact` : "— (no DP: exact sums)"} |`,
    ),
    "",
    ...(workerd
      ? [
          "## The same configuration on real workerd",
          "",
          `${workerd.devices} SDK devices through \`wrangler dev\` (the TrainerDO opened every round; k = ${workerd.k}, ε = ${workerd.epsilon}, ${workerd.rounds} Lloyd rounds): cost ${fmt(workerd.workerdCost, 2)}; in-process with fresh noise, ${workerd.inProcessCosts.length} runs: ${fmt(workerd.mean, 2)} ± ${fmt(workerd.sd, 2)} → ${workerd.agrees ? "**they agree within the noise**" : "**they disagree**"} (${fmt(workerd.workerdSeconds, 0)} s on workerd).`,
          "",
        ]
      : []),
    "## Segments in real units",
    "",
  ];
  for (const r of results.filter((x) => x.epsilon !== null)) {
    lines.push(
      `### ${r.population}, k = ${r.k}, ε = ${r.epsilon}`,
      "",
      "| segment | devices | recency (days) | orders | monetary | avg order | tenure (days) |",
      "|---|---:|---:|---:|---:|---:|---:|",
    );
    r.centroids.forEach((c, i) => {
      lines.push(
        `| ${c.label} | ${(r.segmentSizes[i] ?? 0).toLocaleString("en-GB")} | ${fmt(c.real.recency ?? 0, 0)} | ${fmt(c.real.frequency ?? 0, 1)} | ${fmt(c.real.monetary ?? 0, 0)} | ${fmt(c.real.avg_order_value ?? 0, 0)} | ${fmt(c.real.tenure ?? 0, 0)} |`,
      );
    });
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  // `fedprofile eval recs …`: the recommendations eval (`recs-main.ts`).
  if (argv[0] === "recs") return (await import("./recs-main")).recsMain(argv.slice(1));
  let options: Options | "help";
  try {
    options = parseEvalArgs(argv);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message}\n\n${EVAL_HELP}`);
    return 2;
  }
  if (options === "help") {
    console.log(EVAL_HELP);
    return 0;
  }
  try {
    await runEval(options);
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
