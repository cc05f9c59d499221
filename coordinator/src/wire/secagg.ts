/**
 * Wire schemas of the secure-aggregation protocol (Bonawitz et al. CCS 2017, SecAgg+ graph of
 * Bell et al. CCS 2020): every message a device sends (`SecAggClientMessage`) and every stage
 * view the coordinator serves (`SecAggServerView`). Each carries `v: 1`, the round id, the stage
 * and the device's slot in the cohort. Binary values (keys, ciphertexts, masked vectors, slot-set
 * bitmaps) travel as standard base64; lengths are checked by the protocol guard, which knows the
 * round's parameters. `encodeMaskedInputFrame` offers the masked vector as raw bytes
 * (`application/octet-stream`) for hosts that want to avoid base64's 4/3 expansion.
 */
import * as z from "zod";
import { base64ToBytes, bytesToBase64 } from "./binary";
import { Base64, RoundId, WireVersion } from "./common";

/** Largest cohort (one shard) a round may declare. */
export const MAX_SECAGG_COHORT = 1 << 16;

/** A device's position in the round's cohort list (0-based). */
export const Slot = z
  .number()
  .int()
  .min(0)
  .max(MAX_SECAGG_COHORT - 1);
export type Slot = z.infer<typeof Slot>;

/** Public parameters of a SecAgg round: what every device needs to take part. */
export const SecAggConfig = z
  .object({
    v: WireVersion,
    roundId: RoundId,
    cohortSize: z.number().int().min(2).max(MAX_SECAGG_COHORT),
    k: z.number().int().min(2).max(MAX_SECAGG_COHORT),
    t: z.number().int().min(1).max(MAX_SECAGG_COHORT),
    dimension: z
      .number()
      .int()
      .min(1)
      .max(1 << 22),
    valueBits: z.number().int().min(1).max(31),
    modulusBits: z.number().int().min(2).max(32),
    graphSeed: Base64.describe("32-byte public seed of the neighbour graph"),
    consistencyCheck: z.boolean(),
  })
  .strict();
export type SecAggConfig = z.infer<typeof SecAggConfig>;

const header = { v: WireVersion, roundId: RoundId, slot: Slot };

/** Stage 0 (Bonawitz §4 round 0): the device's two X25519 public keys. */
export const AdvertiseKeysMessage = z
  .object({ ...header, stage: z.literal("advertise-keys"), cPk: Base64, sPk: Base64 })
  .strict();
export type AdvertiseKeysMessage = z.infer<typeof AdvertiseKeysMessage>;

/** One encrypted share payload, addressed to a neighbour. */
export const OutgoingShare = z.object({ to: Slot, ct: Base64 }).strict();
export type OutgoingShare = z.infer<typeof OutgoingShare>;

/** Stage 1 (round 1): one sealed box per neighbour with shares of b_u and s_u^SK. */
export const ShareKeysMessage = z
  .object({
    ...header,
    stage: z.literal("share-keys"),
    shares: z.array(OutgoingShare).max(MAX_SECAGG_COHORT),
  })
  .strict();
export type ShareKeysMessage = z.infer<typeof ShareKeysMessage>;

/** Stage 2 (round 2): the masked, bit-packed input vector y_u. */
export const MaskedInputMessage = z
  .object({ ...header, stage: z.literal("masked-input"), masked: Base64 })
  .strict();
export type MaskedInputMessage = z.infer<typeof MaskedInputMessage>;

/** A consistency tag addressed to a neighbour. */
export const OutgoingTag = z.object({ to: Slot, tag: Base64 }).strict();
export type OutgoingTag = z.infer<typeof OutgoingTag>;

/** Stage 3 (round 3, consistency check): a MAC over the survivor set for each surviving neighbour. */
export const ConsistencyCheckMessage = z
  .object({
    ...header,
    stage: z.literal("consistency-check"),
    tags: z.array(OutgoingTag).max(MAX_SECAGG_COHORT),
  })
  .strict();
export type ConsistencyCheckMessage = z.infer<typeof ConsistencyCheckMessage>;

/** A revealed share of a neighbour's secret. */
export const RevealedShare = z.object({ of: Slot, share: Base64 }).strict();
export type RevealedShare = z.infer<typeof RevealedShare>;

/**
 * Stage 4 (round 4, unmask): shares of b_u for surviving neighbours and of s_u^SK for dropped
 * ones, never both for the same neighbour.
 */
export const UnmaskMessage = z
  .object({
    ...header,
    stage: z.literal("unmask"),
    bShares: z.array(RevealedShare).max(MAX_SECAGG_COHORT),
    sShares: z.array(RevealedShare).max(MAX_SECAGG_COHORT),
  })
  .strict();
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
export const SecAggAck = z
  .object({
    v: WireVersion,
    roundId: RoundId,
    slot: Slot,
    stage: z.enum(["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"]),
    accepted: z.literal(true),
  })
  .strict();
