/**
 * SecAgg messages as binary frames (`application/octet-stream`): the one encoder and the one
 * decoder of the protocol. A device sends every message as a frame; the coordinator decodes it
 * once, where it arrives, into typed bytes (`SecAggFrameMessage`), and hands those to the stage
 * handlers: nothing on the path re-encodes to base64 or parses again.
 *
 * Layout: "FPSA" ‖ v ‖ stage index ‖ slot (u16 LE) ‖ round-id length ‖ round id (ASCII) ‖ body,
 * where binary fields are length-prefixed (u16 LE), lists are count-prefixed (u16 LE) and the
 * masked vector runs to the end of the frame. The encoding is canonical (one frame per message,
 * no trailing bytes), so the SHA-256 of a frame identifies its message for duplicate detection.
 */
import * as z from "zod/mini";
import { base64ToBytes } from "../bytes";
import { RoundId, WireVersion } from "./common";
import {
  MAX_SECAGG_COHORT,
  type SecAggClientMessage,
  SecAggClientMessage as SecAggJsonMessage,
  Slot,
} from "./secagg";

const Bytes = z.custom<Uint8Array>((x) => x instanceof Uint8Array, "expected bytes");
const header = { v: WireVersion, roundId: RoundId, slot: Slot };
const list = <T extends z.ZodMiniType>(item: T) => z.array(item).check(z.maxLength(MAX_SECAGG_COHORT));

/** Typed-bytes form of every client message (same fields as the JSON form, bytes for base64). */
export const SecAggFrameMessage = z.discriminatedUnion("stage", [
  z.strictObject({
    ...header,
    stage: z.literal("advertise-keys"),
    cPk: Bytes,
    sPk: Bytes,
    identity: z.optional(z.strictObject({ idPk: Bytes, salt: Bytes, token: Bytes, sig: Bytes })),
  }),
  z.strictObject({
    ...header,
    stage: z.literal("share-keys"),
    shares: list(z.strictObject({ to: Slot, ct: Bytes })),
  }),
  z.strictObject({ ...header, stage: z.literal("masked-input"), masked: Bytes }),
  z.strictObject({
    ...header,
    stage: z.literal("consistency-check"),
    tags: list(z.strictObject({ to: Slot, tag: Bytes })),
  }),
  z.strictObject({
    ...header,
    stage: z.literal("unmask"),
    bShares: list(z.strictObject({ of: Slot, share: Bytes })),
    sShares: list(z.strictObject({ of: Slot, share: Bytes })),
  }),
]);
export type SecAggFrameMessage = z.infer<typeof SecAggFrameMessage>;
/** The frame form of one stage's message. */
export type FrameOf<S extends SecAggFrameMessage["stage"]> = Extract<SecAggFrameMessage, { stage: S }>;

/** Magic of the binary frames: "FPSA". */
const FRAME_MAGIC = [0x46, 0x50, 0x53, 0x41];
const FRAME_STAGES = ["advertise-keys", "share-keys", "masked-input", "consistency-check", "unmask"] as const;
/** Offset of the stage byte in a frame (after the magic and the version). */
export const FRAME_STAGE_OFFSET = 5;

type Field = Uint8Array | string;
const asBytes = (f: Field): Uint8Array => (typeof f === "string" ? base64ToBytes(f) : f);

/** Writes a frame into one buffer sized up front (two passes over the message). */
class FrameWriter {
  private parts: Array<number | Uint8Array> = [];
  private size = 0;
  u8(v: number): void {
    this.parts.push(v);
    this.size += 1;
  }
  u16(v: number): void {
    this.u8(v & 0xff);
    this.u8(v >>> 8);
  }
  raw(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }
  field(f: Field): void {
    const b = asBytes(f);
    if (b.length > 0xffff) throw new RangeError("frame field longer than 65535 bytes");
    this.u16(b.length);
    this.raw(b);
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      if (typeof p === "number") out[o++] = p;
      else {
        out.set(p, o);
        o += p.length;
      }
    }
    return out;
  }
}

/** Reads a frame, failing with `RangeError` on truncation. Fields are views into the frame. */
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
  field(): Uint8Array {
    return this.take(this.u16());
  }
  rest(): Uint8Array {
    return this.take(this.frame.length - this.offset);
  }
}

/**
 * Encodes a client message, in its JSON form (base64 fields, as a device keeps it) or its frame
 * form (bytes), as one binary frame.
 */
