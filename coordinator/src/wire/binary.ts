/**
 * Binary vectors on the wire: little-endian IEEE 754 float64, base64 encoded (RFC 4648 §4).
 * JSON arrays of numbers are avoided: they are 2-3x larger and lossy to parse.
 */

const CHUNK = 0x8000;

/** Encodes bytes as standard padded base64 using the runtime's `btoa`. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Decodes standard padded base64; throws `TypeError` on malformed input. */
export function base64ToBytes(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch (cause) {
    throw new TypeError("invalid base64", { cause });
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Encodes a float vector as base64 of little-endian float64s. */
export function encodeFloat64Vector(values: ArrayLike<number>): string {
  const view = new DataView(new ArrayBuffer(values.length * 8));
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i] as number, true);
  return bytesToBase64(new Uint8Array(view.buffer));
}

/**
 * Decodes base64 little-endian float64s, checking the length against `dimension` and that
 * every value is finite. Throws `RangeError` naming what is wrong.
 */
export function decodeFloat64Vector(text: string, dimension: number): Float64Array {
  const bytes = base64ToBytes(text);
  if (bytes.length !== dimension * 8) {
    throw new RangeError(
      `vector: expected ${dimension} float64 values (${dimension * 8} bytes), got ${bytes.length} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(dimension);
  for (let i = 0; i < dimension; i++) {
    const value = view.getFloat64(i * 8, true);
    if (!Number.isFinite(value)) throw new RangeError(`vector[${i}]: not a finite number`);
    out[i] = value;
  }
  return out;
}
