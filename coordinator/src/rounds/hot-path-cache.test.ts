import { describe, expect, it } from "vitest";
import { MemoryRoundIndex, MemoryTenantStore } from "../memory/index";
import { cachedRoundIndex, cachedTenantStore, noticingRoundIndex } from "./hot-path-cache";

/** A one-contribution plain-sum round of model "m", collecting until `closesAt`. */
const collectingRound = (roundId: string, closesAt: number) => ({
  roundId,
  modelId: "m",
  aggregation: "plain-sum" as const,
  stage: "collecting" as const,
  dimension: 1,
  minContributions: 1,
  maxContributions: 1,
  openedAt: 0,
  closesAt,
});

describe("hot-path cache", () => {
  it("serves a found key from memory within the TTL, and sees a revocation after it", async () => {
    let now = 0;
    const inner = new MemoryTenantStore();
    inner.addTenant({ id: "t", name: "t", createdAt: 0 }, { publishable: { keyHash: "h" } });
    let reads = 0;
    const counting = {
      findTenant: (id: string) => inner.findTenant(id),
      findApiKey: (id: string, hash: string) => {
        reads++;
        return inner.findApiKey(id, hash);
      },
    };
    const cached = cachedTenantStore(counting, { ttlMs: 1000, clock: () => now });
    for (let i = 0; i < 100; i++) expect(await cached.findApiKey("t", "h")).not.toBeNull();
    expect(reads).toBe(1);
    inner.keys.delete("t/h");
    now = 999;
    expect(await cached.findApiKey("t", "h")).not.toBeNull();
    now = 1000;
    expect(await cached.findApiKey("t", "h")).toBeNull();
    expect(reads).toBe(2);
  });

  it("does not keep misses: a round inserted after a miss is found at once", async () => {
    const inner = new MemoryRoundIndex();
    const index = cachedRoundIndex(inner, { ttlMs: 60_000 });
    expect(await index.get("t", "r_x")).toBeNull();
    const info = collectingRound("r_x", 1);
    await inner.insert("t", info);
    expect((await index.get("t", "r_x"))?.stage).toBe("collecting");
    // An end written through this index is seen at once; one written elsewhere within the TTL.
    await index.markEnded("t", "r_x", "closed", null);
    expect((await index.get("t", "r_x"))?.stage).toBe("closed");
  });

  it("keeps check-in's open round (and 'none') for the TTL; an open or end told in this isolate drops it", async () => {
    let now = 0;
    const inner = new MemoryRoundIndex();
    let queries = 0;
    const counting = Object.assign(Object.create(inner) as MemoryRoundIndex, {
      findOpen: (t: string, m: string, at: number) => {
        queries++;
        return inner.findOpen(t, m, at);
      },
    });
    const index = cachedRoundIndex(counting, { openTtlMs: 3000, clock: () => now });
    const info = collectingRound("r_open", 10_000);
    for (let i = 0; i < 10; i++) expect(await index.findOpen("t2", "m", now)).toBeNull();
    expect(queries).toBe(1);
    // Written elsewhere: not seen until the TTL has passed.
    await inner.insert("t2", info);
    expect(await index.findOpen("t2", "m", now)).toBeNull();
    now = 3000;
    expect((await index.findOpen("t2", "m", now))?.roundId).toBe("r_open");
    expect(queries).toBe(2);
    // Ended through another object in this isolate (a Durable Object's index): seen at once.
    await noticingRoundIndex(inner).markEnded("t2", "r_open", "closed", 1);
    expect(await index.findOpen("t2", "m", now)).toBeNull();
    expect(queries).toBe(3);
  });
});