export type SecAggAck = z.infer<typeof SecAggAck>;

/** View of stage 0: the round's parameters. */
export const AdvertiseKeysView = z
  .object({ ...header, stage: z.literal("advertise-keys"), config: SecAggConfig })
  .strict();
export type AdvertiseKeysView = z.infer<typeof AdvertiseKeysView>;

/** A neighbour's advertised keys. */
export const NeighbourKeys = z.object({ slot: Slot, cPk: Base64, sPk: Base64 }).strict();
export type NeighbourKeys = z.infer<typeof NeighbourKeys>;

/** View of stage 1: who advertised (U1, a bitmap) and the keys of this device's neighbours. */
export const ShareKeysView = z
  .object({ ...header, stage: z.literal("share-keys"), members: Base64, neighbours: z.array(NeighbourKeys) })
  .strict();
export type ShareKeysView = z.infer<typeof ShareKeysView>;

/** An encrypted share payload, forwarded from a neighbour. */
export const IncomingShare = z.object({ from: Slot, ct: Base64 }).strict();
export type IncomingShare = z.infer<typeof IncomingShare>;

/** View of stage 2: the boxes addressed to this device by neighbours that shared (U2). */
export const MaskedInputView = z
  .object({ ...header, stage: z.literal("masked-input"), shares: z.array(IncomingShare) })
  .strict();
export type MaskedInputView = z.infer<typeof MaskedInputView>;

/** View of stage 3: the survivor set U3 (devices whose masked input arrived), as a bitmap. */
export const ConsistencyCheckView = z
  .object({ ...header, stage: z.literal("consistency-check"), survivors: Base64 })
  .strict();
export type ConsistencyCheckView = z.infer<typeof ConsistencyCheckView>;

/** A consistency tag forwarded from a neighbour. */
export const IncomingTag = z.object({ from: Slot, tag: Base64 }).strict();
export type IncomingTag = z.infer<typeof IncomingTag>;

/** View of stage 4: U3 again and, with the consistency check, the neighbours' tags. */
export const UnmaskView = z
  .object({ ...header, stage: z.literal("unmask"), survivors: Base64, tags: z.array(IncomingTag) })
  .strict();
export type UnmaskView = z.infer<typeof UnmaskView>;

/** View of a finished round. */
export const RoundDoneView = z
  .object({ ...header, stage: z.literal("done"), contributors: z.number().int().nonnegative() })
  .strict();
export type RoundDoneView = z.infer<typeof RoundDoneView>;

/** View of an aborted round: nothing was revealed, and the code says why. */
export const RoundAbortedView = z
  .object({ ...header, stage: z.literal("aborted"), code: z.string(), reason: z.string() })
  .strict();
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

/** Magic and version of the binary masked-input frame. */
const FRAME_MAGIC = [0x46, 0x50, 0x53, 0x41]; // "FPSA"

/**
 * Encodes a masked-input message as one binary frame for `application/octet-stream`:
 * "FPSA" ‖ v (1 byte) ‖ slot (u32 LE) ‖ round-id length (1 byte) ‖ round id (ASCII) ‖ packed
 * vector. Saves base64's 33% on the one large message of a round.
 */
export function encodeMaskedInputFrame(message: MaskedInputMessage): Uint8Array {
  const id = new TextEncoder().encode(message.roundId);
  const payload = base64ToBytes(message.masked);
  const out = new Uint8Array(4 + 1 + 4 + 1 + id.length + payload.length);
  out.set(FRAME_MAGIC, 0);
  out[4] = message.v;
  new DataView(out.buffer).setUint32(5, message.slot, true);
  out[9] = id.length;
  out.set(id, 10);
  out.set(payload, 10 + id.length);
  return out;
}

/** Decodes and validates a binary masked-input frame; throws `z.ZodError` or `RangeError`. */
export function decodeMaskedInputFrame(frame: Uint8Array): MaskedInputMessage {
  if (frame.length < 10 || FRAME_MAGIC.some((b, i) => frame[i] !== b))
    throw new RangeError("masked-input frame: bad magic");
  const idLength = frame[9] as number;
  if (frame.length < 10 + idLength) throw new RangeError("masked-input frame: truncated");
  return MaskedInputMessage.parse({
    v: frame[4],
    roundId: new TextDecoder().decode(frame.subarray(10, 10 + idLength)),
    slot: new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(5, true),
    stage: "masked-input",
    masked: bytesToBase64(frame.subarray(10 + idLength)),
  });
}
