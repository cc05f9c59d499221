import { defineConfig } from "tsdown";

/**
 * `cli/dist/node-entry.js`, run by `bin/fedprofile.mjs` with plain node (no tsx). The commands'
 * own modules (this package, `sdk/cli/replay.ts`, `examples/run-demo.ts`) are bundled; every
 * package they import stays external and resolves to its built `dist/` at run time.
 */
export default defineConfig({
  entry: { "node-entry": "src/node-entry.ts" },
  format: "esm",
  platform: "node",
  target: "node20",
  dts: false,
  sourcemap: true,
  clean: true,
  outDir: "dist",
  fixedExtension: false,
  hash: false,
  logLevel: "warn",
  external: [/^[^./]/],
});
