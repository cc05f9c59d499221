/**
 * The load suite (issue 11): simulated devices in several node processes (loopback only) run
 * full DP SecAgg+ rounds against a real `wrangler dev` this suite starts and stops by PID. It
 * measures rounds per minute, p50/p99 latency per route, errors, and the coordinator's resident
 * memory (wrangler and workerd, the process group it started), sampled every 500 ms.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { RoundStatus } from "@fedprofile/coordinator/wire";
import * as z from "zod";
import {
  applyLocalMigrations,
  REPO_ROOT,
  seedLocalTenant,
  startLocalCoordinator,
} from "../../edge/scripts/local-dev";
import {
  findUserWorkerSocket,
  groupProcesses,
  listeningPorts,
  openFds,
  rssMiB,
} from "./coordinator-processes";
import type { DeviceProcessReport } from "./device-process";

export interface LoadOptions {
  devices: number;
  processes: number;
  rounds: number;
  /** Devices per shard (each shard a Durable Object running its own SecAgg+ instance). */
  shardSize: number;
  dimension: number;
  /** Each SecAgg stage's deadline (the join window is the first); default 60. */
  stageSeconds?: number;
  /** Hard bound on the whole run; a round still going then counts as not finished. */
  maxSeconds: number;
  /** `push` (default): devices hold stage sockets (issue 16); `poll`: HTTP polling only. */
  transport?: "push" | "poll";
  /** Every how many devices one has its socket refused (wrong credential) and polls; 0 none. */
  refuseEvery?: number;
  /** Devices arrive uniformly over this many seconds after the round opens (default 0: at once). */
  arrivalSeconds?: number;
  /** Most HTTP requests in flight (so keep-alive connections) per device process; default 32, 0 none. */
  httpConnections?: number;
  /**
   * Devices connect to the user worker's own workerd socket, not wrangler dev's proxy on the
   * public port: the proxy is a dev-only hop Cloudflare does not have (its fds grow with requests made).
   */
  direct?: boolean;
}

/** One process of the coordinator (wrangler's group): its role, and its peaks over the run. */
export interface CoordinatorProcess {
  pid: number;
  role: string;
  rssMiBPeak: number;
  fdsPeak: number;
}

export interface LoadReport {
  options: LoadOptions;
  roundsFinished: number;
  roundsPublished: number;
  roundsPerMinute: number;
  seconds: number;
  requests: number;
  errors: number;
  /** Per route: count, p50 and p99 in ms, errors. */
  routes: Record<string, { count: number; p50: number; p99: number; errors: number }>;
  outcomes: Record<string, number>;
  errorSamples: string[];
  coordinatorRssMiB: { peak: number; end: number };
  /** The machine's 1-minute load average: its peak during the run (the machine is shared). */
  loadAverage1mPeak: number;
  /** Most open file descriptors of one coordinator process (each socket holds some; limit `ulimit -n`). */
  coordinatorFdsPeak: number;
  /** Each coordinator process (wrangler, its proxy workerd, the user worker's workerd): RSS and fds peaks. */
  coordinatorProcesses: CoordinatorProcess[];
  /** Where devices connected (the proxy, or `direct` to the user worker's socket), and why it matters. */
  devicePath: { mode: "proxy" | "direct"; url: string; note: string };
  /** Ms an HTTP request waited for a free connection in its device process (the gate). */
  httpGateWait: { p50: number; p99: number };
  /** Set when the coordinator stopped answering: when, and the end of what wrangler printed. */
  coordinatorFailure?: { atSeconds: number; log: string };
  /** HTTP requests plus socket handshakes, per device per round run (what a device costs). */
  requestsPerDevicePerRound: number;
  /** View polls per device per round (what push removes). */
  viewPollsPerDevicePerRound: number;
  /** Stage sockets over the run: handshakes, opened, failed (refused), pushes, p50/p99 ms to open. */
  sockets: {
    tried: number;
    opened: number;
    failed: number;
    pushes: number;
    openP50: number;
    openP99: number;
  };
  rounds: Array<{
    roundId: string;
    stage: string;
    contributions: number;
    seconds: number;
    /** This round's HTTP requests plus socket handshakes, per device, and its view polls per device. */
    requestsPerDevice: number;
    viewPollsPerDevice: number;
  }>;
}

