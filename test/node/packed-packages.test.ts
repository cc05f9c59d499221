/**
 * What a user installs: every publishable package is packed with `npm pack`, the tarballs are
 * installed into a scratch project outside the workspace (no symlinks, no `source` condition),
 * and there the packages
 * - type-check with `strict` (and `skipLibCheck: false`, so our `.d.ts` are checked) under
 *   `moduleResolution` `bundler` and `nodenext`;
 * - run in plain Node (no tsx);
 * - bundle for the browser with esbuild.
 * The SDK's install must not pull in the coordinator or hono.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGES = ["coordinator/protocol", "coordinator", "sdk"];
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

const PackResult = z.array(
  z.object({ name: z.string(), filename: z.string(), files: z.array(z.object({ path: z.string() })) }),
);
const Manifest = z.object({ dependencies: z.record(z.string(), z.string()).optional() });

let scratch = "";
const packed: Array<z.infer<typeof PackResult>[number]> = [];

function sh(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed:\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

const CONSUMER = `import { RoundInfo, WIRE_VERSION } from "@fedprofile/protocol/wire";
import { bytesToBase64, constantTimeEqual, type RandomBytes } from "@fedprofile/protocol/bytes";
import { splitSecret } from "@fedprofile/protocol/secagg";
import { paddedDim } from "@fedprofile/protocol/dp";
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { RdpAccountant } from "@fedprofile/coordinator/dp";
import { verifyLedger } from "@fedprofile/coordinator/ledger";
import { createProfiler, type Profile } from "@fedprofile/sdk";
import { createCoordinatorClient, SDK_VERSION } from "@fedprofile/sdk/sync";

const random: RandomBytes = (n) => new Uint8Array(n).fill(7);
export const checks: Array<[string, boolean]> = [];
checks.push(["wire", WIRE_VERSION === 1 && RoundInfo.safeParse({}).success === false]);
checks.push(["bytes", bytesToBase64(random(3)) === "BwcH" && constantTimeEqual("ab", "ab")]);
checks.push(["secagg", typeof splitSecret === "function" && typeof paddedDim === "function"]);
checks.push(["ledger", typeof verifyLedger === "function" && typeof RdpAccountant === "function"]);
checks.push(["sync", typeof createCoordinatorClient === "function" && SDK_VERSION.length > 0]);

export async function run(): Promise<Array<[string, boolean]>> {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("shop");
  memory.tenants.addTenant({ id: "shop", name: "Shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp(memory);
  const health = await app.request("/v1/health");
  checks.push(["coordinator", health.status === 200]);
  const profiler = createProfiler({ storage: "memory", tcfApi: null });
  await profiler.track("Product Viewed", { product_id: "85123A", category: "candles", price: 2.55 });
  const profile: Profile = await profiler.getProfile();
  checks.push(["sdk", profile.eventCount === 1]);
  return checks;
}
`;

const BROWSER = `import { createProfiler } from "@fedprofile/sdk";
import { createCoordinatorClient } from "@fedprofile/sdk/sync";
(globalThis as { fp?: unknown }).fp = { createProfiler, createCoordinatorClient };
`;

function tsconfig(moduleResolution: "bundler" | "nodenext"): string {
  const module = moduleResolution === "bundler" ? "esnext" : "nodenext";
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: "es2022",
      module,
      moduleResolution,
      lib: ["es2023", "dom"],
      types: [],
    },
    files: ["consumer.ts"],
  });
}

describe("packed packages, installed outside the workspace", () => {
  beforeAll(() => {
    if (!PACKAGES.every((p) => existsSync(join(ROOT, p, "dist/index.js")))) {
      sh("npm", ["run", "--silent", "build"], ROOT);
    }
    scratch = mkdtempSync(join(tmpdir(), "fedprofile-packed-"));
    const tarballs = join(scratch, "tarballs");
    mkdirSync(tarballs);
    for (const p of PACKAGES) {
      const out = sh("npm", ["pack", "--json", "--pack-destination", tarballs], join(ROOT, p));
      packed.push(...PackResult.parse(JSON.parse(out)));
    }
    const app = join(scratch, "app");
    mkdirSync(app);
    const dependencies = Object.fromEntries(
      packed.map((p) => [p.name, `file:${join(tarballs, p.filename)}`]),
    );
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "scratch", private: true, type: "module", dependencies }),
    );
    sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"], app);
    writeFileSync(join(app, "consumer.ts"), CONSUMER);
    writeFileSync(join(app, "browser.ts"), BROWSER);
  }, 240_000);

  // Removing the scratch install (a node_modules tree) took over 10 s in CI at load 8.
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it("ships only dist/, README.md, LICENSE and package.json", () => {
    for (const p of packed) {
      const files = p.files.map((f) => f.path);
      expect(files, p.name).toContain("README.md");
      expect(files, p.name).toContain("LICENSE");
      expect(
        files.filter((f) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(f)),
        p.name,
      ).toEqual([]);
      expect(
        files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")),
        p.name,
      ).toBe(false);
    }
  });

  it("the SDK depends on the protocol package, never on the coordinator or hono", () => {
    const sdk = Manifest.parse(
      JSON.parse(readFileSync(join(scratch, "app/node_modules/@fedprofile/sdk/package.json"), "utf8")),
    );
    const deps = Object.keys(sdk.dependencies ?? {});
    expect(deps).toContain("@fedprofile/protocol");
    expect(deps.filter((d) => d.includes("coordinator") || d.includes("hono"))).toEqual([]);
  });

  for (const resolution of ["bundler", "nodenext"] as const) {
    it(`type-checks strict under moduleResolution ${resolution}`, { timeout: 120_000 }, () => {
      const app = join(scratch, "app");
      writeFileSync(join(app, `tsconfig.${resolution}.json`), tsconfig(resolution));
      sh(process.execPath, [TSC, "-p", `tsconfig.${resolution}.json`], app);
    });
  }

  it("runs in plain node", { timeout: 60_000 }, async () => {
    const app = join(scratch, "app");
    // Node ≥ 20 runs plain ESM; the consumer is type-stripped by esbuild into .mjs first.
    await build({
      entryPoints: [join(app, "consumer.ts")],
      outfile: join(app, "consumer.mjs"),
      format: "esm",
      bundle: false,
      logLevel: "silent",
    });
    writeFileSync(
      join(app, "main.mjs"),
      `import { run } from "./consumer.mjs";\nconsole.log(JSON.stringify(await run()));\n`,
    );
    const checks = z
      .array(z.tuple([z.string(), z.boolean()]))
      .parse(JSON.parse(sh(process.execPath, ["main.mjs"], app).trim().split("\n").at(-1) ?? "[]"));
    expect(checks.filter(([, ok]) => !ok)).toEqual([]);
    expect(checks.map(([name]) => name)).toEqual([
      "wire",
      "bytes",
      "secagg",
      "ledger",
      "sync",
      "coordinator",
      "sdk",
    ]);
  });

  it("bundles for the browser", { timeout: 60_000 }, async () => {
    const app = join(scratch, "app");
    const result = await build({
      entryPoints: [join(app, "browser.ts")],
      absWorkingDir: app,
      bundle: true,
      format: "esm",
      platform: "browser",
      minify: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.includes("node_modules/@fedprofile/sdk/dist/"))).toBe(true);
    expect(inputs.filter((i) => i.includes("hono") || i.includes("@fedprofile/coordinator"))).toEqual([]);
    expect(inputs.filter((i) => i.includes("zod/v4/classic"))).toEqual([]);
  });
});
