/**
 * The size budget as a gate: the SDK tracking core (`sdk/src/core.ts`, minified + gzip) must
 * stay within 20 KB, and network code must stay out of it (lazy chunks). Measured by
 * `bench/bundle-size.ts`, which also prints the table.
 */
import { describe, expect, it } from "vitest";
import { CORE_BUDGET_BYTES, measureCoreBundle } from "../../bench/bundle-size";

describe("SDK core bundle budget", () => {
  it("is at most 20 KB minified + gzip, with sync code split into lazy chunks", {
    timeout: 60_000,
  }, async () => {
    const { core, lazy, coreText } = await measureCoreBundle();
    expect(core.gzip, `core is ${core.gzip} bytes gzip`).toBeLessThanOrEqual(CORE_BUDGET_BYTES);
    // sync() and pullModel() load the coordinator client (and its wire schemas) on demand.
    expect(lazy.length).toBeGreaterThan(0);
    expect(coreText).not.toContain("/v1/checkin");
  });
});
