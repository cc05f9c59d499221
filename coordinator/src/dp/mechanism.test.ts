import {
  addModular,
  centralNoiseScale,
  centralNoiseStddev,
  centralSigma,
  chacha20Block,
  conditionalRandomizedRound,
  type DistributedDiscreteGaussianConfig,
  DpRoundConfig,
  decodeAggregate,
  decodedSensitivity,
  discreteGaussianPmf,
  dyadicSigmaAtLeast,
  dyadicValue,
  encodeClientUpdate,
  eventRdpCurve,
  fwht,
  l2Norm,
  nextPowerOfTwo,
  paddedDim,
  rademacherSigns,
  randomizedRound,
  rotateForward,
  rotateInverse,
  sampleDiscreteGaussian,
  seededRandom,
  uniformBelow,
} from "@fedprofile/protocol/dp";
import { describe, expect, it } from "vitest";
import { initClipState, updateClip } from "./adaptive-clipping.ts";
import { centralSecAggFactory, clipFactory, distributedDpFactory, sumFactory } from "./aggregators.ts";
import { planCentralRound, planDistributedRound } from "./planning.ts";

const SEED = "00112233445566778899aabbccddeeff";

describe("ChaCha20 (RFC 8439 Section 2.3.2 test vector)", () => {
  it("block function", () => {
    const key = new Uint32Array(8);
    const kb = new Uint8Array(32).map((_, i) => i);
    for (let i = 0; i < 8; i++)
      key[i] = kb[4 * i]! | (kb[4 * i + 1]! << 8) | (kb[4 * i + 2]! << 16) | (kb[4 * i + 3]! << 24);
    const nonce = new Uint32Array([0x09000000, 0x4a000000, 0x00000000]);
    const out = new Uint32Array(16);
    chacha20Block(key, 1, nonce, out);
    expect([...out.subarray(0, 4)].map((w) => w.toString(16))).toEqual([
      "e4e7f110",
      "15593bd1",
      "1fdd0f50",
      "c47120a3",
    ]);
    expect(out[15]!.toString(16)).toBe("4e3c50a2");
  });
  it("uniformBelow covers its range without bias at small n", () => {
    const rng = seededRandom("u");
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[uniformBelow(rng, 7)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(400);
  });
});

describe("randomised Hadamard rotation (KLS21 Sec. 4.2)", () => {
  it("FWHT twice is n times the identity", () => {
    const x = Float64Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
    const y = x.slice();
    fwht(y);
    fwht(y);
    for (let i = 0; i < 64; i++) expect(y[i]! / 64).toBeCloseTo(x[i]!, 12);
  });
  it("forward then inverse recovers the vector, preserves the norm, and pads to a power of two", () => {
    const rng = seededRandom("rot");
    for (const d of [1, 5, 100, 1000]) {
      const x = Float64Array.from({ length: d }, () => rng.nextUint32() / 2 ** 31 - 1);
      const signs = rademacherSigns(SEED, nextPowerOfTwo(d));
      const y = rotateForward(x, signs);
      expect(y.length).toBe(nextPowerOfTwo(d));
      expect(l2Norm(y)).toBeCloseTo(l2Norm(x), 10);
      const back = rotateInverse(y, signs, d);
      for (let i = 0; i < d; i++) expect(back[i]).toBeCloseTo(x[i]!, 12);
    }
  });
  it("flattens a spike: every rotated coordinate has magnitude norm/sqrt(n)", () => {
    const x = new Float64Array(256);
    x[17] = 5;
    const y = rotateForward(x, rademacherSigns(SEED, 256));
    for (const v of y) expect(Math.abs(v)).toBeCloseTo(5 / 16, 12);
  });
  it("signs are a deterministic function of the public seed", () => {
    expect([...rademacherSigns(SEED, 64)]).toEqual([...rademacherSigns(SEED, 64)]);
    expect([...rademacherSigns(SEED, 64)]).not.toEqual([...rademacherSigns(`${SEED}00`, 64)]);
  });
});

describe("randomised rounding", () => {
  it("is unbiased coordinate-wise", () => {
    const rng = seededRandom("round");
    const x = Float64Array.from([0.1, -2.25, 3.5, 7.9, -0.999]);
    const sum = new Float64Array(x.length);
    const out = new Float64Array(x.length);
    const runs = 40000;
    let offGrid = 0;
    for (let r = 0; r < runs; r++) {
      randomizedRound(rng, x, out);
      for (let i = 0; i < x.length; i++) {
        if (out[i]! !== Math.floor(x[i]!) && out[i]! !== Math.floor(x[i]!) + 1) offGrid++;
        sum[i] = sum[i]! + out[i]!;
      }
    }
    expect(offGrid).toBe(0);
    // Each coordinate's mean is within 4 standard errors (<= 0.5/sqrt(runs)) of the input.
    for (let i = 0; i < x.length; i++)
      expect(Math.abs(sum[i]! / runs - x[i]!)).toBeLessThan(4 * (0.5 / Math.sqrt(runs)));
  });
  it("conditional rounding always meets the KLS21 norm bound", () => {
    const rng = seededRandom("cond");
    const x = Float64Array.from({ length: 512 }, (_, i) => Math.cos(i) * 0.9);
    const beta = Math.exp(-0.5);
    for (let r = 0; r < 50; r++) {
      const { rounded } = conditionalRandomizedRound(rng, x, l2Norm(x), beta);
      const bound = Math.sqrt(
        l2Norm(x) ** 2 + 512 / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (l2Norm(x) + Math.sqrt(512) / 2),
      );
      expect(l2Norm(rounded)).toBeLessThanOrEqual(bound);
    }
  });
});

describe("exact discrete Gaussian sampler (CKS20) vs its pmf", () => {
  // Pearson chi-square over the central bins, tails pooled; critical values at p = 0.001.
  const chi2Crit: Record<number, number> = { 8: 26.12, 14: 36.12, 20: 45.31, 40: 73.4 };
  for (const [sigma, range, df] of [
    [0.5, 4, 8],
    [1.7, 7, 14],
    [3, 10, 20],
    [7.25, 20, 40],
  ] as const) {
    it(`sigma = ${sigma}: chi-square at a fixed seed`, () => {
      const s = dyadicSigmaAtLeast(sigma);
      // The sampler's sigma is the smallest dyadic u/2^k >= sigma with 15 significant bits.
      expect(dyadicValue(s)).toBeGreaterThanOrEqual(sigma);
      expect(dyadicValue(s) / sigma - 1).toBeLessThan(2 ** -14);
      const rng = seededRandom(`dg-${sigma}`);
      const n = 40000;
      const bins = new Float64Array(2 * range + 1);
      let tail = 0;
      for (let i = 0; i < n; i++) {
        const y = sampleDiscreteGaussian(rng, s);
        if (Math.abs(y) > range) tail++;
        else bins[y + range] = bins[y + range]! + 1;
      }
      const { pmf } = discreteGaussianPmf(dyadicValue(s), range);
      let chi = 0;
      let pIn = 0;
      for (let k = 0; k < bins.length; k++) {
        const e = n * pmf[k]!;
        pIn += pmf[k]!;
        if (e >= 5) chi += (bins[k]! - e) ** 2 / e;
      }
      const eTail = n * (1 - pIn);
      if (eTail >= 5) chi += (tail - eTail) ** 2 / eTail;
      else expect(tail).toBeLessThan(20);
      expect(chi).toBeLessThan(chi2Crit[df]!);
    });
  }
  it("large sigma uses the same exact path (mean ~0, variance ~sigma^2)", () => {
    const rng = seededRandom("dg-big");
    const s = dyadicSigmaAtLeast(123456.789);
    let m = 0;
    let v = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const y = sampleDiscreteGaussian(rng, s);
      expect(Number.isInteger(y)).toBe(true);
      m += y;
      v += y * y;
    }
    const sigma = dyadicValue(s);
    expect(Math.abs(m / n)).toBeLessThan((4 * sigma) / Math.sqrt(n));
    expect(Math.abs(v / n / sigma ** 2 - 1)).toBeLessThan(0.05);
  });
});

