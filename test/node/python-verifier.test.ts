/**
 * The independent Python verifier (test/python/verify_ledger.py, written from SPEC.md and the
 * vectors alone, on `cryptography`'s Ed25519 and its own RFC 8785) agrees with this
 * implementation on every committed vector. test/e2e/dp-round.e2e.test.ts runs it on a live chain.
 */

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as z from "zod";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const Report = z.object({
  ok: z.boolean(),
  results: z.array(z.object({ name: z.string(), agree: z.boolean() }).loose()),
});

describe("the Python verifier", () => {
  it("agrees with every committed vector: the valid chain and each tampered case", () => {
    const run = spawnSync(
      "python3",
      ["test/python/verify_ledger.py", "vectors", "coordinator/src/ledger/vectors"],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    expect(run.stderr).toBe("");
    const report = Report.parse(JSON.parse(run.stdout));
    expect(report.results.filter((r) => !r.agree).map((r) => r.name)).toEqual([]);
    expect(report.results).toHaveLength(25);
    expect(run.status).toBe(0);
  });
});
