/**
 * The coordinator's `ModelBlobStore` over an R2 bucket: published weights as immutable objects,
 * read with R2's own strong ETag. The model index stays in D1 (`D1ModelStore`), one small row a
 * version; `modelStore(env)` is the store every object of the Worker publishes and reads through.
 */
import {
  blobBackedModelStore,
  type ModelBlob,
  type ModelBlobStore,
  type ModelStore,
} from "@fedprofile/coordinator";
import { D1ModelStore } from "./d1-stores";
import type { Env } from "./env";

export class R2ModelBlobStore implements ModelBlobStore {
  constructor(private readonly bucket: R2Bucket) {}

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<void> {
    // First write wins: a version's bytes never change (a retried DP publish re-draws its noise).
    if (await this.bucket.head(key)) return;
    await this.bucket.put(key, bytes, {
      httpMetadata: {
        contentType: "application/octet-stream",
        cacheControl: "public, max-age=31536000, immutable",
      },
    });
  }

  async get(key: string): Promise<ModelBlob | null> {
    const object = await this.bucket.get(key);
    if (!object) return null;
    return { bytes: new Uint8Array(await object.arrayBuffer()), etag: object.httpEtag };
  }
}

/** The model store of this deployment: rows in D1, weights in R2. */
export function modelStore(env: Env): ModelStore {
  return blobBackedModelStore(new D1ModelStore(env.DB), new R2ModelBlobStore(env.WEIGHTS));
}
