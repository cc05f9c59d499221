/**
 * The node issuer's OpenSSL signer (examples/node-blind-signer.ts) against blindrsa-ts: the same
 * key gives byte-identical blind signatures (RSASP1 is deterministic), the token it finishes
 * verifies at the coordinator, and it refuses what RFC 9474 §4.3 refuses.
 */
import { createTokenIssuer, generateIssuerKeys } from "@fedprofile/coordinator/admission";
import {
  createTokenRequest,
  importIssuerPublicKey,
  tokenKeyId,
  verifyAdmissionToken,
} from "@fedprofile/protocol/admission";
import { beforeAll, describe, expect, it } from "vitest";
import { nodeBlindSigner } from "../../examples/node-blind-signer";

let keys: CryptoKeyPair;
let otherKeys: CryptoKeyPair;
beforeAll(async () => {
  [keys, otherKeys] = await Promise.all([generateIssuerKeys(), generateIssuerKeys()]);
}, 60_000);

describe("the issuer's RSA private operation on OpenSSL", () => {
  it("signs exactly as blindrsa-ts, and its token verifies at the coordinator", async () => {
    const reference = await createTokenIssuer({ name: "shop.example", keys });
    const native = await createTokenIssuer({ name: "shop.example", keys, blindSign: nodeBlindSigner(keys) });
    const pending = await createTokenRequest("shop.example", "r_round1", native.publicKey);
    const who = { customerId: "c1" };
    const [fromNative, fromReference] = [
      await native.issue(who, pending.request),
      await reference.issue(who, pending.request),
    ];
    expect(Buffer.from(fromNative).equals(Buffer.from(fromReference))).toBe(true);
    const token = await pending.finalize(fromNative);
    const key = {
      issuerName: "shop.example",
      publicKey: await importIssuerPublicKey(native.publicKey),
      keyId: tokenKeyId(native.publicKey),
    };
    expect((await verifyAdmissionToken(token, "r_round1", key)).nonce).toHaveLength(32);
  }, 60_000);

  it("refuses a message not below the modulus as the requester's error, and never releases a faulty signature", async () => {
    const sign = nodeBlindSigner(keys);
    await expect(sign(new Uint8Array(256).fill(0xff))).rejects.toThrow(RangeError);
    await expect(sign(new Uint8Array(255))).rejects.toThrow(/expected 256 bytes/);
    // A signer whose private half is not the issuer's: the RSAVP1 check stops its signature.
    // Either way round, so that both a signature below and one above the other modulus are met
    // (CI once drew the second, which the check then let through as an OpenSSL error).
    for (const [a, b] of [
      [otherKeys, keys],
      [keys, otherKeys],
    ] as const) {
      const mismatched = nodeBlindSigner({ privateKey: a.privateKey, publicKey: b.publicKey });
      for (let i = 1; i <= 8; i++) {
        const message = new Uint8Array(256);
        message[0] = 0x08 * i; // below any 2048-bit modulus (top bit set)
        message[255] = i;
        await expect(mismatched(message)).rejects.toThrow(/signing failure/);
      }
    }
    // Through the issuer, m ≥ n is a 400 naming the request.
    const issuer = await createTokenIssuer({ name: "shop.example", keys, blindSign: sign });
    const request = new Uint8Array(3 + 256).fill(0xff);
    request.set([0, 2, issuer.keyId[issuer.keyId.length - 1] as number]);
    await expect(issuer.issue({ customerId: "c2" }, request)).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/^tokenRequest: /),
    });
  }, 60_000);
});
