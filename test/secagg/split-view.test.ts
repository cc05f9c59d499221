/**
 * Issue 13, finding 4: a malicious server unmasks a live device by showing two survivor sets.
 * n = 9, complete graph (k = 8), consistency check on. The server runs the first three stages
 * honestly (the real server functions), then shows devices 1–4 and the victim X = 0 a survivor
 * set with X in it, and devices 5–8 a set without X. Group A reveals b-shares of X (X "survived"),
 * group B reveals s-shares of X's mask key (X "dropped"): with t = 3 that is enough of both, and
 * the server strips every mask off X's masked input.
 *
 * The default preset (t = 3) falls to it; the `maliciousServer` preset's threshold t > k/2
 * (honest majority of neighbours) does not: no group can confirm its survivor set with t tags, so
 * every device aborts before revealing a share.
 */
import {
  addMaskInPlace,
  base64ToBytes,
  bytesToBase64,
  combineShares,
  createRoundState,
  decodeShareValues,
  encodeClientFrame,
  encodeSlotSet,
  expandMask,
  handleFrame,
  maliciousServerThreshold,
  onDeadline,
  pairwiseMaskSeed,
  pairwiseSign,
  type SecAggClientMessage,
  type ServerRoundState,
  SIZES,
  selfMaskSeed,
  sharePoint,
  tweetnaclKeyAgreement,
  unpackWords,
  viewFor,
} from "@fedprofile/coordinator/secagg";
import { describe, expect, it } from "vitest";
import {
  advertiseKeys,
  type ClientState,
  consistencyCheck,
  maskedInput,
  shareKeys,
  unmask,
} from "../../sdk/src/secagg/client";
import { runSimulatedRound, seededRandomBytes } from "./driver";

const N = 9;
const K = 8;
const VICTIM = 0;
const GROUP_A = [1, 2, 3, 4];
const GROUP_B = [5, 6, 7, 8];
const DIM = 6;
const BITS = 16;
const ROUND = "r_splitviewsplitviewspli";
const inputs = Array.from({ length: N }, (_, u) =>
  Uint32Array.from({ length: DIM }, (_, i) => (u * 97 + i * 13) % 4096),
);

