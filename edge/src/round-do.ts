/**
 * One Durable Object per (tenant, round): a plain-sum round, or the root of a SecAgg round. It
 * holds the round's state in Durable Object storage and its deadline as an alarm. The protocol
 * is the coordinator's runtime-neutral host; this class only adapts storage and errors.
 */

import { DurableObject } from "cloudflare:workers";
import {
  type AnyRoundHost,
  type AnyRoundState,
  type ChildOutcome,
  createAnyRoundHost,
  noticingRoundIndex,
  type RoundHostHandle,
  type ShardMeta,
  type SpentTokens,
} from "@fedprofile/coordinator";
import type { ContributionRequest, OpenRoundRequest, RoundTask } from "@fedprofile/coordinator/wire";
import { D1AdmissionIssuerStore, D1RoundIndex } from "./d1-stores";
import type { Env } from "./env";
import { floorsFor, privacyFor } from "./privacy";
import { modelStore } from "./r2-blobs";
import { asResult, roundStub, unwrap } from "./rpc";
import { shardHandle } from "./shard-do";
import { trainerHandle } from "./trainer-do";
import { aggregatorHandle, nodeStore } from "./tree-routing";

/** Spent admission-token nonces live beside the state, one key each (a set could pass 128 KiB). */
const SPENT_PREFIX = "spent:";

function durableSpentTokens(storage: DurableObjectStorage): SpentTokens {
  return {
    has: async (roundId, nonce) => (await storage.get(`${SPENT_PREFIX}${roundId}:${nonce}`)) !== undefined,
    markSpent: (roundId, nonce) => storage.put(`${SPENT_PREFIX}${roundId}:${nonce}`, 1),
  };
}

export class RoundDO extends DurableObject<Env> {
  private readonly host: AnyRoundHost;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const privacy = privacyFor(env);
    this.host = createAnyRoundHost({
      ...(privacy ? { privacy } : {}),
      store: nodeStore<AnyRoundState>(ctx.storage),
      models: modelStore(env),
      // Opens and ends are told to this isolate's check-in cache (hot-path-cache.ts).
      index: noticingRoundIndex(new D1RoundIndex(env.DB)),
      shardFor: (tenantId, roundId, shard) => shardHandle(env, tenantId, roundId, shard),
      aggregatorFor: (tenantId, roundId, index) => aggregatorHandle(env, tenantId, roundId, index),
      trainerFor: (tenantId, modelId) => trainerHandle(env, tenantId, modelId),
      floors: floorsFor(env),
      admission: new D1AdmissionIssuerStore(env.DB),
      spentTokens: durableSpentTokens(ctx.storage),
    });
  }

  open(tenantId: string, roundId: string, request: OpenRoundRequest, task?: RoundTask) {
    return asResult(() => this.host.open(tenantId, roundId, request, task));
  }

  result() {
    return asResult(() => this.host.result());
  }

  join(token?: string) {
    return asResult(() => this.host.join(token));
  }

  contribute(request: ContributionRequest) {
    return asResult(() => this.host.contribute(request));
  }

  status() {
    return asResult(() => this.host.status());
  }

  shardFinished(outcome: ChildOutcome) {
    return asResult(() => this.host.shardFinished(outcome));
  }

  /** A lazily opened shard's first touch (`coordinator/src/rounds/lazy-shards.ts`). */
  registerShard(meta: ShardMeta) {
    return asResult(() => this.host.registerShard(meta));
  }

  registerAggregator(index: number) {
    return asResult(() => this.host.registerAggregator(index));
  }

  override async alarm(): Promise<void> {
    await this.host.alarm();
  }
}

/** The coordinator's `RoundHostHandle` for a round, backed by its Durable Object. */
export function roundHostHandle(env: Env, tenantId: string, roundId: string): RoundHostHandle {
  const stub = roundStub(env, tenantId, roundId);
  return {
    open: async (t, r, request, task) => unwrap(await stub.open(t, r, request, task)),
    result: async () => unwrap(await stub.result()),
    join: async (token) => unwrap(await stub.join(token)),
    contribute: async (request) => unwrap(await stub.contribute(request)),
    status: async () => unwrap(await stub.status()),
  };
}
