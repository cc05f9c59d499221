import { bytesToBase64 } from "@fedprofile/protocol/bytes";
import { FcfSpec } from "@fedprofile/protocol/wire";
import { describe, expect, it } from "vitest";
import { MemoryModelStore } from "../memory/index";
import type { ModelDraft } from "../ports";
import { cachedModelVersions } from "../rounds/hot-path-cache";
import { initialFcfState, publishFcf } from "./fcf";
import { blobBackedModelStore, MemoryModelBlobStore, weightsKey } from "./model-blobs";

const b64 = (bytes: number[]) => bytesToBase64(Uint8Array.from(bytes));
const draft = (roundId: string, bytes: number[]): ModelDraft => ({
  modelId: "m",
  roundId,
  dimension: 1,
  contributions: 1,
  aggregation: "secagg",
  weights: b64(bytes),
});
const ROUND_1 = "r_AAAAAAAAAAAAAAAAAAAAA1";
const ROUND_2 = "r_AAAAAAAAAAAAAAAAAAAAA2";

describe("published weights in a blob store", () => {
  it("the index row keeps no weights or params; reads resolve them; the first write of a round wins", async () => {
    const index = new MemoryModelStore();
    const blobs = new MemoryModelBlobStore();
    const store = blobBackedModelStore(index, blobs);
    const spec = FcfSpec.parse({ rank: 2, blockSize: 4 });
    const { params } = publishFcf(spec, { items: ["a", "b", "c"] }, initialFcfState(spec, 3));
    const published = await store.publish(
      "t",
      { ...draft(ROUND_1, [1, 2, 3, 4, 5, 6, 7, 8]), kind: "fcf", params },
      0,
    );
    expect(published.weights).toBe(b64([1, 2, 3, 4, 5, 6, 7, 8]));
    const row = await index.latest("t", "m");
    expect(row?.weights).toBe("");
    expect(row?.params).toBeUndefined();
    expect(blobs.blobs.has(weightsKey("t", "m", ROUND_1))).toBe(true);
    expect((await store.latest("t", "m"))?.params).toEqual(params);
    // A retried publish (a DP round re-draws its noise) does not change the version's bytes.
    const retried = await store.publish("t", draft(ROUND_1, [9, 9, 9, 9, 9, 9, 9, 9]), 1);
    expect(retried.version).toBe(1);
    expect(retried.weights).toBe(b64([1, 2, 3, 4, 5, 6, 7, 8]));
    const raw = await store.weights("t", "m", 1, ROUND_1);
    expect(Array.from(raw?.bytes ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(raw?.etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(await store.weights("t", "m", 2, ROUND_1)).toBeNull();
    expect(await store.weights("other", "m", 1, ROUND_1)).toBeNull();
    // The round must be the version's own: the URL names one round's bytes, never another's.
    expect(await store.weights("t", "m", 1, "r_someOtherRoundAAAAAAAA")).toBeNull();
  });

  it("a version stored before the blob store (weights in its row) still reads", async () => {
    const index = new MemoryModelStore();
    await index.publish("t", draft(ROUND_1, [7, 7, 7, 7, 7, 7, 7, 7]), 0);
    const store = blobBackedModelStore(index, new MemoryModelBlobStore());
    expect((await store.get("t", "m", 1))?.weights).toBe(b64([7, 7, 7, 7, 7, 7, 7, 7]));
    expect(Array.from((await store.weights("t", "m", 1, ROUND_1))?.bytes ?? [])).toEqual([
      7, 7, 7, 7, 7, 7, 7, 7,
    ]);
  });

  it("check-in's version is cached per isolate, 'none yet' too; a publish through the cache drops it", async () => {
    const index = new MemoryModelStore();
    let reads = 0;
    const counted = {
      ...blobBackedModelStore(index, new MemoryModelBlobStore()),
      latest: async () => {
        throw new Error("check-in must not read a model row");
      },
    };
    const inner = {
      ...counted,
      latestVersion: async (t: string, m: string) => {
        reads++;
        return (await index.latest(t, m))?.version ?? null;
      },
    };
    let now = 0;
    const cached = cachedModelVersions(inner, { clock: () => now });
    expect(await cached.latestVersion?.("t", "m")).toBeNull();
    expect(await cached.latestVersion?.("t", "m")).toBeNull();
    expect(reads).toBe(1);
    await cached.publish("t", draft(ROUND_1, [1, 1, 1, 1, 1, 1, 1, 1]), 0);
    expect(await cached.latestVersion?.("t", "m")).toBe(1);
    expect(reads).toBe(2);
    // Published elsewhere (another isolate): seen once the TTL has passed.
    await index.publish("t", draft(ROUND_2, [2, 2, 2, 2, 2, 2, 2, 2]), 0);
    expect(await cached.latestVersion?.("t", "m")).toBe(1);
    now += 5_000;
    expect(await cached.latestVersion?.("t", "m")).toBe(2);
    expect(reads).toBe(3);
  });
});