/** Runs the attack at threshold `t`; returns X's input as the server rebuilt it, or why it failed. */
async function splitViewAttack(t: number): Promise<{ recovered: Uint32Array | null; aborts: string[] }> {
  const random = seededRandomBytes(`split-${t}`);
  const options = { randomBytes: random, keyAgreement: tweetnaclKeyAgreement };
  let server: ServerRoundState = createRoundState(
    {
      roundId: ROUND,
      cohortSize: N,
      k: K,
      t,
      dimension: DIM,
      valueBits: BITS,
      modulusBits: 20,
      consistencyCheck: true,
      randomBytes: random,
    },
    0,
  );
  const clients: ClientState[] = [];
  let victimMasked: SecAggClientMessage | null = null;
  // Stages 0–2, honestly.
  for (const stage of ["advertise-keys", "share-keys", "masked-input"] as const) {
    for (let u = 0; u < N; u++) {
      const view: unknown = JSON.parse(JSON.stringify(viewFor(server, u)));
      const step =
        stage === "advertise-keys"
          ? advertiseKeys(view, options)
          : stage === "share-keys"
            ? await shareKeys(clients[u] as ClientState, view, options)
            : await maskedInput(clients[u] as ClientState, view, inputs[u] as Uint32Array, options);
      clients[u] = step.state;
      if (stage === "masked-input" && u === VICTIM) victimMasked = step.message;
      server = (await handleFrame(server, encodeClientFrame(step.message), 0, options)).state;
    }
    if (server.phase === stage) server = (await onDeadline(server, 0, options)).state;
  }
  // The split: two survivor sets, each shown to one group (X sees the one with itself in it).
  const all = Array.from({ length: N }, (_, u) => u);
  const withX = bytesToBase64(encodeSlotSet(all, N));
  const withoutX = bytesToBase64(
    encodeSlotSet(
      all.filter((u) => u !== VICTIM),
      N,
    ),
  );
  const seesWithX = new Set([VICTIM, ...GROUP_A]);
  const setOf = (u: number) => (seesWithX.has(u) ? withX : withoutX);
  const tagsTo = new Map<number, Array<{ from: number; tag: string }>>();
  for (const u of [VICTIM, ...GROUP_A, ...GROUP_B]) {
    const step = consistencyCheck(clients[u] as ClientState, {
      v: 1,
      roundId: ROUND,
      slot: u,
      stage: "consistency-check",
      survivors: setOf(u),
    });
    clients[u] = step.state;
    if (step.message.stage !== "consistency-check") throw new Error("unreachable");
    for (const { to, tag } of step.message.tags) {
      // The server forwards only tags over the set the receiver was shown (others would fail).
      if (setOf(to) === setOf(u)) tagsTo.set(to, [...(tagsTo.get(to) ?? []), { from: u, tag }]);
    }
  }
  const bShares: Array<{ x: number; share: string }> = [];
  const sShares: Array<{ x: number; share: string }> = [];
  const aborts: string[] = [];
  for (const u of [...GROUP_A, ...GROUP_B]) {
    try {
      const step = unmask(clients[u] as ClientState, {
        v: 1,
        roundId: ROUND,
        slot: u,
        stage: "unmask",
        survivors: setOf(u),
        tags: tagsTo.get(u) ?? [],
      });
      if (step.message.stage !== "unmask") throw new Error("unreachable");
      for (const s of step.message.bShares)
        if (s.of === VICTIM) bShares.push({ x: sharePoint(u), share: s.share });
      for (const s of step.message.sShares)
        if (s.of === VICTIM) sShares.push({ x: sharePoint(u), share: s.share });
    } catch (error) {
      aborts.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (bShares.length < t || sShares.length < t) return { recovered: null, aborts };

  // The server's reconstruction: b_X and s_X^SK from t shares each, then every mask of y_X.
  const b = combineShares(
    bShares.slice(0, t).map((s) => decodeShareValues(s.x, base64ToBytes(s.share), SIZES.selfSeed)),
    SIZES.selfSeed,
  );
  const sSk = combineShares(
    sShares.slice(0, t).map((s) => decodeShareValues(s.x, base64ToBytes(s.share), SIZES.key)),
    SIZES.key,
  );
  const m = server.config.modulusBits;
  if (victimMasked?.stage !== "masked-input") throw new Error("no masked input of X");
  const y = unpackWords(base64ToBytes(victimMasked.masked), DIM, m);
  addMaskInPlace(y, await expandMask(selfMaskSeed(b, ROUND, VICTIM), DIM, m), -1, m);
  const peers = all.filter((v) => v !== VICTIM);
  const peerKeys = peers.map((v) => base64ToBytes(server.devices[String(v)]?.sPk ?? ""));
  const secretKey = sSk;
  const publicKey = base64ToBytes(server.devices[String(VICTIM)]?.sPk ?? "");
  const shared = await tweetnaclKeyAgreement.agreeMany({ secretKey, publicKey }, peerKeys);
  for (const [i, v] of peers.entries()) {
    const mask = await expandMask(pairwiseMaskSeed(shared[i] as Uint8Array, ROUND, VICTIM, v), DIM, m);
    // X added Δ_{X,v}·PRG(s_{X,v}); take it off again.
    addMaskInPlace(y, mask, pairwiseSign(VICTIM, v) === 1 ? -1 : 1, m);
  }
  return { recovered: y, aborts };
}

describe("the split-view attack (issue 13, finding 4)", () => {
  it("reproduces on the default preset: n = 9, t = 3, the server recovers X's exact input", async () => {
    const { recovered, aborts } = await splitViewAttack(3);
    expect(aborts).toEqual([]);
    expect(recovered).toEqual(inputs[VICTIM]);
  }, 60_000);

  it("fails under the maliciousServer preset (t > k/2): every device aborts before revealing a share", async () => {
    const t = maliciousServerThreshold(K, N);
    expect(t).toBe(5);
    const { recovered, aborts } = await splitViewAttack(t);
    expect(recovered).toBeNull();
    expect(aborts).toHaveLength(GROUP_A.length + GROUP_B.length);
    for (const reason of aborts) expect(reason).toMatch(/fewer than t = 5/);
  }, 60_000);

  it("an honest round under the preset still completes with the exact sum", async () => {
    const t = maliciousServerThreshold(K, N);
    const outcome = await runSimulatedRound({
      cohortSize: N,
      k: K,
      t,
      dimension: DIM,
      valueBits: BITS,
      modulusBits: 20,
      consistencyCheck: true,
      inputs,
      randomBytes: seededRandomBytes("honest-preset"),
      keyAgreement: tweetnaclKeyAgreement,
    });
    expect(outcome.abort).toBeNull();
    const expected = new Uint32Array(DIM);
    for (const x of inputs)
      for (let i = 0; i < DIM; i++) expected[i] = ((expected[i] as number) + (x[i] as number)) % 2 ** 20;
    expect(outcome.sum).toEqual(expected);
  }, 60_000);
});
