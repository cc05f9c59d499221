/**
 * One load-generator process: runs `count` simulated devices (the SDK's real SecAgg+ and DP
 * client halves) through one round against a coordinator on loopback, timing every HTTP request.
 * Started by `test/load/load-suite.ts` with its job as JSON in argv[2]; prints one JSON line
 * (the {@link DeviceProcessReport}) on stdout when done.
 */

import { RoundInfo } from "@fedprofile/coordinator/wire";
import {
  createCoordinatorClient,
  participateInSecAggRound,
  type StageSocketFactory,
} from "@fedprofile/sdk/sync";
import * as z from "zod";

const Job = z.object({
  url: z.url().refine((u) => new URL(u).hostname === "127.0.0.1", "url: loopback only"),
  key: z.string(),
  round: z.unknown(),
  count: z.int().min(1).max(4000),
  seed: z.int(),
  /** `push`: devices hold a stage socket (the process runs with a WebSocket); `poll`: never. */
  transport: z.enum(["push", "poll"]),
  /** Every how many devices one offers a wrong credential on its socket (refused: it polls); 0 none. */
  refuseEvery: z.int().min(0),
  /** Devices start at a uniformly random time in [0, arrivalMs): arrivals spread over the join window. */
  arrivalMs: z.int().min(0),
  /**
   * At most this many HTTP requests in flight from this process, so at most this many keep-alive
   * connections: node's fetch opens a new connection per concurrent request, and at 8,000
   * devices those (plus the sockets) took wrangler's proxy past `ulimit -n`. 0: no bound.
   */
  httpConnections: z.int().min(0).default(0),
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
  /** Stage sockets: handshakes tried, opened, failed or refused, views pushed, and ms to open. */
  sockets: { tried: number; opened: number; failed: number; pushes: number; openMs: number[] };
  /** Ms each HTTP request waited for a free connection (the gate), before it was sent. */
  gateWaitMs: number[];
}

const job = Job.parse(JSON.parse(process.argv[2] ?? "{}"));
const round = RoundInfo.parse(job.round);
const report: DeviceProcessReport = {
  latencies: {},
  errors: {},
  outcomes: {},
  errorSamples: [],
  sockets: { tried: 0, opened: 0, failed: 0, pushes: 0, openMs: [] },
  gateWaitMs: [],
};
const sample = (text: string) => {
  if (report.errorSamples.length < 5) report.errorSamples.push(text.slice(0, 300));
};
const routeOf = (url: string, method: string) =>
  `${method} ${new URL(url).pathname.replace(/r_[A-Za-z0-9_-]{22}/, ":round").replace(/shards\/[0-9]+/, "shards/:shard")}`;

// The connection gate: a counting semaphore, FIFO. With at most `httpConnections` requests in
// flight, node's keep-alive pool never holds more connections than that (idle ones are reused).
let inFlight = 0;
const waiting: Array<() => void> = [];
const acquire = async () => {
  if (job.httpConnections === 0) return;
  if (inFlight >= job.httpConnections) await new Promise<void>((resolve) => waiting.push(resolve));
  else inFlight++;
};
const release = () => {
  if (job.httpConnections === 0) return;
  const next = waiting.shift();
  // The slot passes straight to the next waiter: inFlight stays the same.
  if (next) next();
  else inFlight--;
};

const timedFetch: typeof fetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const route = routeOf(url, init?.method ?? "GET");
  const queued = performance.now();
  await acquire();
  // The route's latency is the request's own (sent to answered); the wait for a slot is apart.
  const started = performance.now();
  if (job.httpConnections > 0) report.gateWaitMs.push(started - queued);
  try {
    const response = await fetch(input, init);
    // The body is read inside the slot: the connection is free for reuse only once it is drained.
    const body = await response.arrayBuffer();
    const times = report.latencies[route] ?? [];
    times.push(performance.now() - started);
    report.latencies[route] = times;
    if (response.status >= 500) {
      report.errors[route] = (report.errors[route] ?? 0) + 1;
      sample(`${route} ${response.status} ${new TextDecoder().decode(body)}`);
    }
    return new Response(response.status === 204 || response.status === 304 ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  } catch (error) {
    report.errors[route] = (report.errors[route] ?? 0) + 1;
    sample(`${route} ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  } finally {
    release();
  }
};

let state = job.seed >>> 0;
const random = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 2 ** 32;
};

/** The runtime's WebSocket (node --experimental-websocket), timed and counted. */
const timedSocket = (refused: boolean): StageSocketFactory => {
  const Socket = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocket })
    .WebSocket;
  if (!Socket)
    throw new Error("transport push: this process has no WebSocket (run node with --experimental-websocket)");
  return (url, protocols) => {
    report.sockets.tried++;
    const started = performance.now();
    // A refused device offers a wrong participant token: the shard answers 403, no socket opens.
    const offered = refused
      ? protocols.map((p) => (p.startsWith("p.") ? `${p.slice(0, -4)}AAAA` : p))
      : protocols;
    const socket = new Socket(url, offered);
    socket.addEventListener("open", () => {
      report.sockets.opened++;
      report.sockets.openMs.push(performance.now() - started);
    });
    socket.addEventListener("message", () => {
      report.sockets.pushes++;
    });
    return socket;
  };
};

let settled = 0;
// Devices waiting on nothing but each other must not let node exit with a pending top-level
// await (exit 13, seen once at 4,000 devices): the suite's SIGTERM at its deadline ends them.
const keepAlive = setInterval(() => {}, 60_000);
const finish = () => {
  clearInterval(keepAlive);
  // A socket that never opened was refused or failed (the device polled instead).
  report.sockets.failed = report.sockets.tried - report.sockets.opened;
  process.stdout.write(`${JSON.stringify(report)}\n`);
};
// The suite's time bound: report what happened so far (devices still going count as unfinished).
process.on("SIGTERM", () => {
  if (settled < job.count) report.outcomes.unfinished = job.count - settled;
  finish();
  process.exit(0);
});

await Promise.all(
  Array.from({ length: job.count }, async (_, d) => {
    if (job.arrivalMs > 0) await new Promise((resolve) => setTimeout(resolve, random() * job.arrivalMs));
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
        socket:
          job.transport === "push" ? timedSocket(job.refuseEvery > 0 && d % job.refuseEvery === 0) : false,
      });
      report.outcomes[outcome.status] = (report.outcomes[outcome.status] ?? 0) + 1;
    } catch (error) {
      const key = `error: ${error instanceof Error ? error.message.slice(0, 80) : String(error)}`;
      report.outcomes[key] = (report.outcomes[key] ?? 0) + 1;
    }
    settled++;
  }),
);
finish();
