import { planDistributedRound } from "@fedprofile/coordinator/dp";
import {
  exportLedgerJson,
  isReleaseEntry,
  LedgerEntry,
  MemoryLedgerStore,
  PrivacyLedger,
  publishedKey,
  type ReleaseEntry,
  readAll,
  roundRecordFromConfig,
  signCheckpoint,
  signerFromSeed,
} from "@fedprofile/coordinator/ledger";
import { bytesToHex } from "@noble/hashes/utils.js";
import { describe, expect, it } from "vitest";
import type { AccountantJson } from "./accountant-command.ts";
import type { CliIo } from "./io.ts";
import { main } from "./main.ts";

function memoryIo(
  files: Record<string, string> = {},
  fetch?: typeof globalThis.fetch,
  env: Record<string, string> = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    readFile: async (p) => {
      const f = files[p];
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return f;
    },
    writeFile: async (p, t) => {
      files[p] = t;
    },
    fetch:
      fetch ??
      (async () => {
        throw new Error("no network in tests");
      }),
    env,
  };
  return { io, out: () => out.join(""), err: () => err.join(""), files };
}

const signer = signerFromSeed(new Uint8Array(32).fill(7));
const PK = bytesToHex(signer.publicKey);

async function ledgerEntries(): Promise<ReleaseEntry[]> {
  const store = new MemoryLedgerStore();
  const scope = { tenant: "t1", model: "recs" };
  let t = Date.UTC(2026, 0, 1);
  const ledger = new PrivacyLedger({
    store,
    signer,
    scope,
    policy: { epsilonCap: 10, delta: 1e-7 },
    now: () => {
      t += 1000;
      return new Date(t);
    },
  });
  const cfg = planDistributedRound({
    dim: 32,
    clipNorm: 1,
    expectedClients: 50,
    modulusBits: 20,
    rotationSeed: "ab".repeat(16),
    targetEpsilon: 6,
    delta: 1e-7,
    rounds: 10,
    samplingRate: 1,
    threshold: 35,
  });
  for (let round = 0; round < 4; round++) {
    await ledger.assertCanRun(
      roundRecordFromConfig(cfg, {
        round,
        cohortSize: 50,
        survivors: 35,
        sampling: { uniform: false, rate: 1 },
      }).events,
    );
    await ledger.recordRound(
      roundRecordFromConfig(cfg, {
        round,
        cohortSize: 50,
        survivors: 45,
        threshold: 35,
        sampling: { uniform: false, rate: 1 },
      }),
    );
  }
  return (await readAll(store, scope)).filter(isReleaseEntry);
}

