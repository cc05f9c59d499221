/**
 * The coordinator's HTTP API as a Hono app over storage ports. Runtime-neutral: the Worker
 * in `edge/` passes D1/Durable Object ports, tests pass in-memory ones and call
 * `app.request()` with no server.
 */

import type * as protocolWire from "@fedprofile/protocol/wire";
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import * as z from "zod";
import type { AdmissionIssuerStore } from "../admission/redeem";
import { FedprofileError, InvalidRequestError, NotFoundError } from "../errors";
import { LedgerWitness } from "../ledger/schema";
import { initialModelState, nextRoundRequest, type TrainerHandle } from "../models/trainer";
import type { Clock, ModelStore, TenantStore, TrainingStore } from "../ports";
import type { RoundPrivacy } from "../rounds/round-privacy";
import type { RoundService } from "../rounds/round-service";
import { addAdmissionRoutes } from "./admission-routes";
import { type AppEnv, requireKey } from "./auth";
import { allowOriginFor } from "./cors-policy";
import { describeZodError, errorResponse, handleError } from "./errors";
import {
  CheckinRequest,
  CheckinResponse,
  CheckpointQuery,
  CheckpointResponse,
  ContributionRequest,
  ContributionResponse,
  ErrorEnvelope,
  encodeClientFrame,
  HealthResponse,
  JoinRequest,
  JoinResponse,
  LedgerPublicKey,
  LedgerQuery,
  LedgerRowsPage,
  ModelDeclaration,
  ModelId,
  ModelStatus,
  ModelVersion,
  ModelVersionPage,
  modelEtag,
  OpenRoundRequest,
  PrivacyBudgetRequest,
  PrivacyBudgetStatus,
  PublishedCheckpointsQuery,
  RoundId,
  RoundStatus,
  SecAggAck,
  SecAggClientMessage,
  SecAggServerView,
  TasksResponse,
  TrainingRoundPage,
  WIRE_VERSION,
} from "./openapi-schemas";
import { addStageSocketRoute } from "./stage-socket-route";

export interface CoordinatorAppOptions {
  tenants: TenantStore;
  models: ModelStore;
  rounds: RoundService;
  /** Budgets and the privacy ledger; without it the privacy routes answer 503. */
  privacy?: RoundPrivacy;
  /** Declared models and their history; with `trainerFor`, enables the training routes. */
  training?: TrainingStore;
  /** The trainer of a model (a Durable Object stub in production). */
  trainerFor?(tenantId: string, modelId: string): TrainerHandle;
  /** Origins allowed to call device routes from a browser; `["*"]` for any. */
  allowedOrigins?: string[];
  /**
   * Origins allowed to call secret- and auditor-key routes from a browser (the compliance
   * dashboard); `*` is ignored here. Default none.
   */
  operatorOrigins?: string[];
  /** Tenants' registered token issuers; without it the admission routes answer 503. */
  admission?: AdmissionIssuerStore;
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
/** A version's weights are addressed by its round too, so that their URL is unique across tenants. */
const WeightsParams = VersionParams.extend({ roundId: RoundId });
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

