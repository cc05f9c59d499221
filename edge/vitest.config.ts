import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/** Workers tests run inside real workerd, with the D1 migrations applied per test file. */
export default defineConfig({
  // The workspace packages from `src/` (their `source` export condition), as in the root config.
  resolve: { conditions: ["source", "workerd", "worker", "browser", "module", "development|production"] },
  ssr: {
    resolve: { conditions: ["source", "workerd", "worker", "browser", "module", "development|production"] },
  },
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: fileURLToPath(new URL("../wrangler.toml", import.meta.url)) },
      miniflare: {
        bindings: {
          // A fixed test key (RFC 8032 §7.1 TEST 1's secret key): workers tests verify against it.
          LEDGER_SIGNING_KEY: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
          // The tests run rounds of a few devices: development floors (production is the default).
          PRIVACY_FLOORS: "development",
          TEST_MIGRATIONS: await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url))),
        },
      },
    })),
  ],
  test: {
    name: "workers",
    // blindrsa-ts's bundled sjcl assigns `module.exports` when `module` exists, which it does in
    // the test runner's module wrapper (not in a wrangler-built Worker): pre-bundle it with esbuild.
    deps: {
      optimizer: {
        ssr: {
          enabled: true,
          include: ["@cloudflare/blindrsa-ts"],
          // Its node-only `require("crypto")` sits in a try/catch and is never reached in workerd.
          rolldownOptions: { external: ["crypto"] },
        },
      },
    },
    testTimeout: 60_000,
    include: ["test/**/*.workers.test.ts"],
    setupFiles: ["./test/apply-migrations.ts"],
  },
});
