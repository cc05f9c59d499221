/**
 * The device's privacy policy: the weakest round this device takes part in. A round below it is
 * refused before anything is sent, with {@link PolicyRefusedError}. The floors and their defaults
 * are the protocol package's (`@fedprofile/protocol/dp`, floors.ts), the same ones the coordinator
 * enforces when a round opens; the check itself runs in the lazily loaded sync path
 * (`./sync/policy-check.ts`), so this module carries types and the error class only.
 */

import type { FloorViolation, PrivacyPolicy } from "@fedprofile/protocol/dp";
import { FedprofileError } from "./errors";

export type { FloorViolation, PrivacyPolicy } from "@fedprofile/protocol/dp";

/**
 * `"default"` (the production floors), `"development"` (a page opts in: plain-sum, tiny cohorts,
 * rounds without DP), or overrides of single floors on top of the production defaults.
 */
export type PrivacyPolicyOption = "default" | "development" | Partial<PrivacyPolicy>;

/**
 * A round below this device's privacy policy: nothing was sent for it. `violations` names each
 * unmet floor with its reason; `sync()` reports it as the outcome `refused-by-policy`.
 */
export class PolicyRefusedError extends FedprofileError {
  /** The round that was refused. */
  readonly roundId: string;
  /** Every floor the round does not meet. */
  readonly violations: readonly FloorViolation[];

  constructor(roundId: string, violations: readonly FloorViolation[]) {
    super(
      "refused_by_policy",
      `round ${roundId} refused by the privacy policy: ${violations.map((v) => `${v.floor} (${v.reason})`).join("; ")}`,
    );
    this.name = "PolicyRefusedError";
    this.roundId = roundId;
    this.violations = violations;
  }
}
