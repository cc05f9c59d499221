/**
 * Rounds of many shards at a large dimension, in workerd (issue 16; issue 11's chunked state):
 * the root and the aggregator tier keep each value below a Durable Object's limit. Shard reports
 * are synthetic (their sums drawn here), delivered to the object each shard reports to, so a
 * round of 100 shards at d = 65,536 runs in seconds; the published weights must equal the exact
 * total of the synthetic sums.
 *
 * Before the tree (main 712a95f) the root kept every shard sum in its one state value, and the
 * 6th report at d = 65,536 failed with SQLITE_TOOBIG.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import {
  decodeFloat64Vector,
  OpenRoundRequest,
  type RoundStatus,
  RoundStatus as RoundStatusSchema,
} from "@fedprofile/coordinator/wire";
import { describe, expect, it } from "vitest";
import { modelStore } from "../src/r2-blobs";
import { registerAt, reportTo } from "../src/tree-routing";
import { seedTenant } from "./helpers";

const D = 65_536;
const VALUE_BITS = 8;
const CLIP = 1;

/** A fixed-point SecAgg round of `shards` shards of 2 devices, stages long enough not to fire. */
function request(shards: number) {
  return OpenRoundRequest.parse({
    v: 1,
    modelId: "wide",
    dimension: D,
    minContributions: 1,
    maxContributions: 2 * shards,
    deadlineSeconds: 3600,
    aggregation: "secagg",
    secagg: {
      encoding: { kind: "fixed-point", clip: CLIP, valueBits: VALUE_BITS },
      minShardSize: 2,
      maxShardSize: 2,
      k: 2,
      t: 1,
      consistencyCheck: false,
      stageSeconds: 3600,
    },
  });
}

/** Little-endian u32 words of a deterministic synthetic shard sum (each < 2 · 2^8). */
function syntheticSum(shard: number): Uint32Array {
  const words = new Uint32Array(D);
  for (let i = 0; i < D; i++) words[i] = (shard * 7919 + i * 31) % (2 * 2 ** VALUE_BITS - 1);
  return words;
}

function base64(words: Uint32Array): string {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

const roundIdOf = (tenant: string) =>
  `r_${tenant
    .replace(/[^A-Za-z0-9]/g, "x")
    .padEnd(22, "A")
    .slice(0, 22)}`;

async function runRound(tenant: string, shards: number) {
  const roundId = roundIdOf(tenant);
  const root = env.ROUND.get(env.ROUND.idFromName(`${tenant}/${roundId}`));
  const opened = await root.open(tenant, roundId, request(shards));
  expect(opened.ok, JSON.stringify(opened)).toBe(true);
  const total = new Float64Array(D);
  for (let shard = 0; shard < shards; shard++) {
    const words = syntheticSum(shard);
    for (let i = 0; i < D; i++) total[i] = (total[i] as number) + (words[i] as number);
    // Each synthetic shard registers as a real one does on its first join (lazy open).
    await registerAt(env, { tenantId: tenant, roundId, shard }, shards);
    await reportTo(env, { tenantId: tenant, roundId, shard }, shards, {
      shard,
      sum: base64(words),
      contributors: 2,
      abort: null,
    });
  }
  const status = await root.status();
  if (!status.ok) throw new Error(JSON.stringify(status));
  return { status: RoundStatusSchema.parse(status.value), total };
}

async function weightsOf(tenant: string, status: RoundStatus) {
  const model = await modelStore(env).get(tenant, "wide", status.modelVersion ?? 0);
  return Array.from(decodeFloat64Vector(model?.weights ?? "", D));
}

const STEP = (2 * CLIP) / (2 ** VALUE_BITS - 1);

describe("many shards at d = 65,536 (workerd)", () => {
  it("8 shard reports: the root's state stays under a value (before: SQLITE_TOOBIG at the 7th)", async () => {
    await seedTenant("wide-8");
    const { status, total } = await runRound("wide-8", 8);
    expect(status.stage).toBe("closed");
    expect(status.contributions).toBe(16);
    expect(await weightsOf("wide-8", status)).toEqual(Array.from(total, (s) => s * STEP - 16 * CLIP));
  });

  it("100 shards through 4 aggregators and the root: the exact total is published", async () => {
    await seedTenant("wide-100");
    const started = Date.now();
    const { status, total } = await runRound("wide-100", 100);
    expect(status.stage).toBe("closed");
    expect(status.contributions).toBe(200);
    expect(await weightsOf("wide-100", status)).toEqual(Array.from(total, (s) => s * STEP - 200 * CLIP));
    // Every node's state value is small: the sums live in chunks beside it.
    const root = env.ROUND.get(env.ROUND.idFromName(`wide-100/${roundIdOf("wide-100")}`));
    await runInDurableObject(root, async (_instance, state) => {
      const value = await state.storage.get("round");
      expect(JSON.stringify(value).length).toBeLessThan(64 * 1024);
      expect((await state.storage.list({ prefix: "sum:" })).size).toBe(0);
      expect((await state.storage.get<{ chunks: number }>("total"))?.chunks).toBe(1);
    });
    console.log(`100 shards at d = ${D}: ${Date.now() - started} ms`);
  });
});
