import { describe, expect, it } from "vitest";
import { hexToBytes } from "../bytes";
import { ProtocolError } from "./errors";
import {
  consistencyKey,
  consistencyTag,
  generateKeyPair,
  openShares,
  pairwiseMaskSeed,
  RFC7748_VECTOR,
  sealShares,
  shareBoxKey,
  tweetnaclKeyAgreement,
  webCryptoKeyAgreement,
} from "./keys";

const alice = {
  secretKey: hexToBytes(RFC7748_VECTOR.aliceSecret),
  publicKey: hexToBytes(RFC7748_VECTOR.alicePublic),
};
const bob = hexToBytes(RFC7748_VECTOR.bobPublic);

describe("X25519 key agreement", () => {
  it.each([tweetnaclKeyAgreement, webCryptoKeyAgreement])(
    "$name reproduces RFC 7748 §6.1",
    async (backend) => {
      const [shared] = await backend.agreeMany(alice, [bob]);
      expect(shared).toEqual(hexToBytes(RFC7748_VECTOR.shared));
    },
  );

  it.each([tweetnaclKeyAgreement, webCryptoKeyAgreement])(
    "$name rejects small-order peer keys",
    async (backend) => {
      await expect(backend.agreeMany(alice, [new Uint8Array(32)])).rejects.toBeInstanceOf(ProtocolError);
    },
  );

  it("both backends agree on random keys", async () => {
    let i = 0;
    const random = (n: number) => Uint8Array.from({ length: n }, () => (i = (i * 31 + 7) & 0xff));
    const a = generateKeyPair(random);
    const peers = [generateKeyPair(random).publicKey, generateKeyPair(random).publicKey];
    expect(await webCryptoKeyAgreement.agreeMany(a, peers)).toEqual(
      await tweetnaclKeyAgreement.agreeMany(a, peers),
    );
  });
});

describe("derived keys", () => {
  const shared = new Uint8Array(32).fill(7);

  it("pairwise mask seeds are symmetric and bound to the round and pair", () => {
    expect(pairwiseMaskSeed(shared, "r_a", 3, 9)).toEqual(pairwiseMaskSeed(shared, "r_a", 9, 3));
    expect(pairwiseMaskSeed(shared, "r_a", 3, 9)).not.toEqual(pairwiseMaskSeed(shared, "r_b", 3, 9));
    expect(pairwiseMaskSeed(shared, "r_a", 3, 9)).not.toEqual(pairwiseMaskSeed(shared, "r_a", 3, 8));
  });

  it("share boxes open only with the key of their direction and round", () => {
    const box = sealShares(shareBoxKey(shared, "r_a", 1, 2), new Uint8Array([1, 2, 3]));
    expect(openShares(shareBoxKey(shared, "r_a", 1, 2), box)).toEqual(new Uint8Array([1, 2, 3]));
    expect(() => openShares(shareBoxKey(shared, "r_a", 2, 1), box)).toThrow(ProtocolError);
    expect(() => openShares(shareBoxKey(shared, "r_b", 1, 2), box)).toThrow(ProtocolError);
  });

  it("consistency tags depend on the survivor set", () => {
    const key = consistencyKey(shared, "r_a", 1, 2);
    expect(consistencyTag(key, "r_a", new Uint8Array([3]))).toHaveLength(16);
    expect(consistencyTag(key, "r_a", new Uint8Array([3]))).not.toEqual(
      consistencyTag(key, "r_a", new Uint8Array([7])),
    );
  });
});
