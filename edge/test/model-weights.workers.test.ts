/**
 * Published weights live in R2 (issue 16; issue 12's limit): D1 keeps one small row per version,
 * the bytes are an immutable R2 object served with `Cache-Control: immutable` and an ETag, and
 * check-in reads only the version number. An fcf model of 100,000 items at rank 32 is 3.6 MB of
 * int8 factors and scales (plus 1.3 MB of item ids): as one D1 row it passed the 2 MB row limit.
 */
import { env } from "cloudflare:workers";
import { initialFcfState, publishFcf } from "@fedprofile/coordinator";
import { CheckinResponse, FcfSpec } from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { modelStore } from "../src/r2-blobs";
import { call, seedTenant } from "./helpers";

const ITEMS = 100_000;
const RANK = 32;

function bytesToBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

describe("model weights in R2 (workerd)", () => {
  it("a 100,000-item rank-32 fcf model publishes and downloads whole; D1 keeps a small row", async () => {
    const tenant = "weights-100k";
    const keys = await seedTenant(tenant);
    const spec = FcfSpec.parse({ rank: RANK, blockSize: 64 });
    const catalogue = { items: Array.from({ length: ITEMS }, (_, i) => `sku-${i}`) };
    const { weights, params } = publishFcf(spec, catalogue, initialFcfState(spec, ITEMS));
    // int8 factors plus a float32 scale per row: 3.6 MB.
    expect(weights.length).toBe(ITEMS * (RANK + 4));
    const published = await modelStore(env).publish(
      tenant,
      {
        modelId: "recs",
        roundId: "r_weights100kAAAAAAAAAAA",
        dimension: ITEMS * RANK,
        contributions: 1,
        aggregation: "secagg",
        weights: bytesToBase64(weights),
        kind: "fcf",
        params,
      },
      Date.now(),
    );
    expect(published.version).toBe(1);

    // The D1 row is small: no weights, no params (the item list alone is over a megabyte).
    const row = await env.DB.prepare(
      "SELECT length(weights) AS w, length(coalesce(params, '')) AS p FROM model_versions WHERE tenant_id = ?",
    )
      .bind(tenant)
      .first<{ w: number; p: number }>();
    expect(row).toEqual({ w: 0, p: 0 });

    // Check-in answers the version only.
    const checkin = await call("POST", "/v1/checkin", keys.publishable, {
      v: 1,
      modelId: "recs",
      sdkVersion: "0.0.0-test",
    });
    expect(checkin.status).toBe(200);
    expect(CheckinResponse.parse(await checkin.json()).latestModelVersion).toBe(1);

    // The SDK's JSON download: the whole model, weights and params, from R2.
    const latest = await call("GET", "/v1/models/recs/latest", keys.publishable);
    expect(latest.status).toBe(200);
    // Compared field by field: `ModelVersion.parse`'s base64 regex overflows workerd's stack on
    // 4.8 MB of text (a finding for the device client, which parses it so; the raw route below
    // needs no parse).
    const model = z
      .object({ version: z.number(), weights: z.string(), params: z.unknown() })
      .parse(await latest.json());
    expect(model.version).toBe(1);
    expect(model.weights).toBe(bytesToBase64(weights));
    expect(model.params).toEqual(params);

    // The raw bytes: immutable, with an ETag a CDN and the client revalidate against. The URL
    // carries the version's round, so it names these bytes and no other tenant's.
    const url = "/v1/models/recs/versions/1/weights/r_weights100kAAAAAAAAAAA";
    const raw = await call("GET", url, keys.publishable);
    expect(raw.status).toBe(200);
    expect(raw.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(raw.headers.get("vary") ?? "").not.toMatch(/authorization/i);
    expect(raw.headers.get("content-type")).toBe("application/octet-stream");
    const etag = raw.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(new Uint8Array(await raw.arrayBuffer())).toEqual(weights);
    const again = await call("GET", url, keys.publishable, undefined, { "if-none-match": etag });
    expect(again.status).toBe(304);
    await again.arrayBuffer();
    // Another round id for the same version is not found.
    const wrongRound = await call(
      "GET",
      "/v1/models/recs/versions/1/weights/r_notThisRoundAAAAAAAAAA",
      keys.publishable,
    );
    expect(wrongRound.status).toBe(404);
    await wrongRound.arrayBuffer();

    // Another tenant with the same model id and version: its own URL and bytes; the first
    // tenant's URL is not found with its key.
    const otherTenant = "weights-other";
    const other = await seedTenant(otherTenant);
    const otherWeights = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    await modelStore(env).publish(
      otherTenant,
      {
        modelId: "recs",
        roundId: "r_weightsOtherAAAAAAAAAA",
        dimension: 1,
        contributions: 1,
        aggregation: "secagg",
        weights: bytesToBase64(otherWeights),
      },
      Date.now(),
    );
    const cross = await call("GET", url, other.publishable);
    expect(cross.status).toBe(404);
    await cross.arrayBuffer();
    const own = await call(
      "GET",
      "/v1/models/recs/versions/1/weights/r_weightsOtherAAAAAAAAAA",
      other.publishable,
    );
    expect(own.status).toBe(200);
    expect(new Uint8Array(await own.arrayBuffer())).toEqual(otherWeights);
  });

  it("a retried publish of the same round keeps the first bytes (a version never changes)", async () => {
    const tenant = "weights-retry";
    await seedTenant(tenant);
    const draft = {
      modelId: "retry",
      roundId: "r_weightsRetryAAAAAAAAAA",
      dimension: 1,
      contributions: 1,
      aggregation: "secagg",
    };
    const first = await modelStore(env).publish(
      tenant,
      { ...draft, weights: bytesToBase64(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)) },
      1,
    );
    const retry = await modelStore(env).publish(
      tenant,
      { ...draft, weights: bytesToBase64(new Uint8Array(8)) },
      2,
    );
    expect(retry.version).toBe(first.version);
    expect(retry.weights).toBe(first.weights);
  });
});
