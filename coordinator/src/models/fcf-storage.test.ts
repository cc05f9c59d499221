import { FcfDeclaration, KMeansDeclaration } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { applyFcf, fcfTask } from "./fcf";
import { packTrainerState, unpackTrainerState } from "./fcf-storage";
import { initialModelState, type TrainerState } from "./trainer";

const items = Array.from({ length: 300 }, (_, i) => `p${i}`);
const declaration = FcfDeclaration.parse({
  v: 1,
  kind: "fcf",
  spec: { rank: 4, blockSize: 100, optimizer: "adam" },
  catalogue: { items, categories: items.map((_, i) => (i % 3 === 0 ? null : `c${i % 3}`)) },
  dp: { targetEpsilon: 8, population: 1000 },
  cohort: { minDevices: 2, maxDevices: 2, maxShardSize: 2, minShardSize: 2 },
});

function stateAfterOneRound(): TrainerState {
  const model = initialModelState(declaration);
  if (!("kind" in model) || model.kind !== "fcf") throw new Error("expected fcf");
  const { block, dimension } = fcfTask(declaration.spec, items.length, model);
  const aggregate = Array.from({ length: dimension }, (_, i) => Math.sin(i));
  const { state } = applyFcf(declaration.spec, declaration.catalogue, model, block, aggregate, {
    contributors: 2,
    noiseStddev: 0,
  });
  return {
    kind: "trainer",
    tenantId: "t",
    modelId: "recs",
    declaration,
    declaredAt: 1,
    model: state,
    roundsOpened: 1,
    failures: 0,
    current: null,
    nextRoundAt: 2,
    latestVersion: 2,
    stoppedReason: null,
  };
}

describe("the trainer state, packed for bounded storage values", () => {
  it("moves the fcf arrays and the catalogue into blobs and reads the same state back", async () => {
    const state = stateAfterOneRound();
    const { packed, blobs } = packTrainerState(state, 3);
    expect(packed.blobs.sort()).toEqual(["catalogue", "factors", "moment1", "moment2", "popularity"]);
    // The small value has none of the large parts.
    const small = JSON.stringify(packed, (_k, v) =>
      ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v,
    );
    expect(small.length).toBeLessThan(2_000);
    expect(blobs.factors?.byteLength).toBe(300 * 4 * 4);
    const read = await unpackTrainerState(packed, async (generation, name) => {
      expect(generation).toBe(3);
      return blobs[name] ?? null;
    });
    expect(read).toEqual(state);
    if (!("kind" in read.model) || !("kind" in state.model)) throw new Error("expected fcf");
    expect(read.model.moment1.some((v) => v !== 0)).toBe(true);
  });

  it("keeps a k-means state whole, reads a value stored before chunking, and fails on a lost blob", async () => {
    const state = stateAfterOneRound();
    const kmeansDeclaration = KMeansDeclaration.parse({
      v: 1,
      kind: "kmeans",
      spec: { k: 2 },
      dp: { targetEpsilon: 8, population: 1000 },
      cohort: { minDevices: 2, maxDevices: 2, maxShardSize: 2, minShardSize: 2 },
    });
    const kmeans: TrainerState = {
      ...state,
      declaration: kmeansDeclaration,
      model: initialModelState(kmeansDeclaration),
    };
    const whole = packTrainerState(kmeans, 1);
    expect(whole.packed.blobs).toEqual([]);
    expect(await unpackTrainerState(whole.packed, async () => null)).toBe(kmeans);
    expect(await unpackTrainerState(state, async () => null)).toBe(state);
    const { packed, blobs } = packTrainerState(state, 1);
    await expect(
      unpackTrainerState(packed, async (_g, name) => (name === "moment2" ? null : (blobs[name] ?? null))),
    ).rejects.toThrow(/blob "moment2" is missing/);
  });
});