function ddgConfig(over: Partial<DistributedDiscreteGaussianConfig> = {}): DistributedDiscreteGaussianConfig {
  return DpRoundConfig.parse({
    v: 1,
    mechanism: "distributed_discrete_gaussian",
    dim: 200,
    gamma: 1 / 64,
    beta: 0,
    modulusBits: 24,
    rotationSeed: SEED,
    clipNorm: 4,
    localSigma: { num: 3, exp2: 0 },
    ...over,
  }) as DistributedDiscreteGaussianConfig;
}

describe("distributed discrete Gaussian end to end", () => {
  it("decode(sum(encode)) recovers the sum up to rounding, and wraps modulo 2^m correctly", () => {
    const cfg = ddgConfig({ localSigma: { num: 1, exp2: 20 } }); // ~1e-6 noise in the scaled domain
    const rng = seededRandom("e2e");
    const clients = Array.from({ length: 12 }, (_, c) =>
      Float64Array.from({ length: 200 }, (_, i) => Math.sin(c + i) * 0.25),
    );
    const acc = new Uint32Array(paddedDim(cfg));
    for (const x of clients) addModular(acc, encodeClientUpdate(cfg, x, rng).values);
    const dec = decodeAggregate(cfg, acc, { survivors: clients.length });
    const truth = new Float64Array(200);
    for (const x of clients) for (let i = 0; i < 200; i++) truth[i] = truth[i]! + x[i]!;
    // Unconditional rounding moves each client by at most gamma * sqrt(n) in L2.
    let err = 0;
    for (let i = 0; i < 200; i++) err += (dec.sum[i]! - truth[i]!) ** 2;
    expect(Math.sqrt(err)).toBeLessThan(clients.length * cfg.gamma * Math.sqrt(256));
  });

  it("the aggregate's empirical noise variance is within 5% of survivors x local variance", () => {
    const cfg = ddgConfig();
    const survivors = 8;
    const zero = Array.from({ length: 10 }, () => new Float64Array(200));
    const proc = distributedDpFactory(cfg, {
      sampling: { uniform: false, rate: 1 },
      dropouts: 2,
      rng: seededRandom("var"),
    });
    let state = proc.init();
    let ss = 0;
    let count = 0;
    for (let run = 0; run < 40; run++) {
      const r = proc.next(state, zero);
      state = r.state;
      for (const v of r.result) {
        ss += v * v;
        count++;
      }
      expect(r.measurements["dp"]).toMatchObject({ survivors, trustModel: "distributed" });
    }
    // The discrete Gaussian's exact variance, times survivors, in unscaled units (gamma^2).
    const exactLocal = discreteGaussianPmf(3, 1).variance * cfg.gamma ** 2;
    const predicted = survivors * exactLocal;
    expect(Math.abs(ss / count / predicted - 1)).toBeLessThan(0.05);
    expect(state.events).toHaveLength(40);
    const ev = state.events[0]!.event;
    expect(ev).toMatchObject({
      kind: "distributed_discrete_gaussian",
      noiseShares: survivors,
      samplingRate: 1,
    });
    expect(eventRdpCurve(ev, [2, 8]).every((x) => x > 0)).toBe(true);
  });

  it("central decoding adds exact discrete Gaussian noise on the integers: variance within 5%, on the grid", () => {
    const cfg = planCentralRound({
      dim: 256,
      clipNorm: 1,
      expectedClients: 100,
      modulusBits: 24,
      rotationSeed: SEED,
      noiseMultiplier: 0.8,
    });
    const scale = centralNoiseScale(cfg);
    // Never below the accounted stddev, and at most 2^-14 above it.
    expect(centralNoiseStddev(cfg)).toBeGreaterThanOrEqual(centralSigma(cfg));
    expect(centralNoiseStddev(cfg) / centralSigma(cfg) - 1).toBeLessThan(2 ** -14);
    const rng = seededRandom("central-var");
    let ss = 0;
    let count = 0;
    for (let run = 0; run < 40; run++) {
      const dec = decodeAggregate(cfg, new Uint32Array(256), { survivors: 10, rng });
      for (const v of dec.sum) {
        ss += v * v;
        count++;
      }
      expect(dec.noiseVariance).toBe(centralNoiseStddev(cfg) ** 2);
    }
    const exact = discreteGaussianPmf(scale.num / 2 ** scale.exp2, 1).variance * cfg.gamma ** 2;
    expect(Math.abs(ss / count / exact - 1)).toBeLessThan(0.05);
    // Before the inverse rotation the noise is an integer on the gamma grid: with no rotation
    // to undo (dim 1 pads to 1), every output is a whole number of grid steps.
    const one = planCentralRound({
      dim: 1,
      clipNorm: 1,
      expectedClients: 10,
      rotationSeed: SEED,
      noiseMultiplier: 1,
    });
    for (let i = 0; i < 20; i++) {
      const [v = Number.NaN] = decodeAggregate(one, new Uint32Array(1), { survivors: 1, rng }).sum;
      expect(Math.abs(v / one.gamma - Math.round(v / one.gamma))).toBeLessThan(1e-6);
    }
  });

  it("central plans at 32 bits and 65,536 coordinates stay within the exact sampler's range", () => {
    const cfg = planCentralRound({
      dim: 65_536,
      clipNorm: 1,
      expectedClients: 1000,
      modulusBits: 32,
      rotationSeed: SEED,
      noiseMultiplier: 1.1,
    });
    expect(centralNoiseScale(cfg).num).toBeLessThan(2 ** 26);
    // The grid is still far finer than the noise: rounding adds at most 2^-14 of it.
    expect(cfg.gamma / centralSigma(cfg)).toBeLessThanOrEqual(2 ** -14);
  });

  it("rejects an update of the wrong length and non-finite entries", () => {
    const cfg = ddgConfig();
    const rng = seededRandom("bad");
    expect(() => encodeClientUpdate(cfg, new Float64Array(3), rng)).toThrow(RangeError);
    const x = new Float64Array(200);
    x[3] = Number.NaN;
    expect(() => encodeClientUpdate(cfg, x, rng)).toThrow(TypeError);
  });
});

