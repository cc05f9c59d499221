import { describe, expect, it } from "vitest";
import { aesCtrPrg, blake3Prg, expandMask, prgCandidates, xsalsa20Prg } from "./prg";

const seed = Uint8Array.from({ length: 32 }, (_, i) => i * 5);

describe("mask PRGs", () => {
  it("AES-128-CTR keystream block i is AES_k(i), checked through AES-CBC with a zero IV", async () => {
    // CBC with IV 0 encrypts a single block P to AES_k(P): an independent path to AES_k(counter_i).
    const length = 3 * 65536 + 100;
    const stream = await aesCtrPrg(128).expand(seed, length);
    const key = await crypto.subtle.importKey("raw", seed.slice(0, 16), { name: "AES-CBC" }, false, [
      "encrypt",
    ]);
    for (const block of [0, 1, 4095, 4096, 4097, 12288]) {
      const counter = new Uint8Array(16);
      new DataView(counter.buffer).setUint32(12, block);
      const ecb = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(16) }, key, counter),
      );
      expect(stream.subarray(16 * block, 16 * block + 16)).toEqual(ecb.subarray(0, 16));
    }
  });

  it.each(prgCandidates().map((p) => [p.name, p] as const))(
    "%s is deterministic and prefix-consistent",
    async (_name, prg) => {
      const long = await prg.expand(seed, 70000);
      expect(await prg.expand(seed, 70000)).toEqual(long);
      expect(await prg.expand(seed, 1000)).toEqual(long.subarray(0, 1000));
      const other = await prg.expand(
        Uint8Array.from(seed, (b) => b ^ 1),
        1000,
      );
      expect(other).not.toEqual(long.subarray(0, 1000));
    },
  );

  it("rejects seeds that are not 32 bytes", async () => {
    for (const prg of [aesCtrPrg(), blake3Prg(), xsalsa20Prg()])
      await expect(prg.expand(new Uint8Array(16), 8)).rejects.toThrow(RangeError);
  });

  it("reduces mask words mod 2^m", async () => {
    const mask = await expandMask(seed, 4096, 10);
    expect(mask.every((w) => w < 1024)).toBe(true);
    const full = await expandMask(seed, 4096, 32);
    expect(full.some((w) => w >= 2 ** 31)).toBe(true);
    expect(Array.from(mask)).toEqual(Array.from(full, (w) => w & 1023));
  });
});
