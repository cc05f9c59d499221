/**
 * Issue 13, finding 4 ("neighbour keys are relayed unsigned"): a malicious server that swaps one
 * device's advertised c-key for its own key pair sits in the middle of every share box to and
 * from that device. It opens the victim's boxes, rebuilds b_Y and s_Y^SK from them, and strips
 * every mask off the victim's input, while re-sealing the boxes so nobody notices.
 *
 * Under the `maliciousServer` preset each advertisement is signed by a round identity key bound
 * to the device's admission token, and neighbours verify before sealing anything: the swap, a
 * fabricated neighbour without a valid token, and replayed tokens are all refused.
 * n = 5, complete graph (k = 4), t = 3 (the preset's threshold for k = 4).
 */

import { publicVerif } from "@cloudflare/privacypass-ts";
import {
  addMaskInPlace,
  advertStatement,
  base64ToBytes,
  bytesToBase64,
  combineShares,
  createRoundState,
  decodeBoxPlaintext,
  encodeBoxPlaintext,
  encodeClientFrame,
  expandMask,
  generateKeyPair,
  generateRoundIdentity,
  handleFrame,
  identityNonce,
  maliciousServerThreshold,
  onDeadline,
  openShares,
  pairwiseMaskSeed,
  pairwiseSign,
  type SecAggClientMessage,
  type ServerRoundState,
  type Share,
  SIZES,
  sealShares,
  selfMaskSeed,
  shareBoxKey,
  signStatement,
  tweetnaclKeyAgreement,
  unpackWords,
  viewFor,
} from "@fedprofile/coordinator/secagg";
import {
  createTokenRequest,
  importIssuerPublicKey,
  tokenKeyId,
  verifyAdmissionToken,
} from "@fedprofile/protocol/admission";
import type { RandomBytes } from "@fedprofile/protocol/bytes";
import nacl from "tweetnacl";
import { beforeAll, describe, expect, it } from "vitest";
import {
  advertiseKeys,
  type ClientIdentity,
  type ClientState,
  maskedInput,
  shareKeys,
} from "../../sdk/src/secagg/client";
import { runSimulatedRound, seededRandomBytes } from "./driver";
import { mintIdentity, mintToken, type TestIssuer, testIssuer } from "./identities";

const N = 5;
const K = 4;
const T = maliciousServerThreshold(K, N);
const VICTIM = 0;
const DIM = 6;
const BITS = 16;
const M = 20;
const ROUND = "r_signedadvertsignedadve";
const OTHER_ROUND = "r_otherroundotherroundot";
const SHARD = 2;
const inputs = Array.from({ length: N }, (_, u) =>
  Uint32Array.from({ length: DIM }, (_, i) => (u * 131 + i * 17) % 4096),
);

let issuer: TestIssuer;
let rogue: TestIssuer;
beforeAll(async () => {
  [issuer, rogue] = await Promise.all([testIssuer("shop.example"), testIssuer("shop.example")]);
}, 60_000);

async function identitiesFor(roundId: string, seed: string): Promise<ClientIdentity[]> {
  const random = seededRandomBytes(seed);
  const out: ClientIdentity[] = [];
  for (let u = 0; u < N; u++) out.push(await mintIdentity(issuer, roundId, SHARD, random));
  return out;
}

/** The test shard's server state at round start, with the check this test turns on. */
function shardState(random: RandomBytes, check: { consistencyCheck: true } | { signedKeys: true }) {
  return createRoundState(
    {
      roundId: ROUND,
      cohortSize: N,
      k: K,
      t: T,
      dimension: DIM,
      valueBits: BITS,
      modulusBits: M,
      shard: SHARD,
      ...check,
      randomBytes: random,
    },
    0,
  );
}

type NeighbourView = { slot: number; cPk: string; sPk: string; identity?: ClientIdentityWire };
type ClientIdentityWire = { idPk: string; salt: string; token: string; sig: string };

