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
 * missing key, a malformed key, an unknown tenant, an unknown or revoked key (all 401), and
 * a valid key of the wrong kind (403), so integrators can tell what to fix.
 */
export function requireKey(tenants: TenantStore, ...kinds: ApiKeyKind[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization");
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
    const tenant = await tenants.findTenant(parsed.tenantId);
    if (!tenant) throw new UnauthorizedError("unknown_tenant", `unknown tenant ${parsed.tenantId}`);
    const record = await tenants.findApiKey(parsed.tenantId, parsed.keyHash);
    if (!record || record.revokedAt !== null || record.kind !== parsed.kind) {
      throw new UnauthorizedError("invalid_api_key", "API key is not valid for this tenant");
    }
    if (!kinds.includes(record.kind)) {
      throw new ForbiddenError(`this route needs a ${kinds.join(" or ")} key, not a ${record.kind} key`);
    }
    c.set("auth", { tenantId: tenant.id, kind: record.kind });
    await next();
  };
}
