import { describe, expect, it } from "vitest";
import { PrivacyBudgetExceededError } from "../dp/errors.ts";
import { planCentralRound, planDistributedRound } from "../dp/planning.ts";
import { canonicalJson } from "./canonical-json.ts";
import { bodyOf, hashEntryBody, sealEntry, signerFromSeed } from "./chain.ts";
import { CSV_COLUMNS, exportLedgerCsv, exportLedgerJson } from "./export.ts";
import { PrivacyLedger, roundRecordFromConfig } from "./ledger.ts";
import { isReleaseEntry, type LedgerEntry, type ReleaseEntry } from "./schema.ts";
import { MemoryLedgerStore, readAll } from "./store.ts";
import { verifyLedger, verifyLedgerFast } from "./verify.ts";

const SEED = "00112233445566778899aabbccddeeff";
const signer = signerFromSeed(new Uint8Array(32).map((_, i) => i + 1));
const scope = { tenant: "shop-1", model: "segments" };

function clock(): () => Date {
  let t = Date.UTC(2026, 10, 23, 8, 0, 0);
  return () => {
    t += 60_000;
    return new Date(t);
  };
}

async function buildLedger(
  cap = 50,
): Promise<{ ledger: PrivacyLedger; store: MemoryLedgerStore; entries: ReleaseEntry[] }> {
  const store = new MemoryLedgerStore();
  const ledger = new PrivacyLedger({
    store,
    signer,
    scope,
    policy: { epsilonCap: cap, delta: 1e-6 },
    now: clock(),
  });
  const ddg = planDistributedRound({
    dim: 64,
    clipNorm: 1,
    expectedClients: 100,
    modulusBits: 24,
    rotationSeed: SEED,
    targetEpsilon: 4,
    delta: 1e-6,
    rounds: 20,
    samplingRate: 0.01,
    threshold: 70,
  });
  const sampling = { uniform: true, rate: 0.01, population: 10_000 };
  for (let round = 0; round < 3; round++) {
    await ledger.recordRound(
      roundRecordFromConfig(ddg, { round, cohortSize: 100, survivors: 90 - round, threshold: 70, sampling }),
    );
  }
  const central = planCentralRound({
    dim: 64,
    clipNorm: 1,
    expectedClients: 100,
    rotationSeed: SEED,
    noiseMultiplier: 1.1,
    clipCountStddev: 5,
  });
  const r = await ledger.recordRound(
    roundRecordFromConfig(central, {
      round: 3,
      cohortSize: 100,
      survivors: 95,
      sampling: { uniform: false, rate: 1 },
    }),
  );
  await ledger.recordClipRelease(
    r,
    { initialClip: 1, targetQuantile: 0.5, learningRate: 0.2, countStddev: 5 },
    { previousClip: 1, nextClip: 0.9, noisyCount: 60, clients: 95, noisyFraction: 60 / 95 },
  );
  await ledger.recordRound(
    roundRecordFromConfig(ddg, {
      round: 4,
      cohortSize: 100,
      survivors: 100,
      threshold: 70,
      colluders: 5,
      sampling,
    }),
  );
  return { ledger, store, entries: (await readAll(store, scope)).filter(isReleaseEntry) };
}

/** Every leaf path of a JSON value. */
function leafPaths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (v !== null && typeof v === "object") {
    const entries: [string | number, unknown][] = Array.isArray(v)
      ? v.map((x, i) => [i, x])
      : Object.entries(v);
    return entries.flatMap(([k, x]) => leafPaths(x, [...prefix, k]));
  }
  return [prefix];
}

function mutate(entry: LedgerEntry, path: (string | number)[]): unknown {
  const copy: unknown = JSON.parse(JSON.stringify(entry));
  let node: unknown = copy;
  for (const k of path.slice(0, -1)) node = Reflect.get(node as object, k);
  const last = path[path.length - 1]!;
  const old: unknown = Reflect.get(node as object, last);
  let next: unknown;
  if (typeof old === "number") next = old === 0 ? 1 : old * 1.5;
  else if (typeof old === "boolean") next = !old;
  else if (typeof old === "string")
    next = /^[0-9a-f]+$/.test(old) ? (old[0] === "a" ? "b" : "a") + old.slice(1) : `${old}x`;
  else next = 0;
  Reflect.set(node as object, last, next);
  return copy;
}

describe("canonical JSON (RFC 8785)", () => {
  it("sorts keys, drops whitespace, and normalises numbers", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: { z: 1e21, y: -0, x: 0.1 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"c":{"x":0.1,"y":0,"z":1e+21}}',
    );
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/\$\.a/);
  });
});

