/**
 * Privacy assertions over the request bodies a device sent, strict enough to fail on an unmasked
 * upload of the same vector (issue 11; shown once against a client with its masks removed).
 *
 * - `expectNoPlaintext`: no body, binary or JSON, contains the device's vector in any encoding the
 *   client could send it in: float64/float32 bytes, decimal text, its fixed-point codes as u32,
 *   u16 and bit-packed at the value width and at the round's modulus, and base64 of each. JSON
 *   bodies are also searched inside every base64 string they carry, decoded.
 * - `expectMaskedUploads`: every masked-input frame, unpacked at the round's modulus, is far from
 *   each device's plaintext codes: not every coordinate lies within `slack` of them (mod 2^m). A
 *   uniformly masked word lands that near with probability (2·slack + 1)/2^m, so a d-word upload
 *   passes by chance with (that)^d, which the caller keeps negligible (checked here).
 */
import { decodeClientFrame, packWords, unpackWords } from "@fedprofile/coordinator/secagg";
import { expect } from "vitest";

type Body = string | Uint8Array;

/** A device's vector and, when known, the codes the round encodes it to before masking. */
export interface Plaintext {
  values: readonly number[];
  /** Each coordinate's possible codes (stochastic rounding: floor or floor + 1), < 2^valueBits. */
  codes?: ReadonlyArray<readonly number[]>;
  valueBits?: number;
}

/** Fixed-point codes a value may round to (`encodeFixedPoint`: floor or floor + 1). */
export function fixedPointCodes(values: readonly number[], clip: number, valueBits: number): number[][] {
  const top = 2 ** valueBits - 1;
  return values.map((x) => {
    const scaled = ((Math.min(clip, Math.max(-clip, x)) + clip) / (2 * clip)) * top;
    const f = Math.floor(scaled);
    return f === scaled ? [f] : [f, Math.min(top, f + 1)];
  });
}

/** Every code vector of `codes` (one choice per coordinate); bounded so small vectors only. */
function combinations(codes: ReadonlyArray<readonly number[]>): number[][] {
  let out: number[][] = [[]];
  for (const options of codes) out = out.flatMap((prefix) => options.map((c) => [...prefix, c]));
  if (out.length > 4096) throw new RangeError("too many code vectors to enumerate");
  return out;
}

const ascii = (text: string) => Buffer.from(text, "latin1");
const b64 = (bytes: Uint8Array) => [
  ascii(Buffer.from(bytes).toString("base64")),
  ascii(Buffer.from(bytes).toString("base64url")),
];

/** The byte strings that would reveal `p` in a body, named by encoding. */
export function plaintextNeedles(p: Plaintext, modulusBits: number): Array<{ name: string; bytes: Buffer }> {
  const out: Array<{ name: string; bytes: Buffer }> = [];
  const add = (name: string, bytes: Uint8Array) => {
    out.push({ name, bytes: Buffer.from(bytes) });
    for (const [i, text] of b64(bytes).entries())
      out.push({ name: `${name} as base64${i ? "url" : ""}`, bytes: text });
  };
  add("float64 LE", new Uint8Array(Float64Array.from(p.values).buffer));
  add("float32 LE", new Uint8Array(Float32Array.from(p.values).buffer));
  out.push({ name: "decimal text", bytes: ascii(p.values.map(String).join(",")) });
  out.push({ name: "decimal text (JSON)", bytes: ascii(JSON.stringify(p.values)) });
  for (const codes of p.codes ? combinations(p.codes) : []) {
    const words = Uint32Array.from(codes);
    add(`codes ${codes} as u32`, new Uint8Array(words.buffer));
    if ((p.valueBits ?? 32) <= 16)
      add(`codes ${codes} as u16`, new Uint8Array(Uint16Array.from(codes).buffer));
    for (const bits of new Set([p.valueBits ?? 32, modulusBits]))
      add(`codes ${codes} packed at ${bits} bits`, packWords(words, bits));
    out.push({ name: `codes ${codes} as decimal text`, bytes: ascii(codes.join(",")) });
  }
  // Needles shorter than 6 bytes would turn up in random bytes by chance.
  return out.filter((n) => n.bytes.length >= 6);
}

