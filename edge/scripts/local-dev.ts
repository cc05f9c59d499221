/**
 * Local development on the embedded default: `wrangler dev` with D1 and Durable Objects state
 * on disk, offline. Used by the seed command, the demo (`npm start`) and the e2e tests.
 * Every process started here is stopped by its own PID (process group), nothing else.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ApiKeyKind, generateTenantKeys } from "@fedprofile/coordinator";
import { keyIdOf, signerFromSeedHex } from "@fedprofile/coordinator/ledger";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER_BIN = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

/** Offline, no telemetry: this machine reaches no Cloudflare API and must not try. */
export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_LOG: "warn",
  NO_COLOR: "1",
  // Bundle the workspace packages from `src/` (their `source` export condition), before wrangler's
  // own defaults (workerd, worker, browser): the Worker runs the code the tests run.
  WRANGLER_BUILD_CONDITIONS: "source,workerd,worker,browser",
};

function runWrangler(args: string[], persistTo: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [WRANGLER_BIN, ...args, "--local", "--persist-to", persistTo], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...OFFLINE_ENV, CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", fail);
    child.on("exit", (code) =>
      code === 0 ? done(output) : fail(new Error(`wrangler ${args.join(" ")} failed (${code}):\n${output}`)),
    );
  });
}

/** Applies the D1 migrations in `edge/migrations` to the local database under `persistTo`. */
export async function applyLocalMigrations(persistTo: string): Promise<void> {
  await runWrangler(["d1", "migrations", "apply", "DB"], persistTo);
}

/** Where `wrangler dev` reads local secrets from (git-ignored). */
export const DEV_VARS = join(REPO_ROOT, ".dev.vars");

/**
 * The local ledger-signing key: generated once into `.dev.vars` and kept, so every local run
 * signs with the same key (deployed, it is the Worker secret LEDGER_SIGNING_KEY). Returns the
 * public key auditors pin.
 */
export function ensureLocalSigningKey(): { publicKey: string; keyId: string } {
  const read = () => (existsSync(DEV_VARS) ? readFileSync(DEV_VARS, "utf8") : "");
  let text = read();
  if (!/^LEDGER_SIGNING_KEY=/m.test(text)) {
    const line = `LEDGER_SIGNING_KEY=${randomBytes(32).toString("hex")}\n`;
    const next = text === "" || text.endsWith("\n") ? text + line : `${text}\n${line}`;
    try {
      // "wx" for a new file: two runs starting at once must not each write a different key.
      writeFileSync(DEV_VARS, next, { mode: 0o600, flag: text === "" ? "wx" : "w" });
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "EEXIST")) throw error;
    }
    text = read();
  }
  const seed = /^LEDGER_SIGNING_KEY=([0-9a-fA-F]{64})\s*$/m.exec(text)?.[1];
  if (!seed) throw new Error(`${DEV_VARS}: LEDGER_SIGNING_KEY must be 64 hex digits`);
  const signer = signerFromSeedHex(seed);
  return { publicKey: Buffer.from(signer.publicKey).toString("hex"), keyId: keyIdOf(signer.publicKey) };
}

export type TenantKeys = Record<ApiKeyKind, string>;

/**
 * Creates (or reuses) tenant `tenantId` and issues it a fresh key of each kind. Only the keys'
 * SHA-256 digests are stored; the keys themselves are printed once and kept by the caller.
 */
export async function seedLocalTenant(
  persistTo: string,
  tenantId: string,
  name = tenantId,
): Promise<TenantKeys> {
  const keys = generateTenantKeys(tenantId);
  const now = Date.now();
  const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;
  const sql = [
    `INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (${quote(tenantId)}, ${quote(name)}, ${now});`,
    ...Object.entries(keys).map(
      ([kind, { keyHash }]) =>
        `INSERT INTO api_keys (key_hash, tenant_id, kind, created_at) VALUES (${quote(keyHash)}, ${quote(tenantId)}, ${quote(kind)}, ${now});`,
    ),
  ].join("\n");
  const dir = mkdtempSync(join(tmpdir(), "fedprofile-seed-"));
  const file = join(dir, "seed.sql");
  writeFileSync(file, sql);
  try {
    await runWrangler(["d1", "execute", "DB", "--file", file, "--yes"], persistTo);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { publishable: keys.publishable.key, secret: keys.secret.key, auditor: keys.auditor.key };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export interface LocalCoordinator {
  url: string;
  pid: number;
  /** Everything wrangler printed so far (for diagnostics). */
  log(): string;
  stop(): Promise<void>;
  /**
   * SIGKILLs the whole process group (wrangler and its workerd) at once, as a power cut would:
   * nothing is flushed or shut down cleanly. Resolves when wrangler has exited.
   */
  kill(): Promise<void>;
}

/** Starts `wrangler dev` on 127.0.0.1 and resolves once `/v1/health` answers. */
export async function startLocalCoordinator(options: {
  persistTo: string;
  port?: number;
  timeoutMs?: number;
}): Promise<LocalCoordinator> {
  ensureLocalSigningKey();
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      WRANGLER_BIN,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      options.persistTo,
      "--show-interactive-dev-session=false",
      // Local rounds have a handful of devices: development privacy floors (never deployed).
      "--var",
      "PRIVACY_FLOORS:development",
      "--log-level",
      "warn",
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...OFFLINE_ENV },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const pid = child.pid;
  if (pid === undefined) throw new Error("wrangler dev did not start");
  let exited = false;
  const exitedPromise = new Promise<void>((done) =>
    child.on("exit", () => {
      exited = true;
      done();
    }),
  );

  const stop = async () => {
    if (exited) return;
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    }, 5000);
    await exitedPromise;
    clearTimeout(timer);
  };

  const kill = async () => {
    if (exited) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      return;
    }
    await exitedPromise;
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`wrangler dev exited early:\n${output}`);
    try {
      const response = await fetch(`${url}/v1/health`);
      if (response.ok) return { url, pid, log: () => output, stop, kill };
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not answer on ${url} in time:\n${output}`);
}