export function encodeClientFrame(message: SecAggClientMessage | SecAggFrameMessage): Uint8Array {
  const w = new FrameWriter();
  const id = new TextEncoder().encode(message.roundId);
  for (const b of FRAME_MAGIC) w.u8(b);
  w.u8(message.v);
  w.u8(FRAME_STAGES.indexOf(message.stage));
  w.u16(message.slot);
  w.u8(id.length);
  w.raw(id);
  switch (message.stage) {
    case "advertise-keys":
      w.field(message.cPk);
      w.field(message.sPk);
      // A signed advertisement appends its identity; an unsigned one ends here (canonical).
      if (message.identity) {
        for (const f of [
          message.identity.idPk,
          message.identity.salt,
          message.identity.token,
          message.identity.sig,
        ])
          w.field(f);
      }
      break;
    case "share-keys":
      w.u16(message.shares.length);
      for (const s of message.shares) {
        w.u16(s.to);
        w.field(s.ct);
      }
      break;
    case "masked-input":
      w.raw(asBytes(message.masked));
      break;
    case "consistency-check":
      w.u16(message.tags.length);
      for (const t of message.tags) {
        w.u16(t.to);
        w.field(t.tag);
      }
      break;
    case "unmask":
      for (const reveals of [message.bShares, message.sShares]) {
        w.u16(reveals.length);
        for (const r of reveals) {
          w.u16(r.of);
          w.field(r.share);
        }
      }
      break;
  }
  return w.done();
}

/** A frame that cannot be decoded: `where` names the part (`frame`, or a field path). */
export class FrameError extends RangeError {
  constructor(
    readonly where: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${where}: ${message}`, options);
    this.name = "FrameError";
  }
}

/**
 * Decodes a binary frame into typed bytes and validates it once (version, round id, slot, list
 * sizes) with `SecAggFrameMessage`. Binary fields are views into `frame`, not copies. Throws
 * `FrameError` naming the field; byte lengths are the protocol guard's (it knows the round).
 */
export function decodeClientFrame(frame: Uint8Array): SecAggFrameMessage {
  let raw: Record<string, unknown>;
  const r = new FrameReader(frame);
  try {
    if (FRAME_MAGIC.some((b) => r.u8() !== b)) throw new RangeError("bad magic");
    const v = r.u8();
    const stage = FRAME_STAGES[r.u8()];
    if (stage === undefined) throw new RangeError("unknown stage");
    const slot = r.u16();
    const roundId = new TextDecoder().decode(r.take(r.u8()));
    const items = <T>(read: () => T): T[] => Array.from({ length: r.u16() }, read);
    raw = { v, roundId, slot, stage };
    switch (stage) {
      case "advertise-keys":
        raw.cPk = r.field();
        raw.sPk = r.field();
        if (r.offset < frame.length) {
          raw.identity = { idPk: r.field(), salt: r.field(), token: r.field(), sig: r.field() };
        }
        break;
      case "share-keys":
        raw.shares = items(() => ({ to: r.u16(), ct: r.field() }));
        break;
      case "masked-input":
        raw.masked = r.rest();
        break;
      case "consistency-check":
        raw.tags = items(() => ({ to: r.u16(), tag: r.field() }));
        break;
      case "unmask":
        raw.bShares = items(() => ({ of: r.u16(), share: r.field() }));
        raw.sShares = items(() => ({ of: r.u16(), share: r.field() }));
        break;
    }
    if (r.offset !== frame.length) throw new RangeError("trailing bytes");
  } catch (cause) {
    throw new FrameError("frame", cause instanceof Error ? cause.message : "malformed", { cause });
  }
  const parsed = SecAggFrameMessage.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FrameError(issue?.path.length ? issue.path.join(".") : "frame", issue?.message ?? "invalid", {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * Converts a JSON-form message (validated here with `SecAggClientMessage`) to its frame form:
 * for in-process hosts and tests that hold JSON messages. Throws `FrameError` naming the field.
 */
export function frameMessageFromJson(input: unknown): SecAggFrameMessage {
  const parsed = SecAggJsonMessage.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FrameError(issue?.path.length ? issue.path.join(".") : "message", issue?.message ?? "invalid", {
      cause: parsed.error,
    });
  }
  const m = parsed.data;
  const head = { v: m.v, roundId: m.roundId, slot: m.slot };
  switch (m.stage) {
    case "advertise-keys": {
      const id = m.identity;
      return {
        ...head,
        stage: m.stage,
        cPk: base64ToBytes(m.cPk),
        sPk: base64ToBytes(m.sPk),
        ...(id
          ? {
              identity: {
                idPk: base64ToBytes(id.idPk),
                salt: base64ToBytes(id.salt),
                token: base64ToBytes(id.token),
                sig: base64ToBytes(id.sig),
              },
            }
          : {}),
      };
    }
    case "share-keys":
      return {
        ...head,
        stage: m.stage,
        shares: m.shares.map((s) => ({ to: s.to, ct: base64ToBytes(s.ct) })),
      };
    case "masked-input":
      return { ...head, stage: m.stage, masked: base64ToBytes(m.masked) };
    case "consistency-check":
      return { ...head, stage: m.stage, tags: m.tags.map((t) => ({ to: t.to, tag: base64ToBytes(t.tag) })) };
    case "unmask": {
      const reveal = (r: { of: number; share: string }) => ({ of: r.of, share: base64ToBytes(r.share) });
      return { ...head, stage: m.stage, bShares: m.bShares.map(reveal), sShares: m.sShares.map(reveal) };
    }
  }
}