/** The byte blobs to search in a body: itself, and each base64 string inside a JSON body, decoded. */
function blobs(body: Body): Buffer[] {
  if (typeof body !== "string") return [Buffer.from(body)];
  const out = [Buffer.from(body, "utf8")];
  for (const m of body.matchAll(/"([A-Za-z0-9+/_-]{8,}={0,2})"/g)) {
    const text = m[1] as string;
    out.push(Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64"));
  }
  return out;
}

/** Fails, naming the body and the encoding, if any body carries any device's plaintext. */
export function expectNoPlaintext(
  bodies: readonly Body[],
  plaintexts: readonly Plaintext[],
  modulusBits: number,
) {
  expect(bodies.length).toBeGreaterThan(0);
  const needles = plaintexts.flatMap((p, i) =>
    plaintextNeedles(p, modulusBits).map((n) => ({ ...n, device: i })),
  );
  for (const [b, body] of bodies.entries()) {
    for (const blob of blobs(body)) {
      for (const n of needles) {
        expect(blob.includes(n.bytes), `body ${b} carries device ${n.device}'s vector (${n.name})`).toBe(
          false,
        );
      }
    }
  }
}

/** The packed masked vectors of every masked-input frame among `bodies`. */
export function maskedUploads(bodies: readonly Body[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const body of bodies) {
    if (typeof body === "string") continue;
    let message: ReturnType<typeof decodeClientFrame>;
    try {
      message = decodeClientFrame(body);
    } catch {
      continue; // not a SecAgg frame
    }
    if (message.stage === "masked-input") out.push(message.masked);
  }
  return out;
}

/**
 * Fails if some masked upload, unpacked at any modulus m its length allows (≥ `minBits`), is
 * within `slack` (mod 2^m) of some reference vector on every coordinate: the upload would then be
 * (a rounding or a noising of) the plaintext. With `jointly`, fails only if every upload is: for
 * vectors too short to judge one by one (a client that does not mask leaves them all so).
 */
export function expectMaskedUploads(
  bodies: readonly Body[],
  dimension: number,
  references: ReadonlyArray<readonly number[]>,
  options: { slack: number; uploads: number; minBits: number; jointly?: boolean },
) {
  const uploads = maskedUploads(bodies);
  expect(uploads).toHaveLength(options.uploads);
  const nearAt = (packed: Uint8Array, m: number): number | null => {
    let words: Uint32Array;
    try {
      words = unpackWords(packed, dimension, m);
    } catch {
      return null; // nonzero padding bits: not packed at this width
    }
    const modulus = 2 ** m;
    for (const [r, ref] of references.entries()) {
      const near = Array.from(words).every((w, i) => {
        const diff = (((w - (ref[i] as number)) % modulus) + modulus) % modulus;
        return Math.min(diff, modulus - diff) <= options.slack;
      });
      if (near) return r;
    }
    return null;
  };
  const widths = [];
  for (let m = options.minBits; m <= 32; m++)
    if (uploads.every((p) => Math.ceil((dimension * m) / 8) === p.length)) widths.push(m);
  expect(widths.length, "the uploads fit no common modulus").toBeGreaterThan(0);
  for (const m of widths) {
    // The chance that uniformly masked uploads pass for plaintext ones.
    const one = references.length * ((2 * options.slack + 1) / 2 ** m) ** dimension;
    const chance = options.jointly ? one ** uploads.length : uploads.length * one;
    expect(chance, "the check must be able to tell masked from plaintext").toBeLessThan(1e-5);
    const near = uploads.map((p) => nearAt(p, m));
    if (options.jointly) {
      expect(
        near.every((r) => r !== null),
        `every masked upload is a plaintext at m = ${m}`,
      ).toBe(false);
    } else {
      for (const [u, r] of near.entries())
        expect(r, `masked upload ${u} is device ${r}'s plaintext at m = ${m}`).toBeNull();
    }
  }
}
