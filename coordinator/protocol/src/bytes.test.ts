import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { base64ToBytes, bytesToBase64, decodeSlotSet, encodeSlotSet } from "./bytes";

describe("base64 (RFC 4648 §10 test vectors)", () => {
  const vectors: Array<[string, string]> = [
    ["", ""],
    ["f", "Zg=="],
    ["fo", "Zm8="],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="],
    ["foobar", "Zm9vYmFy"],
  ];
  it.each(vectors)("%j ↔ %j", (plain, encoded) => {
    expect(bytesToBase64(new TextEncoder().encode(plain))).toBe(encoded);
    expect(new TextDecoder().decode(base64ToBytes(encoded))).toBe(plain);
  });

  it("round-trips and agrees with btoa", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = bytesToBase64(bytes);
        expect(text).toBe(btoa(String.fromCharCode(...bytes)));
        expect(base64ToBytes(text)).toEqual(bytes);
      }),
    );
  });

  it("rejects malformed input", () => {
    for (const bad of ["Zg=", "Z===", "Zm9v!A==", "Zé==", "=Zg="])
      expect(() => base64ToBytes(bad)).toThrow(TypeError);
  });
});

describe("slot sets", () => {
  it("encode 1,000 slots in 125 bytes and round-trip", () => {
    const slots = [0, 7, 8, 999];
    const bitmap = encodeSlotSet(slots, 1000);
    expect(bitmap.length).toBe(125);
    expect(bitmap[0]).toBe(0b1000_0001);
    expect(decodeSlotSet(bitmap, 1000)).toEqual(slots);
    expect(() => decodeSlotSet(new Uint8Array([0, 0x80]), 12)).toThrow(RangeError);
  });
});

describe("the base64 schema (linear scan)", () => {
  const REFERENCE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  it("accepts exactly what the RFC 4648 §4 padded-base64 regex accepts", async () => {
    const { Base64 } = await import("./wire/common");
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."AZaz09+/=-_ é"), maxLength: 12 }), (text) => {
        expect(Base64.safeParse(text).success).toBe(REFERENCE.test(text));
      }),
      { numRuns: 2000 },
    );
  });

  it("reads a 100,000-item rank-32 model's 4.8 MB of weights, where the regex overflows the stack", async () => {
    const { Base64 } = await import("./wire/common");
    const weights = bytesToBase64(new Uint8Array(3_600_000).fill(7));
    expect(weights.length).toBe(4_800_000);
    expect(Base64.safeParse(weights).success).toBe(true);
    expect(Base64.safeParse(`${weights.slice(1)}A`).success).toBe(true);
    expect(Base64.safeParse(`${weights.slice(0, -1)}-`).success).toBe(false);
  });
});
