/**
 * The committed test vectors (SPEC.md §9) against this implementation: the valid chain verifies
 * with the stated figures on both Ed25519 paths, and every tampered case fails with the stated
 * reason at the stated row, on both paths. The Python verifier (test/python/) runs the same files.
 */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  LedgerCheckpoint,
  readLedgerDocument,
  type TrustedKey,
  verifyLedger,
  verifyLedgerFast,
} from "@fedprofile/coordinator/ledger";
import { hexToBytes } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { buildCases } from "../../coordinator/src/ledger/vectors/build.ts";

const here = join(dirname(fileURLToPath(import.meta.url)), "../../coordinator/src/ledger/vectors");
const Key = z.object({ publicKey: z.string(), revokedAt: z.string().optional() });
const Chain = z.object({
  trusted: z.array(Key),
  entries: z.array(z.unknown()),
  checkpoints: z.array(LedgerCheckpoint),
  expect: z.object({
    entries: z.number(),
    headHash: z.string(),
    epsilon: z.number(),
    keyIds: z.array(z.string()),
    capHistory: z.array(z.object({ seq: z.number(), epsilonCap: z.number() })),
  }),
});
const Cases = z.object({
  cases: z.array(
    z.object({
      name: z.string(),
      text: z.string(),
      trusted: z.array(Key),
      expectedHead: z.object({ seq: z.number(), hash: z.string() }).optional(),
      checkpoints: z.array(z.unknown()).optional(),
      expect: z.object({ ok: z.literal(false), reason: z.string(), index: z.number() }),
    }),
  ),
});

const trustOf = (keys: z.infer<typeof Key>[]): TrustedKey[] =>
  keys.map((k) => ({
    publicKey: hexToBytes(k.publicKey),
    ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}),
  }));

const chain = Chain.parse(JSON.parse(readFileSync(join(here, "chain.json"), "utf8")));
const { cases } = Cases.parse(JSON.parse(readFileSync(join(here, "cases.json"), "utf8")));

describe("ledger test vectors", () => {
  it("the valid chain verifies on both paths, with its key rotation, cap history and checkpoints", async () => {
    for (const verdict of [
      verifyLedger(chain.entries, trustOf(chain.trusted), { checkpoints: chain.checkpoints }),
      await verifyLedgerFast(chain.entries, trustOf(chain.trusted), { checkpoints: chain.checkpoints }),
    ]) {
      if (!verdict.ok) throw new Error(verdict.failure.message);
      expect(verdict.entries).toBe(chain.expect.entries);
      expect(verdict.headHash).toBe(chain.expect.headHash);
      expect(verdict.epsilon).toBe(chain.expect.epsilon);
      expect(verdict.keyIds).toEqual(chain.expect.keyIds);
      expect(verdict.capHistory.map((c) => ({ seq: c.seq, epsilonCap: c.epsilonCap }))).toEqual(
        chain.expect.capHistory,
      );
      expect(verdict.checkpoints).toBe(2);
    }
  });

  it("covers every failure reason but the internal ones with a case", () => {
    const reasons = new Set(cases.map((c) => c.expect.reason));
    for (const r of [
      "json",
      "schema",
      "scope",
      "sequence",
      "chain",
      "hash",
      "key",
      "revoked",
      "signature",
      "sampling",
      "event",
      "accountant",
      "epsilon",
      "budget",
      "policy",
      "publication",
      "untrusted",
      "head",
      "checkpoint",
    ])
      expect(reasons, r).toContain(r);
  });

  for (const c of cases) {
    it(`case ${c.name}: fails with ${c.expect.reason} at row ${c.expect.index} on both Ed25519 paths`, async () => {
      const { rows } = readLedgerDocument(c.text);
      const opts = {
        ...(c.expectedHead ? { expectedHead: c.expectedHead } : {}),
        ...(c.checkpoints ? { checkpoints: c.checkpoints } : {}),
      };
      const slow = verifyLedger(rows, trustOf(c.trusted), opts);
      const fast = await verifyLedgerFast(rows, trustOf(c.trusted), opts);
      for (const v of [slow, fast])
        expect(v).toMatchObject({ ok: false, failure: { reason: c.expect.reason, index: c.expect.index } });
    });
  }

  it("the committed files are what the builder makes (rerun coordinator/scripts/ledger-vectors.ts after a format change)", async () => {
    const built = await buildCases();
    expect(JSON.parse(JSON.stringify(built.entries))).toEqual(chain.entries);
    expect(built.cases.map((c) => c.name)).toEqual(cases.map((c) => c.name));
  });
});
