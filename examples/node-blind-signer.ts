/**
 * The issuer's RSA private operation on OpenSSL, for a storefront backend on node: raw RSASP1 by
 * `privateDecrypt` without padding (RFC 8017 §5.2.1: s = m^d mod n, CRT inside), then RFC 9474
 * §4.3's check that s^e mod n gives m back, so a faulty signature never leaves (a CRT fault would
 * leak the key). About 4 ms a token against 0.5–2 s for blindrsa-ts's JavaScript big integers.
 */
import { constants, KeyObject, privateDecrypt, publicEncrypt } from "node:crypto";
import type { BlindSigner } from "@fedprofile/coordinator/admission";

/** A {@link BlindSigner} over an issuer key pair made by `generateIssuerKeys()`. */
export function nodeBlindSigner(keys: CryptoKeyPair): BlindSigner {
  const privateKey = KeyObject.from(keys.privateKey);
  const publicKey = KeyObject.from(keys.publicKey);
  const modulusBytes = (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  return async (blindedMessage) => {
    if (blindedMessage.length !== modulusBytes) {
      throw new RangeError(`blinded message: expected ${modulusBytes} bytes, got ${blindedMessage.length}`);
    }
    let signature: Buffer;
    try {
      signature = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, blindedMessage);
    } catch (cause) {
      // OpenSSL refuses m ≥ n ("data too large for modulus").
      throw new RangeError("blinded message: not below the modulus", { cause });
    }
    let opened: Buffer | undefined;
    try {
      opened = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
    } catch {
      // s ≥ n of the public key: the private half is not this key's, a signing failure too.
    }
    if (!opened?.equals(blindedMessage)) throw new Error("blind signature: signing failure (RSAVP1 check)");
    return new Uint8Array(signature);
  };
}
