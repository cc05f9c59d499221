import type { RoundDO } from "./round-do";
import type { SecAggShardDO } from "./shard-do";

/** Bindings declared in wrangler.toml. */
export interface Env {
  DB: D1Database;
  ROUND: DurableObjectNamespace<RoundDO>;
  SHARD: DurableObjectNamespace<SecAggShardDO>;
  /** Comma-separated storefront origins allowed to call device routes, or `*`. */
  ALLOWED_ORIGINS?: string;
}
