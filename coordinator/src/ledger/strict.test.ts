/**
 * Strict parsing and strict signatures: I-JSON (RFC 7493) in the reader, lone surrogates refused
 * by the canonicaliser (RFC 8785), and RFC 8032's checks on both Ed25519 paths.
 */

import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import nacl from "tweetnacl";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "./canonical-json.ts";
import { signerFromSeed, verifyDigestSignature, verifySignaturesNative } from "./chain.ts";
import { readLedgerDocument } from "./document.ts";
import { ED25519_L, isCanonicalPoint } from "./ed25519.ts";
import { parseStrictJson } from "./strict-json.ts";
import { MalformedJsonRow } from "./verify.ts";

describe("strict JSON (RFC 7493)", () => {
  it("reads what JSON.parse reads when the text is I-JSON", () => {
    const text =
      '{"a":[1,-0.5,2e3,"x\\u00e9\\ud83d\\ude00"],"b":{"c":null,"d":true,"e":false},"__proto__":1}';
    const { value, violations } = parseStrictJson(text);
    expect(violations).toEqual([]);
    expect(value).toEqual(JSON.parse(text));
    expect(Object.keys(value as object)).toContain("__proto__");
  });

  it("reports duplicate members, lone surrogates, overflowing numbers and a BOM with their paths", () => {
    expect(parseStrictJson('{"x":{"e":0.01,"e":3}}').violations).toEqual([
      { path: ["x", "e"], message: expect.stringMatching(/duplicate member "e"/) },
    ]);
    // The first value is kept, so nothing of the duplicate can win unnoticed.
    expect(parseStrictJson('{"e":1,"e":2}').value).toEqual({ e: 1 });
    expect(parseStrictJson('["\\udead"]').violations[0]?.message).toMatch(/lone surrogate/);
    expect(parseStrictJson('["\\ude00\\ud83d"]').violations).toHaveLength(1);
    expect(parseStrictJson("[1e400]").violations[0]?.message).toMatch(/IEEE 754/);
    expect(parseStrictJson("\ufeff[]").violations[0]?.message).toMatch(/byte order mark/);
  });

  it("throws on text that is not JSON", () => {
    for (const bad of ["{", "[1,]", "{'a':1}", "[01]", "[NaN]", '["\t"]', "[1] x", '{"a" 1}'])
      expect(() => parseStrictJson(bad), bad).toThrow(SyntaxError);
  });

  it("a ledger document names the row that breaks I-JSON and refuses violations outside rows", () => {
    const doc = readLedgerDocument('{"v":1,"nextCursor":null,"entries":[{"a":1},{"b":1,"b":2}]}');
    expect(doc.rows[0]).toEqual({ a: 1 });
    expect(doc.rows[1]).toBeInstanceOf(MalformedJsonRow);
    expect((doc.rows[1] as MalformedJsonRow).message).toMatch(/\$\.b: duplicate member/);
    expect(doc.members).toEqual({ v: 1, nextCursor: null });
    expect(() => readLedgerDocument('{"v":1,"v":2,"entries":[]}')).toThrow(/not I-JSON at \$\.v/);
    expect(readLedgerDocument('[{"x":"\\udead"}]').rows[0]).toBeInstanceOf(MalformedJsonRow);
  });
});

describe("canonical JSON (RFC 8785)", () => {
  it("refuses lone surrogates in values and member names, keeps paired ones", () => {
    expect(() => canonicalJson({ a: "\udead" })).toThrow(/lone surrogate at \$\.a/);
    expect(() => canonicalJson({ "\ud800": 1 })).toThrow(/lone surrogate/);
    expect(canonicalJson({ a: "\ud83d\ude00" })).toBe('{"a":"😀"}');
  });
});

describe("Ed25519 (RFC 8032) on both paths", () => {
  const signer = signerFromSeed(new Uint8Array(32).fill(7));
  const digest = new Uint8Array(32).fill(0xab);
  const good = nacl.sign.detached(digest, signer.secretKey);
  const withS = (s: bigint) => {
    const sig = good.slice();
    for (let i = 32; i < 64; i++) {
      sig[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    return sig;
  };
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(good[i]!);
  const nonCanonical = withS(s + ED25519_L);

  it("tweetnacl alone accepts S + L (the malleability the checks remove)", () => {
    expect(nacl.sign.detached.verify(digest, nonCanonical, signer.publicKey)).toBe(true);
  });

  it("both paths accept the signature and reject S + L, a non-canonical R and a non-canonical key", async () => {
    const p = 2n ** 255n - 19n;
    const encode = (n: bigint) => {
      const b = new Uint8Array(32);
      for (let i = 0; i < 32; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
      return b;
    };
    const badR = good.slice();
    badR.set(encode(p + 1n), 0); // y = p + 1 encodes y = 1 non-canonically
    const inputs: Array<[Uint8Array, Uint8Array, boolean]> = [
      [good, signer.publicKey, true],
      [nonCanonical, signer.publicKey, false],
      [badR, signer.publicKey, false],
      [good, encode(p + 2n), false],
      [good, encode(1n | (1n << 255n)), false], // x = 0 with the sign bit set
    ];
    for (const [sig, key, ok] of inputs) {
      expect(verifyDigestSignature(bytesToHex(digest), bytesToHex(sig), key)).toBe(ok);
      const native = await verifySignaturesNative(
        [{ hash: bytesToHex(digest), signature: bytesToHex(sig) }],
        key,
      );
      expect(native === null ? ok : native[0]).toBe(ok);
    }
    expect(isCanonicalPoint(hexToBytes(bytesToHex(signer.publicKey)))).toBe(true);
  });
});
