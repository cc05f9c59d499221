/**
 * One Durable Object per aggregator of a SecAgg round (tenant, round, index): the tier between
 * up to FAN_OUT shards and the root (`coordinator/src/rounds/secagg-aggregator-host.ts`). Its
 * alarm retries its report to the root; this class adapts storage, errors and RPC.
 */
import { DurableObject } from "cloudflare:workers";
import {
  type AggregatorConfig,
  type AggregatorHost,
  type AggregatorState,
  createAggregatorHost,
  type ShardMeta,
  type ShardOutcome,
} from "@fedprofile/coordinator";
import type { Env } from "./env";
import { asResult, roundStub, unwrap } from "./rpc";
import { shardHandle } from "./shard-do";
import { nodeStore } from "./tree-routing";

export class AggregatorDO extends DurableObject<Env> {
  private readonly host: AggregatorHost;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.host = createAggregatorHost({
      store: nodeStore<AggregatorState>(ctx.storage),
      root: (round) => {
        const stub = roundStub(env, round.tenantId, round.roundId);
        return {
          shardFinished: async (outcome) => unwrap(await stub.shardFinished(outcome)),
          registerAggregator: async (index) => unwrap(await stub.registerAggregator(index)),
        };
      },
      shardFor: (tenantId, roundId, shard) => shardHandle(env, tenantId, roundId, shard),
    });
  }

  open(config: AggregatorConfig) {
    return asResult(() => this.host.open(config));
  }

  shardFinished(outcome: ShardOutcome) {
    return asResult(() => this.host.shardFinished(outcome));
  }

  close() {
    return asResult(() => this.host.close());
  }

  registerShard(meta: ShardMeta, config?: AggregatorConfig) {
    return asResult(() => this.host.registerShard(meta, config));
  }

  override async alarm(): Promise<void> {
    await this.host.alarm();
  }
}
