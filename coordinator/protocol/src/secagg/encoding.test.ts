import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addPackedInPlace,
  decodeFixedPointSum,
  encodeFixedPoint,
  modulusBitsFor,
  packedLength,
  packWords,
  unpackWords,
} from "./encoding";

const coins = (byte: number) => (length: number) => new Uint8Array(length).fill(byte);

/** A tiny deterministic byte source for tests (an LCG; never for real secrets). */
function lcgBytes(seed: number) {
  let state = seed >>> 0;
  return (length: number) =>
    Uint8Array.from({ length }, () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    });
}

describe("fixed-point encoding, known answers", () => {
  it("maps [-1, 1] onto [0, 3] with 2 value bits and rounds stochastically", () => {
    // scaled(x) = (x + 1)/2 · 3: -1 → 0, 1 → 3, 0 → 1.5, 0.2 → 1.8.
    expect(Array.from(encodeFixedPoint([-1, 1, 0, 0.2], { clip: 1, valueBits: 2 }, coins(0)))).toEqual([
      0, 3, 2, 2,
    ]);
    expect(Array.from(encodeFixedPoint([-1, 1, 0, 0.2], { clip: 1, valueBits: 2 }, coins(0xff)))).toEqual([
      0, 3, 1, 1,
    ]);
  });

  it("clips out-of-range values and rejects NaN", () => {
    expect(
      Array.from(encodeFixedPoint([-50, 50, Number.POSITIVE_INFINITY], { clip: 2, valueBits: 4 }, coins(0))),
    ).toEqual([0, 15, 15]);
    expect(() => encodeFixedPoint([Number.NaN], { clip: 1, valueBits: 4 })).toThrow(RangeError);
  });

  it("decodes a sum: S·2c/(2^b - 1) - n·c", () => {
    // Two contributors at b = 2, c = 1: S = 3 means (1) + (-1) + ... : 3·2/3 - 2 = 0.
    expect(Array.from(decodeFixedPointSum(new Uint32Array([3, 6, 0]), 2, { clip: 1, valueBits: 2 }))).toEqual(
      [0, 2, -2],
    );
  });

  it("computes m = b + ⌈log2 n⌉ + margin", () => {
    expect(modulusBitsFor(16, 1000)).toBe(26);
    expect(modulusBitsFor(16, 1024)).toBe(26);
    expect(modulusBitsFor(16, 1025)).toBe(27);
    expect(modulusBitsFor(16, 1, 2)).toBe(18);
    expect(() => modulusBitsFor(24, 1 << 10)).toThrow(RangeError);
  });

  it("packs LSB first: [1, 2, 3] in 2 bits is 0b00111001 = 57", () => {
    expect(Array.from(packWords(new Uint32Array([1, 2, 3]), 2))).toEqual([57]);
    // 26 ones then a 1: bits 0..25 set, bit 26 set; byte 3 holds bits 24..26.
    expect(Array.from(packWords(new Uint32Array([0x3ffffff, 1]), 26))).toEqual([255, 255, 255, 7, 0, 0, 0]);
    expect(() => packWords(new Uint32Array([4]), 2)).toThrow(RangeError);
    expect(() => unpackWords(new Uint8Array([0x40]), 3, 2)).toThrow(/padding/);
  });
});

describe("fixed-point encoding, properties", () => {
  it("pack/unpack round-trips for every width 1..32", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), fc.array(fc.nat(), { maxLength: 40 }), (bits, raw) => {
        const words = Uint32Array.from(raw, (w) => (bits === 32 ? w >>> 0 : w % 2 ** bits));
        const packed = packWords(words, bits);
        expect(packed.length).toBe(packedLength(words.length, bits));
        expect(unpackWords(packed, words.length, bits)).toEqual(words);
      }),
    );
  });

  it("never encodes outside [0, 2^b - 1] and is unbiased in expectation", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -10, max: 10, noNaN: true }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 255 }),
        (x, b, coin) => {
          const [q] = encodeFixedPoint([x], { clip: 3, valueBits: b }, coins(coin));
          expect(q).toBeGreaterThanOrEqual(0);
          expect(q).toBeLessThanOrEqual(2 ** b - 1);
        },
      ),
    );
    // Mean over many coins approaches the real-valued scaled input (0.3 → 1.95 at b = 2, c = 1).
    const random = lcgBytes(0);
    const q = encodeFixedPoint(new Array(20000).fill(0.3), { clip: 1, valueBits: 2 }, random);
    const mean = q.reduce((a, v) => a + v, 0) / q.length;
    expect(Math.abs(mean - 1.95)).toBeLessThan(0.02);
  });

  it("overflow is impossible: n worst-case inputs sum below 2^m", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 100000 }), (b, n) => {
        fc.pre(b + Math.ceil(Math.log2(n)) <= 32);
        const m = modulusBitsFor(b, n);
        // The largest possible true sum, n · (2^b - 1), is strictly below 2^m ...
        expect(n * (2 ** b - 1)).toBeLessThan(2 ** m);
        // ... so adding the encodings mod 2^m gives the true sum (here with n all-max inputs).
        const top = 2 ** b - 1;
        let acc = 0;
        for (let i = 0; i < Math.min(n, 64); i++) acc = (acc + top) % 2 ** m;
        expect(acc).toBe(Math.min(n, 64) * top);
      }),
    );
  });
});

describe("adding a packed input into the running sum", () => {
  it("equals unpack-then-add mod 2^m for every width, length and offset", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer(),
        (bits, count, offset, seed) => {
          const random = lcgBytes(seed);
          const word = () => random(4).reduce((a, b) => a * 256 + b, 0) % 2 ** bits;
          const acc = Uint32Array.from({ length: count }, word);
          const input = Uint32Array.from({ length: count }, word);
          // The packed bytes at an odd offset of a larger buffer, as inside a frame.
          const packed = packWords(input, bits);
          const framed = new Uint8Array(offset + packed.length + 3);
          framed.set(packed, offset);
          const expected = Array.from(acc, (a, i) => (a + (input[i] as number)) % 2 ** bits);
          addPackedInPlace(acc, framed.subarray(offset, offset + packed.length), bits);
          expect(Array.from(acc)).toEqual(expected);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("refuses a wrong length or nonzero padding bits before touching the sum", () => {
    const acc = Uint32Array.of(1, 2, 3);
    const packed = packWords(Uint32Array.of(1, 1, 1), 5); // 15 bits in 2 bytes: 1 padding bit
    expect(() => addPackedInPlace(acc, packed.subarray(0, 1), 5)).toThrow(/expected 2 bytes/);
    const padded = packed.slice();
    padded[1] = (padded[1] as number) | 0x80;
    expect(() => addPackedInPlace(acc, padded, 5)).toThrow(/padding/);
    expect(Array.from(acc)).toEqual([1, 2, 3]);
  });
});
