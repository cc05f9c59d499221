/**
 * Wire schemas of the secure-aggregation protocol (Bonawitz et al. CCS 2017, SecAgg+ graph of
 * Bell et al. CCS 2020): every message a device sends (`SecAggClientMessage`) and every stage
 * view the coordinator serves (`SecAggServerView`). Each carries `v: 1`, the round id, the stage
 * and the device's slot in the cohort. Binary values (keys, ciphertexts, masked vectors, slot-set
 * bitmaps) travel as standard base64; lengths are checked by the protocol guard, which knows the
 * round's parameters. On the wire a device sends each message as one binary frame
 * (`application/octet-stream`, `./secagg-frame.ts`); this JSON form is what the device keeps in
 * its saved state.
 */
import * as z from "zod/mini";
import { Base64, RoundId, WireVersion } from "./common";

/** Largest cohort (one shard) a round may declare. */
export const MAX_SECAGG_COHORT = 1 << 16;

/** A device's position in the round's cohort list (0-based). */
export const Slot = z.int().check(z.minimum(0), z.maximum(MAX_SECAGG_COHORT - 1));
export type Slot = z.infer<typeof Slot>;

/** Public parameters of a SecAgg round: what every device needs to take part. */
export const SecAggConfig = z.strictObject({
  v: WireVersion,
  roundId: RoundId,
  cohortSize: z.int().check(z.minimum(2), z.maximum(MAX_SECAGG_COHORT)),
  k: z.int().check(z.minimum(2), z.maximum(MAX_SECAGG_COHORT)),
  t: z.int().check(z.minimum(1), z.maximum(MAX_SECAGG_COHORT)),
  dimension: z.int().check(z.minimum(1), z.maximum(1 << 22)),
  valueBits: z.int().check(z.minimum(1), z.maximum(32)),
  modulusBits: z.int().check(z.minimum(2), z.maximum(32)),
  /** Inputs are residues mod 2^m whose sum may wrap (distributed DP); then valueBits = modulusBits. */
  modularInputs: z.optional(z.literal(true)),
  graphSeed: Base64.check(z.describe("32-byte public seed of the neighbour graph")),
  consistencyCheck: z.boolean(),
});
export type SecAggConfig = z.infer<typeof SecAggConfig>;

const header = { v: WireVersion, roundId: RoundId, slot: Slot };

/**
 * A signed key advertisement's identity (`maliciousServer` preset, `../secagg/identity.ts`): the
 * round's Ed25519 identity key, the salt of the token nonce, the admission token (354 bytes) and
 * the signature over (round id, shard, slot, cPk, sPk). Lengths are checked by the protocol.
 */
export const AdvertIdentity = z.strictObject({
  idPk: Base64,
  salt: Base64,
  token: Base64.check(z.maxLength(1024)),
  sig: Base64,
});
export type AdvertIdentity = z.infer<typeof AdvertIdentity>;

/** Stage 0 (Bonawitz §4 round 0): the device's two X25519 public keys, signed under the preset. */
export const AdvertiseKeysMessage = z.strictObject({
  ...header,
  stage: z.literal("advertise-keys"),
  cPk: Base64,
  sPk: Base64,
  identity: z.optional(AdvertIdentity),
});
export type AdvertiseKeysMessage = z.infer<typeof AdvertiseKeysMessage>;

/** One encrypted share payload, addressed to a neighbour. */
export const OutgoingShare = z.strictObject({ to: Slot, ct: Base64 });
export type OutgoingShare = z.infer<typeof OutgoingShare>;

/** Stage 1 (round 1): one sealed box per neighbour with shares of b_u and s_u^SK. */
export const ShareKeysMessage = z.strictObject({
  ...header,
  stage: z.literal("share-keys"),
  shares: z.array(OutgoingShare).check(z.maxLength(MAX_SECAGG_COHORT)),
});
export type ShareKeysMessage = z.infer<typeof ShareKeysMessage>;

/** Stage 2 (round 2): the masked, bit-packed input vector y_u. */
export const MaskedInputMessage = z.strictObject({
  ...header,
  stage: z.literal("masked-input"),
  masked: Base64,
});
export type MaskedInputMessage = z.infer<typeof MaskedInputMessage>;

/** A consistency tag addressed to a neighbour. */
export const OutgoingTag = z.strictObject({ to: Slot, tag: Base64 });
export type OutgoingTag = z.infer<typeof OutgoingTag>;

/** Stage 3 (round 3, consistency check): a MAC over the survivor set for each surviving neighbour. */
export const ConsistencyCheckMessage = z.strictObject({
  ...header,
  stage: z.literal("consistency-check"),
  tags: z.array(OutgoingTag).check(z.maxLength(MAX_SECAGG_COHORT)),
});
export type ConsistencyCheckMessage = z.infer<typeof ConsistencyCheckMessage>;

