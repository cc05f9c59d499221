/**
 * The one build of every publishable package (tsdown: rolldown for the ESM, rolldown-plugin-dts
 * for declarations bundled per entry, so the `.d.ts` need no extensionful relative imports and
 * type-check under both `bundler` and `nodenext` resolution).
 *
 * Entries come from the package's own `exports`: each export maps `source` (the workspace's
 * condition, see `tsconfig.base.json`) to `default` and `types` under `dist/`.
 */
import type { UserConfig } from "tsdown";

interface ExportTarget {
  source?: string;
  default?: string;
}

/** `{ "./wire": { source: "./src/wire/index.ts", default: "./dist/wire.js" } }` → `{ wire: "src/wire/index.ts" }`. */
export function entriesOf(exports: Record<string, ExportTarget | string>): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const [key, target] of Object.entries(exports)) {
    if (typeof target === "string" || !target.source || !target.default?.endsWith(".js")) continue;
    const name = target.default.replace(/^\.\/dist\//, "").replace(/\.js$/, "");
    if (name === target.default) throw new Error(`export ${key}: default must live under ./dist/`);
    entries[name] = target.source.replace(/^\.\//, "");
  }
  return entries;
}

/** ESM + d.ts for a package's exports, for the given platform. */
export function sharedConfig(
  exports: Record<string, ExportTarget | string>,
  platform: "neutral" | "browser" | "node" = "neutral",
): UserConfig {
  return {
    entry: entriesOf(exports),
    format: "esm",
    platform,
    target: "es2022",
    dts: true,
    sourcemap: true,
    clean: true,
    outDir: "dist",
    fixedExtension: false,
    hash: false,
    // One output file per source module: consumers tree-shake as from source, and each `.d.ts`
    // mirrors its module (the bundled d.ts of rolldown-plugin-dts 0.23 loses `export *` chains).
    unbundle: true,
    logLevel: "warn",
  };
}
