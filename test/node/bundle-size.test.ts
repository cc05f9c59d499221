/**
 * The size budget as a gate, measured as a user gets it (`bench/bundle-size.ts`): a page that
 * imports `@fedprofile/sdk` (the built package) downloads the entry chunk plus every chunk it
 * imports statically, minified and gzip -9; that must stay within 20 KB, and the network code
 * must stay in chunks loaded by `import()`. The same holds for the script-tag IIFE. `npm test`
 * builds the packages first.
 */
import type { Metafile } from "esbuild";
import { describe, expect, it } from "vitest";
import { measureIife, measureMainEntry, staticClosure, UP_FRONT_BUDGET_BYTES } from "../../bench/bundle-size";

describe("SDK up-front size budget", () => {
  it("counts every chunk an entry imports statically, transitively, and no dynamic one", () => {
    const out = (imports: Array<[string, "import-statement" | "dynamic-import"]>) => ({
      bytes: 0,
      inputs: {},
      exports: [],
      imports: imports.map(([path, kind]) => ({ path, kind })),
    });
    const meta: Metafile = {
      inputs: {},
      outputs: {
        "e.js": out([
          ["a.js", "import-statement"],
          ["lazy.js", "dynamic-import"],
        ]),
        "a.js": out([["b.js", "import-statement"]]),
        "b.js": out([]),
        "lazy.js": out([["c.js", "import-statement"]]),
        "c.js": out([]),
      },
    };
    expect(staticClosure(meta, "e.js").sort()).toEqual(["a.js", "b.js", "e.js"]);
  });

  it("the main entry is at most 20 KB minified + gzip up front, with sync code in lazy chunks", {
    timeout: 60_000,
  }, async () => {
    const main = await measureMainEntry();
    expect(main.upFrontGzip, `up front: ${main.upFrontGzip} bytes gzip`).toBeLessThanOrEqual(
      UP_FRONT_BUDGET_BYTES,
    );
    expect(main.lazy.length).toBeGreaterThan(0);
    expect(main.upFrontText).not.toContain("/v1/checkin");
  });

  it("the script-tag IIFE, all it loads before the first sync(), is at most 20 KB minified + gzip", () => {
    const iife = measureIife();
    expect(iife.upFrontGzip, `fedprofile.min.js: ${iife.upFrontGzip} bytes gzip`).toBeLessThanOrEqual(
      UP_FRONT_BUDGET_BYTES,
    );
    expect(iife.upFrontText).not.toContain("/v1/checkin");
    expect(iife.upFrontText).toContain("fedprofile-sync.min.js");
  });
});
