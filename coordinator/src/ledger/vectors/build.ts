/**
 * Builds the ledger test vectors (SPEC.md §9): a small valid chain with every entry kind, and one
 * tampered case per verification rule. `coordinator/scripts/ledger-vectors.ts` writes them to this folder; the committed
 * JSON is what other implementations test against, and `test/node/ledger-vectors.test.ts` checks that this
 * implementation gives every verdict the files state.
 */

import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import nacl from "tweetnacl";
import { planCentralRound, planDistributedRound } from "../../dp/planning.ts";
import {
  aggregateSha256,
  jsonSha256,
  keyIdOf,
  type LedgerSigner,
  signCheckpoint,
  signerFromSeed,
} from "../chain.ts";
import { ED25519_L } from "../ed25519.ts";
import { PrivacyLedger, roundRecordFromConfig } from "../ledger.ts";
import type { LedgerCheckpoint, LedgerEntry } from "../schema.ts";
import { MemoryLedgerStore, readAll } from "../store.ts";

/** The keys of the vectors (test keys: their seeds are published with the vectors). */
export const VECTOR_SEEDS = {
  genesis: new Uint8Array(32).map((_, i) => i + 1),
  rotated: new Uint8Array(32).fill(2),
  attacker: new Uint8Array(32).fill(9),
} as const;

/** A pinned key as the vector files state it. */
export interface VectorKey {
  publicKey: string;
  revokedAt?: string;
}

/** One tampered case. */
export interface VectorCase {
  name: string;
  description: string;
  /** The rows as JSON text (an array of entries): parse it strictly (RFC 7493). */
  text: string;
  trusted: VectorKey[];
  expectedHead?: { seq: number; hash: string };
  checkpoints?: LedgerCheckpoint[];
  expect: { ok: false; reason: string; index: number };
}

const scope = { tenant: "vector-shop", model: "segments" };
const SEED = "00112233445566778899aabbccddeeff";

function clock(): () => Date {
  let t = Date.UTC(2026, 0, 5, 9, 0, 0);
  return () => {
    t += 60_000;
    return new Date(t);
  };
}

/** Builds the valid chain: policy, round, publication, central round, clip release, cap change, rotation, round. */
export async function buildChain(): Promise<{ entries: LedgerEntry[]; checkpoints: LedgerCheckpoint[] }> {
  const store = new MemoryLedgerStore();
  const genesis = signerFromSeed(VECTOR_SEEDS.genesis);
  const rotated = signerFromSeed(VECTOR_SEEDS.rotated);
  const now = clock();
  const policy = { epsilonCap: 8, delta: 1e-6 };
  let ledger = new PrivacyLedger({ store, signer: genesis, scope, policy, now });
  await ledger.recordPolicy({ source: "budget", epsilonCap: 8, delta: 1e-6, population: 100_000 });
  const ddg = planDistributedRound({
    dim: 16,
    clipNorm: 1,
    expectedClients: 50,
    modulusBits: 24,
    rotationSeed: SEED,
    targetEpsilon: 4,
    delta: 1e-6,
    rounds: 4,
    samplingRate: 1,
    threshold: 20,
  });
  const sampling = { uniform: false, rate: 1 } as const;
  const aggregate = [1.5, -2, 3.25, 0.1];
  const r1 = await ledger.recordRound({
    ...roundRecordFromConfig(ddg, {
      round: 1,
      roundId: "r_vector_round_000000001",
      cohortSize: 50,
      survivors: 40,
      threshold: 20,
      sampling,
    }),
    release: { aggregateSha256: aggregateSha256(aggregate) },
  });
  const version = { modelId: "segments", version: 1, weights: "AAAAAAAA+D8=" };
  await ledger.recordPublication({
    roundId: "r_vector_round_000000001",
    roundSeq: r1.seq,
    aggregateSha256: aggregateSha256(aggregate),
    modelVersion: 1,
    modelVersionSha256: jsonSha256(version),
  });
  const central = planCentralRound({
    dim: 16,
    clipNorm: 1,
    expectedClients: 50,
    rotationSeed: SEED,
    noiseMultiplier: 1.3,
    clipCountStddev: 4,
  });
  const r2 = await ledger.recordRound({
    ...roundRecordFromConfig(central, {
      round: 2,
      roundId: "r_vector_round_000000002",
      cohortSize: 50,
      survivors: 45,
      sampling,
    }),
    release: { aggregateSha256: aggregateSha256([0.5, 0.25]) },
  });
  await ledger.recordClipRelease(
    r2,
    { initialClip: 1, targetQuantile: 0.5, learningRate: 0.2, countStddev: 4 },
    { previousClip: 1, nextClip: 0.9, noisyCount: 20, clients: 45, noisyFraction: 20 / 45 },
  );
  const raised = { epsilonCap: 10, delta: 1e-6 };
  ledger = new PrivacyLedger({ store, signer: genesis, scope, policy: raised, now });
  await ledger.recordPolicy({ source: "budget", ...raised, population: 100_000 });
  ledger = (await ledger.rotateKey(rotated)).ledger;
  await ledger.recordRound({
    ...roundRecordFromConfig(ddg, {
      round: 3,
      roundId: "r_vector_round_000000003",
      cohortSize: 50,
      survivors: 50,
      threshold: 20,
      colluders: 2,
      sampling,
    }),
    release: { aggregateSha256: aggregateSha256([2, 2]) },
  });
  const entries = await readAll(store, scope);
  const checkpoints = [
    signCheckpoint(entries[3]!, genesis, now()),
    signCheckpoint(entries.at(-1)!, rotated, now()),
  ];
  return { entries, checkpoints };
}

