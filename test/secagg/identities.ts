/**
 * Round identities with admission tokens for the signed-advertisement tests and the benchmark.
 *
 * A type-2 token's authenticator is an RSASSA-PSS-SHA384 signature (salt 48) over its
 * authenticator input (RFC 9578 §6.4, RFC 9474 §4.5): blind issuance only hides the input from the
 * issuer. `mintToken` signs that input directly with the issuer's private key, which is what an
 * honest issuer's answer unblinds to, in milliseconds instead of the ~1–2 s blind-RSA signature in
 * JS; `signed-adverts.test.ts` runs one real blinded issuance with a bound nonce to show the two
 * are the same token.
 */

import { AuthenticatorInput, publicVerif, Token } from "@cloudflare/privacypass-ts";
import {
  createIssuerHandler,
  createTokenIssuer,
  generateIssuerKeys,
  ISSUER_DIRECTORY_PATH,
  type TokenIssuer,
} from "@fedprofile/coordinator/admission";
import { ADMISSION_TOKEN_TYPE, roundChallenge, tokenKeyId } from "@fedprofile/protocol/admission";
import { bytesToBase64, type RandomBytes } from "@fedprofile/protocol/bytes";
import { generateRoundIdentity, identityNonce } from "@fedprofile/protocol/secagg";
import { sha256 } from "@noble/hashes/sha2.js";
import type { ClientIdentity } from "../../sdk/src/secagg/client";
import type { AdmissionOptions } from "../../sdk/src/sync/admission";

/** An issuer as the tests hold it: name, key pair, and the public key in RSASSA-PSS SPKI form. */
export interface TestIssuer {
  name: string;
  keys: CryptoKeyPair;
  spki: Uint8Array;
}

/** A fresh issuer (RSA-PSS 2048, as the storefront's backend would hold). */
export async function testIssuer(name = "shop.example"): Promise<TestIssuer> {
  const keys = await publicVerif.Issuer.generateKey(publicVerif.BlindRSAMode.PSS, {
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  });
  return { name, keys, spki: await publicVerif.getPublicKeyBytes(keys.publicKey) };
}

/**
 * A token for `roundId` with client nonce `nonce`, signed by `signer` but naming `issuer`'s key
 * id (pass another issuer as `signer` to forge one).
 */
export async function mintToken(
  issuer: TestIssuer,
  roundId: string,
  nonce: Uint8Array,
  signer: TestIssuer = issuer,
): Promise<Uint8Array> {
  const type = ADMISSION_TOKEN_TYPE;
  const digest = sha256(roundChallenge(issuer.name, roundId).serialize());
  const input = new AuthenticatorInput(type, type.value, nonce, digest, tokenKeyId(issuer.spki));
  const signature = await crypto.subtle.sign(
    { name: "RSA-PSS", saltLength: 48 },
    signer.keys.privateKey,
    new Uint8Array(input.serialize()),
  );
  return new Token(type, input, new Uint8Array(signature)).serialize();
}

/** A device's identity for `roundId` and `shard`, with its bound token from `issuer`. */
export async function mintIdentity(
  issuer: TestIssuer,
  roundId: string,
  shard: number,
  random: RandomBytes,
): Promise<ClientIdentity> {
  const id = generateRoundIdentity(random);
  const token = await mintToken(issuer, roundId, identityNonce(id.publicKey, id.salt));
  return {
    seed: bytesToBase64(id.seed),
    publicKey: bytesToBase64(id.publicKey),
    salt: bytesToBase64(id.salt),
    token: bytesToBase64(token),
    shard,
    issuer: { name: issuer.name, publicKey: bytesToBase64(issuer.spki) },
  };
}

/**
 * A storefront issuer behind a fetch stub, each token request from a new customer, and the
 * `admission` option a device points at it (real blinded issuance, no network).
 */
export async function stubbedStorefrontIssuer(
  name = "shop.example",
): Promise<{ issuer: TokenIssuer; admission: AdmissionOptions }> {
  const issuer = await createTokenIssuer({ name, keys: await generateIssuerKeys() });
  let customer = 0;
  const handle = createIssuerHandler(issuer, () => ({ customerId: `c${customer++}` }));
  const admission: AdmissionOptions = {
    directoryUrl: `https://${name}${ISSUER_DIRECTORY_PATH}`,
    fetch: async (input, init) =>
      (await handle(new Request(input, init))) ?? new Response("", { status: 404 }),
  };
  return { issuer, admission };
}
