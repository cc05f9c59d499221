/**
 * One constants module for the secure-aggregation protocol (Bonawitz et al. CCS 2017 with the
 * SecAgg+ neighbour graph of Bell et al. CCS 2020): stage names, their order, wire keys,
 * domain-separation labels and stable error codes. Everything else imports from here, so a
 * stage or label is spelled exactly once.
 */

/** Protocol version carried in every SecAgg message (`v`). Bump on any breaking change. */
export const SECAGG_VERSION = 1 as const;

/**
 * The five client-visible stages, in protocol order (Bonawitz et al. §4, Fig. 5: rounds 0-4).
 * `consistency-check` may be disabled per round; the order is otherwise fixed.
 */
export const STAGES = [
  "advertise-keys",
  "share-keys",
  "masked-input",
  "consistency-check",
  "unmask",
] as const;

/** A protocol stage in which the server collects one message per device. */
export type Stage = (typeof STAGES)[number];

/** Terminal states of a server round. */
export const TERMINAL_STAGES = ["done", "aborted"] as const;

/** Any state a server round can be in. */
export type RoundPhase = Stage | (typeof TERMINAL_STAGES)[number];

/** Position of a stage in `STAGES` (terminal phases sort after every stage). */
export function stageIndex(phase: RoundPhase): number {
  const i = (STAGES as readonly string[]).indexOf(phase);
  return i === -1 ? STAGES.length : i;
}

/** Byte lengths fixed by the primitives. */
export const SIZES = {
  /** X25519 public and secret keys (RFC 7748 §5). */
  key: 32,
  /** Every derived PRG seed (HKDF-SHA256 output). */
  seed: 32,
  /**
   * The self-mask seed b_u: 128 bits, the security level of the AES-128 PRG it keys (through
   * HKDF). Shorter than a key, so its shares are smaller: they are most of a device's overhead.
   */
  selfSeed: 16,
  /** Poly1305 tag added by `nacl.secretbox` (XSalsa20-Poly1305). */
  boxOverhead: 16,
  /** Truncated HMAC-SHA256 tag of the consistency check (128-bit forgery bound). */
  tag: 16,
  /** Ed25519 public key and seed (RFC 8032 §5.1.5). */
  identityKey: 32,
  /** Ed25519 signature (RFC 8032 §5.1.6). */
  signature: 64,
  /** Random salt hashed with the identity key into the token nonce. */
  identitySalt: 32,
} as const;

/**
 * HKDF-SHA256 labels (RFC 5869 `info` prefixes). Every derived key names its purpose, the
 * protocol version, the round and the ordered pair, so no key is ever used for two purposes
 * or in two rounds.
 */
export const LABELS = {
  salt: "fedprofile/secagg/v1",
  pairwiseMask: "pairwise-mask",
  selfMask: "self-mask",
  shareBox: "share-box",
  consistency: "consistency",
  graph: "neighbour-graph",
  /** SHA-256 prefix of the admission token nonce that binds a round identity key (`identity.ts`). */
  identityNonce: "identity-nonce",
  /** Ed25519-signed prefix of a key advertisement (`identity.ts`). */
  advert: "advert",
} as const;

/**
 * Stable error codes. Hosts map them to HTTP statuses; clients branch on them (for example a
 * retry that meets `duplicate` knows its first attempt was accepted).
 */
export const ERROR_CODES = {
  /** The message does not parse against its versioned schema. */
  malformed: "secagg_malformed",
  /** The message names a different round. */
  wrongRound: "secagg_wrong_round",
  /** The sender is not in the cohort, or a share names a device that is not a neighbour. */
  foreign: "secagg_foreign",
  /** The sender was dropped earlier in the round and may not take part in this stage. */
  notParticipant: "secagg_not_participant",
  /** The message belongs to a stage that has not opened yet. */
  outOfOrder: "secagg_out_of_order",
  /** The message belongs to a stage that has already closed (late or replayed). */
  staleStage: "secagg_stale_stage",
  /** The same message was already accepted (an idempotent retry: safe to treat as success). */
  duplicate: "secagg_duplicate",
  /** The device already submitted a different message in this stage. */
  conflict: "secagg_conflict",
  /** A key, ciphertext, share or vector has the wrong length. */
  wrongLength: "secagg_wrong_length",
  /** A public key is of small order or reused by another device. */
  badKey: "secagg_bad_key",
  /** A value is outside its declared range (fixed-point input, modulus, parameters). */
  outOfRange: "secagg_out_of_range",
  /** The round already ended. */
  roundClosed: "secagg_round_closed",
  /** Too few devices remain for the threshold: the round aborts and reveals nothing. */
  belowThreshold: "secagg_below_threshold",
  /** A share ciphertext failed authentication. */
  authentication: "secagg_authentication",
  /** The server's view of the survivors is inconsistent (consistency check, Bonawitz §4). */
  inconsistent: "secagg_inconsistent",
  /**
   * A neighbour's key advertisement is not bound to an admission token of this round, or its
   * signature does not verify (`maliciousServer` preset, `identity.ts`).
   */
  unauthenticated: "secagg_unauthenticated",
  /** A reconstructed secret does not match its advertised public key. */
  reconstruction: "secagg_reconstruction",
} as const;

/** A stable SecAgg error code. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];