type Row = Record<string, unknown>;

function clone(entries: readonly LedgerEntry[]): Row[] {
  return JSON.parse(JSON.stringify(entries));
}

/** Re-hashes and re-signs rows from `from` on, re-linking them (what a signer rewriting history does). */
function reseal(rows: Row[], from: number, signerOf: (row: Row) => LedgerSigner): Row[] {
  for (let i = from; i < rows.length; i++) {
    const row = rows[i]!;
    if (i > 0) row["prevHash"] = rows[i - 1]!["hash"];
    const signer = signerOf(row);
    row["keyId"] = keyIdOf(signer.publicKey);
    const { hash: _h, signature: _s, rotationSignature: _r, ...body } = row;
    const hash = jsonSha256(body);
    row["hash"] = hash;
    row["signature"] = bytesToHex(nacl.sign.detached(hexToBytes(hash), signer.secretKey));
    if (row["kind"] === "key_rotation") {
      const next = signerFromSeed(VECTOR_SEEDS.rotated);
      row["rotationSignature"] = bytesToHex(nacl.sign.detached(hexToBytes(hash), next.secretKey));
    }
  }
  return rows;
}

/** Adds L to the S half of a signature: the same point equation, a non-canonical encoding. */
function sPlusL(signatureHex: string): string {
  const sig = hexToBytes(signatureHex);
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += ED25519_L;
  for (let i = 32; i < 64; i++) {
    sig[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return bytesToHex(sig);
}

/** Builds every tampered case from the valid chain. */
export async function buildCases(): Promise<{
  entries: LedgerEntry[];
  checkpoints: LedgerCheckpoint[];
  cases: VectorCase[];
}> {
  const { entries, checkpoints } = await buildChain();
  const genesis = signerFromSeed(VECTOR_SEEDS.genesis);
  const rotated = signerFromSeed(VECTOR_SEEDS.rotated);
  const attacker = signerFromSeed(VECTOR_SEEDS.attacker);
  const pinned: VectorKey[] = [{ publicKey: bytesToHex(genesis.publicKey) }];
  const ROT = entries.findIndex((e) => e.kind === "key_rotation");
  const byOriginalKey = (row: Row) => (Number(row["seq"]) > ROT ? rotated : genesis);
  const text = (rows: unknown[]) => JSON.stringify(rows);
  const cases: VectorCase[] = [];
  const add = (c: Omit<VectorCase, "trusted"> & { trusted?: VectorKey[] }) =>
    cases.push({ trusted: pinned, ...c });
  const edit = (i: number, f: (row: Row) => void, resealFrom?: number) => {
    const rows = clone(entries);
    f(rows[i]!);
    return resealFrom === undefined ? rows : reseal(rows, resealFrom, byOriginalKey);
  };

  const base = text(entries);
  const r1 = JSON.stringify(entries[1]);
  add({
    name: "json-duplicate-member",
    description: "row 1 carries cumulative.epsilon twice, a small value first (RFC 7493 §2.3)",
    text: base.replace(r1, r1.replace('"cumulative":{', '"cumulative":{"epsilon":0.01,')),
    expect: { ok: false, reason: "json", index: 1 },
  });
  add({
    name: "json-lone-surrogate",
    description: "row 1's roundId holds the lone surrogate \\udead (RFC 7493 §2.1)",
    text: base.replace(r1, r1.replace('"roundId":"r_vector', '"roundId":"\\udead_vector')),
    expect: { ok: false, reason: "json", index: 1 },
  });
  add({
    name: "json-number-overflow",
    description: "row 2's modelVersion is 1e400, which no IEEE 754 double holds (RFC 7493 §2.2)",
    text: base.replace(
      JSON.stringify(entries[2]),
      JSON.stringify(entries[2]).replace('"modelVersion":1', '"modelVersion":1e400'),
    ),
    expect: { ok: false, reason: "json", index: 2 },
  });
  add({
    name: "schema-unknown-member",
    description: "row 1 has a member the format does not define (unknown members are rejected)",
    text: text(
      edit(
        1,
        (r) => {
          r["note"] = "x";
        },
        1,
      ),
    ),
    expect: { ok: false, reason: "schema", index: 1 },
  });
  add({
    name: "scope",
    description: "row 2 belongs to another model",
    text: text(
      edit(
        2,
        (r) => {
          r["model"] = "other";
        },
        2,
      ),
    ),
    expect: { ok: false, reason: "scope", index: 2 },
  });
  add({
    name: "sequence",
    description: "row 2 was deleted",
    text: text(clone(entries).filter((_, i) => i !== 2)),
    expect: { ok: false, reason: "sequence", index: 2 },
  });
  add({
    name: "chain",
    description: "row 2's prevHash does not link to row 1",
    text: text(
      edit(2, (r) => {
        r["prevHash"] = "0".repeat(64);
      }),
    ),
    expect: { ok: false, reason: "chain", index: 2 },
  });
  add({
    name: "hash",
    description: "row 1's survivors changed without re-hashing",
    text: text(
      edit(1, (r) => {
        (r["cohort"] as Row)["survivors"] = 39;
      }),
    ),
    expect: { ok: false, reason: "hash", index: 1 },
  });
  const forged = edit(1, (r) => {
    (r["cohort"] as Row)["survivors"] = 39;
  });
  {
    const { hash: _h, signature: _s, ...body } = forged[1]!;
    forged[1]!["hash"] = jsonSha256(body);
  }
  add({
    name: "signature",
    description: "row 1 changed and re-hashed, but not re-signed",
    text: text(forged),
    expect: { ok: false, reason: "signature", index: 1 },
  });
  add({
    name: "signature-non-canonical-s",
    description: "row 1's signature has S + L in place of S (RFC 8032 §5.1.7 requires S < L)",
    text: text(
      edit(1, (r) => {
        r["signature"] = sPlusL(String(r["signature"]));
      }),
    ),
    expect: { ok: false, reason: "signature", index: 1 },
  });
  add({
    name: "key",
    description: "row 3 is signed by the rotated key before the rotation entry hands over",
    text: text(reseal(clone(entries), 3, (r) => (Number(r["seq"]) === 3 ? rotated : byOriginalKey(r)))),
    expect: { ok: false, reason: "key", index: 3 },
  });
  add({
    name: "untrusted",
    description:
      "the whole chain re-signed by another key (the forged-ledger attack); the genesis key is pinned",
    text: text(
      reseal(clone(entries), 0, () => attacker).map((r) => (r["kind"] === "key_rotation" ? { ...r } : r)),
    ),
    expect: { ok: false, reason: "untrusted", index: 0 },
  });
  add({
    name: "revoked",
    description: "the genesis key is pinned as revoked from row 3's time on",
    text: base,
    trusted: [{ publicKey: bytesToHex(genesis.publicKey), revokedAt: entries[3]!.timestamp }],
    expect: { ok: false, reason: "revoked", index: 3 },
  });
  add({
    name: "rotation-signature",
    description: "the rotation entry's rotationSignature (by the new key) is corrupted",
    text: text(
      edit(ROT, (r) => {
        r["rotationSignature"] = String(r["signature"]);
      }),
    ),
    expect: { ok: false, reason: "signature", index: ROT },
  });
  add({
    name: "accountant",
    description: "row 1's cumulative RDP lowered at order 2, re-signed",
    text: text(
      edit(
        1,
        (r) => {
          const a = r["accountant"] as { rdp: number[] };
          a.rdp[9] = a.rdp[9]! / 2;
        },
        1,
      ),
    ),
    expect: { ok: false, reason: "accountant", index: 1 },
  });
  add({
    name: "epsilon",
    description: "row 1 claims a smaller cumulative epsilon, re-signed",
    text: text(
      edit(
        1,
        (r) => {
          (r["cumulative"] as Row)["epsilon"] = 0.01;
        },
        1,
      ),
    ),
    expect: { ok: false, reason: "epsilon", index: 1 },
  });
  add({
    name: "budget",
    description: "row 1 claims more budget remaining, re-signed",
    text: text(
      edit(
        1,
        (r) => {
          (r["budget"] as Row)["remaining"] = 7.99;
        },
        1,
      ),
    ),
    expect: { ok: false, reason: "budget", index: 1 },
  });
  const raised = entries.findIndex((e, i) => i > 0 && e.kind === "policy");
  add({
    name: "policy",
    description:
      "the cap change entry is cut out and the later entries re-signed: they state a cap no policy entry set",
    text: text(
      reseal(
        clone(entries)
          .filter((_, i) => i !== raised)
          .map((r, i) => ({ ...r, seq: i })),
        raised,
        (r) => (Number(r["seq"]) >= ROT ? rotated : genesis),
      ),
    ),
    expect: { ok: false, reason: "policy", index: raised },
  });
  add({
    name: "publication",
    description: "the publication names an aggregate hash the round entry did not release, re-signed",
    text: text(
      edit(
        2,
        (r) => {
          (r["publication"] as Row)["aggregateSha256"] = "ab".repeat(32);
        },
        2,
      ),
    ),
    expect: { ok: false, reason: "publication", index: 2 },
  });
  add({
    name: "sampling",
    description: "row 3 claims a sampling rate below 1 for a self-selected cohort, re-signed",
    text: text(
      edit(
        3,
        (r) => {
          (r["sampling"] as Row)["rate"] = 0.5;
        },
        3,
      ),
    ),
    expect: { ok: false, reason: "sampling", index: 3 },
  });
  add({
    name: "event",
    description: "row 1 counts more noise shares than trusted survivors, re-signed",
    text: text(
      edit(
        1,
        (r) => {
          ((r["events"] as Row[])[0]!["event"] as Row)["noiseShares"] = 41;
          (r["noise"] as Row)["noiseShares"] = 41;
        },
        1,
      ),
    ),
    expect: { ok: false, reason: "event", index: 1 },
  });
  const last = entries.at(-1)!;
  add({
    name: "head",
    description: "the last entry was cut off; the auditor holds the head from an earlier verify",
    text: text(clone(entries).slice(0, -1)),
    expectedHead: { seq: last.seq, hash: last.hash },
    expect: { ok: false, reason: "head", index: last.seq },
  });
  add({
    name: "checkpoint-rewrite",
    description: "the signer rewrote row 3 and everything after it; a witness holds its checkpoint of seq 3",
    text: text(
      edit(
        3,
        (r) => {
          (r["cohort"] as Row)["survivors"] = 44;
        },
        3,
      ),
    ),
    checkpoints: [checkpoints[0]!],
    expect: { ok: false, reason: "checkpoint", index: 3 },
  });
  add({
    name: "checkpoint-truncation",
    description: "the last entry was cut off; a witness holds the checkpoint of the old head",
    text: text(clone(entries).slice(0, -1)),
    checkpoints: [checkpoints[1]!],
    expect: { ok: false, reason: "checkpoint", index: entries.length - 1 },
  });
  return { entries, checkpoints, cases };
}
