import { planCentralRound, planDistributedRound, seededRandom } from "@fedprofile/coordinator/dp";
import { describe, expect, it } from "vitest";
import { DpConfigError, prepareDpContribution } from "./index";

/** Deterministic randomBytes from a seeded ChaCha20 stream (tests only). */
function seededBytes(seed: string): (n: number) => Uint8Array {
  const rng = seededRandom(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const w = rng.nextUint32();
      out[i] = w & 0xff;
      out[i + 1] = (w >>> 8) & 0xff;
      out[i + 2] = (w >>> 16) & 0xff;
      out[i + 3] = w >>> 24;
    }
    return out;
  };
}

const distributed = planDistributedRound({
  dim: 300,
  clipNorm: 1,
  expectedClients: 100,
  modulusBits: 20,
  rotationSeed: "0f".repeat(16),
  targetEpsilon: 4,
  delta: 1e-6,
  rounds: 50,
  samplingRate: 1,
  threshold: 70,
});

describe("SDK distributed-DP client half", () => {
  const update = Float64Array.from({ length: 300 }, (_, i) => ((i % 7) - 3) * 0.01);

  it("produces integers in [0, 2^m) of the padded length, reproducibly for injected randomness", () => {
    const a = prepareDpContribution(distributed, update, { randomBytes: seededBytes("a") });
    const b = prepareDpContribution(distributed, update, { randomBytes: seededBytes("a") });
    expect(a.values.length).toBe(512);
    expect(a.modulusBits).toBe(20);
    expect(a.trustModel).toBe("distributed");
    expect(a.values.every((v) => v >= 0 && v < 2 ** 20 && Number.isInteger(v))).toBe(true);
    expect([...a.values]).toEqual([...b.values]);
    const c = prepareDpContribution(distributed, update, { randomBytes: seededBytes("c") });
    expect([...c.values]).not.toEqual([...a.values]);
  });

  it("its output carries no raw update value, and clipping is reported only locally", () => {
    // Non-integers: an integer raw value could coincide with a noised output by chance.
    const big = Float64Array.from({ length: 300 }, (_, i) => 3.0005 + i / 1000);
    const r = prepareDpContribution(distributed, big, { randomBytes: seededBytes("x") });
    expect(r.local.clipped).toBe(true);
    const raw = new Set([...big].map((v) => v.toString()));
    expect([...r.values].some((v) => raw.has(v.toString()))).toBe(false);
    expect(Object.keys(r).sort()).toEqual(["local", "mechanism", "modulusBits", "trustModel", "values"]);
  });

  it("rejects a malformed configuration with a labelled error", () => {
    expect(() => prepareDpContribution({ ...distributed, modulusBits: 40 }, update)).toThrow(DpConfigError);
    expect(() => prepareDpContribution({ ...distributed, localSigma: { num: -1, exp2: 0 } }, update)).toThrow(
      /localSigma/,
    );
    expect(() => prepareDpContribution(distributed, new Float64Array(5))).toThrow(RangeError);
  });

  it("central mode adds no noise share on the device", () => {
    const central = planCentralRound({
      dim: 300,
      clipNorm: 1,
      expectedClients: 100,
      rotationSeed: "0f".repeat(16),
      noiseMultiplier: 1,
    });
    const zero = new Float64Array(300);
    const r = prepareDpContribution(central, zero, { randomBytes: seededBytes("z") });
    expect(r.trustModel).toBe("central");
    expect(r.values.every((v) => v === 0)).toBe(true);
  });
});
