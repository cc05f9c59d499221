import type { MiddlewareHandler } from "hono";
import { type ApiKeyKind, parseApiKey } from "../api-keys";
import { ForbiddenError, UnauthorizedError } from "../errors";
import type { TenantStore } from "../ports";

/** What authentication establishes about a request. */
export interface AuthContext {
  tenantId: string;
  kind: ApiKeyKind;
}

export type AppEnv = { Variables: { auth: AuthContext } };

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Requires an API key of one of `kinds` in `Authorization: Bearer <key>`. Distinguishes a
 * missing key, a malformed key (401 each), a key that is not valid (401) and a valid key of the
 * wrong kind (403), so integrators can tell what to fix. An unknown tenant and a wrong, revoked
 * or unknown key get the same answer, after the same lookups, so that the API does not tell an
 * attacker which tenants exist (issue 11).
 */
export function requireKey(tenants: TenantStore, ...kinds: ApiKeyKind[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("auth", await authenticate(tenants, c.req.header("authorization"), kinds));
    await next();
  };
}

/**
 * The check of {@link requireKey} on an `Authorization` header value, for routes whose key does
 * not come in that header (the stage socket's `Sec-WebSocket-Protocol`): the same answers.
 */
export async function authenticate(
  tenants: TenantStore,
  header: string | undefined,
  kinds: ApiKeyKind[],
): Promise<AuthContext> {
  if (!header)
    throw new UnauthorizedError("missing_api_key", "missing Authorization: Bearer <api key> header");
  const token = BEARER.exec(header)?.[1];
  const parsed = token ? parseApiKey(token) : null;
  if (!parsed) {
    throw new UnauthorizedError(
      "malformed_api_key",
      "Authorization must be `Bearer fp_<pub|sec|aud>_<tenant>.<secret>`",
    );
  }
  // Both lookups always run: answering an unknown tenant sooner would tell it apart by timing.
  const [tenant, record] = await Promise.all([
    tenants.findTenant(parsed.tenantId),
    tenants.findApiKey(parsed.tenantId, parsed.keyHash),
  ]);
  if (!tenant || !record || record.revokedAt !== null || record.kind !== parsed.kind) {
    throw new UnauthorizedError("invalid_api_key", "API key is not valid");
  }
  if (!kinds.includes(record.kind)) {
    throw new ForbiddenError(`this route needs a ${kinds.join(" or ")} key, not a ${record.kind} key`);
  }
  return { tenantId: tenant.id, kind: record.kind };
}
