import { env, exports } from "cloudflare:workers";
import { generateTenantKeys } from "@fedprofile/coordinator";
import { insertTenant } from "../src/d1-stores";

export const BASE = "http://coordinator.test";

/** Seeds a tenant with one key of each kind straight into D1. */
export async function seedTenant(tenantId: string) {
  const keys = generateTenantKeys(tenantId);
  await insertTenant(env.DB, { id: tenantId, name: tenantId, createdAt: Date.now() }, keys);
  return { publishable: keys.publishable.key, secret: keys.secret.key, auditor: keys.auditor.key };
}

/** Sends a request through the Worker's real fetch handler. */
export function call(
  method: string,
  path: string,
  key?: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...extraHeaders };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    }),
  );
}