describe("privacy ledger", () => {
  it("records signed, chained entries that verify, recomputing epsilon from the events", async () => {
    const { entries, ledger } = await buildLedger();
    expect(entries.map((e) => e.kind)).toEqual([
      "round",
      "round",
      "round",
      "round",
      "clip_quantile",
      "round",
    ]);
    const v = verifyLedger(entries, signer.publicKey);
    expect(v).toMatchObject({ ok: true, entries: 6 });
    const status = await ledger.status();
    if (!v.ok) throw new Error("unreachable");
    expect(v.epsilon).toBeCloseTo(status.epsilon, 12);
    expect(entries[5]!.noise.noiseShares).toBe(95);
    expect(entries[3]!.trustModel).toBe("central");
    expect(entries[0]!.trustModel).toBe("distributed");
    // The quantile release spends nothing by itself: its count rode in entry 3's vector.
    expect(entries[4]!.events).toEqual([]);
    expect(entries[4]!.cumulative.epsilon).toBe(entries[3]!.cumulative.epsilon);
    expect(entries[1]!.prevHash).toBe(entries[0]!.hash);
  });

  it("detects a change to any field of any row, and names that row", async () => {
    const { entries } = await buildLedger();
    // A distributed round (0), the central round (3) and the quantile release (4).
    for (const target of [0, 3, 4]) {
      // Every field, but of the 156-long RDP vector only the ends and the middle (signature
      // checks dominate the run time; every element is covered by the same hash).
      const paths = leafPaths(entries[target]).filter(
        (p) => p[1] !== "rdp" || [0, 77, 155].includes(Number(p[2])),
      );
      expect(paths.length).toBeGreaterThan(30);
      for (const path of paths) {
        const rows: unknown[] = [...entries];
        rows[target] = mutate(entries[target]!, path);
        const v = verifyLedger(rows, signer.publicKey);
        if (v.ok) throw new Error(`tampering ${path.join(".")} of row ${target} went unnoticed`);
        expect(v.failure.index).toBe(target);
      }
    }
  }, 60_000);

  it("a rewritten row with a recomputed hash still fails on the signature", async () => {
    const { entries } = await buildLedger();
    const body = { ...bodyOf(entries[2]!), cumulative: { ...entries[2]!.cumulative, epsilon: 0.01 } };
    const forged = { ...body, hash: hashEntryBody(body), signature: entries[2]!.signature };
    const v = verifyLedger([entries[0], entries[1], forged, ...entries.slice(3)], signer.publicKey);
    expect(v).toMatchObject({ ok: false, failure: { index: 2, reason: "signature" } });
    // Re-signed by another key: caught by the key id / signature.
    const other = signerFromSeed(new Uint8Array(32).fill(9));
    const v2 = verifyLedger(entries, other.publicKey);
    expect(v2).toMatchObject({ ok: false, failure: { index: 0, reason: "untrusted" } });
  });

  it("native (WebCrypto) signature checks give the same verdicts as tweetnacl", async () => {
    const { entries } = await buildLedger();
    const body = bodyOf(entries[2]!);
    const cases: unknown[][] = [
      entries,
      // A valid hash whose signature is another entry's.
      [entries[0], entries[1], { ...entries[2], signature: entries[1]!.signature }, ...entries.slice(3)],
      // A forged hash over changed content, with the old signature.
      [
        entries[0],
        entries[1],
        { ...body, round: 99, hash: hashEntryBody({ ...body, round: 99 }), signature: entries[2]!.signature },
      ],
      // A row that is not an entry at all, before a good one.
      [entries[0], { seq: 1 }, entries[2]],
    ];
    for (const rows of cases)
      expect(await verifyLedgerFast(rows, signer.publicKey)).toEqual(verifyLedger(rows, signer.publicKey));
    expect((await verifyLedgerFast(cases[1]!, signer.publicKey)).ok).toBe(false);
  });

  it("a correctly signed entry whose epsilon does not follow from its events is caught", async () => {
    const { entries } = await buildLedger();
    const body = {
      ...bodyOf(entries[1]!),
      cumulative: { ...entries[1]!.cumulative, epsilon: entries[1]!.cumulative.epsilon / 2 },
    };
    const lying = sealEntry(body, signer);
    const v = verifyLedger([entries[0], lying], signer.publicKey);
    expect(v).toMatchObject({ ok: false, failure: { index: 1, reason: "epsilon" } });
  });

  it("detects deleted and reordered rows, and a truncated tail against a known head", async () => {
    const { entries } = await buildLedger();
    const deleted = [...entries.slice(0, 2), ...entries.slice(3)];
    expect(verifyLedger(deleted, signer.publicKey)).toMatchObject({
      ok: false,
      failure: { index: 2, seq: 3, reason: "sequence" },
    });
    const swapped = [entries[0], entries[2], entries[1], ...entries.slice(3)];
    expect(verifyLedger(swapped, signer.publicKey)).toMatchObject({
      ok: false,
      failure: { index: 1, seq: 2 },
    });
    const head = { seq: 5, hash: entries[5]!.hash };
    expect(verifyLedger(entries, signer.publicKey, { expectedHead: head }).ok).toBe(true);
    expect(verifyLedger(entries.slice(0, 4), signer.publicKey, { expectedHead: head })).toMatchObject({
      ok: false,
      failure: { reason: "head" },
    });
  });

  it("refuses a round whose projected epsilon would pass the cap, before it runs", async () => {
    const { ledger, entries } = await buildLedger(50);
    const spent = entries[5]!.cumulative.epsilon;
    const planned = entries[0]!.events[0]!.event;
    await expect(ledger.assertCanRun(planned)).resolves.toMatchObject({ epsilonCap: 50 });
    const tight = new PrivacyLedger({
      store: new MemoryLedgerStore(),
      signer,
      scope,
      policy: { epsilonCap: spent * 0.5, delta: 1e-6 },
    });
    await expect(tight.assertCanRun([{ event: planned, count: 1000 }])).rejects.toBeInstanceOf(
      PrivacyBudgetExceededError,
    );
    try {
      await tight.assertCanRun([{ event: planned, count: 1000 }]);
    } catch (err) {
      if (!(err instanceof PrivacyBudgetExceededError)) throw err;
      expect(err.code).toBe("privacy_budget_exceeded");
      expect(err.status).toBe(409);
      expect(err.message).toMatch(/shop-1.*segments.*refused before any device/);
      expect(err.refusal.projectedEpsilon).toBeGreaterThan(err.refusal.epsilonCap);
    }
  });

  it("the store is append-only: a stale or duplicate seq is rejected", async () => {
    const { store, entries } = await buildLedger();
    await expect(store.append(entries[2]!)).rejects.toMatchObject({ code: "ledger_conflict" });
  });

  it("flags amplification claimed for a non-uniform cohort", async () => {
    const { entries } = await buildLedger();
    const body = { ...bodyOf(entries[0]!), sampling: { uniform: false, rate: 0.01 } };
    const v = verifyLedger([sealEntry(body, signer)], signer.publicKey);
    expect(v).toMatchObject({ ok: false, failure: { index: 0, reason: "sampling" } });
  });

  it("exports JSON that re-verifies and RFC 4180 CSV", async () => {
    const { entries } = await buildLedger();
    const doc: unknown = JSON.parse(exportLedgerJson(entries, signer.publicKey));
    const rows = Reflect.get(doc as object, "entries") as unknown[];
    expect(verifyLedger(rows, signer.publicKey).ok).toBe(true);
    const csv = exportLedgerCsv(entries);
    const lines = csv.trimEnd().split("\r\n");
    expect(lines).toHaveLength(entries.length + 1);
    expect(lines[0]).toBe(CSV_COLUMNS.join(","));
    expect(lines[1]).toContain('"[{""event""');
    expect(lines[1]!.startsWith("0,shop-1,segments,round,0,")).toBe(true);
  });
});

