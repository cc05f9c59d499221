import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  combineShares,
  FIELD_PRIME,
  invMod,
  lagrangeAtZero,
  mulMod,
  type Share,
  splitSecret,
} from "./shamir";

/** Randomness that yields the given little-endian 32-bit words, in order. */
function words(...values: number[]) {
  const queue = [...values];
  return (length: number) => {
    const out = new Uint8Array(length);
    const view = new DataView(out.buffer);
    for (let i = 0; i + 4 <= length && queue.length > 0; i += 4)
      view.setUint32(i, queue.shift() as number, true);
    return out;
  };
}

/** A tiny deterministic byte source for tests (an LCG; never for real secrets). */
function lcgBytes(seed: number) {
  let state = seed >>> 0;
  return (length: number) =>
    Uint8Array.from({ length }, () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    });
}

describe("prime field GF(2^26 - 5)", () => {
  it("uses a prime: no divisor up to its square root (trial division)", () => {
    for (let d = 2; d * d <= FIELD_PRIME; d++) expect(FIELD_PRIME % d).not.toBe(0);
  });

  it("inverts by hand-checkable values", () => {
    // 2 · (p + 1)/2 = p + 1 ≡ 1.
    expect(invMod(2)).toBe((FIELD_PRIME + 1) / 2);
    expect(mulMod(3, invMod(3))).toBe(1);
    expect(() => invMod(0)).toThrow(RangeError);
  });

  it("computes Lagrange basis values at zero for points 1, 2, 3: (3, -3, 1)", () => {
    // λ1 = 2·3/((2-1)(3-1)) = 3, λ2 = 1·3/((1-2)(3-2)) = -3, λ3 = 1·2/((1-3)(2-3)) = 1.
    expect(lagrangeAtZero([1, 2, 3])).toEqual([3, FIELD_PRIME - 3, 1]);
  });
});

describe("Shamir sharing, known answers", () => {
  it("shares secret 1 with f(x) = 1 + 5x", () => {
    // A 1-byte secret is one chunk; t = 2 draws one coefficient, 5, from the injected words.
    const shares = splitSecret(new Uint8Array([1]), 2, [1, 2, 3], words(5));
    expect(shares.map((s) => s.y[0])).toEqual([6, 11, 16]);
    expect(combineShares([shares[0] as Share, shares[2] as Share], 1)).toEqual(new Uint8Array([1]));
  });

  it("wraps modulo p: f(x) = 0xffffff + (p - 1)x", () => {
    // f(1) = 16777215 + p - 1 ≡ 16777214, f(2) = 16777215 + 2p - 2 ≡ 16777213.
    const shares = splitSecret(new Uint8Array([0xff, 0xff, 0xff]), 2, [1, 2], words(FIELD_PRIME - 1));
    expect(shares.map((s) => s.y[0])).toEqual([16777214, 16777213]);
    expect(combineShares(shares, 3)).toEqual(new Uint8Array([0xff, 0xff, 0xff]));
  });

  it("rejects draws ≥ p (rejection sampling) instead of reducing them", () => {
    // 0x3ffffff ≥ p is skipped; 7 is used: f(x) = 2 + 7x.
    const shares = splitSecret(new Uint8Array([2]), 2, [1, 2], words(0x3ffffff, 7));
    expect(shares[0]?.y[0]).toBe(9);
  });

  it("splits a 32-byte secret into 11 chunks, each with its own polynomial", () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
    const shares = splitSecret(secret, 1, [4], words());
    // t = 1: constant polynomials, so the share is the chunks themselves (24-bit little-endian).
    expect(shares[0]?.y.length).toBe(11);
    expect(shares[0]?.y[0]).toBe(0 | (1 << 8) | (2 << 16));
    expect(shares[0]?.y[10]).toBe(30 | (31 << 8));
  });
});

describe("Shamir sharing, properties", () => {
  const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

  it("any t of n shares rebuild the secret", () => {
    fc.assert(
      fc.property(
        secretArb,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer(),
        (secret, t, extra, seed) => {
          const n = t + extra;
          const xs = Array.from(
            { length: n },
            (_, i) => 1 + (((i * 7919 + seed) >>> 0) % 100000) + i * 100001,
          );
          const random = lcgBytes(seed);
          const shares = splitSecret(secret, t, xs, random);
          const pick = [...shares]
            .sort((a, b) => ((a.x * 31 + seed) % 97) - ((b.x * 31 + seed) % 97))
            .slice(0, t);
          expect(combineShares(pick, 32)).toEqual(secret);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("t - 1 shares are consistent with every secret (perfect hiding, checked for t = 2)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 0xffffff }), (x, other) => {
        // One share (x, y) of a degree-1 polynomial: for any other secret s' the line through
        // (0, s') and (x, y) is a valid sharing, so the share alone rules out nothing.
        const [share] = splitSecret(new Uint8Array([1, 2, 3]), 2, [x, x + 1], words(12345));
        const y = share?.y[0] as number;
        const slope = mulMod((y - other + FIELD_PRIME) % FIELD_PRIME, invMod(x));
        expect((other + mulMod(slope, x)) % FIELD_PRIME).toBe(y);
      }),
    );
  });

  it("rejects repeated or zero points and a threshold above the share count", () => {
    const random = words();
    expect(() => splitSecret(new Uint8Array(1), 2, [1, 1], random)).toThrow(RangeError);
    expect(() => splitSecret(new Uint8Array(1), 1, [0], random)).toThrow(RangeError);
    expect(() => splitSecret(new Uint8Array(1), 3, [1, 2], random)).toThrow(RangeError);
  });
});
