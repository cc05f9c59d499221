/**
 * Workers RPC keeps only an error's message, so coordinator errors cross Durable Object
 * boundaries as data (`RpcResult`) and are rebuilt as `FedprofileError` on the caller's side.
 */
import { FedprofileError } from "@fedprofile/coordinator";
import type { Env } from "./env";

export type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: string; message: string; status: number } };

export async function asResult<T>(operation: () => Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await operation() };
  } catch (error) {
    if (error instanceof FedprofileError) {
      return { ok: false, error: { code: error.code, message: error.message, status: error.status } };
    }
    throw error;
  }
}

export function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  throw new FedprofileError(result.error.code, result.error.message, result.error.status);
}

/** The Durable Object of round `roundId` of `tenantId` (plain-sum, or the root of a SecAgg round). */
export function roundStub(env: Env, tenantId: string, roundId: string) {
  return env.ROUND.get(env.ROUND.idFromName(`${tenantId}/${roundId}`));
}
