/**
 * An fcf trainer over a 20,000-item catalogue in workerd: its state (factors, Adam's moments,
 * counts and catalogue: 7.8 MB at rank 32) is stored as a small value with 512 KB chunks beside
 * it, under the 2 MB a Durable Object value may hold. Before, one value held it all, and the
 * declaration failed with SQLITE_TOOBIG.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import {
  blobKey,
  initialFcfState,
  joinChunks,
  type PackedTrainerState,
  type TrainerState,
  unpackTrainerState,
} from "@fedprofile/coordinator";
import { FcfSpec, type ModelDeclarationInput, ModelStatus } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { call, seedTenant } from "./helpers";

const ITEMS = 20_000;
const SPEC = { rank: 32, optimizer: "adam" as const };
const DECLARATION: ModelDeclarationInput = {
  v: 1,
  kind: "fcf",
  spec: SPEC,
  catalogue: {
    items: Array.from({ length: ITEMS }, (_, i) => `sku-${i}`),
    categories: Array.from({ length: ITEMS }, (_, i) => `category-${i % 40}`),
  },
  dp: { targetEpsilon: 8, population: 100_000 },
  cohort: { minDevices: 6, maxDevices: 6, maxShardSize: 6, minShardSize: 2 },
  schedule: { stageSeconds: 30, maxRounds: 4, cadenceSeconds: 0 },
};

const MAX_VALUE_BYTES = 2 * 1024 * 1024;
const sizeOf = (value: unknown) =>
  value instanceof Uint8Array ? value.byteLength : new TextEncoder().encode(JSON.stringify(value)).length;

describe("fcf trainer state past a Durable Object value (workerd)", () => {
  it("declares and opens a round at 20,000 items: every value under 2 MB, the state read back whole", async () => {
    const keys = await seedTenant("big-catalogue");
    const declared = await call("PUT", "/v1/models/recs", keys.secret, DECLARATION);
    expect(declared.status, await declared.clone().text()).toBe(200);
    const trainer = env.TRAINER.get(env.TRAINER.idFromName("big-catalogue/recs"));
    // The alarm opens the first round: a second save, which moves the state to a new generation.
    await runDurableObjectAlarm(trainer);
    const status = ModelStatus.parse(await (await call("GET", "/v1/models/recs", keys.secret)).json());
    expect(status).toMatchObject({ kind: "fcf", trainer: "in-round", latestVersion: 1 });

    await runInDurableObject(trainer, async (_instance, state) => {
      const all = await state.storage.list();
      let total = 0;
      for (const [key, value] of all) {
        const size = sizeOf(value);
        total += size;
        expect(size, key).toBeLessThanOrEqual(MAX_VALUE_BYTES);
      }
      expect(total).toBeGreaterThan(4 * ITEMS * 32 * 3);
      const stored = await state.storage.get<PackedTrainerState>("trainer");
      if (stored?.kind !== "trainer-packed") throw new Error("the trainer state is not packed");
      expect(sizeOf(stored)).toBeLessThan(64 * 1024);
      // Only the current generation's chunks are kept.
      expect(stored.generation).toBeGreaterThan(1);
      const generations = new Set(
        [...all.keys()].filter((k) => k.startsWith("trainer-blob:")).map((k) => k.split(":")[1]),
      );
      expect([...generations]).toEqual([String(stored.generation)]);

      const read: TrainerState = await unpackTrainerState(stored, (generation, name) =>
        joinChunks(blobKey(generation, name), (k) => state.storage.get(k)),
      );
      if (read.declaration.kind !== "fcf" || !("kind" in read.model)) throw new Error("not an fcf state");
      expect(read.declaration.catalogue.items).toHaveLength(ITEMS);
      expect(read.declaration.catalogue.categories?.[ITEMS - 1]).toBe(`category-${(ITEMS - 1) % 40}`);
      const expected = initialFcfState(FcfSpec.parse(SPEC), ITEMS);
      expect(read.model.factors).toEqual(expected.factors);
      expect(read.model.moment2).toHaveLength(ITEMS * 32);
      expect(read.model.popularity).toHaveLength(ITEMS);
      expect(read.current).not.toBeNull();
    });
  }, 60_000);
});
