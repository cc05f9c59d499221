import type { RoundDO } from "./round-do";

/** Bindings declared in wrangler.toml. */
export interface Env {
  DB: D1Database;
  ROUND: DurableObjectNamespace<RoundDO>;
  /** Comma-separated storefront origins allowed to call device routes, or `*`. */
  ALLOWED_ORIGINS?: string;
}
