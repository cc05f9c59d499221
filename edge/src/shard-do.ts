/**
 * One Durable Object per SecAgg shard (tenant, round, shard). Its storage holds the protocol
 * state as separate entries (core, running sum, one per device), so a message writes only what
 * it changed; its alarm is the current stage's deadline. The protocol is the coordinator's
 * runtime-neutral shard host; this class adapts storage, errors and the call to the root.
 */

import { DurableObject } from "cloudflare:workers";
import {
  createSecAggShardHost,
  type EntryStore,
  type LazyShardConfig,
  type SecAggShardHandle,
  type SecAggShardHost,
  type ShardMeta,
  withStageNotify,
} from "@fedprofile/coordinator";
import type { CreateRoundOptions } from "@fedprofile/coordinator/secagg";
import type { Env } from "./env";
import { asResult, unwrap } from "./rpc";
import { acceptStageSocket, closeQuietly, socketNotifier } from "./shard-socket";
import { parentHandle } from "./tree-routing";

function durableEntries(storage: DurableObjectStorage): EntryStore {
  return {
    list: () => storage.list(),
    put: (entries) => storage.put(entries),
    setAlarm: (at) => storage.setAlarm(at),
    deleteAlarm: () => storage.deleteAlarm(),
    delete: async (keys) => {
      // storage.delete takes at most 128 keys per call.
      for (let i = 0; i < keys.length; i += 128) await storage.delete(keys.slice(i, i + 128));
    },
    deleteAll: async () => {
      await storage.deleteAlarm();
      await storage.deleteAll();
    },
  };
}

export class SecAggShardDO extends DurableObject<Env> {
  private readonly host: SecAggShardHost;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const host = createSecAggShardHost({
      store: durableEntries(ctx.storage),
      root: (meta) => parentHandle(env, meta),
    });
    // Stage changes are pushed to the devices' hibernatable sockets (./shard-socket.ts).
    this.host = withStageNotify(host, socketNotifier(ctx));
    // A keep-alive the runtime answers without waking a hibernated object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** A device's stage socket, forwarded by the Worker after its key check. */
  override fetch(request: Request): Promise<Response> {
    return acceptStageSocket(this.ctx, this.host, request);
  }

  /** Devices send nothing on the socket; anything they do send is ignored. */
  override webSocketMessage(): void {}

  /** Answers the device's close (1005/1006 cannot be sent back, so it is a normal close). */
  override webSocketClose(socket: WebSocket): void {
    closeQuietly(socket, 1000, "closed");
  }

  open(meta: ShardMeta, options: CreateRoundOptions) {
    return asResult(() => this.host.open(meta, options));
  }

  admit(participantId: string, tokenHash: string, meta?: ShardMeta, config?: LazyShardConfig) {
    return asResult(() => this.host.admit(participantId, tokenHash, meta, config));
  }

  view(participantId: string, tokenHash: string) {
    return asResult(() => this.host.view(participantId, tokenHash));
  }

  message(participantId: string, tokenHash: string, frame: Uint8Array) {
    return asResult(() => this.host.message(participantId, tokenHash, frame));
  }

  status() {
    return asResult(() => this.host.status());
  }

  close() {
    return asResult(() => this.host.close());
  }

  override async alarm(): Promise<void> {
    await this.host.alarm();
  }
}

/** The coordinator's `SecAggShardHandle` for a shard, backed by its Durable Object. */
export function shardHandle(env: Env, tenantId: string, roundId: string, shard: number): SecAggShardHandle {
  const stub = env.SHARD.get(env.SHARD.idFromName(`${tenantId}/${roundId}/${shard}`));
  return {
    open: async (meta, options) => unwrap(await stub.open(meta, options)),
    admit: async (participantId, tokenHash, meta, config) =>
      unwrap(await stub.admit(participantId, tokenHash, meta, config)),
    view: async (participantId, tokenHash) => unwrap(await stub.view(participantId, tokenHash)),
    message: async (participantId, tokenHash, frame) =>
      unwrap(await stub.message(participantId, tokenHash, frame)),
    status: async () => unwrap(await stub.status()),
    close: async () => unwrap(await stub.close()),
  };
}