/**
 * The key-swap attack: the server shows the victim fake c-keys for all its neighbours, and shows
 * every neighbour a fake c-key for the victim, and re-seals the boxes in between. With
 * `identities`, devices sign and verify. `rewrite` may change the victim's view further.
 * Returns the victim's input as the server rebuilt it, or the aborts.
 */
async function keySwapAttack(
  identities: ClientIdentity[] | null,
  rewrite?: (neighbours: NeighbourView[]) => Promise<NeighbourView[]> | NeighbourView[],
): Promise<{ recovered: Uint32Array | null; aborts: string[]; codes: string[] }> {
  const random = seededRandomBytes(`swap-${identities ? "signed" : "plain"}`);
  const options = { randomBytes: random, keyAgreement: tweetnaclKeyAgreement };
  let server: ServerRoundState = shardState(random, { consistencyCheck: true });
  const clients: Array<ClientState | null> = [];
  for (let u = 0; u < N; u++) {
    const id = identities?.[u];
    const step = advertiseKeys(
      JSON.parse(JSON.stringify(viewFor(server, u))),
      id ? { ...options, identity: id } : options,
    );
    clients[u] = step.state;
    server = (await handleFrame(server, encodeClientFrame(step.message), 0, options)).state;
  }
  if (server.phase === "advertise-keys") server = (await onDeadline(server, 0, options)).state;
  expect(server.phase).toBe("share-keys");

  // The server's own key pairs: one posing as the victim, one per neighbour towards the victim.
  const fake = Array.from({ length: N }, () => generateKeyPair(random));
  const realC = (u: number) => base64ToBytes(server.devices[String(u)]?.cPk ?? "");
  const aborts: string[] = [];
  const codes: string[] = [];
  const shareMessages: SecAggClientMessage[] = [];
  for (let u = 0; u < N; u++) {
    const view = JSON.parse(JSON.stringify(viewFor(server, u)));
    view.neighbours = view.neighbours.map((n: NeighbourView) =>
      u === VICTIM || n.slot === VICTIM
        ? {
            ...n,
            cPk: bytesToBase64((fake[u === VICTIM ? n.slot : VICTIM] as { publicKey: Uint8Array }).publicKey),
          }
        : n,
    );
    if (u === VICTIM && rewrite) view.neighbours = await rewrite(view.neighbours);
    try {
      const step = await shareKeys(clients[u] as ClientState, view, options);
      clients[u] = step.state;
      shareMessages.push(step.message);
    } catch (error) {
      clients[u] = null;
      aborts.push(error instanceof Error ? error.message : String(error));
      codes.push((error as { code?: string }).code ?? "");
    }
  }
  if (clients[VICTIM] === null) return { recovered: null, aborts, codes };

  // Man in the middle of every box to and from the victim: open with the fake key, re-seal.
  const bShares: Share[] = [];
  const sShares: Share[] = [];
  const agree = (secret: Uint8Array, pk: Uint8Array) => nacl.scalarMult(secret, pk);
  for (const message of shareMessages) {
    if (message.stage !== "share-keys") throw new Error("unreachable");
    const from = message.slot;
    message.shares = message.shares.map(({ to, ct }) => {
      if (from !== VICTIM && to !== VICTIM) return { to, ct };
      const posing = fake[from === VICTIM ? to : VICTIM] as { secretKey: Uint8Array };
      const inKey = shareBoxKey(agree(posing.secretKey, realC(from)), ROUND, from, to);
      const plain = openShares(inKey, base64ToBytes(ct));
      if (from === VICTIM) {
        const { bShare, sShare } = decodeBoxPlaintext(to, plain);
        bShares.push(bShare);
        sShares.push(sShare);
      }
      const outPose = fake[from === VICTIM ? VICTIM : from] as { secretKey: Uint8Array };
      const outKey = shareBoxKey(agree(outPose.secretKey, realC(to)), ROUND, from, to);
      const { bShare, sShare } = decodeBoxPlaintext(to, plain);
      return { to, ct: bytesToBase64(sealShares(outKey, encodeBoxPlaintext(bShare, sShare))) };
    });
    server = (await handleFrame(server, encodeClientFrame(message), 0, options)).state;
  }
  if (server.phase === "share-keys") server = (await onDeadline(server, 0, options)).state;
  const view = JSON.parse(JSON.stringify(viewFor(server, VICTIM)));
  const masked = (
    await maskedInput(clients[VICTIM] as ClientState, view, inputs[VICTIM] as Uint32Array, options)
  ).message;
  if (masked.stage !== "masked-input" || bShares.length < T) return { recovered: null, aborts, codes };

  // b_Y and s_Y^SK from the opened boxes, then every mask off y_Y.
  const b = combineShares(bShares.slice(0, T), SIZES.selfSeed);
  const sSk = combineShares(sShares.slice(0, T), SIZES.key);
  const y = unpackWords(base64ToBytes(masked.masked), DIM, M);
  addMaskInPlace(y, await expandMask(selfMaskSeed(b, ROUND, VICTIM), DIM, M), -1, M);
  for (let v = 1; v < N; v++) {
    const s = agree(sSk, base64ToBytes(server.devices[String(v)]?.sPk ?? ""));
    const mask = await expandMask(pairwiseMaskSeed(s, ROUND, VICTIM, v), DIM, M);
    addMaskInPlace(y, mask, pairwiseSign(VICTIM, v) === 1 ? -1 : 1, M);
  }
  return { recovered: y, aborts, codes };
}