describe("planning", () => {
  it("distributed plan meets the target with only the threshold surviving", () => {
    const cfg = planDistributedRound({
      dim: 1000,
      clipNorm: 1,
      expectedClients: 100,
      modulusBits: 20,
      rotationSeed: SEED,
      targetEpsilon: 5,
      delta: 1e-6,
      rounds: 100,
      samplingRate: 1,
      threshold: 70,
    });
    expect(cfg.gamma).toBeGreaterThan(0);
    const ev = {
      kind: "distributed_discrete_gaussian" as const,
      samplingRate: 1,
      gamma: cfg.gamma,
      localStddev: dyadicValue(cfg.localSigma) * cfg.gamma,
      noiseShares: 70,
      l2Sensitivity: cfg.clipNorm,
      beta: cfg.beta,
      dim: 1024,
    };
    const orders = Array.from({ length: 63 }, (_, i) => i + 2);
    const curve = eventRdpCurve(ev, orders);
    const eps = Math.min(
      ...orders.map(
        (a, k) => 100 * curve[k]! + Math.log1p(-1 / a) - (Math.log(1e-6) + Math.log(a)) / (a - 1),
      ),
    );
    expect(eps).toBeLessThanOrEqual(5 + 1e-6);
  });

  it("central plan with adaptive clipping follows Andrew et al.'s effective noise multiplier", () => {
    const cfg = planCentralRound({
      dim: 100,
      clipNorm: 1,
      expectedClients: 100,
      rotationSeed: SEED,
      noiseMultiplier: 1,
      clipCountStddev: 5,
    });
    const zDelta = (1 - (2 * 5) ** -2) ** -0.5;
    expect(cfg.clipIndicator).toBeDefined();
    // Total stddev z * C_joint equals z_delta * C.
    expect(cfg.noiseMultiplier * cfg.clipNorm).toBeCloseTo(zDelta * 1, 10);
    expect(decodedSensitivity(cfg)).toBeGreaterThanOrEqual(cfg.clipNorm);
  });
});