/** A device process's report line, checked once here ({@link DeviceProcessReport}). */
const ProcessReport = z.object({
  latencies: z.record(z.string(), z.array(z.number())),
  errors: z.record(z.string(), z.number()),
  outcomes: z.record(z.string(), z.number()),
  errorSamples: z.array(z.string()),
  sockets: z.object({
    tried: z.number(),
    opened: z.number(),
    failed: z.number(),
    pushes: z.number(),
    openMs: z.array(z.number()),
  }),
  gateWaitMs: z.array(z.number()),
}) satisfies z.ZodType<DeviceProcessReport>;

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);

/**
 * Runs one device process. At `deadline` it is sent SIGTERM and reports what it has so far (its
 * devices still going count as `unfinished`), so a run that overruns still yields figures.
 */
function runDeviceProcess(job: object, deadline: number): Promise<DeviceProcessReport> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [
        // Node 20's WebSocket (undici) is behind this flag; Node 22 has it on by default.
        "--experimental-websocket",
        "--no-warnings",
        "--import",
        "tsx",
        "--conditions=source",
        join(REPO_ROOT, "test/load/device-process.ts"),
        JSON.stringify(job),
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const stop = setTimeout(() => child.kill("SIGTERM"), Math.max(1, deadline - Date.now()));
    child.on("error", fail);
    // "close", not "exit": the report is one long line, and "exit" can fire before stdout is read
    // to its end (at 4,000 devices the suite parsed a truncated line and threw its figures away).
    child.on("close", (code) => {
      clearTimeout(stop);
      const line = out.trim().split("\n").at(-1);
      let parsed: DeviceProcessReport | undefined;
      try {
        parsed = line ? ProcessReport.parse(JSON.parse(line)) : undefined;
      } catch {
        err += `\nunparsable report (${line?.length ?? 0} chars)`;
      }
      // A process that died still counts: its devices are reported as such, the others' figures stand.
      if (code !== 0 || !parsed) {
        return done({
          latencies: {},
          errors: {},
          outcomes: { [`device process exited ${code}`]: 1 },
          errorSamples: [err.slice(-300)],
          sockets: { tried: 0, opened: 0, failed: 0, pushes: 0, openMs: [] },
          gateWaitMs: [],
        });
      }
      done(parsed);
    });
  });
}

async function call(url: string, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as unknown;
}

