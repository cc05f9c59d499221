/**
 * Checkpoints published on schedule (SPEC.md §8.2), in memory with a fake clock: the first append
 * of a chain publishes one, later appends at most one a minute, the cron every moved head, an idle
 * head once a day; and a history rewritten after a published checkpoint fails verification with
 * those checkpoints, even when the rewrite is signed with the real key.
 */
import { describe, expect, it } from "vitest";
import { MemoryAuditLedgerStore, MemoryPrivacyBudgetStore } from "../memory";
import { createRoundPrivacy } from "../rounds/round-privacy";
import { signerFromSeed } from "./chain";
import { readAll } from "./store";
import { verifyLedger } from "./verify";

const MINUTE = 60_000;
const signer = signerFromSeed(new Uint8Array(32).fill(7));
const scope = { tenant: "shop", model: "segments" };

function service(ledger = new MemoryAuditLedgerStore()) {
  let now = Date.parse("2026-12-01T12:00:00Z");
  const privacy = createRoundPrivacy({
    budgets: new MemoryPrivacyBudgetStore(),
    ledger,
    signer,
    clock: () => now,
  });
  return { privacy, ledger, advance: (ms: number) => (now += ms) };
}

const published = (s: ReturnType<typeof service>) => s.privacy.publishedCheckpoints("shop", "segments", 1000);

describe("checkpoints published on schedule", () => {
  it("first append at once, then one a minute from appends, every moved head from the cron, idle heads daily", async () => {
    const s = service();
    await s.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 4, delta: 1e-6 });
    expect((await published(s)).map((c) => c.seq)).toEqual([0]);

    // A second change 10 s later is on the chain but waits for the interval.
    s.advance(10_000);
    await s.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 5, delta: 1e-6 });
    expect((await published(s)).map((c) => c.seq)).toEqual([0]);
    // The cron publishes a moved head regardless.
    expect((await s.privacy.publishCheckpoints({ minIntervalMs: 0 })).map((c) => c.seq)).toEqual([1]);
    // Nothing moved: nothing new, until the daily refresh.
    s.advance(MINUTE);
    expect(await s.privacy.publishCheckpoints({ minIntervalMs: 0 })).toEqual([]);
    s.advance(24 * 60 * MINUTE);
    expect((await s.privacy.publishCheckpoints({ minIntervalMs: 0 })).map((c) => c.seq)).toEqual([1]);
    // A change a minute after the last checkpoint is published by the append itself.
    s.advance(MINUTE);
    await s.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 6, delta: 1e-6 });
    expect((await published(s)).map((c) => c.seq)).toEqual([0, 1, 1, 2]);

    // Each verifies against the chain it names.
    const rows = await readAll(s.ledger, scope);
    const check = verifyLedger(rows, signer.publicKey, { checkpoints: await published(s) });
    expect(check.ok, JSON.stringify(check)).toBe(true);
  });

  it("a history rewritten and re-signed with the real key after a published checkpoint fails by checkpoint", async () => {
    const honest = service();
    await honest.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 4, delta: 1e-6 });
    honest.advance(MINUTE);
    await honest.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 100, delta: 1e-6 });
    const witnessed = await published(honest);
    expect(witnessed.map((c) => c.seq)).toEqual([0, 1]);

    // The signer rebuilds the chain without the cap raise (same key, a different seq 1).
    const forged = service();
    await forged.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 4, delta: 1e-6 });
    forged.advance(MINUTE);
    await forged.privacy.setBudget("shop", "segments", { v: 1, epsilonCap: 4.2, delta: 1e-6 });
    const rows = await readAll(forged.ledger, scope);
    expect(verifyLedger(rows, signer.publicKey).ok).toBe(true);
    const caught = verifyLedger(rows, signer.publicKey, { checkpoints: witnessed });
    expect(caught).toMatchObject({ ok: false, failure: { reason: "checkpoint", index: 1, seq: 1 } });
    expect(JSON.stringify(caught)).toContain("history was rewritten");
  });
});
