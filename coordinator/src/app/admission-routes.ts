/**
 * The admission routes: a storefront registers the public key of its Privacy Pass issuer with
 * the secret key (`PUT /v1/admission/issuer`); rounds opened afterwards admit by its tokens.
 * Devices and anyone holding a key may read it back (it is public: the key devices blind to).
 */
import * as wire from "@fedprofile/protocol/wire";
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type * as z from "zod";
import { type AdmissionIssuerStore, registeredIssuer } from "../admission/redeem";
import { FedprofileError, NotFoundError } from "../errors";
import type { Clock } from "../ports";
import { toClassic } from "../wire/classic";
import type { AppEnv } from "./auth";
import { ErrorEnvelope } from "./openapi-schemas";

const AdmissionIssuerRequest = toClassic(wire.AdmissionIssuerRequest);
const AdmissionIssuerStatus = toClassic(wire.AdmissionIssuerStatus);

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
const errors = {
  400: json(ErrorEnvelope, "Malformed request; the message names the field"),
  401: json(ErrorEnvelope, "Missing, malformed or unknown API key or tenant"),
  403: json(ErrorEnvelope, "API key of the wrong kind for this route"),
  404: json(ErrorEnvelope, "No issuer registered"),
};

/** Adds the admission routes to `app` (503 without a store). */
export function addAdmissionRoutes(
  app: OpenAPIHono<AppEnv>,
  keys: { operator: MiddlewareHandler<AppEnv>; anyKey: MiddlewareHandler<AppEnv> },
  store: AdmissionIssuerStore | undefined,
  clock: Clock,
): void {
  const issuers = (): AdmissionIssuerStore => {
    if (!store) {
      throw new FedprofileError("admission_unavailable", "this coordinator has no admission store", 503);
    }
    return store;
  };
  const security = [{ apiKey: [] }];

  app.openapi(
    createRoute({
      method: "put",
      path: "/v1/admission/issuer",
      summary: "Register the tenant's Privacy Pass issuer key (secret key); new rounds admit by its tokens",
      security,
      middleware: [keys.operator] as const,
      request: {
        body: { content: { "application/json": { schema: AdmissionIssuerRequest } }, required: true },
      },
      responses: { 200: json(AdmissionIssuerStatus, "The registered issuer"), ...errors },
    }),
    async (c) => {
      const { issuerName, publicKey } = c.req.valid("json");
      const issuer = await registeredIssuer(issuerName, publicKey, clock());
      await issuers().put(c.get("auth").tenantId, issuer);
      return c.json(issuer, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/admission/issuer",
      summary: "The tenant's registered Privacy Pass issuer",
      security,
      middleware: [keys.anyKey] as const,
      responses: { 200: json(AdmissionIssuerStatus, "The registered issuer"), ...errors },
    }),
    async (c) => {
      const issuer = await issuers().get(c.get("auth").tenantId);
      if (!issuer) throw new NotFoundError("no admission issuer is registered for this tenant");
      return c.json(issuer, 200);
    },
  );
}
