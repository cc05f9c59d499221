/**
 * Writes the ledger test vectors (SPEC.md §9) to `coordinator/src/ledger/vectors/`:
 * `npx tsx coordinator/scripts/ledger-vectors.ts`. Ed25519 signatures are deterministic and
 * the clock is fixed, so a rerun reproduces the committed files.
 */

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bytesToHex } from "@noble/hashes/utils.js";
import { signerFromSeed } from "../src/ledger/chain.ts";
import { buildCases, VECTOR_SEEDS } from "../src/ledger/vectors/build.ts";

const here = join(dirname(fileURLToPath(import.meta.url)), "../src/ledger/vectors");
const { entries, checkpoints, cases } = await buildCases();
const keys = Object.fromEntries(
  Object.entries(VECTOR_SEEDS).map(([name, seed]) => [
    name,
    { seed: bytesToHex(seed), publicKey: bytesToHex(signerFromSeed(seed).publicKey) },
  ]),
);
const chain = {
  v: 1,
  description:
    "A valid chain of every entry kind (SPEC.md §9). Pin keys.genesis: it verifies with ok, these keyIds, this cap history and both checkpoints.",
  keys,
  trusted: [{ publicKey: keys["genesis"]!.publicKey }],
  expect: {
    ok: true,
    entries: entries.length,
    headHash: entries.at(-1)!.hash,
    epsilon: entries.at(-1)!.cumulative.epsilon,
    keyIds: [entries[0]!.keyId, entries.at(-1)!.keyId],
    capHistory: entries.flatMap((e) =>
      e.kind === "policy" ? [{ seq: e.seq, epsilonCap: e.policy.epsilonCap }] : [],
    ),
  },
  entries,
  checkpoints,
};
writeFileSync(join(here, "chain.json"), `${JSON.stringify(chain, null, 2)}\n`);
writeFileSync(
  join(here, "cases.json"),
  `${JSON.stringify({ v: 1, description: "One tampered case per rule (SPEC.md §9)", cases }, null, 2)}\n`,
);
console.log(`wrote chain.json (${entries.length} entries) and cases.json (${cases.length} cases)`);
