/**
 * One Durable Object per (tenant, model): the model's trainer. Its storage holds the training
 * state and its alarm drives the schedule (open a round, collect its result, open the next). The
 * logic is the coordinator's runtime-neutral trainer host; this class adapts storage and errors.
 */

import { DurableObject } from "cloudflare:workers";
import {
  blobKey,
  chunkEntries,
  chunkKeys,
  createRoundService,
  createTrainerHost,
  joinChunks,
  noticingRoundIndex,
  type PackedTrainerState,
  packTrainerState,
  type RoundResult,
  type RoundStateStore,
  type TrainerHandle,
  type TrainerHost,
  type TrainerState,
  unpackTrainerState,
} from "@fedprofile/coordinator";
import type { ModelDeclaration } from "@fedprofile/coordinator/wire";
import { D1RoundIndex, D1TrainingStore } from "./d1-stores";
import type { Env } from "./env";
import { privacyFor } from "./privacy";
import { modelStore } from "./r2-blobs";
import { roundHostHandle } from "./round-do";
import { asResult, unwrap } from "./rpc";
import { shardHandle } from "./shard-do";

const STATE_KEY = "trainer";

/** A put applies at most 128 entries atomically. */
const MAX_PUT_ENTRIES = 128;

/**
 * The trainer's state as one small value with its large arrays (an fcf model's factors, moments,
 * counts and catalogue) chunked beside it (`packTrainerState`, `chunkEntries`, as the aggregation
 * tree's nodes store their sums): a value is at most 2 MB, which an fcf state passed at about
 * 5,000 items. Each save writes a new generation of chunks and the value naming it in one put (up
 * to 127 chunks of 512 KB: past 300,000 items at rank 32), then deletes the previous generation.
 */
function durableStore(storage: DurableObjectStorage): RoundStateStore<TrainerState> {
  type Stored = PackedTrainerState | TrainerState;
  return {
    load: async () => {
      const stored = await storage.get<Stored>(STATE_KEY);
      if (!stored) return null;
      return unpackTrainerState(stored, (generation, name) =>
        joinChunks(blobKey(generation, name), (k) => storage.get(k)),
      );
    },
    save: async (state) => {
      const previous = await storage.get<Stored>(STATE_KEY);
      const old = previous?.kind === "trainer-packed" ? previous : null;
      const generation = (old?.generation ?? 0) + 1;
      const { packed, blobs } = packTrainerState(state, generation);
      const entries: Array<[string, unknown]> = [];
      for (const [name, bytes] of Object.entries(blobs)) {
        entries.push(...Object.entries(chunkEntries(blobKey(generation, name), bytes)));
      }
      entries.push([STATE_KEY, packed]);
      // Beyond one put's entries the chunks go first and the value last: the value's put is the
      // one that makes the new generation current.
      for (let i = 0; i < entries.length; i += MAX_PUT_ENTRIES) {
        await storage.put(Object.fromEntries(entries.slice(i, i + MAX_PUT_ENTRIES)));
      }
      for (const name of old?.blobs ?? []) {
        const key = blobKey(old?.generation ?? 0, name);
        const header = await storage.get<{ chunks: number }>(key);
        if (header) await storage.delete(chunkKeys(key, header.chunks));
      }
    },
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
        index: noticingRoundIndex(new D1RoundIndex(env.DB)),
        hostFor: (tenantId, roundId) => roundHostHandle(env, tenantId, roundId),
        shardFor: (tenantId, roundId, shard) => shardHandle(env, tenantId, roundId, shard),
      }),
      models: modelStore(env),
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