/** A server-made neighbour: its own keys, its own identity key, and the given token maker. */
async function fabricated(
  slot: number,
  token: (nonce: Uint8Array) => Promise<Uint8Array>,
): Promise<NeighbourView> {
  const random = seededRandomBytes(`fabricated-${slot}`);
  const c = generateKeyPair(random);
  const s = generateKeyPair(random);
  const id = generateRoundIdentity(random);
  const minted = await token(identityNonce(id.publicKey, id.salt));
  const sig = signStatement(id.seed, advertStatement(ROUND, SHARD, slot, c.publicKey, s.publicKey));
  return {
    slot,
    cPk: bytesToBase64(c.publicKey),
    sPk: bytesToBase64(s.publicKey),
    identity: {
      idPk: bytesToBase64(id.publicKey),
      salt: bytesToBase64(id.salt),
      token: bytesToBase64(minted),
      sig: bytesToBase64(sig),
    },
  };
}

describe("signed key advertisements (maliciousServer preset, issue 13)", () => {
  it("without signatures, a server that swaps the victim's c-key recovers its exact input", async () => {
    const { recovered, aborts } = await keySwapAttack(null);
    expect(aborts).toEqual([]);
    expect(recovered).toEqual(inputs[VICTIM]);
  }, 60_000);

  it("with signed advertisements, every device shown a swapped key aborts before sealing a share", async () => {
    const { recovered, aborts, codes } = await keySwapAttack(await identitiesFor(ROUND, "swap"));
    expect(recovered).toBeNull();
    expect(aborts).toHaveLength(N); // the victim and each of its four neighbours
    expect(new Set(codes)).toEqual(new Set(["secagg_unauthenticated"]));
    for (const reason of aborts) expect(reason).toMatch(/signature on its keys does not verify/);
  }, 60_000);

  it("refuses a fabricated neighbour whose token the issuer never signed", async () => {
    const ids = await identitiesFor(ROUND, "fabricated");
    // Signed by the server's own RSA key but naming the storefront's key id.
    const { aborts } = await keySwapAttack(ids, async (neighbours) => [
      ...neighbours.filter((n) => n.slot !== 1),
      await fabricated(1, (nonce) => mintToken(issuer, ROUND, nonce, rogue)),
    ]);
    expect(aborts[0]).toMatch(/neighbour 1: token: the issuer's signature does not verify/);
  }, 60_000);

  it("refuses a replayed token: another device's advertisement, and a token of another round", async () => {
    const ids = await identitiesFor(ROUND, "replay");
    // Device 2's genuine advertisement shown again as slot 1.
    const twice = await keySwapAttack(ids, (neighbours) => {
      const two = neighbours.find((n) => n.slot === 2) as NeighbourView;
      return neighbours.map((n) => (n.slot === 1 ? { ...two, slot: 1 } : n));
    });
    expect(twice.aborts[0]).toMatch(/neighbour (1|2): its admission token is already in use/);
    // A colluder's identity and token from another round, re-signed for this one.
    const { aborts } = await keySwapAttack(ids, async (neighbours) => [
      ...neighbours.filter((n) => n.slot !== 1),
      await fabricated(1, (nonce) => mintToken(issuer, OTHER_ROUND, nonce)),
    ]);
    expect(aborts[0]).toMatch(/neighbour 1: token: not issued for round/);
  }, 60_000);

  it("an honest round under the preset still sums exactly, and the server refuses an unsigned or forged advert", async () => {
    const ids = await identitiesFor(ROUND, "honest");
    const outcome = await runSimulatedRound({
      roundId: ROUND,
      cohortSize: N,
      k: K,
      t: T,
      dimension: DIM,
      valueBits: BITS,
      modulusBits: M,
      inputs,
      identities: ids,
      signedKeys: true,
      randomBytes: seededRandomBytes("honest-signed"),
    });
    expect(outcome.abort).toBeNull();
    const expected = new Uint32Array(DIM);
    for (const x of inputs)
      for (let i = 0; i < DIM; i++) expected[i] = ((expected[i] as number) + (x[i] as number)) % 2 ** M;
    expect(outcome.sum).toEqual(expected);

    const random = seededRandomBytes("server-check");
    const server = shardState(random, { signedKeys: true });
    const unsigned = advertiseKeys(viewFor(server, 0), { randomBytes: random }).message;
    await expect(handleFrame(server, encodeClientFrame(unsigned), 0)).rejects.toThrow(
      /needs a signed advertisement/,
    );
    const signed = advertiseKeys(viewFor(server, 0), {
      randomBytes: random,
      identity: ids[0] as ClientIdentity,
    }).message;
    if (signed.stage !== "advertise-keys" || !signed.identity) throw new Error("unreachable");
    const forged = {
      ...signed,
      identity: { ...signed.identity, sig: bytesToBase64(new Uint8Array(64).fill(7)) },
    };
    await expect(handleFrame(server, encodeClientFrame(forged), 0)).rejects.toThrow(
      /signature does not verify/,
    );
    const moved = { ...signed, slot: 1 };
    await expect(handleFrame(server, encodeClientFrame(moved), 0)).rejects.toThrow(
      /signature does not verify/,
    );
  }, 60_000);

  it("a blinded issuance with the bound nonce gives the token the devices check (RFC 9578 §6)", async () => {
    const issuerObj = new publicVerif.Issuer(
      publicVerif.BlindRSAMode.PSS,
      issuer.name,
      issuer.keys.privateKey,
      issuer.keys.publicKey,
    );
    const id = generateRoundIdentity(seededRandomBytes("blind"));
    const nonce = identityNonce(id.publicKey, id.salt);
    const pending = await createTokenRequest(issuer.name, ROUND, issuer.spki, nonce);
    const response = await issuerObj.issue(
      publicVerif.TokenRequest.deserialize(publicVerif.BLIND_RSA, pending.request),
    );
    const token = await pending.finalize(response.serialize());
    const key = {
      issuerName: issuer.name,
      publicKey: await importIssuerPublicKey(issuer.spki),
      keyId: tokenKeyId(issuer.spki),
    };
    expect((await verifyAdmissionToken(token, ROUND, key)).nonce).toEqual(nonce);
  }, 60_000);
});