describe("policy, rotation and checkpoints", () => {
  it("a cap raised and lowered again is on the record, and the verifier shows the history", async () => {
    const store = new MemoryLedgerStore();
    const now = clock();
    for (const cap of [4.2, 100, 4.2]) {
      const l = new PrivacyLedger({ store, signer, scope, policy: { epsilonCap: cap, delta: 1e-6 }, now });
      await l.recordPolicy({ source: "budget", epsilonCap: cap, delta: 1e-6, population: null });
    }
    const v = verifyLedger(await readAll(store, scope), signer.publicKey);
    if (!v.ok) throw new Error(v.failure.message);
    expect(v.capHistory.map((c) => c.epsilonCap)).toEqual([4.2, 100, 4.2]);
  });

  it("a coordinator given its previous key rotates the chain before its next entry", async () => {
    const { store } = await buildLedger();
    const next = signerFromSeed(new Uint8Array(32).fill(3));
    const ledger = new PrivacyLedger({
      store,
      signer: next,
      previousSigner: signer,
      scope,
      policy: { epsilonCap: 50, delta: 1e-6 },
      now: clock(),
    });
    await ledger.recordPolicy({ source: "budget", epsilonCap: 50, delta: 1e-6, population: null });
    const chain = await readAll(store, scope);
    expect(chain.slice(-2).map((e) => e.kind)).toEqual(["key_rotation", "policy"]);
    // Pinned to the old key or to the new one: the rotation is signed by both.
    for (const pinned of [signer.publicKey, next.publicKey]) {
      const v = verifyLedger(chain, pinned);
      if (!v.ok) throw new Error(v.failure.message);
      expect(v.keyIds).toHaveLength(2);
    }
    // Without the previous key the coordinator refuses to append under a key the chain never named.
    const stranger = new PrivacyLedger({
      store,
      signer: signerFromSeed(new Uint8Array(32).fill(4)),
      scope,
      policy: { epsilonCap: 50, delta: 1e-6 },
    });
    await expect(
      stranger.recordPolicy({ source: "budget", epsilonCap: 50, delta: 1e-6, population: null }),
    ).rejects.toThrow(/configure the previous key/);
    // A signed checkpoint of the head verifies against the chain.
    const cp = await ledger.checkpoint();
    expect(cp).toMatchObject({ seq: chain.at(-1)!.seq, hash: chain.at(-1)!.hash });
    expect(verifyLedger(chain, signer.publicKey, { checkpoints: [cp] })).toMatchObject({
      ok: true,
      checkpoints: 1,
    });
  });
});
