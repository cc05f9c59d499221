/**
 * The Worker entry: builds the coordinator app over D1 and Durable Object ports.
 */
import {
  cachedModelVersions,
  cachedRoundIndex,
  cachedTenantStore,
  createCoordinatorApp,
  createRoundService,
} from "@fedprofile/coordinator";
import { D1AdmissionIssuerStore, D1RoundIndex, D1TenantStore, D1TrainingStore } from "./d1-stores";
import type { Env } from "./env";
import { privacyFor } from "./privacy";
import { modelStore } from "./r2-blobs";
import { roundHostHandle } from "./round-do";
import { shardHandle } from "./shard-do";
import { stageSocketPort } from "./shard-socket";
import { trainerHandle } from "./trainer-do";

export { AggregatorDO } from "./aggregator-do";
export { RoundDO } from "./round-do";
export { SecAggShardDO } from "./shard-do";
export { TrainerDO } from "./trainer-do";

type App = ReturnType<typeof createCoordinatorApp>;
const apps = new WeakMap<D1Database, App>();

/** One app per isolate and database binding; building it registers every route. */
function appFor(env: Env): App {
  let app = apps.get(env.DB);
  if (!app) {
    // Tenants, keys and round rows are cached per isolate (hot-path-cache.ts): no D1 per device request.
    const index = cachedRoundIndex(new D1RoundIndex(env.DB));
    const privacy = privacyFor(env);
    app = createCoordinatorApp({
      ...(privacy ? { privacy } : {}),
      tenants: cachedTenantStore(new D1TenantStore(env.DB)),
      models: cachedModelVersions(modelStore(env)),
      training: new D1TrainingStore(env.DB),
      admission: new D1AdmissionIssuerStore(env.DB),
      trainerFor: (tenantId, modelId) => trainerHandle(env, tenantId, modelId),
      rounds: createRoundService({
        index,
        hostFor: (tenantId, roundId) => roundHostHandle(env, tenantId, roundId),
        shardFor: (tenantId, roundId, shard) => shardHandle(env, tenantId, roundId, shard),
        stageSockets: stageSocketPort(env),
      }),
      allowedOrigins: originList(env.ALLOWED_ORIGINS ?? "*"),
      operatorOrigins: originList(env.OPERATOR_ORIGINS ?? ""),
    });
    apps.set(env.DB, app);
  }
  return app;
}

export default {
  fetch(request, env, ctx) {
    return appFor(env).fetch(request, env, ctx);
  },
  /** The cron (wrangler.toml `[triggers]`): publishes every chain's checkpoint that is due (SPEC.md §8.2). */
  async scheduled(_controller, env, ctx) {
    const privacy = privacyFor(env);
    if (privacy) ctx.waitUntil(privacy.publishCheckpoints({ minIntervalMs: 0 }));
  },
} satisfies ExportedHandler<Env>;

/** A comma-separated origin list from a Worker var. */
function originList(text: string): string[] {
  return text
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
}
