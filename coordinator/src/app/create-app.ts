/**
 * The coordinator's HTTP API as a Hono app over storage ports. Runtime-neutral: the Worker
 * in `edge/` passes D1/Durable Object ports, tests pass in-memory ones and call
 * `app.request()` with no server.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import * as z from "zod";
import { FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import type { Clock, ModelStore, TenantStore } from "../ports";
import type { RoundPrivacy } from "../rounds/round-privacy";
import type { RoundService } from "../rounds/round-service";
import { type AppEnv, requireKey } from "./auth";
import { describeZodError, errorResponse, handleError } from "./errors";
import {
  CheckinRequest,
  CheckinResponse,
  ContributionRequest,
  ContributionResponse,
  decodeClientFrame,
  ErrorEnvelope,
  HealthResponse,
  JoinRequest,
  JoinResponse,
  LedgerPublicKey,
  LedgerQuery,
  LedgerRowsPage,
  ModelId,
  ModelVersion,
  ModelVersionPage,
  OpenRoundRequest,
  PrivacyBudgetRequest,
  PrivacyBudgetStatus,
  RoundId,
  RoundStatus,
  SecAggAck,
  SecAggClientMessage,
  SecAggServerView,
  WIRE_VERSION,
} from "./openapi-schemas";

export interface CoordinatorAppOptions {
  tenants: TenantStore;
  models: ModelStore;
  rounds: RoundService;
  /** Budgets and the privacy ledger; without it the privacy routes answer 503. */
  privacy?: RoundPrivacy;
  /** Origins allowed to call device routes from a browser; `["*"]` for any. */
  allowedOrigins?: string[];
  /** Largest accepted request body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  clock?: Clock;
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

const errors = {
  400: json(ErrorEnvelope, "Malformed request; the message names the field"),
  401: json(ErrorEnvelope, "Missing, malformed or unknown API key or tenant"),
  403: json(ErrorEnvelope, "API key of the wrong kind for this route"),
  404: json(ErrorEnvelope, "Not found for this tenant"),
  409: json(ErrorEnvelope, "Conflicts with the resource's state"),
};

const RoundParams = z.object({ roundId: RoundId });
const ModelParams = z.object({ modelId: ModelId });
const VersionParams = z.object({
  modelId: ModelId,
  version: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z
    .string()
    .regex(/^[0-9]{1,15}$/, "cursor: as returned by the previous page")
    .optional(),
});

/** Builds the coordinator app. */
export function createCoordinatorApp(options: CoordinatorAppOptions): OpenAPIHono<AppEnv> {
  const { tenants, models, rounds } = options;
  const clock = options.clock ?? Date.now;
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return errorResponse(c, 400, "invalid_request", describeZodError(result.error));
    },
  });

  app.onError(handleError);
  app.notFound((c) => errorResponse(c, 404, "not_found", `no route ${c.req.method} ${c.req.path}`));

  const origins = options.allowedOrigins ?? ["*"];
  app.use(
    "/v1/*",
    cors({
      origin: origins.includes("*") ? "*" : origins,
      allowHeaders: ["Authorization", "Content-Type", "X-Participant"],
      allowMethods: ["GET", "POST", "PUT", "OPTIONS"],
      maxAge: 600,
    }),
  );
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: options.maxBodyBytes ?? 8 * 1024 * 1024,
      onError: (c) => errorResponse(c, 413, "body_too_large", "request body is too large"),
    }),
  );

  const device = requireKey(tenants, "publishable");
  const operator = requireKey(tenants, "secret");
  const deviceOrOperator = requireKey(tenants, "publishable", "secret");
  const anyKey = requireKey(tenants, "publishable", "secret", "auditor");
  const history = requireKey(tenants, "secret", "auditor");
  const auditor = requireKey(tenants, "auditor");
  const privacy = (): RoundPrivacy => {
    if (!options.privacy) {
      throw new FedprofileError(
        "privacy_unavailable",
        "this coordinator has no privacy ledger configured",
        503,
      );
    }
    return options.privacy;
  };
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer" });
  const security = [{ apiKey: [] }];

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/health",
      summary: "Liveness check",
      responses: { 200: json(HealthResponse, "The coordinator is up") },
    }),
    (c) =>
      c.json(
        {
          v: WIRE_VERSION,
          status: "ok" as const,
          service: "fedprofile-coordinator" as const,
          time: new Date(clock()).toISOString(),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/checkin",
      summary: "A device asks whether a round is open for a model (publishable key)",
      security,
      middleware: [device] as const,
      request: { body: { content: { "application/json": { schema: CheckinRequest } }, required: true } },
      responses: {
        200: json(CheckinResponse, "The open round, if any, and the latest model version"),
        ...errors,
      },
    }),
    async (c) => {
      const { tenantId } = c.get("auth");
      const body = c.req.valid("json");
      const [round, latest] = await Promise.all([
        rounds.findOpen(tenantId, body.modelId),
        models.latest(tenantId, body.modelId),
      ]);
      return c.json({ v: WIRE_VERSION, round, latestModelVersion: latest?.version ?? null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/rounds",
      summary: "Open a round for a model (secret key)",
      security,
      middleware: [operator] as const,
      request: { body: { content: { "application/json": { schema: OpenRoundRequest } }, required: true } },
      responses: { 201: json(RoundStatus, "The new round"), ...errors },
    }),
    async (c) => c.json(await rounds.open(c.get("auth").tenantId, c.req.valid("json")), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/rounds/{roundId}",
      summary: "Round status",
      security,
      middleware: [deviceOrOperator] as const,
      request: { params: RoundParams },
      responses: { 200: json(RoundStatus, "The round's status"), ...errors },
    }),
    async (c) => c.json(await rounds.status(c.get("auth").tenantId, c.req.valid("param").roundId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/rounds/{roundId}/join",
      summary: "Join a collecting round; returns a round-scoped participant id and token",
      security,
      middleware: [device] as const,
      request: {
        params: RoundParams,
        body: { content: { "application/json": { schema: JoinRequest } }, required: true },
      },
      responses: { 200: json(JoinResponse, "Joined"), ...errors },
    }),
    async (c) => {
      c.req.valid("json");
      return c.json(await rounds.join(c.get("auth").tenantId, c.req.valid("param").roundId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/rounds/{roundId}/contributions",
      summary: "Submit this participant's vector (at most once)",
      security,
      middleware: [device] as const,
      request: {
        params: RoundParams,
        body: { content: { "application/json": { schema: ContributionRequest } }, required: true },
      },
      responses: { 200: json(ContributionResponse, "Accepted"), ...errors },
    }),
    async (c) =>
      c.json(
        await rounds.contribute(c.get("auth").tenantId, c.req.valid("param").roundId, c.req.valid("json")),
        200,
      ),
  );

  const ShardParams = z.object({ roundId: RoundId, shard: z.coerce.number().int().min(0).max(65_535) });
  const ParticipantHeader = z.object({
    "x-participant": z
      .string()
      .regex(
        /^p_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{32}$/,
        "x-participant: <participantId>.<participantToken> from join",
      ),
  });
  const credentialOf = (header: string) => {
    const [participantId = "", participantToken = ""] = header.split(".");
    return { participantId, participantToken };
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/rounds/{roundId}/shards/{shard}/view",
      summary: "This participant's view of the current SecAgg stage (what to answer next)",
      security,
      middleware: [device] as const,
      request: { params: ShardParams, headers: ParticipantHeader },
      responses: { 200: json(SecAggServerView, "The stage view"), ...errors },
    }),
    async (c) => {
      const { roundId, shard } = c.req.valid("param");
      const who = credentialOf(c.req.valid("header")["x-participant"]);
      return c.json(await rounds.secaggView(c.get("auth").tenantId, roundId, shard, who), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/rounds/{roundId}/shards/{shard}/messages",
      summary: "One SecAgg protocol message, as a binary frame (application/octet-stream) or JSON",
      security,
      middleware: [device] as const,
      request: {
        params: ShardParams,
        headers: ParticipantHeader,
        body: {
          content: {
            "application/octet-stream": { schema: z.string().meta({ format: "binary" }) },
          },
          required: true,
        },
      },
      responses: {
        200: json(SecAggAck, "Accepted"),
        415: json(ErrorEnvelope, "Not a binary frame or JSON"),
        ...errors,
      },
    }),
    async (c) => {
      const { roundId, shard } = c.req.valid("param");
      const who = credentialOf(c.req.valid("header")["x-participant"]);
      const type = c.req.header("content-type") ?? "";
      let message: unknown;
      if (type.startsWith("application/octet-stream")) {
        try {
          message = decodeClientFrame(new Uint8Array(await c.req.arrayBuffer()));
        } catch (cause) {
          throw new InvalidRequestError(`frame: ${cause instanceof Error ? cause.message : "malformed"}`, {
            cause,
          });
        }
      } else if (type.startsWith("application/json")) {
        let body: unknown;
        try {
          body = await c.req.json();
        } catch (cause) {
          throw new InvalidRequestError("request body is not valid JSON", { cause, code: "malformed_json" });
        }
        const parsed = SecAggClientMessage.safeParse(body);
        if (!parsed.success) throw new InvalidRequestError(describeZodError(parsed.error));
        message = parsed.data;
      } else {
        throw new FedprofileError(
          "unsupported_media_type",
          "send application/octet-stream (a frame) or application/json",
          415,
        );
      }
      return c.json(await rounds.secaggMessage(c.get("auth").tenantId, roundId, shard, who, message), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}/latest",
      summary: "The newest published version of a model",
      security,
      middleware: [anyKey] as const,
      request: { params: ModelParams },
      responses: { 200: json(ModelVersion, "The model version with its weights"), ...errors },
    }),
    async (c) => {
      const { modelId } = c.req.valid("param");
      const latest = await models.latest(c.get("auth").tenantId, modelId);
      if (!latest) throw new NotFoundError(`model ${modelId} has no published version`);
      return c.json(latest, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}/versions",
      summary: "Model version history, newest first (secret or auditor key)",
      security,
      middleware: [history] as const,
      request: { params: ModelParams, query: PageQuery },
      responses: { 200: json(ModelVersionPage, "One page of versions"), ...errors },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const page = await models.list(c.get("auth").tenantId, c.req.valid("param").modelId, {
        limit,
        cursor: cursor ?? null,
      });
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}/versions/{version}",
      summary: "One model version",
      security,
      middleware: [anyKey] as const,
      request: { params: VersionParams },
      responses: { 200: json(ModelVersion, "The model version with its weights"), ...errors },
    }),
    async (c) => {
      const { modelId, version } = c.req.valid("param");
      const found = await models.get(c.get("auth").tenantId, modelId, version);
      if (!found) throw new NotFoundError(`model ${modelId} has no version ${version}`);
      return c.json(found, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/v1/privacy/budgets/{modelId}",
      summary: "Set a model's privacy budget: the epsilon cap and delta (secret key)",
      security,
      middleware: [operator] as const,
      request: {
        params: ModelParams,
        body: { content: { "application/json": { schema: PrivacyBudgetRequest } }, required: true },
      },
      responses: { 200: json(PrivacyBudgetStatus, "The model's budget position"), ...errors },
    }),
    async (c) =>
      c.json(
        await privacy().setBudget(c.get("auth").tenantId, c.req.valid("param").modelId, c.req.valid("json")),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/privacy/budgets/{modelId}",
      summary: "A model's budget: cap, delta, epsilon spent and remaining (secret or auditor key)",
      security,
      middleware: [history] as const,
      request: { params: ModelParams },
      responses: { 200: json(PrivacyBudgetStatus, "The model's budget position"), ...errors },
    }),
    async (c) =>
      c.json(await privacy().budgetStatus(c.get("auth").tenantId, c.req.valid("param").modelId), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/audit/ledger",
      summary: "The privacy ledger, signed entries verbatim, in (model, seq) order (auditor key)",
      security,
      middleware: [auditor] as const,
      request: { query: LedgerQuery },
      responses: { 200: json(LedgerRowsPage, "One page of ledger entries"), ...errors },
    }),
    async (c) => {
      const { model, limit, cursor } = c.req.valid("query");
      const page = await privacy().rows(c.get("auth").tenantId, {
        ...(model ? { model } : {}),
        limit,
        cursor: cursor ? cursor : null,
      });
      return c.json({ v: WIRE_VERSION, entries: page.rows, nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/audit/public-key",
      summary: "The coordinator's Ed25519 ledger-signing public key",
      security,
      middleware: [anyKey] as const,
      responses: { 200: json(LedgerPublicKey, "The public key auditors verify entries with"), ...errors },
    }),
    (c) => c.json(privacy().publicKey, 200),
  );

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "fedprofile coordinator",
      version: String(WIRE_VERSION),
      description: "Federated rounds, models and audit for privacy-preserving on-device profiles.",
    },
  });

  return app;
}
