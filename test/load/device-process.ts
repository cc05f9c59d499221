/**
 * One load-generator process: runs `count` simulated devices (the SDK's real SecAgg+ and DP
 * client halves) through one round against a coordinator on loopback, timing every HTTP request.
 * Started by `test/load/load-suite.ts` with its job as JSON in argv[2]; prints one JSON line
 * (the {@link DeviceProcessReport}) on stdout when done.
 */

import { RoundInfo } from "@fedprofile/coordinator/wire";
import { createCoordinatorClient, participateInSecAggRound } from "@fedprofile/sdk/sync";
import * as z from "zod";

const Job = z.object({
  url: z.url().refine((u) => new URL(u).hostname === "127.0.0.1", "url: loopback only"),
  key: z.string(),
  round: z.unknown(),
  count: z.int().min(1).max(2000),
  seed: z.int(),
});

/** What a device process reports. */
export interface DeviceProcessReport {
  /** Milliseconds per request, by route (ids replaced by placeholders). */
  latencies: Record<string, number[]>;
  /** Requests that failed (network error or a 5xx), by route. */
  errors: Record<string, number>;
  outcomes: Record<string, number>;
  /** The first few failures as the device saw them. */
  errorSamples: string[];
}

const job = Job.parse(JSON.parse(process.argv[2] ?? "{}"));
const round = RoundInfo.parse(job.round);
const report: DeviceProcessReport = { latencies: {}, errors: {}, outcomes: {}, errorSamples: [] };
const sample = (text: string) => {
  if (report.errorSamples.length < 5) report.errorSamples.push(text.slice(0, 300));
};
const routeOf = (url: string, method: string) =>
  `${method} ${new URL(url).pathname.replace(/r_[A-Za-z0-9_-]{22}/, ":round").replace(/shards\/[0-9]+/, "shards/:shard")}`;

const timedFetch: typeof fetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const route = routeOf(url, init?.method ?? "GET");
  const started = performance.now();
  try {
    const response = await fetch(input, init);
    report.latencies[route] = [...(report.latencies[route] ?? []), performance.now() - started];
    if (response.status >= 500) {
      report.errors[route] = (report.errors[route] ?? 0) + 1;
      sample(`${route} ${response.status} ${await response.clone().text()}`);
    }
    return response;
  } catch (error) {
    report.errors[route] = (report.errors[route] ?? 0) + 1;
    sample(`${route} ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
};

let state = job.seed >>> 0;
const random = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 2 ** 32;
};

await Promise.all(
  Array.from({ length: job.count }, async () => {
    const client = createCoordinatorClient({
      endpoint: job.url,
      apiKey: job.key,
      fetch: timedFetch,
      retry: { windowMs: 10_000, baseDelayMs: 200 },
    });
    const vector = Float64Array.from({ length: round.dimension }, () => random() * 2 - 1);
    try {
      const outcome = await participateInSecAggRound(client, round, () => vector, {
        pollMs: 250,
        policy: "development",
      });
      report.outcomes[outcome.status] = (report.outcomes[outcome.status] ?? 0) + 1;
    } catch (error) {
      const key = `error: ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`;
      report.outcomes[key] = (report.outcomes[key] ?? 0) + 1;
    }
  }),
);
process.stdout.write(`${JSON.stringify(report)}\n`);
