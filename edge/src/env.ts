import type { AggregatorDO } from "./aggregator-do";
import type { RoundDO } from "./round-do";
import type { SecAggShardDO } from "./shard-do";
import type { TrainerDO } from "./trainer-do";

/** Bindings declared in wrangler.toml. */
export interface Env {
  DB: D1Database;
  /** Published model weights, one immutable object per round (`coordinator/src/models/model-blobs.ts`). */
  WEIGHTS: R2Bucket;
  ROUND: DurableObjectNamespace<RoundDO>;
  SHARD: DurableObjectNamespace<SecAggShardDO>;
  /** The aggregator tier of rounds of more than FAN_OUT shards (coordinator/src/rounds/shard-tree.ts). */
  AGGREGATOR: DurableObjectNamespace<AggregatorDO>;
  TRAINER: DurableObjectNamespace<TrainerDO>;
  /** Comma-separated storefront origins allowed to call device routes, or `*`. */
  ALLOWED_ORIGINS?: string;
  /** Origins that may call secret- and auditor-key routes from a browser (the dashboard); comma-separated. */
  OPERATOR_ORIGINS?: string;
  /**
   * Hex 32-byte Ed25519 seed of the ledger-signing key: a Worker secret when deployed
   * (`wrangler secret put LEDGER_SIGNING_KEY`), `.dev.vars` in local dev (made once by
   * `edge/scripts/local-dev.ts`). Without it, DP rounds and the audit routes answer 503.
   */
  LEDGER_SIGNING_KEY?: string;
  /** `development` relaxes the privacy floors (plain-sum, tiny cohorts); anything else: production. */
  PRIVACY_FLOORS?: string;
  /** The previous signing seed after a key change (SPEC.md §6.3); chains it signed are rotated. */
  LEDGER_PREVIOUS_SIGNING_KEY?: string;
}
