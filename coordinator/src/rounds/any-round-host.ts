/**
 * One round host for every aggregation kind: a round's object (a Durable Object, or an
 * in-process host) serves a plain-sum round or the root of a SecAgg round, chosen when the round
 * opens and read back from its stored state afterwards.
 */
import type { RandomBytes } from "@fedprofile/protocol/bytes";
import { DEFAULT_PRIVACY_POLICY, type PrivacyPolicy } from "@fedprofile/protocol/dp";
import type { OpenRoundRequest, RoundTask } from "@fedprofile/protocol/wire";
import type { AdmissionIssuerStore, SpentTokens } from "../admission/redeem";
import { InvalidRequestError } from "../errors";
import type { TrainerHandle } from "../models/trainer";
import type { Clock, ModelStore, RoundHostHandle, RoundIndex } from "../ports";
import type { PlainSumRoundState } from "./plain-sum-round";
import { enforceRoundFloors } from "./round-floors";
import { createPlainSumRoundHost } from "./round-host";
import type { RoundPrivacy } from "./round-privacy";
import type { AggregatorHandle, NodeStore } from "./secagg-aggregator-host";
import { createSecAggRootHost, type SecAggRootHost, type SecAggRootState } from "./secagg-root-host";
import type { SecAggShardHandle } from "./secagg-shard-host";
import type { ChildOutcome } from "./shard-tree";

export type AnyRoundState = PlainSumRoundState | SecAggRootState;

export interface AnyRoundHostOptions {
  store: NodeStore<AnyRoundState>;
  models: ModelStore;
  index: RoundIndex;
  shardFor(tenantId: string, roundId: string, shard: number): SecAggShardHandle;
  /** Aggregators of rounds of more than `FAN_OUT` shards. */
  aggregatorFor?(
    tenantId: string,
    roundId: string,
    index: number,
  ): Pick<AggregatorHandle, "close" | "registerShard">;
  /** Budget checks and the privacy ledger (DP rounds). */
  privacy?: RoundPrivacy;
  /** The trainer of a model, which takes the result of the rounds it opened. */
  trainerFor?(tenantId: string, modelId: string): Pick<TrainerHandle, "roundEnded">;
  /** Privacy floors a round must meet to open (default {@link DEFAULT_PRIVACY_POLICY}). */
  floors?: PrivacyPolicy;
  /** Tenants' token issuers and this round object's spent tokens (SecAgg rounds; see the root host). */
  admission?: AdmissionIssuerStore;
  spentTokens?: SpentTokens;
  clock?: Clock;
  randomBytes?: RandomBytes;
}

export interface AnyRoundHost extends RoundHostHandle {
  shardFinished(outcome: ChildOutcome): Promise<void>;
  registerShard: SecAggRootHost["registerShard"];
  registerAggregator: SecAggRootHost["registerAggregator"];
  alarm(): Promise<void>;
}

/** A view of `store` that only sees states of one kind. */
function narrow<S extends AnyRoundState>(
  store: NodeStore<AnyRoundState>,
  is: (state: AnyRoundState) => state is S,
): NodeStore<S> {
  return {
    load: async () => {
      const state = await store.load();
      return state && is(state) ? state : null;
    },
    save: (state, sums) => store.save(state, sums),
    sum: (key) => store.sum(key),
    deleteSums: (keys) => store.deleteSums(keys),
    setAlarm: (at) => store.setAlarm(at),
    deleteAlarm: () => store.deleteAlarm(),
  };
}

const isPlain = (s: AnyRoundState): s is PlainSumRoundState => s.kind === "plain-sum";
const isSecAgg = (s: AnyRoundState): s is SecAggRootState => s.kind === "secagg-root";

export function createAnyRoundHost(options: AnyRoundHostOptions): AnyRoundHost {
  const common = {
    models: options.models,
    index: options.index,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.randomBytes ? { randomBytes: options.randomBytes } : {}),
  };
  const plain = createPlainSumRoundHost({ ...common, store: narrow(options.store, isPlain) });
  const secagg = createSecAggRootHost({
    ...common,
    store: narrow(options.store, isSecAgg),
    shardFor: options.shardFor,
    ...(options.aggregatorFor ? { aggregatorFor: options.aggregatorFor } : {}),
    ...(options.privacy ? { privacy: options.privacy } : {}),
    ...(options.trainerFor ? { trainerFor: options.trainerFor } : {}),
    ...(options.floors ? { floors: options.floors } : {}),
    ...(options.admission ? { admission: options.admission } : {}),
    ...(options.spentTokens ? { spentTokens: options.spentTokens } : {}),
  });
  const current = async () => ((await options.store.load())?.kind === "secagg-root" ? secagg : plain);

  return {
    open: (tenantId: string, roundId: string, request: OpenRoundRequest, task?: RoundTask) => {
      if (task && request.aggregation !== "secagg") {
        throw new InvalidRequestError("a trainer's round must use secure aggregation");
      }
      if (request.aggregation === "secagg") return secagg.open(tenantId, roundId, request, task);
      // A plain-sum round shows every vector to the coordinator: only under development floors.
      enforceRoundFloors(options.floors ?? DEFAULT_PRIVACY_POLICY, { aggregation: "plain-sum" });
      return plain.open(tenantId, roundId, request, task);
    },
    result: async () => (await current()).result(),
    join: async (token) => (await current()).join(token),
    contribute: async (request) => (await current()).contribute(request),
    status: async () => (await current()).status(),
    shardFinished: (outcome) => secagg.shardFinished(outcome),
    registerShard: (meta) => secagg.registerShard(meta),
    registerAggregator: (index) => secagg.registerAggregator(index),
    alarm: async () => (await current()).alarm(),
  };
}