describe("adaptive clipping (Andrew et al. 2021)", () => {
  it("the clip moves towards the target quantile through the noisy indicator coordinate", () => {
    const opts = { initialClip: 0.1, targetQuantile: 0.5, learningRate: 0.2, countStddev: 1 };
    let clip = initClipState(opts);
    const rng = seededRandom("adaptive");
    // Update norms spread over [0.5, 1.5]: the median is 1.
    const norms = Array.from({ length: 50 }, (_, i) => 0.5 + i / 49);
    for (let round = 0; round < 60; round++) {
      const cfg = planCentralRound({
        dim: 16,
        clipNorm: clip.clipNorm,
        expectedClients: 50,
        rotationSeed: SEED,
        noiseMultiplier: 0.5,
        clipCountStddev: opts.countStddev,
      });
      const inputs = norms.map((n) => {
        const x = new Float64Array(16);
        x[round % 16] = n;
        return x;
      });
      const r = centralSecAggFactory(cfg, { sampling: { uniform: false, rate: 1 }, rng }).next(
        { events: [], round: 0 },
        inputs,
      );
      const count = r.measurements["dp"] as { clipCount: number };
      clip = updateClip(opts, clip, count.clipCount, inputs.length).state;
    }
    expect(clip.clipNorm).toBeGreaterThan(0.8);
    expect(clip.clipNorm).toBeLessThan(1.25);
    expect(clip.releases).toBe(60);
  });
});

describe("composable aggregators", () => {
  it("clip decorator around the plain sum", () => {
    const p = clipFactory(1, sumFactory());
    const r = p.next(p.init(), [Float64Array.from([3, 4]), Float64Array.from([0.3, 0.4])]);
    expect([...r.result].map((v) => Number(v.toFixed(12)))).toEqual([0.9, 1.2]);
    expect(r.measurements).toMatchObject({ clip: { clipNorm: 1, clipped: 1 }, inner: { count: 2 } });
  });
});
