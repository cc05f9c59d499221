/**
 * The server threat presets of a SecAgg round, and what each guarantees (issue 13, finding 4).
 *
 * - `honestButCurious` (default): the server follows the protocol but looks at everything it
 *   sees. A device's input stays hidden unless t devices collude with it (Bonawitz et al. CCS 2017
 *   Thm 6.2; Bell et al. CCS 2020 §3). The consistency check (round 3) does not stop a server
 *   that lies about the survivor set when t ≤ k/2: it can show two halves of the neighbours two
 *   sets and collect t b-shares and t s-shares of one live device (`test/secagg/split-view.test.ts`).
 * - `maliciousServer`: t > k/2 (an honest majority of every device's neighbours must confirm the
 *   same survivor set) with the consistency check on. Two disjoint groups of neighbours can then
 *   not both reach t, so a device's b-share and s-share are never both revealed (Bonawitz §6.3
 *   argument with t > n/2; Bell §4 for the k-regular graph). With admission tokens, every key
 *   advertisement is also signed by a round identity key that the device's token is bound to, and
 *   neighbours verify it before sealing anything (`./identity.ts`): the server can neither swap a
 *   device's keys (a man in the middle of its share boxes) nor fabricate a neighbour beyond the
 *   tokens the storefront's issuer signed. A shard of such a round refuses unsigned
 *   advertisements (`signedKeys`), and a device that requires the preset refuses a round without
 *   admission (floor `requireHonestMajority`). Still not covered: Sybils up to the issuer's quota
 *   (counted by `colluders`), and a server that drops honest devices to shrink a survivor set
 *   below what the DP noise assumed (the device-side `minNoiseShares` floor bounds that).
 */

/** The threat presets a round may be opened under. */
export const THREAT_PRESETS = ["honestButCurious", "maliciousServer"] as const;
export type ThreatPreset = (typeof THREAT_PRESETS)[number];

/** Neighbours a device has in a shard of `cohortSize` with graph degree `k` (complete if smaller). */
export function effectiveDegree(k: number, cohortSize: number): number {
  return Math.min(k, cohortSize - 1);
}

/** The smallest threshold with an honest majority of neighbours: ⌊k'/2⌋ + 1, k' the effective degree. */
export function maliciousServerThreshold(k: number, cohortSize: number): number {
  return Math.floor(effectiveDegree(k, cohortSize) / 2) + 1;
}

/** Why a shard configuration falls short of the `maliciousServer` preset (empty: it meets it). */
export function maliciousServerShortfalls(config: {
  k: number;
  t: number;
  cohortSize: number;
  consistencyCheck: boolean;
}): string[] {
  const out: string[] = [];
  const degree = effectiveDegree(config.k, config.cohortSize);
  if (2 * config.t <= degree) out.push(`t = ${config.t} is not above half of the ${degree} neighbours`);
  if (!config.consistencyCheck) out.push("the consistency check is off");
  return out;
}