  const policy = {
    deviceOrigins: options.allowedOrigins ?? ["*"],
    operatorOrigins: options.operatorOrigins ?? [],
  };
  app.use(
    "/v1/*",
    cors({
      origin: (origin, c) =>
        allowOriginFor(
          origin,
          {
            // A preflight asks for the method the real request will use.
            method:
              c.req.method === "OPTIONS"
                ? (c.req.header("access-control-request-method") ?? "GET")
                : c.req.method,
            path: c.req.path,
          },
          policy,
        ),
      // If-None-Match: devices revalidate model versions (a 304 costs no download); ETag is read back.
      allowHeaders: ["Authorization", "Content-Type", "X-Participant", "If-None-Match"],
      exposeHeaders: ["ETag"],
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
      // The version number only (issue 16): never the model row, whose weights may be megabytes.
      const [round, latestModelVersion] = await Promise.all([
        rounds.findOpen(tenantId, body.modelId),
        models.latestVersion
          ? models.latestVersion(tenantId, body.modelId)
          : models.latest(tenantId, body.modelId).then((m) => m?.version ?? null),
      ]);
      return c.json({ v: WIRE_VERSION, round, latestModelVersion }, 200);
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
      const { token } = c.req.valid("json");
      return c.json(await rounds.join(c.get("auth").tenantId, c.req.valid("param").roundId, token), 200);
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
      // The frame goes to the shard as it came: the shard decodes it, once (`receiveFrame`).
      let frame: Uint8Array;
      if (type.startsWith("application/octet-stream")) {
        frame = new Uint8Array(await c.req.arrayBuffer());
      } else if (type.startsWith("application/json")) {
        let body: unknown;
        try {
          body = await c.req.json();
        } catch (cause) {
          throw new InvalidRequestError("request body is not valid JSON", { cause, code: "malformed_json" });
        }
        // JSON stays for the small control messages; the masked vector travels only as a frame.
        const parsed = SecAggClientMessage.safeParse(body);
        if (!parsed.success) throw new InvalidRequestError(describeZodError(parsed.error));
        if (parsed.data.stage === "masked-input") {
          throw new FedprofileError(
            "unsupported_media_type",
            "send the masked input as a binary frame (application/octet-stream)",
            415,
          );
        }
        frame = encodeClientFrame(parsed.data);
      } else {
        throw new FedprofileError(
          "unsupported_media_type",
          "send application/octet-stream (a frame) or application/json",
          415,
        );
      }
      return c.json(await rounds.secaggMessage(c.get("auth").tenantId, roundId, shard, who, frame), 200);
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
      responses: {
        200: json(ModelVersion, "The model version with its weights"),
        304: { description: "The version named by If-None-Match is still the newest" },
        ...errors,
      },
    }),
    async (c) => {
      const { modelId } = c.req.valid("param");
      const latest = await models.latest(c.get("auth").tenantId, modelId);
      if (!latest) throw new NotFoundError(`model ${modelId} has no published version`);
      return versionResponse(c, latest, "no-cache");
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
      responses: {
        200: json(ModelVersion, "The model version with its weights"),
        304: { description: "The client's copy (If-None-Match) is this version" },
        ...errors,
      },
    }),
    async (c) => {
      const { modelId, version } = c.req.valid("param");
      const found = await models.get(c.get("auth").tenantId, modelId, version);
      if (!found) throw new NotFoundError(`model ${modelId} has no version ${version}`);
      return versionResponse(c, found, "private, max-age=31536000, immutable");
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}/versions/{version}/weights/{roundId}",
      summary: "One model version's weights as raw bytes, immutable (a CDN may keep them)",
      security,
      middleware: [anyKey] as const,
      request: { params: WeightsParams },
      responses: {
        200: { description: "The weights (application/octet-stream)" },
        304: { description: "The client's copy (If-None-Match) is these bytes" },
        ...errors,
      },
    }),
    async (c) => {
      const { modelId, version, roundId } = c.req.valid("param");
      const found = models.weights
        ? await models.weights(c.get("auth").tenantId, modelId, version, roundId)
        : null;
      if (!found) throw new NotFoundError(`model ${modelId} has no version ${version} from round ${roundId}`);
      // A version's bytes never change (model-blobs.ts: first write wins), so any cache may keep
      // them for a year. The round id (random, one per round of one tenant) makes the URL name
      // these bytes alone: a shared cache keyed on the URL, as Cloudflare's is (it ignores
      // `Vary: Authorization`), cannot serve one tenant's weights for another's.
      c.header("ETag", found.etag);
      c.header("Cache-Control", "public, max-age=31536000, immutable");
      const match = c.req.header("if-none-match");
      if (match?.split(",").some((tag) => tag.trim() === found.etag)) return c.body(null, 304);
      c.header("Content-Type", "application/octet-stream");
      return c.body(found.bytes.slice().buffer, 200);
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
      path: "/v1/audit/checkpoint",
      summary: "A signed checkpoint of one chain's head, for witnesses to keep (SPEC.md §8; auditor key)",
      security,
      middleware: [history] as const,
      request: { query: CheckpointQuery },
      responses: { 200: json(CheckpointResponse, "The chain's signed head"), ...errors },
    }),
    async (c) => {
      const { model } = c.req.valid("query");
      const checkpoint = await privacy().checkpoint(c.get("auth").tenantId, model);
      return c.json({ v: WIRE_VERSION, checkpoint }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/audit/checkpoints",
      summary:
        "The chain's published checkpoints, newest `limit`, as a witness document (SPEC.md §8.2; auditor key)",
      security,
      middleware: [history] as const,
      request: { query: PublishedCheckpointsQuery },
      responses: { 200: json(LedgerWitness, "Checkpoints published on schedule, oldest first"), ...errors },
    }),
    async (c) => {
      const { model, limit } = c.req.valid("query");
      const checkpoints = await privacy().publishedCheckpoints(c.get("auth").tenantId, model, limit);
      return c.json({ v: 1 as const, type: "fedprofile-ledger-witness" as const, checkpoints }, 200);
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

  addAdmissionRoutes(app, { operator, anyKey }, options.admission, clock);
  addStageSocketRoute(app, { tenants, rounds });

  const trainingPorts = () => {
    if (!options.training || !options.trainerFor) {
      throw new FedprofileError(
        "training_unavailable",
        "this coordinator has no training runtime configured",
        503,
      );
    }
    return { store: options.training, trainerFor: options.trainerFor };
  };

  app.openapi(
    createRoute({
      method: "put",
      path: "/v1/models/{modelId}",
      summary:
        "Declare (or re-declare) a model: its kind, spec, DP, cohort and schedule; its trainer starts by itself (secret key)",
      security,
      middleware: [operator] as const,
      request: {
        params: ModelParams,
        body: { content: { "application/json": { schema: ModelDeclaration } }, required: true },
      },
      responses: { 200: json(ModelStatus, "The model's training status"), ...errors },
    }),
    async (c) => {
      const { tenantId } = c.get("auth");
      const { modelId } = c.req.valid("param");
      const declaration = c.req.valid("json");
      const ports = trainingPorts();
      checkDeclaration(modelId, declaration);
      const { dp } = declaration;
      await privacy().setBudget(
        tenantId,
        modelId,
        {
          v: WIRE_VERSION,
          epsilonCap: dp.epsilonCap ?? dp.targetEpsilon,
          population: dp.population ?? declaration.cohort.maxDevices,
        },
        // The declared DP settings go on the record with the cap.
        {
          mechanism: dp.mechanism,
          targetEpsilon: dp.targetEpsilon,
          modulusBits: dp.modulusBits,
          ...(dp.minNoiseShares === undefined ? {} : { minNoiseShares: dp.minNoiseShares }),
          // What the server is trusted with (README Security): the ledger states the preset.
          threatModel: declaration.cohort.threat ?? "honestButCurious",
        },
      );
      return c.json(await ports.trainerFor(tenantId, modelId).declare(tenantId, modelId, declaration), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}",
      summary: "A declared model's training status (secret or auditor key)",
      security,
      middleware: [history] as const,
      request: { params: ModelParams },
      responses: { 200: json(ModelStatus, "The model's training status"), ...errors },
    }),
    async (c) => {
      const { modelId } = c.req.valid("param");
      const status = await trainingPorts().trainerFor(c.get("auth").tenantId, modelId).status();
      if (!status) throw new NotFoundError(`model ${modelId} is not declared`);
      return c.json(status, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/models/{modelId}/rounds",
      summary: "A declared model's training rounds, newest first (secret or auditor key)",
      security,
      middleware: [history] as const,
      request: {
        params: ModelParams,
        query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      },
      responses: { 200: json(TrainingRoundPage, "The model's rounds"), ...errors },
    }),
    async (c) => {
      const { modelId } = c.req.valid("param");
      const { tenantId } = c.get("auth");
      const { store } = trainingPorts();
      if (!(await store.getDeclaration(tenantId, modelId)))
        throw new NotFoundError(`model ${modelId} is not declared`);
      const found = await store.rounds(tenantId, modelId, c.req.valid("query").limit);
      return c.json({ v: WIRE_VERSION, modelId, rounds: found }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/tasks",
      summary:
        "Every declared model, its newest version and its open round, if any: what sync() takes part in (publishable key)",
      security,
      middleware: [device] as const,
      responses: { 200: json(TasksResponse, "The tenant's models and open rounds"), ...errors },
    }),
    async (c) => {
      const { tenantId } = c.get("auth");
      const ids = options.training ? await options.training.listModels(tenantId) : [];
      const tasks = await Promise.all(
        ids.map(async (modelId) => {
          const [round, latest, declaration] = await Promise.all([
            rounds.findOpen(tenantId, modelId),
            models.latest(tenantId, modelId),
            options.training?.getDeclaration(tenantId, modelId),
          ]);
          const kind = declaration?.kind ?? "kmeans";
          return { modelId, kind, latestVersion: latest?.version ?? null, round };
        }),
      );
      return c.json({ v: WIRE_VERSION, tasks }, 200);
    },
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

/** A model version with its ETag, or 304 when the client's `If-None-Match` names it. */
function versionResponse(c: Context, model: protocolWire.ModelVersion, cacheControl: string) {
  const etag = modelEtag(model);
  c.header("ETag", etag);
  c.header("Cache-Control", cacheControl);
  const match = c.req.header("if-none-match");
  if (match?.split(",").some((tag) => tag.trim() === etag)) return c.body(null, 304);
  return c.json(model, 200);
}

/**
 * Refuses a declaration whose rounds the coordinator would refuse, so the mistake is a 400 now
 * rather than a stopped trainer later.
 */
function checkDeclaration(modelId: string, declaration: protocolWire.ModelDeclaration): void {
  const { request } = nextRoundRequest({
    modelId,
    declaration,
    model: initialModelState(declaration),
    // An fcf run publishes its initial factors at declaration; its first round improves on them.
    latestVersion: declaration.kind === "fcf" ? 1 : null,
  });
  const parsed = OpenRoundRequest.safeParse(request);
  if (!parsed.success)
    throw new InvalidRequestError(`the model's rounds would be refused: ${describeZodError(parsed.error)}`);
  const { minDevices, maxShardSize, minShardSize } = declaration.cohort;
  if (minShardSize > minDevices) {
    throw new InvalidRequestError(
      `cohort.minShardSize: ${minShardSize} exceeds cohort.minDevices (${minDevices}); no shard could fill`,
    );
  }
  const shares = request.dp?.minNoiseShares ?? 0;
  if (shares > Math.min(maxShardSize, minDevices)) {
    throw new InvalidRequestError(`dp.minNoiseShares: ${shares} exceeds the devices a shard can hold`);
  }
}
