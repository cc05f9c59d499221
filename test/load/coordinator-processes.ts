/**
 * The processes of one `wrangler dev` (its process group, Linux /proc): their memory, open file
 * descriptors and listening sockets, and the user worker's own socket.
 *
 * `wrangler dev` runs two workerd processes: a proxy on the public port (wrangler's ProxyWorker,
 * which holds requests while the worker reloads) and the user worker's own Miniflare instance on a
 * random loopback port, to which the proxy forwards every request and socket. Cloudflare has no
 * such hop; at 8,000 devices it was the proxy that ran out of file descriptors (issue 16).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** One process of the group: its id and command name. */
export interface GroupProcess {
  pid: number;
  comm: string;
}

/** The processes in group `pgid` (`ps`); empty once the group is gone. */
export function groupProcesses(pgid: number): GroupProcess[] {
  try {
    return execFileSync("ps", ["-o", "pid=,comm=", "-g", String(pgid)], { encoding: "utf8" })
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols.length >= 2 && /^[0-9]+$/.test(cols[0] ?? ""))
      .map(([pid, comm]) => ({ pid: Number(pid), comm: comm ?? "" }));
  } catch {
    return [];
  }
}

/** Open file descriptors of `pid` (0 if it is gone). */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Resident memory of `pid` in MiB (0 if it is gone), from /proc/PID/status VmRSS. */
export function rssMiB(pid: number): number {
  try {
    const kib = /^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kib === undefined ? 0 : Number(kib) / 1024;
  } catch {
    return 0;
  }
}

/** Socket inodes `pid` holds (its fds that link to `socket:[inode]`). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const inode = /^socket:\[([0-9]+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {}
  }
  return inodes;
}

/** TCP ports `pid` listens on (/proc/net/tcp and tcp6: state 0A is LISTEN). */
export function listeningPorts(pid: number): number[] {
  const inodes = socketInodes(pid);
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [local, state, inode] = [cols[1], cols[3], cols[9]];
      if (state !== "0A" || !local || !inode || !inodes.has(inode)) continue;
      ports.add(Number.parseInt(local.split(":")[1] ?? "", 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

async function answersHealth(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Where the devices of a `--direct` run connect, and which process is which. */
export interface UserWorkerSocket {
  url: string;
  /** The user worker's workerd (the one the proxy forwards to). */
  userPid: number;
  /** The proxy's workerd (on the public port). */
  proxyPid: number;
}

/**
 * Finds the user worker's own socket behind `wrangler dev`'s proxy: the one workerd in group
 * `pgid` that does not hold the public port, and a port of it that answers `/v1/health`.
 * Wrangler does not print that address, so it is read from the processes' listening sockets.
 * Throws, naming what it saw, if there is not exactly one such socket.
 */
export async function findUserWorkerSocket(pgid: number, publicPort: number): Promise<UserWorkerSocket> {
  const workerds = groupProcesses(pgid)
    .filter((p) => p.comm === "workerd")
    .map((p) => ({ ...p, ports: listeningPorts(p.pid) }));
  const seen = workerds.map((w) => `workerd ${w.pid} listens on [${w.ports.join(", ")}]`).join("; ");
  const proxy = workerds.find((w) => w.ports.includes(publicPort));
  if (!proxy)
    throw new Error(
      `--direct: no workerd in wrangler's process group ${pgid} holds the public port ${publicPort} (${seen || "no workerd"})`,
    );
  const found: UserWorkerSocket[] = [];
  for (const w of workerds.filter((w) => w !== proxy)) {
    for (const port of w.ports) {
      const url = `http://127.0.0.1:${port}`;
      if (await answersHealth(url)) found.push({ url, userPid: w.pid, proxyPid: proxy.pid });
    }
  }
  const [only, ...more] = found;
  if (!only || more.length > 0)
    throw new Error(
      `--direct: expected exactly one user-worker socket answering /v1/health besides the proxy's port ${publicPort}, found ${found.length} (${seen}); wrangler's layout may have changed, run without --direct`,
    );
  return only;
}
