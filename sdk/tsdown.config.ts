import { defineConfig } from "tsdown";
import { sharedConfig } from "../tsdown.shared.ts";
import pkg from "./package.json" with { type: "json" };

/**
 * Two builds, so a page pays up front only for the tracking core:
 * - the core (`.`, `dist/index.js`) is one bundle with its own tree-shaken copy of `zod/mini`;
 *   its `import()`s of the sync modules stay external and load `dist/sync/*.js`;
 * - the sync side (`./sync` and the modules `sync()` loads) keeps `zod` and `@fedprofile/protocol`
 *   as dependencies.
 * With one shared copy, a user's bundler puts zod's core (one module, `zod/v4/core/schemas.js`)
 * in a chunk both sides import, so every zod feature the wire schemas use is downloaded up front
 * (3.3 KB gzip over the budget, measured by `bench/bundle-size.ts`). The sync modules import the
 * core only for types, so nothing with identity (classes, registries) is shared across the two.
 */
const SYNC_MODULES = [
  "coordinator-client",
  "plain-round",
  "session-store",
  "secagg-round",
  "model-tasks",
  "recs",
];
const { ".": _core, ...rest } = pkg.exports;

/** Keeps the core's `import()` of each sync module external, pointing at the sync build's file. */
const externalSync = {
  name: "fedprofile:external-sync",
  resolveId(source: string) {
    const match = /^\.\/sync\/([a-z-]+)$/.exec(source);
    if (match && SYNC_MODULES.includes(match[1] ?? ""))
      return { id: `./sync/${match[1]}.js`, external: true };
    return null;
  },
};

const core = sharedConfig({ ".": pkg.exports["."] }, "browser");
const sync = sharedConfig(rest, "browser");

export default defineConfig([
  // The core's declarations, with `zod/mini` types imported from the dependency, not inlined.
  { ...core, unbundle: false, clean: false, dts: { emitDtsOnly: true }, plugins: [externalSync] },
  {
    ...core,
    unbundle: false,
    clean: false,
    dts: false,
    noExternal: [/^zod(\/|$)/],
    plugins: [externalSync],
  },
  {
    ...sync,
    clean: false,
    entry: {
      ...sync.entry,
      ...Object.fromEntries(SYNC_MODULES.map((m) => [`sync/${m}`, `src/sync/${m}.ts`])),
    },
  },
]);