/** A revealed share of a neighbour's secret. */
export const RevealedShare = z.strictObject({ of: Slot, share: Base64 });
export type RevealedShare = z.infer<typeof RevealedShare>;

/**
 * Stage 4 (round 4, unmask): shares of b_u for surviving neighbours and of s_u^SK for dropped
 * ones, never both for the same neighbour.
 */
export const UnmaskMessage = z.strictObject({
  ...header,
  stage: z.literal("unmask"),
  bShares: z.array(RevealedShare).check(z.maxLength(MAX_SECAGG_COHORT)),
  sShares: z.array(RevealedShare).check(z.maxLength(MAX_SECAGG_COHORT)),
});
export type UnmaskMessage = z.infer<typeof UnmaskMessage>;

/** Any message a device sends, discriminated by `stage`. */
export const SecAggClientMessage = z.discriminatedUnion("stage", [
  AdvertiseKeysMessage,
  ShareKeysMessage,
  MaskedInputMessage,
  ConsistencyCheckMessage,
  UnmaskMessage,
]);
export type SecAggClientMessage = z.infer<typeof SecAggClientMessage>;

/** The coordinator's answer to an accepted message. */
export const SecAggAck = z.strictObject({
  v: WireVersion,
  roundId: RoundId,
  slot: Slot,
  stage: z.enum(["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"]),
  accepted: z.literal(true),
});
export type SecAggAck = z.infer<typeof SecAggAck>;

/** View of stage 0: the round's parameters. */
export const AdvertiseKeysView = z.strictObject({
  ...header,
  stage: z.literal("advertise-keys"),
  config: SecAggConfig,
});
export type AdvertiseKeysView = z.infer<typeof AdvertiseKeysView>;

/** A neighbour's advertised keys, with its identity when it signed them. */
export const NeighbourKeys = z.strictObject({
  slot: Slot,
  cPk: Base64,
  sPk: Base64,
  identity: z.optional(AdvertIdentity),
});
export type NeighbourKeys = z.infer<typeof NeighbourKeys>;

/** View of stage 1: who advertised (U1, a bitmap) and the keys of this device's neighbours. */
export const ShareKeysView = z.strictObject({
  ...header,
  stage: z.literal("share-keys"),
  members: Base64,
  neighbours: z.array(NeighbourKeys),
});
export type ShareKeysView = z.infer<typeof ShareKeysView>;

/** An encrypted share payload, forwarded from a neighbour. */
export const IncomingShare = z.strictObject({ from: Slot, ct: Base64 });
export type IncomingShare = z.infer<typeof IncomingShare>;

/** View of stage 2: the boxes addressed to this device by neighbours that shared (U2). */
export const MaskedInputView = z.strictObject({
  ...header,
  stage: z.literal("masked-input"),
  shares: z.array(IncomingShare),
});
export type MaskedInputView = z.infer<typeof MaskedInputView>;

/** View of stage 3: the survivor set U3 (devices whose masked input arrived), as a bitmap. */
export const ConsistencyCheckView = z.strictObject({
  ...header,
  stage: z.literal("consistency-check"),
  survivors: Base64,
});
export type ConsistencyCheckView = z.infer<typeof ConsistencyCheckView>;

/** A consistency tag forwarded from a neighbour. */
export const IncomingTag = z.strictObject({ from: Slot, tag: Base64 });
export type IncomingTag = z.infer<typeof IncomingTag>;

/** View of stage 4: U3 again and, with the consistency check, the neighbours' tags. */
export const UnmaskView = z.strictObject({
  ...header,
  stage: z.literal("unmask"),
  survivors: Base64,
  tags: z.array(IncomingTag),
});
export type UnmaskView = z.infer<typeof UnmaskView>;

/** View of a finished round. */
export const RoundDoneView = z.strictObject({
  ...header,
  stage: z.literal("done"),
  contributors: z.int().check(z.nonnegative()),
});
export type RoundDoneView = z.infer<typeof RoundDoneView>;

/** View of an aborted round: nothing was revealed, and the code says why. */
export const RoundAbortedView = z.strictObject({
  ...header,
  stage: z.literal("aborted"),
  code: z.string(),
  reason: z.string(),
});
export type RoundAbortedView = z.infer<typeof RoundAbortedView>;

/** Any stage view, discriminated by `stage`. */
export const SecAggServerView = z.discriminatedUnion("stage", [
  AdvertiseKeysView,
  ShareKeysView,
  MaskedInputView,
  ConsistencyCheckView,
  UnmaskView,
  RoundDoneView,
  RoundAbortedView,
]);
export type SecAggServerView = z.infer<typeof SecAggServerView>;
