/**
 * Binary vectors on the wire: little-endian IEEE 754 float64, base64 encoded (RFC 4648 §4).
 * JSON arrays of numbers are avoided: they are 2-3x larger and lossy to parse.
 */
import { base64ToBytes, bytesToBase64 } from "../bytes";

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