describe("fedprofile accountant", () => {
  it("prints the MNIST DP-SGD tutorial's epsilon 2.5967 at delta 1e-5 and order 8.1", async () => {
    const m = memoryIo();
    const code = await main(
      [
        "accountant",
        "--noise-multiplier",
        "1.1",
        "--sampling-rate",
        String(256 / 60000),
        "--steps",
        "14063",
        "--delta",
        "1e-5",
      ],
      m.io,
    );
    expect(code).toBe(0);
    expect(m.out()).toMatch(/epsilon\s+2\.5967\b/);
    expect(m.out()).toMatch(/optimal order\s+8\.1\b/);
  });

  it("--json gives the numbers; q = 1 adds the exact Gaussian second opinion", async () => {
    const m = memoryIo();
    expect(
      await main(
        [
          "accountant",
          "--noise-multiplier=1.3",
          "--sampling-rate=0.0025",
          "--steps=6000",
          "--delta=1e-5",
          "--json",
        ],
        m.io,
      ),
    ).toBe(0);
    const j: AccountantJson = JSON.parse(m.out());
    expect(j.epsilon).toBeCloseTo(0.7242234026109595, 9); // TF Privacy compute_dp_sgd_privacy_test
    expect(j.optimalOrder).toBe(19);
    const g = memoryIo();
    await main(["accountant", "--noise-multiplier", "2", "--steps", "10", "--delta", "1e-6", "--json"], g.io);
    const gj: AccountantJson = JSON.parse(g.out());
    expect(gj.epsilonExactGaussian).toBeLessThan(gj.epsilon);
  });

  it("--pld adds the privacy-loss-distribution epsilon (dp_accounting PLDAccountant row)", async () => {
    const m = memoryIo();
    await main(
      [
        "accountant",
        "--noise-multiplier",
        "1.1",
        "--sampling-rate",
        "0.01",
        "--steps",
        "10",
        "--delta",
        "1e-6",
        "--pld",
      ],
      m.io,
    );
    expect(m.out()).toMatch(/PLD\s+0\.4154\b/);
    expect(m.out()).toMatch(/epsilon\s+\d/);
  });

  it("--target-epsilon calibrates the noise multiplier (dp_accounting calibration row)", async () => {
    const m = memoryIo();
    await main(
      [
        "accountant",
        "--target-epsilon",
        "1",
        "--sampling-rate",
        "0.01",
        "--steps",
        "100",
        "--delta",
        "1e-6",
        "--json",
      ],
      m.io,
    );
    const j: AccountantJson = JSON.parse(m.out());
    expect(j.noiseMultiplier).toBeCloseTo(1.194673657, 6);
    expect(j.epsilon).toBeLessThanOrEqual(1);
  });

  it("usage errors exit 2 with the help", async () => {
    for (const argv of [
      ["accountant", "--steps", "10", "--delta", "1e-5"],
      ["accountant", "--noise-multiplier", "-1", "--steps", "10", "--delta", "1e-5"],
      ["accountant", "--noise-multiplier", "1", "--steps", "1.5", "--delta", "1e-5"],
      ["accountant", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5", "--bogus", "1"],
      ["nope"],
    ]) {
      const m = memoryIo();
      expect(await main(argv, m.io)).toBe(2);
      expect(m.err()).toMatch(/^error: /);
    }
  });
});

describe("fedprofile audit", () => {
  it("verify accepts an untampered export file and reports the recomputed epsilon", async () => {
    const entries = await ledgerEntries();
    const m = memoryIo({ "ledger.json": exportLedgerJson(entries, signer.publicKey) });
    const code = await main(["audit", "verify", "--file", "ledger.json", "--public-key", PK], m.io);
    expect(code).toBe(0);
    expect(m.out()).toContain("t1/recs: OK");
    expect(m.out()).toMatch(/signatures\s+4\/4 valid/);
    expect(m.out()).toMatch(new RegExp(`epsilon\\s+${entries[3]!.cumulative.epsilon.toFixed(4)}`));
    expect(m.out()).toContain("verdict: the ledger verifies");
  });

  it("verify names the row when one is edited, deleted or reordered", async () => {
    const entries = await ledgerEntries();
    const edited = entries.map((e, i) => (i === 2 ? { ...e, cohort: { ...e.cohort, survivors: 49 } } : e));
    const cases: [unknown[], RegExp][] = [
      [edited, /FAILED at row 2 .*\n\s+hash:/],
      [[entries[0], entries[1], entries[3]], /FAILED at row 2 .*seq 3\)\n\s+sequence:/],
      [[entries[0], entries[2], entries[1], entries[3]], /FAILED at row 1 /],
    ];
    for (const [rows, pattern] of cases) {
      const m = memoryIo({ "l.json": JSON.stringify(rows) });
      expect(await main(["audit", "verify", "--file", "l.json", "--public-key", PK], m.io)).toBe(1);
      expect(m.out()).toMatch(pattern);
      expect(m.out()).toContain("does NOT verify");
    }
  });

  it("verify --expected-head catches entries cut off the end of the chain", async () => {
    const entries = await ledgerEntries();
    const full = memoryIo({ "l.json": JSON.stringify(entries) });
    expect(await main(["audit", "verify", "--file", "l.json", "--public-key", PK], full.io)).toBe(0);
    // The report prints the head to pin, as SEQ:HASH.
    const head = /head (\d+:[0-9a-f]{64})/.exec(full.out())?.[1];
    expect(head).toBe(`3:${entries[3]!.hash}`);
    const pinned = ["--model", "recs", "--expected-head", head as string, "--public-key", PK];
    const cut = memoryIo({ "l.json": JSON.stringify(entries.slice(0, 3)) });
    expect(await main(["audit", "verify", "--file", "l.json", ...pinned], cut.io)).toBe(1);
    expect(cut.out()).toMatch(/head: the chain does not contain the expected head seq 3/);
    const intact = memoryIo({ "l.json": JSON.stringify(entries) });
    expect(await main(["audit", "verify", "--file", "l.json", ...pinned], intact.io)).toBe(0);
    for (const bad of [
      ["--expected-head", "3:xyz"],
      ["--expected-head", head as string],
    ]) {
      const m = memoryIo({ "l.json": JSON.stringify(entries) });
      expect(await main(["audit", "verify", "--file", "l.json", "--public-key", PK, ...bad], m.io)).toBe(2);
    }
  });

  it("verify pages through the auditor API with the bearer key", async () => {
    const entries = await ledgerEntries();
    const seen: string[] = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const url = String(input);
      seen.push(url);
      expect(new Headers(init?.headers).get("authorization")).toBe("Bearer fp_aud_t1.secret");
      const u = new URL(url);
      if (u.pathname === "/v1/audit/public-key")
        return Response.json({ v: 1, algorithm: "Ed25519", publicKey: PK, keyId: "0".repeat(16) });
      const cursor = Number(u.searchParams.get("cursor") || 0);
      const limit = Number(u.searchParams.get("limit"));
      const page = entries.slice(cursor, cursor + 3);
      const next = cursor + 3 < entries.length ? String(cursor + 3) : null;
      expect(limit).toBe(200);
      return Response.json({ v: 1, entries: page, nextCursor: next });
    };
    // Nothing pinned: not verified, whatever the coordinator serves.
    const unpinned = memoryIo({}, fetch, { FEDPROFILE_AUDITOR_KEY: "fp_aud_t1.secret" });
    expect(await main(["audit", "verify", "--url", "http://127.0.0.1:8787/"], unpinned.io)).toBe(1);
    expect(unpinned.out()).toContain("verdict: NOT VERIFIED (no pinned key)");
    expect(unpinned.err()).toContain("--trust-advertised-key");
    const m = memoryIo({}, fetch, { FEDPROFILE_AUDITOR_KEY: "fp_aud_t1.secret" });
    const argv = ["audit", "verify", "--url", "http://127.0.0.1:8787/", "--trust-advertised-key", "--json"];
    expect(await main(argv, m.io)).toBe(0);
    const j = JSON.parse(m.out());
    expect(j.ok).toBe(true);
    expect(j.chains[0].result.entries).toBe(4);
    expect(seen.filter((u) => u.includes("/v1/audit/ledger"))).toHaveLength(2);
    expect(m.err()).toContain("trusting the key advertised");
  });

  it("a ledger re-signed with another key and advertising it fails against the operator's key file", async () => {
    const entries = await ledgerEntries();
    const forger = signerFromSeed(new Uint8Array(32).fill(8));
    const store = new MemoryLedgerStore();
    const forged = new PrivacyLedger({
      store,
      signer: forger,
      scope: { tenant: "t1", model: "recs" },
      policy: { epsilonCap: 10, delta: 1e-7 },
    });
    for (const e of entries) await forged.recordRound(e);
    const rows = await readAll(store, { tenant: "t1", model: "recs" });
    const keys = JSON.stringify({
      v: 1,
      type: "fedprofile-ledger-keys",
      keys: [publishedKey(signer.publicKey)],
    });
    const files = { "forged.json": exportLedgerJson(rows, forger.publicKey), "keys.json": keys };
    const m = memoryIo(files);
    expect(await main(["audit", "verify", "--file", "forged.json", "--keys-file", "keys.json"], m.io)).toBe(
      1,
    );
    expect(m.out()).toMatch(/untrusted: .*not pinned/);
    // The same file with the advertised key trusted passes: which is why trusting it is opt-in.
    const t = memoryIo(files);
    expect(await main(["audit", "verify", "--file", "forged.json", "--trust-advertised-key"], t.io)).toBe(0);
    // A key file that disagrees with itself pins nothing.
    const bad = JSON.stringify({
      v: 1,
      type: "fedprofile-ledger-keys",
      keys: [{ ...publishedKey(signer.publicKey), keyId: "0".repeat(16) }],
    });
    const b = memoryIo({ ...files, "keys.json": bad });
    expect(await main(["audit", "verify", "--file", "forged.json", "--keys-file", "keys.json"], b.io)).toBe(
      2,
    );
  });

  it("a duplicate member fails verification and names the row", async () => {
    const entries = await ledgerEntries();
    const text = JSON.stringify(entries);
    const row2 = JSON.stringify(entries[2]);
    const dup = text.replace(row2, row2.replace('"cumulative":{', '"cumulative":{"epsilon":0.01,'));
    const m = memoryIo({ "l.json": dup });
    expect(await main(["audit", "verify", "--file", "l.json", "--public-key", PK], m.io)).toBe(1);
    expect(m.out()).toMatch(/FAILED at row 2 .*\n\s+json: .*duplicate member "epsilon"/);
  });

  it("a witness file keeps signed checkpoints and catches a later rewrite of what it saw", async () => {
    const entries = await ledgerEntries();
    let served: unknown[] = entries;
    // What the coordinator published on schedule, before any rewrite: heads 0 and 1.
    const published = [0, 1].map((i) =>
      signCheckpoint(LedgerEntry.parse(entries[i]), signer, new Date(Date.UTC(2026, 0, 1, i))),
    );
    const fetch: typeof globalThis.fetch = async (input) => {
      const u = new URL(String(input));
      const body =
        u.pathname === "/v1/audit/checkpoint"
          ? {
              v: 1,
              checkpoint: signCheckpoint(
                LedgerEntry.parse(served.at(-1)),
                signer,
                new Date(Date.UTC(2026, 0, 2)),
              ),
            }
          : u.pathname === "/v1/audit/checkpoints"
            ? { v: 1, type: "fedprofile-ledger-witness", checkpoints: published }
            : { v: 1, entries: served, nextCursor: null };
      return Response.json(body);
    };
    const files: Record<string, string> = {};
    const argv = [
      "audit",
      "verify",
      "--url",
      "http://c.test",
      "--auditor-key",
      "fp_aud_t1.secret",
      "--public-key",
      PK,
      "--witness",
      "w.json",
    ];
    const first = memoryIo(files, fetch);
    expect(await main(argv, first.io), first.out() + first.err()).toBe(0);
    // The current head's checkpoint and the two published ones.
    expect(JSON.parse(files["w.json"]!).checkpoints).toHaveLength(3);
    // The signer rewrites entry 1 and re-signs everything after it: a consistent, validly signed chain.
    const store = new MemoryLedgerStore();
    const again = new PrivacyLedger({
      store,
      signer,
      scope: { tenant: "t1", model: "recs" },
      policy: { epsilonCap: 10, delta: 1e-7 },
    });
    for (const [i, e] of entries.entries())
      await again.recordRound({ ...e, cohort: { ...e.cohort, size: i === 1 ? 51 : e.cohort.size } });
    served = await readAll(store, { tenant: "t1", model: "recs" });
    expect(
      await main(
        [
          "audit",
          "verify",
          "--url",
          "http://c.test",
          "--auditor-key",
          "fp_aud_t1.secret",
          "--public-key",
          PK,
        ],
        memoryIo({}, fetch).io,
      ),
    ).toBe(0);
    const m = memoryIo(files, fetch);
    expect(await main(argv, m.io)).toBe(1);
    expect(m.out()).toMatch(/checkpoint: the coordinator signed seq \d as .* history was rewritten/);
    // A witness that starts now still catches it: the checkpoints published before the rewrite.
    const fresh = memoryIo({}, fetch);
    expect(await main(argv, fresh.io)).toBe(1);
    expect(fresh.out()).toMatch(/checkpoint: the coordinator signed seq \d as .* history was rewritten/);
    expect(fresh.files["w.json"]).toBeUndefined();
  });

  it("export writes CSV and JSON", async () => {
    const entries = await ledgerEntries();
    const m = memoryIo({ "l.json": JSON.stringify(entries) });
    expect(
      await main(["audit", "export", "--file", "l.json", "--format", "csv", "--out", "out.csv"], m.io),
    ).toBe(0);
    expect(m.files["out.csv"]!.split("\r\n")[1]).toMatch(/^0,t1,recs,round,0,/);
    const j = memoryIo({ "l.json": JSON.stringify(entries) });
    expect(
      await main(["audit", "export", "--file", "l.json", "--format", "json", "--public-key", PK], j.io),
    ).toBe(0);
    const doc = JSON.parse(j.out());
    expect(doc.publicKey).toBe(PK);
    expect(doc.entries).toHaveLength(4);
    expect(await main(["audit", "export", "--file", "l.json", "--format", "xml"], memoryIo().io)).toBe(2);
  });
});

