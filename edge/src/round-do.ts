/**
 * One Durable Object per (tenant, round): it holds the round's state in Durable Object
 * storage and enforces the deadline with an alarm. The protocol itself is the coordinator's
 * runtime-neutral round host; this class only adapts storage and errors.
 */

import { DurableObject } from "cloudflare:workers";
import {
  createPlainSumRoundHost,
  FedprofileError,
  type PlainSumRoundHost,
  type PlainSumRoundState,
  type RoundHostHandle,
  type RoundStateStore,
} from "@fedprofile/coordinator";
import type { ContributionRequest, OpenRoundRequest } from "@fedprofile/coordinator/wire";
import { D1ModelStore, D1RoundIndex } from "./d1-stores";
import type { Env } from "./env";

const STATE_KEY = "round";

/** Workers RPC keeps only an error's message, so errors cross the boundary as data. */
export type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: string; message: string; status: number } };

async function asResult<T>(operation: () => Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await operation() };
  } catch (error) {
    if (error instanceof FedprofileError) {
      return { ok: false, error: { code: error.code, message: error.message, status: error.status } };
    }
    throw error;
  }
}

function durableStore(storage: DurableObjectStorage): RoundStateStore<PlainSumRoundState> {
  return {
    load: async () => (await storage.get<PlainSumRoundState>(STATE_KEY)) ?? null,
    save: (state) => storage.put(STATE_KEY, state),
    setAlarm: (at) => storage.setAlarm(at),
    deleteAlarm: () => storage.deleteAlarm(),
  };
}

export class RoundDO extends DurableObject<Env> {
  private readonly host: PlainSumRoundHost;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.host = createPlainSumRoundHost({
      store: durableStore(ctx.storage),
      models: new D1ModelStore(env.DB),
      index: new D1RoundIndex(env.DB),
    });
  }

  open(tenantId: string, roundId: string, request: OpenRoundRequest) {
    return asResult(() => this.host.open(tenantId, roundId, request));
  }

  join() {
    return asResult(() => this.host.join());
  }

  contribute(request: ContributionRequest) {
    return asResult(() => this.host.contribute(request));
  }

  status() {
    return asResult(() => this.host.status());
  }

  override async alarm(): Promise<void> {
    await this.host.alarm();
  }
}

function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  throw new FedprofileError(result.error.code, result.error.message, result.error.status);
}

/** The coordinator's `RoundHostHandle` for a round, backed by its Durable Object. */
export function roundHostHandle(
  namespace: DurableObjectNamespace<RoundDO>,
  tenantId: string,
  roundId: string,
): RoundHostHandle {
  const stub = namespace.get(namespace.idFromName(`${tenantId}/${roundId}`));
  return {
    open: async (t, r, request) => unwrap(await stub.open(t, r, request)),
    join: async () => unwrap(await stub.join()),
    contribute: async (request) => unwrap(await stub.contribute(request)),
    status: async () => unwrap(await stub.status()),
  };
}
