/**
 * Published model weights in a blob store (issue 16; issue 12's > 2 MB row): the model index
 * (D1 in the Worker) keeps one small row per version, and the weights and parameters live in a
 * blob store (R2 in the Worker) under an immutable key per round, so a version's bytes can be
 * served with `Cache-Control: immutable` and a CDN in front. A published fcf model of 100,000
 * items at rank 32 is 3.6 MB of int8 factors and scales plus its item list: past a D1 row (2 MB).
 *
 * Crash safety: the blobs are written before the row that names them, and a key that holds bytes
 * already is never overwritten, so a version's content is what its first publish wrote (a retried
 * publish of a DP round re-draws its central noise; it must not change a published version).
 */

import { base64ToBytes, bytesToBase64 } from "@fedprofile/protocol/bytes";
import { ModelParams, type ModelVersion } from "@fedprofile/protocol/wire";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { ModelStore } from "../ports";

/** A blob as stored: its bytes and an entity tag. */
export interface ModelBlob {
  bytes: Uint8Array;
  /** A strong ETag, quoted (RFC 9110 §8.8.3). */
  etag: string;
}

/** Where published weights live (R2 in the Worker, memory in node). */
export interface ModelBlobStore {
  /** Stores `bytes` under `key` unless the key already holds bytes (first write wins). */
  putIfAbsent(key: string, bytes: Uint8Array): Promise<void>;
  get(key: string): Promise<ModelBlob | null>;
}

/** A model store that also answers a version number alone and a version's raw weights. */
export type BlobModelStore = Required<ModelStore>;

/**
 * A row whose weights are in the blob store holds empty weights (still valid base64; a published
 * model always has at least one value): its key is {@link weightsKey} of its round.
 */
const IN_BLOB = "";

/** The immutable key of a round's published weights; a trainer model's params sit at `<key>.params`. */
export const weightsKey = (tenantId: string, modelId: string, roundId: string): string =>
  `models/${encodeURIComponent(tenantId)}/${modelId}/${roundId}`;

/** `inner` (the version index) with the weights and params of every new version in `blobs`. */
export function blobBackedModelStore(inner: ModelStore, blobs: ModelBlobStore): BlobModelStore {
  async function resolve(tenantId: string, model: ModelVersion | null): Promise<ModelVersion | null> {
    if (!model || model.weights !== IN_BLOB) return model;
    const key = weightsKey(tenantId, model.modelId, model.roundId);
    const weights = await blobs.get(key);
    if (!weights) throw new Error(`model weights ${key} are missing from the blob store`);
    let params: ModelParams | undefined;
    if (model.kind !== undefined && model.params === undefined) {
      const text = await blobs.get(`${key}.params`);
      if (text) params = ModelParams.parse(JSON.parse(new TextDecoder().decode(text.bytes)));
    }
    return { ...model, weights: bytesToBase64(weights.bytes), ...(params ? { params } : {}) };
  }

  return {
    async publish(tenantId, draft, publishedAt) {
      const key = weightsKey(tenantId, draft.modelId, draft.roundId);
      // Blobs first: a row never names bytes that are not there.
      await blobs.putIfAbsent(key, base64ToBytes(draft.weights));
      if (draft.params !== undefined) {
        await blobs.putIfAbsent(`${key}.params`, new TextEncoder().encode(JSON.stringify(draft.params)));
      }
      const { params: _params, ...rest } = draft;
      const stored = await inner.publish(tenantId, { ...rest, weights: IN_BLOB }, publishedAt);
      return (await resolve(tenantId, stored)) ?? stored;
    },
    latest: async (tenantId, modelId) => resolve(tenantId, await inner.latest(tenantId, modelId)),
    get: async (tenantId, modelId, version) => resolve(tenantId, await inner.get(tenantId, modelId, version)),
    list: (tenantId, modelId, page) => inner.list(tenantId, modelId, page),
    latestVersion: async (tenantId, modelId) =>
      inner.latestVersion
        ? inner.latestVersion(tenantId, modelId)
        : ((await inner.latest(tenantId, modelId))?.version ?? null),
    async weights(tenantId, modelId, version, roundId) {
      const row = await inner.get(tenantId, modelId, version);
      if (!row || row.roundId !== roundId) return null;
      if (row.weights === IN_BLOB) return blobs.get(weightsKey(tenantId, modelId, row.roundId));
      // A version published before the blob store: its weights are in the row.
      const bytes = base64ToBytes(row.weights);
      return { bytes, etag: `"${bytesToHex(sha256(bytes))}"` };
    },
  };
}

/** Blobs in memory (node tests, the demo), with SHA-256 ETags. */
export class MemoryModelBlobStore implements ModelBlobStore {
  readonly blobs = new Map<string, ModelBlob>();

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<void> {
    if (this.blobs.has(key)) return;
    this.blobs.set(key, { bytes: bytes.slice(), etag: `"${bytesToHex(sha256(bytes))}"` });
  }

  async get(key: string): Promise<ModelBlob | null> {
    const blob = this.blobs.get(key);
    return blob ? { bytes: blob.bytes.slice(), etag: blob.etag } : null;
  }
}