describe("fedprofile: help, arguments and errors", () => {
  const stub = async () => async (argv: string[]) => (argv.includes("-h") || argv.includes("--help") ? 0 : 3);
  const commands = { replay: stub, simulate: stub, eval: stub };

  it("--help and -h list every command and exit 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const m = memoryIo();
      expect(await main([flag], m.io, commands)).toBe(0);
      for (const command of ["replay", "simulate", "eval", "accountant", "audit verify", "audit export"])
        expect(m.out()).toContain(command);
    }
  });

  it("every command answers --help and -h with exit 0", async () => {
    for (const argv of [
      ["accountant"],
      ["audit"],
      ["audit", "verify"],
      ["audit", "export"],
      ["replay"],
      ["simulate"],
      ["eval"],
    ]) {
      for (const flag of ["--help", "-h"]) {
        const m = memoryIo();
        expect(await main([...argv, flag], m.io, commands), `${argv.join(" ")} ${flag}`).toBe(0);
      }
    }
  });

  it("names a value that is not a number, and an unknown option", async () => {
    let m = memoryIo();
    expect(
      await main(["accountant", "--noise-multiplier", "abc", "--steps", "1", "--delta", "1e-5"], m.io),
    ).toBe(2);
    expect(m.err()).toContain("--noise-multiplier: abc is not a number");
    m = memoryIo();
    expect(await main(["audit", "verify", "--fle", "x"], m.io)).toBe(2);
    expect(m.err()).toContain("Unknown option '--fle'");
    expect(m.err()).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a URL without a scheme says so; an unreachable one names it and suggests --url", async () => {
    let m = memoryIo({}, undefined, { FEDPROFILE_AUDITOR_KEY: "fp_aud_t1.x" });
    expect(await main(["audit", "verify", "--url", "127.0.0.1:8787"], m.io)).toBe(2);
    expect(m.err()).toContain("give the scheme too, e.g. http://127.0.0.1:8787");
    const refused: typeof globalThis.fetch = async () => {
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:9") });
    };
    m = memoryIo({}, refused, { FEDPROFILE_AUDITOR_KEY: "fp_aud_t1.x" });
    expect(await main(["audit", "verify", "--url", "http://127.0.0.1:9", "--public-key", PK], m.io)).toBe(1);
    expect(m.err()).toContain("cannot reach http://127.0.0.1:9 (connect ECONNREFUSED 127.0.0.1:9)");
    expect(m.err()).toContain("--url");
  });

  it("audit verify --model with no entries for it exits 1 and names the models that exist", async () => {
    const entries = await ledgerEntries();
    const m = memoryIo({ "ledger.json": exportLedgerJson(entries, signer.publicKey) });
    const code = await main(
      ["audit", "verify", "--file", "ledger.json", "--public-key", PK, "--model", "rec"],
      m.io,
    );
    expect(code).toBe(1);
    expect(m.err()).toContain('no entries for model "rec"; models with entries: recs');
    expect(m.out()).not.toContain("the ledger verifies");
  });
});
