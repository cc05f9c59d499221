/**
 * The coordinator's privacy service over D1, signed with the key from the Worker's environment.
 */
import { createRoundPrivacy, type RoundPrivacy } from "@fedprofile/coordinator";
import {
  DEFAULT_PRIVACY_POLICY,
  DEVELOPMENT_PRIVACY_POLICY,
  type PrivacyPolicy,
} from "@fedprofile/coordinator/dp";
import { signerFromSeedHex } from "@fedprofile/coordinator/ledger";
import { D1LedgerStore, D1PrivacyBudgetStore } from "./d1-privacy";
import type { Env } from "./env";

/** The privacy service, or undefined when no signing key is configured. */
export function privacyFor(env: Env): RoundPrivacy | undefined {
  const seed = env.LEDGER_SIGNING_KEY?.trim();
  if (!seed) return undefined;
  return createRoundPrivacy({
    budgets: new D1PrivacyBudgetStore(env.DB),
    ledger: new D1LedgerStore(env.DB),
    signer: signerFromSeedHex(seed),
    dailyEpsilonCap: floorsFor(env).maxEpsilonPerModelPerDay,
    // After a key change: chains the old key signed are handed over by a rotation entry.
    ...(env.LEDGER_PREVIOUS_SIGNING_KEY?.trim()
      ? { previousSigner: signerFromSeedHex(env.LEDGER_PREVIOUS_SIGNING_KEY.trim()) }
      : {}),
  });
}

/**
 * The privacy floors rounds must meet: the production defaults, unless `PRIVACY_FLOORS` is
 * `development` (set by `edge/scripts/local-dev.ts` for `wrangler dev`, never in wrangler.toml).
 */
export function floorsFor(env: Env): PrivacyPolicy {
  return env.PRIVACY_FLOORS?.trim() === "development" ? DEVELOPMENT_PRIVACY_POLICY : DEFAULT_PRIVACY_POLICY;
}
