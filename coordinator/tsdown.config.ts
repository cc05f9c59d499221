import { defineConfig } from "tsdown";
import { sharedConfig } from "../tsdown.shared.ts";
import pkg from "./package.json" with { type: "json" };

/** ESM and bundled `.d.ts` for every entry of this package's `exports` (see `tsdown.shared.ts`). */
export default defineConfig(sharedConfig(pkg.exports));
