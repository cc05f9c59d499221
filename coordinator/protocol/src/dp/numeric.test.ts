import { describe, expect, it } from "vitest";
import {
  erf,
  erfc,
  logAbsBinomials,
  logAdd,
  logErfc,
  logNormalCdf,
  logSub,
  logSumExp,
  normalCdf,
} from "./numeric.ts";

describe("special functions", () => {
  it("erf / erfc match published values (A&S Table 7.1, DLMF 7.3)", () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 15);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 15);
    expect(erfc(2)).toBeCloseTo(0.004677734981047266, 17);
    expect(erfc(3) / 2.209049699858544e-5).toBeCloseTo(1, 13);
    expect(erfc(5) / 1.5374597944280349e-12).toBeCloseTo(1, 13);
    expect(erfc(-1)).toBeCloseTo(1.8427007929497148, 15);
    expect(normalCdf(1.96)).toBeCloseTo(0.9750021048517795, 14);
  });

  it("logErfc stays finite and accurate where erfc underflows", () => {
    // erfc(30) = 2.5646562037561116e-393 (mpmath)
    expect(logErfc(30)).toBeCloseTo(Math.log(2.564656203756112) - 393 * Math.LN10, 10);
    expect(logErfc(-40)).toBeCloseTo(Math.LN2, 15);
    expect(logNormalCdf(-40)).toBeCloseTo(-804.6084420137538, 9);
    expect(Math.exp(logErfc(2.5)) / erfc(2.5)).toBeCloseTo(1, 14);
  });

  it("log-space sums", () => {
    expect(logAdd(Math.log(2), Math.log(3))).toBeCloseTo(Math.log(5), 15);
    expect(logSub(Math.log(5), Math.log(3))).toBeCloseTo(Math.log(2), 15);
    expect(logSub(1, 1)).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(logSub(1, 2))).toBe(true);
    expect(logSumExp([1000, 1000])).toBeCloseTo(1000 + Math.LN2, 12);
  });

  it("binomial coefficients of real order carry their sign", () => {
    const { logAbs, sign } = logAbsBinomials(1.5, 4);
    // C(1.5, k) = 1, 1.5, 0.375, -0.0625, 0.0234375
    const expected = [1, 1.5, 0.375, -0.0625, 0.0234375];
    expected.forEach((c, k) => {
      expect(sign[k]! * Math.exp(logAbs[k]!)).toBeCloseTo(c, 14);
    });
    const int = logAbsBinomials(10, 10);
    expect(Math.exp(int.logAbs[5]!)).toBeCloseTo(252, 10);
    expect(int.sign[10]).toBe(1);
  });
});
