/**
 * One Durable Object per (tenant, model): the model's trainer. Its storage holds the training
 * state and its alarm drives the schedule (open a round, collect its result, open the next). The
 * logic is the coordinator's runtime-neutral trainer host; this class adapts storage and errors.
 */

import { DurableObject } from "cloudflare:workers";
import {
  createRoundService,
  createTrainerHost,
  type RoundResult,
  type RoundStateStore,
  type TrainerHandle,
  type TrainerHost,
  type TrainerState,
} from "@fedprofile/coordinator";
import type { ModelDeclaration } from "@fedprofile/coordinator/wire";
import { D1ModelStore, D1RoundIndex, D1TrainingStore } from "./d1-stores";
import type { Env } from "./env";
import { privacyFor } from "./privacy";
import { roundHostHandle } from "./round-do";
import { asResult, unwrap } from "./rpc";
import { shardHandle } from "./shard-do";

const STATE_KEY = "trainer";

function durableStore(storage: DurableObjectStorage): RoundStateStore<TrainerState> {
  return {
    load: async () => (await storage.get<TrainerState>(STATE_KEY)) ?? null,
    save: (state) => storage.put(STATE_KEY, state),
    setAlarm: (at) => storage.setAlarm(at),
    deleteAlarm: () => storage.deleteAlarm(),
  };
}

export class TrainerDO extends DurableObject<Env> {
  private readonly host: TrainerHost;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const privacy = privacyFor(env);
    this.host = createTrainerHost({
      ...(privacy ? { privacy } : {}),
      store: durableStore(ctx.storage),
      rounds: createRoundService({
        index: new D1RoundIndex(env.DB),
        hostFor: (tenantId, roundId) => roundHostHandle(env, tenantId, roundId),
        shardFor: (tenantId, roundId, shard) => shardHandle(env, tenantId, roundId, shard),
      }),
      models: new D1ModelStore(env.DB),
      training: new D1TrainingStore(env.DB),
    });
  }

  declare(tenantId: string, modelId: string, declaration: ModelDeclaration) {
    return asResult(() => this.host.declare(tenantId, modelId, declaration));
  }

  status() {
    return asResult(() => this.host.status());
  }

  roundEnded(result: RoundResult) {
    return asResult(() => this.host.roundEnded(result));
  }

  override async alarm(): Promise<void> {
    await this.host.alarm();
  }
}

/** The coordinator's `TrainerHandle` for a model, backed by its Durable Object. */
export function trainerHandle(env: Env, tenantId: string, modelId: string): TrainerHandle {
  const stub = env.TRAINER.get(env.TRAINER.idFromName(`${tenantId}/${modelId}`));
  return {
    declare: async (t, m, declaration) => unwrap(await stub.declare(t, m, declaration)),
    status: async () => unwrap(await stub.status()),
    roundEnded: async (result) => unwrap(await stub.roundEnded(result)),
  };
}
