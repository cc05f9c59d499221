/**
 * The coordinator's side of the privacy floors (`@fedprofile/protocol/dp` floors.ts): a round
 * below them is refused when it opens, with a 4xx naming the floor, instead of being offered to
 * devices that would refuse it (or, with an old SDK, take part in it).
 */

import { checkRoundFloors, type PrivacyPolicy, type RoundFacts } from "@fedprofile/protocol/dp";
import { FedprofileError } from "../errors";

/** A round configuration below the coordinator's privacy floors (400, `below_privacy_floor`). */
export class PrivacyFloorError extends FedprofileError {
  /** The first floor the round does not meet. */
  readonly floor: string;

  constructor(floor: string, message: string) {
    super("below_privacy_floor", message, 400);
    this.floor = floor;
  }
}

/** Throws {@link PrivacyFloorError} listing every floor `facts` does not meet. */
export function enforceRoundFloors(policy: PrivacyPolicy, facts: RoundFacts): void {
  const violations = checkRoundFloors(policy, facts);
  const first = violations[0];
  if (!first) return;
  throw new PrivacyFloorError(
    first.floor,
    `the round is below the privacy floors: ${violations.map((v) => `${v.floor} (${v.reason})`).join("; ")}`,
  );
}
