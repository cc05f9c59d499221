/**
 * Wire schemas of the secure-aggregation protocol (Bonawitz et al. CCS 2017, SecAgg+ graph of
 * Bell et al. CCS 2020): every message a device sends (`SecAggClientMessage`) and every stage
 * view the coordinator serves (`SecAggServerView`). Each carries `v: 1`, the round id, the stage
 * and the device's slot in the cohort. Binary values (keys, ciphertexts, masked vectors, slot-set
 * bitmaps) travel as standard base64; lengths are checked by the protocol guard, which knows the
 * round's parameters. `encodeClientFrame` offers every message as one binary frame
 * (`application/octet-stream`) for hosts that want to avoid base64's 4/3 expansion.
 */
import * as z from "zod/mini";
import { base64ToBytes, bytesToBase64 } from "../bytes";
import { Base64, RoundId, WireVersion } from "./common";

/**
 * Standard padded base64 (RFC 4648 §4), checked by a linear scan rather than the shared regex:
 * a masked vector is ~350,000 characters and the regex costs milliseconds per message.
 */
export const BulkBase64 = z
  .string()
  .check(z.maxLength(16 * 1024 * 1024), z.refine(isPaddedBase64, "standard padded base64"));

const BASE64_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  BASE64_CHAR[c.charCodeAt(0)] = 1;

function isPaddedBase64(text: string): boolean {
  const n = text.length;
  if (n % 4 !== 0) return false;
  const pad = n > 0 && text.charCodeAt(n - 1) === 61 ? (text.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  const end = n - pad;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || BASE64_CHAR[c] === 0) return false;
  }
  return true;
}

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

/** Stage 0 (Bonawitz §4 round 0): the device's two X25519 public keys. */
export const AdvertiseKeysMessage = z.strictObject({
  ...header,
  stage: z.literal("advertise-keys"),
  cPk: Base64,
  sPk: Base64,
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
  masked: BulkBase64,
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

/** A neighbour's advertised keys. */
export const NeighbourKeys = z.strictObject({ slot: Slot, cPk: Base64, sPk: Base64 });
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

/** Magic of the binary frames: "FPSA". */
const FRAME_MAGIC = [0x46, 0x50, 0x53, 0x41];
const FRAME_STAGES = ["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"] as const;

/** Appends bytes to a growing frame. */
class FrameWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;
  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u8(v: number): void {
    this.bytes(new Uint8Array([v]));
  }
  u16(v: number): void {
    this.bytes(new Uint8Array([v & 0xff, v >>> 8]));
  }
  field(text: string): void {
    const b = base64ToBytes(text);
    if (b.length > 0xffff) throw new RangeError("frame field longer than 65535 bytes");
    this.u16(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** Reads a frame, failing with `RangeError` on truncation. */
class FrameReader {
  offset = 0;
  constructor(private readonly frame: Uint8Array) {}
  take(n: number): Uint8Array {
    if (this.offset + n > this.frame.length) throw new RangeError("frame truncated");
    const out = this.frame.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0] as number;
  }
  u16(): number {
    const b = this.take(2);
    return (b[0] as number) | ((b[1] as number) << 8);
  }
  field(): string {
    return bytesToBase64(this.take(this.u16()));
  }
  rest(): Uint8Array {
    return this.take(this.frame.length - this.offset);
  }
}

/**
 * Encodes any client message as one compact binary frame for `application/octet-stream`:
 * "FPSA" ‖ v ‖ stage index ‖ slot (u16 LE) ‖ round-id length ‖ round id (ASCII) ‖ body, where
 * binary fields are length-prefixed (u16 LE) and lists are count-prefixed. It carries exactly the
 * JSON message's content without base64 and key names: at d = 65,536 and k = 54 this is what
 * keeps a device's upload within 1.7× its raw 16-bit vector.
 */
export function encodeClientFrame(message: SecAggClientMessage): Uint8Array {
  const w = new FrameWriter();
  const id = new TextEncoder().encode(message.roundId);
  w.bytes(new Uint8Array(FRAME_MAGIC));
  w.u8(message.v);
  w.u8(FRAME_STAGES.indexOf(message.stage));
  w.u16(message.slot);
  w.u8(id.length);
  w.bytes(id);
  switch (message.stage) {
    case "advertise-keys":
      w.field(message.cPk);
      w.field(message.sPk);
      break;
    case "share-keys":
      w.u16(message.shares.length);
      for (const s of message.shares) {
        w.u16(s.to);
        w.field(s.ct);
      }
      break;
    case "masked-input":
      w.bytes(base64ToBytes(message.masked));
      break;
    case "consistency-check":
      w.u16(message.tags.length);
      for (const t of message.tags) {
        w.u16(t.to);
        w.field(t.tag);
      }
      break;
    case "unmask":
      for (const list of [message.bShares, message.sShares]) {
        w.u16(list.length);
        for (const r of list) {
          w.u16(r.of);
          w.field(r.share);
        }
      }
      break;
  }
  return w.done();
}

/**
 * Decodes a binary frame back into the message and validates it with the same zod schema as the
 * JSON form; throws `RangeError` on a bad frame and `z.ZodError` on invalid content.
 */
export function decodeClientFrame(frame: Uint8Array): SecAggClientMessage {
  const r = new FrameReader(frame);
  if (FRAME_MAGIC.some((b) => r.u8() !== b)) throw new RangeError("frame: bad magic");
  const v = r.u8();
  const stage = FRAME_STAGES[r.u8()];
  if (stage === undefined) throw new RangeError("frame: unknown stage");
  const slot = r.u16();
  const roundId = new TextDecoder().decode(r.take(r.u8()));
  const head = { v, roundId, slot, stage };
  const list = <T>(read: () => T): T[] => Array.from({ length: r.u16() }, read);
  let body: Record<string, unknown>;
  switch (stage) {
    case "advertise-keys":
      body = { cPk: r.field(), sPk: r.field() };
      break;
    case "share-keys":
      body = { shares: list(() => ({ to: r.u16(), ct: r.field() })) };
      break;
    case "masked-input":
      body = { masked: bytesToBase64(r.rest()) };
      break;
    case "consistency-check":
      body = { tags: list(() => ({ to: r.u16(), tag: r.field() })) };
      break;
    case "unmask": {
      const bShares = list(() => ({ of: r.u16(), share: r.field() }));
      body = { bShares, sShares: list(() => ({ of: r.u16(), share: r.field() })) };
      break;
    }
  }
  if (r.offset !== frame.length) throw new RangeError("frame: trailing bytes");
  return SecAggClientMessage.parse({ ...head, ...body });
}
