/**
 * The device's check of its neighbours' signed key advertisements under the `maliciousServer`
 * preset (`@fedprofile/protocol/secagg` identity.ts). Loaded with `import()` only by a device
 * that holds a round identity, so the blind-RSA code stays out of the sync chunk otherwise.
 *
 * The coordinator is the adversary here, so nothing it relays is trusted as a key: the issuer key
 * is the one this device took from the storefront's issuer directory when it fetched its own
 * token (`../sync/admission.ts`), and each neighbour's keys are accepted only if its token
 * verifies under that key for this round, the token's nonce opens to the neighbour's identity
 * key, no token is seen twice, and the identity key signed (round, shard, slot, cPk, sPk).
 */
import { importIssuerPublicKey, tokenKeyId, verifyAdmissionToken } from "@fedprofile/protocol/admission";
import { base64ToBytes } from "@fedprofile/protocol/bytes";
import {
  advertStatement,
  defaultSignatureVerifier,
  ERROR_CODES,
  identityBindingFault,
  ProtocolAbortError,
  type SignatureVerifier,
} from "@fedprofile/protocol/secagg";
import type { NeighbourKeys } from "@fedprofile/protocol/wire";

/** What a device keeps of its own identity after advertising (no secret: the seed is dropped). */
export interface IdentityContext {
  shard: number;
  /** Its own token (base64): no neighbour may present it. */
  token: string;
  /** The issuer as the device found it in the directory: name and RSASSA-PSS SPKI (base64). */
  issuer: { name: string; publicKey: string };
}

const issuerKeys = new Map<string, Promise<CryptoKey>>();

function abort(why: string): ProtocolAbortError {
  return new ProtocolAbortError(ERROR_CODES.unauthenticated, why, { stage: "share-keys" });
}

/**
 * Checks every neighbour's advertisement before any share is sealed to its keys; throws
 * `secagg_unauthenticated` naming the first neighbour that fails (nothing has been revealed yet).
 */
export async function verifyNeighbourAdverts(
  roundId: string,
  own: IdentityContext,
  neighbours: readonly NeighbourKeys[],
  verifier?: SignatureVerifier,
): Promise<void> {
  const spki = base64ToBytes(own.issuer.publicKey);
  let publicKey = issuerKeys.get(own.issuer.publicKey);
  if (!publicKey) {
    publicKey = importIssuerPublicKey(spki);
    issuerKeys.set(own.issuer.publicKey, publicKey);
  }
  const key = { issuerName: own.issuer.name, publicKey: await publicKey, keyId: tokenKeyId(spki) };
  const tokens = new Set([own.token]);
  const checks = neighbours.map((n) => {
    if (!n.identity) throw abort(`neighbour ${n.slot}: its keys are not signed`);
    if (tokens.has(n.identity.token))
      throw abort(`neighbour ${n.slot}: its admission token is already in use`);
    tokens.add(n.identity.token);
    const identity = {
      idPk: base64ToBytes(n.identity.idPk),
      salt: base64ToBytes(n.identity.salt),
      token: base64ToBytes(n.identity.token),
      sig: base64ToBytes(n.identity.sig),
    };
    const fault = identityBindingFault(identity);
    if (fault) throw abort(`neighbour ${n.slot}: ${fault}`);
    return { slot: n.slot, cPk: base64ToBytes(n.cPk), sPk: base64ToBytes(n.sPk), ...identity };
  });
  await Promise.all(
    checks.map(async (c) => {
      try {
        await verifyAdmissionToken(c.token, roundId, key);
      } catch (cause) {
        throw new ProtocolAbortError(
          ERROR_CODES.unauthenticated,
          `neighbour ${c.slot}: ${cause instanceof Error ? cause.message : "bad admission token"}`,
          { stage: "share-keys", cause },
        );
      }
    }),
  );
  const signatures = verifier ?? (await defaultSignatureVerifier());
  const ok = await signatures.verifyMany(
    checks.map((c) => ({
      publicKey: c.idPk,
      message: advertStatement(roundId, own.shard, c.slot, c.cPk, c.sPk),
      signature: c.sig,
    })),
  );
  const bad = ok.indexOf(false);
  if (bad !== -1) throw abort(`neighbour ${checks[bad]?.slot}: the signature on its keys does not verify`);
}