/** Runs the suite and returns its report. */
export async function runLoadSuite(options: LoadOptions): Promise<LoadReport> {
  const persistTo = mkdtempSync(join(tmpdir(), "fedprofile-load-"));
  const coordinator = { current: null as Awaited<ReturnType<typeof startLocalCoordinator>> | null };
  let peak = 0;
  let loadPeak = 0;
  let fdPeak = 0;
  const processes = new Map<number, CoordinatorProcess>();
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    await applyLocalMigrations(persistTo);
    const keys = await seedLocalTenant(persistTo, "load-shop");
    const started = await startLocalCoordinator({ persistTo });
    coordinator.current = started;
    const publicPort = Number(new URL(started.url).port);
    const direct = options.direct ? await findUserWorkerSocket(started.pid, publicPort) : undefined;
    const roleOf = (pid: number, comm: string) => {
      if (comm !== "workerd") return comm === "node" || comm === "MainThread" ? "wrangler (node)" : comm;
      if (pid === direct?.proxyPid || listeningPorts(pid).includes(publicPort))
        return "workerd: wrangler dev's proxy (public port)";
      return "workerd: the user worker";
    };
    sampler = setInterval(() => {
      let rss = 0;
      for (const { pid, comm } of groupProcesses(started.pid)) {
        const entry =
          processes.get(pid) ??
          processes.set(pid, { pid, role: roleOf(pid, comm), rssMiBPeak: 0, fdsPeak: 0 }).get(pid);
        if (!entry) continue;
        const [mib, fds] = [rssMiB(pid), openFds(pid)];
        rss += mib;
        entry.rssMiBPeak = Math.max(entry.rssMiBPeak, Math.round(mib));
        entry.fdsPeak = Math.max(entry.fdsPeak, fds);
        fdPeak = Math.max(fdPeak, fds);
      }
      peak = Math.max(peak, rss);
      loadPeak = Math.max(loadPeak, loadavg()[0] ?? 0);
    }, 500);
    const deviceUrl = direct?.url ?? started.url;
    await call(started.url, "PUT", "/v1/privacy/budgets/load", keys.secret, {
      v: 1,
      epsilonCap: 1000,
      delta: 1e-7,
    });
    const begin = Date.now();
    const deadline = begin + options.maxSeconds * 1000;
    const latencies: Record<string, number[]> = {};
    const errors: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    const errorSamples: string[] = [];
    const rounds: LoadReport["rounds"] = [];
    let failure: LoadReport["coordinatorFailure"];
    const sockets = { tried: 0, opened: 0, failed: 0, pushes: 0, openMs: [] as number[] };
    const gateWaitMs: number[] = [];
    for (let r = 0; r < options.rounds && Date.now() < deadline; r++) {
      const roundStart = Date.now();
      const opened = RoundStatus.parse(
        await call(started.url, "POST", "/v1/rounds", keys.secret, {
          v: 1,
          modelId: "load",
          dimension: options.dimension,
          minContributions: Math.ceil(options.devices * 0.5),
          maxContributions: options.devices,
          deadlineSeconds: 600,
          aggregation: "secagg",
          secagg: {
            minShardSize: options.shardSize,
            maxShardSize: options.shardSize,
            stageSeconds: options.stageSeconds ?? 60,
            k: 8,
            t: 5,
          },
          dp: { clipNorm: 1, targetEpsilon: 10, rounds: 10, modulusBits: 24 },
        }),
      );
      const per = Math.ceil(options.devices / options.processes);
      const jobs = Array.from({ length: options.processes }, (_, p) => ({
        url: deviceUrl,
        key: keys.publishable,
        round: opened,
        count: Math.max(0, Math.min(per, options.devices - p * per)),
        seed: r * 1000 + p,
        transport: options.transport ?? "push",
        refuseEvery: options.refuseEvery ?? 0,
        arrivalMs: Math.round((options.arrivalSeconds ?? 0) * 1000),
        httpConnections: options.httpConnections ?? 32,
      })).filter((j) => j.count > 0);
      const reports = await Promise.all(jobs.map((job) => runDeviceProcess(job, deadline)));
      let roundRequests = 0;
      let roundViews = 0;
      for (const rep of reports) {
        roundRequests += rep.sockets.tried;
        for (const [route, xs] of Object.entries(rep.latencies)) {
          roundRequests += xs.length;
          if (route.endsWith("/view")) roundViews += xs.length;
        }
      }
      for (const rep of reports) {
        for (const [route, xs] of Object.entries(rep.latencies))
          latencies[route] = [...(latencies[route] ?? []), ...xs];
        for (const [route, n] of Object.entries(rep.errors)) errors[route] = (errors[route] ?? 0) + n;
        for (const [o, n] of Object.entries(rep.outcomes)) outcomes[o] = (outcomes[o] ?? 0) + n;
        errorSamples.push(...rep.errorSamples.slice(0, Math.max(0, 10 - errorSamples.length)));
        sockets.tried += rep.sockets.tried;
        sockets.opened += rep.sockets.opened;
        sockets.failed += rep.sockets.failed;
        sockets.pushes += rep.sockets.pushes;
        for (const ms of rep.sockets.openMs) sockets.openMs.push(ms);
        for (const ms of rep.gateWaitMs) gateWaitMs.push(ms);
      }
      const statusOf = async () => {
        try {
          return RoundStatus.parse(
            await call(started.url, "GET", `/v1/rounds/${opened.roundId}`, keys.secret),
          );
        } catch (error) {
          // The coordinator went down: the figures so far are still the run's result.
          failure ??= { atSeconds: (Date.now() - begin) / 1000, log: started.log().slice(-4000) };
          return {
            stage: `unreachable: ${error instanceof Error ? error.message : String(error)}`,
            contributions: 0,
          };
        }
      };
      let status = await statusOf();
      while (status.stage === "collecting" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        status = await statusOf();
      }
      rounds.push({
        roundId: opened.roundId,
        stage: status.stage,
        contributions: status.contributions,
        seconds: (Date.now() - roundStart) / 1000,
        requestsPerDevice: Math.round((roundRequests / options.devices) * 100) / 100,
        viewPollsPerDevice: Math.round((roundViews / options.devices) * 100) / 100,
      });
    }
    const seconds = (Date.now() - begin) / 1000;
    const end = groupProcesses(started.pid).reduce((sum, p) => sum + rssMiB(p.pid), 0);
    const routes: LoadReport["routes"] = {};
    for (const [route, xs] of Object.entries(latencies)) {
      const sorted = [...xs].sort((a, b) => a - b);
      routes[route] = {
        count: xs.length,
        p50: Math.round(quantile(sorted, 0.5) * 10) / 10,
        p99: Math.round(quantile(sorted, 0.99) * 10) / 10,
        errors: errors[route] ?? 0,
      };
    }
    if (sockets.tried > 0) {
      routes["WS /v1/rounds/:round/shards/:shard/socket (to open)"] = {
        count: sockets.tried,
        p50:
          Math.round(
            quantile(
              [...sockets.openMs].sort((a, b) => a - b),
              0.5,
            ) * 10,
          ) / 10,
        p99:
          Math.round(
            quantile(
              [...sockets.openMs].sort((a, b) => a - b),
              0.99,
            ) * 10,
          ) / 10,
        errors: sockets.failed,
      };
    }
    const finished = rounds.filter((r) => r.stage !== "collecting");
    const httpRequests = Object.values(latencies).reduce((n, xs) => n + xs.length, 0);
    const deviceRounds = Math.max(1, options.devices * rounds.length);
    const views = Object.entries(latencies)
      .filter(([route]) => route.endsWith("/view"))
      .reduce((n, [, xs]) => n + xs.length, 0);
    const openSorted = [...sockets.openMs].sort((a, b) => a - b);
    const gateSorted = gateWaitMs.sort((a, b) => a - b);
    return {
      options,
      roundsFinished: finished.length,
      roundsPublished: rounds.filter((r) => r.stage === "closed").length,
      roundsPerMinute: Math.round((finished.length / (seconds / 60)) * 100) / 100,
      seconds,
      requests: httpRequests + sockets.tried,
      errors: Object.values(errors).reduce((n, e) => n + e, 0),
      routes,
      outcomes,
      errorSamples,
      coordinatorRssMiB: { peak: Math.round(Math.max(peak, end)), end: Math.round(end) },
      loadAverage1mPeak: Math.round(loadPeak * 100) / 100,
      coordinatorFdsPeak: fdPeak,
      coordinatorProcesses: [...processes.values()],
      devicePath: direct
        ? {
            mode: "direct",
            url: direct.url,
            note: "devices connect to the user worker's own workerd socket; wrangler dev's proxy on the public port is a dev-only hop that Cloudflare does not have (at 4,000 devices through it, it ran out of fds). Admin calls still go through the proxy.",
          }
        : {
            mode: "proxy",
            url: started.url,
            note: "devices connect through wrangler dev's proxy on the public port, a dev-only hop that Cloudflare does not have",
          },
      httpGateWait: {
        p50: Math.round(quantile(gateSorted, 0.5) * 10) / 10,
        p99: Math.round(quantile(gateSorted, 0.99) * 10) / 10,
      },
      ...(failure ? { coordinatorFailure: failure } : {}),
      requestsPerDevicePerRound: Math.round(((httpRequests + sockets.tried) / deviceRounds) * 100) / 100,
      viewPollsPerDevicePerRound: Math.round((views / deviceRounds) * 100) / 100,
      sockets: {
        tried: sockets.tried,
        opened: sockets.opened,
        failed: sockets.failed,
        pushes: sockets.pushes,
        openP50: Math.round(quantile(openSorted, 0.5) * 10) / 10,
        openP99: Math.round(quantile(openSorted, 0.99) * 10) / 10,
      },
      rounds,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    await coordinator.current?.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
}
