/**
 * The server's unmasking step (Bonawitz et al. §4, round 4, server side): rebuild b_u for every
 * survivor and s_u^SK for every dropped device that still has surviving neighbours, regenerate
 * the masks, and strip them from Σ y_u. All reconstructions happen, and are checked, before any
 * mask is expanded, so a round that cannot finish aborts without computing anything.
 *
 * Cost: one Lagrange interpolation per device (t² multiplications in doubles), one X25519 per
 * (dropped, surviving-neighbour) pair, and one PRG expansion of d words per survivor and per such
 * pair. The PRG dominates, which is why it was chosen by measurement (`prg.ts`).
 */
import {
  base64ToBytes,
  bytesToBase64,
  constantTimeEqual,
  wipe,
  wordsToBytes,
} from "@fedprofile/protocol/bytes";
import type { NeighbourGraph } from "@fedprofile/protocol/secagg";
import {
  applyMasks,
  combineShares,
  decodeShareValues,
  defaultKeyAgreement,
  ERROR_CODES,
  type KeyAgreement,
  type MaskJob,
  type Prg,
  pairwiseMaskSeed,
  pairwiseSign,
  publicKeyOf,
  SERVER_MASK_PRG,
  type Share,
  SIZES,
  selfMaskSeed,
  sharePoint,
} from "@fedprofile/protocol/secagg";
import {
  type Advance,
  abortRound,
  CORE_KEY,
  deviceKey,
  maskedSumWords,
  type ServerRoundState,
  SUM_KEY,
} from "./state";

/** Injectable primitives for the unmasking step (defaults: native X25519 if present, AES-CTR). */
export interface UnmaskOptions {
  keyAgreement?: KeyAgreement;
  prg?: Prg;
  /** PRG expansions in flight at once (default 16). */
  concurrency?: number;
  /**
   * Words of masks one call expands at most (default: all). Past it the call strips a slice,
   * stores how far it got with the partial sum, and sets the deadline to now, so the host's next
   * alarm runs the next slice: one invocation never approaches a CPU limit (issue 16; Workers:
   * 30 s per invocation).
   */
  maxMaskWordsPerSlice?: number;
}

/** Collects revealed shares per owner: owner slot → shares (point = revealer slot + 1). */
function collect(
  state: ServerRoundState,
  field: "bShares" | "sShares",
  secretBytes: number,
): Map<number, Share[]> {
  const byOwner = new Map<number, Share[]>();
  for (const revealer of state.revealers ?? []) {
    for (const [owner, text] of state.devices[String(revealer)]?.[field] ?? []) {
      const share = decodeShareValues(sharePoint(revealer), base64ToBytes(text), secretBytes);
      const list = byOwner.get(owner) ?? [];
      list.push(share);
      byOwner.set(owner, list);
    }
  }
  return byOwner;
}

/**
 * Finishes the round from the shares revealed so far: the exact sum of the survivors' inputs, or
 * an abort naming the first device whose secret cannot be rebuilt from t shares.
 */
export async function finalizeUnmask(
  state: ServerRoundState,
  graph: NeighbourGraph,
  now: number,
  options: UnmaskOptions = {},
): Promise<Advance> {
  const { t, roundId, modulusBits } = state.config;
  const survivors = state.survivors ?? [];
  const survivorSet = new Set(survivors);
  const bShares = collect(state, "bShares", SIZES.selfSeed);
  const sShares = collect(state, "sShares", SIZES.key);

  const jobs: MaskJob[] = [];
  // Self masks of survivors: y_u included +PRG(b_u), so remove it.
  for (const u of survivors) {
    const shares = bShares.get(u) ?? [];
    if (shares.length < t) {
      return abortRound(
        state,
        "unmask",
        `only ${shares.length} of t = ${t} shares of slot ${u}'s self-mask seed arrived`,
        now,
      );
    }
    const b = combineShares(shares.slice(0, t), SIZES.selfSeed);
    jobs.push({ seed: selfMaskSeed(b, roundId, u), sign: -1 });
    wipe(b);
  }
  // Pairwise masks between a dropped sharer u and its surviving neighbours v: v added Δ_{v,u}.
  const agreement = options.keyAgreement ?? (await defaultKeyAgreement());
  const recovered: Array<{ u: number; secretKey: Uint8Array; publicKey: Uint8Array; peers: number[] }> = [];
  for (const u of state.sharers ?? []) {
    if (survivorSet.has(u)) continue;
    const peers = graph.neighbours(u).filter((v) => survivorSet.has(v));
    if (peers.length === 0) continue;
    const shares = sShares.get(u) ?? [];
    if (shares.length < t) {
      return abortRound(
        state,
        "unmask",
        `only ${shares.length} of t = ${t} shares of dropped slot ${u}'s mask key arrived`,
        now,
      );
    }
    const secretKey = combineShares(shares.slice(0, t), SIZES.key);
    const publicKey = base64ToBytes(state.devices[String(u)]?.sPk ?? "");
    if (!constantTimeEqual(publicKeyOf(secretKey), publicKey)) {
      return abortRound(
        state,
        "unmask",
        `rebuilt mask key of slot ${u} does not match its public key`,
        now,
        ERROR_CODES.reconstruction,
      );
    }
    recovered.push({ u, secretKey, publicKey, peers });
  }
  for (const { u, secretKey, publicKey, peers } of recovered) {
    const peerKeys = peers.map((v) => base64ToBytes(state.devices[String(v)]?.sPk ?? ""));
    const shared = await agreement.agreeMany({ secretKey, publicKey }, peerKeys);
    peers.forEach((v, i) => {
      const secret = shared[i] as Uint8Array;
      jobs.push({ seed: pairwiseMaskSeed(secret, roundId, u, v), sign: pairwiseSign(v, u) === 1 ? -1 : 1 });
      wipe(secret);
    });
    wipe(secretKey);
  }

  // The jobs come out in the same order every time (survivors, then dropped devices and their
  // peers, in slot order, from the same shares): a slice resumes at `applied`.
  const start = state.unmasking?.applied ?? 0;
  const perSlice = Math.max(
    1,
    Math.floor((options.maxMaskWordsPerSlice ?? Number.POSITIVE_INFINITY) / state.config.dimension),
  );
  const end = Math.min(jobs.length, start + perSlice);
  const sum = maskedSumWords(state);
  const slice = jobs.slice(start, end);
  await applyMasks(sum, slice, modulusBits, options.prg ?? SERVER_MASK_PRG, options.concurrency ?? 16);
  for (const job of jobs) wipe(job.seed);
  if (end < jobs.length) {
    // Not done: the partial sum and how far it got, in one write; due again at once.
    return {
      state: { ...state, maskedSum: sum, unmasking: { applied: end }, deadline: now },
      changed: [CORE_KEY, SUM_KEY],
    };
  }

  // The shares have served their purpose; keep only the digests that make retries idempotent.
  const devices: ServerRoundState["devices"] = {};
  for (const [slot, record] of Object.entries(state.devices)) {
    devices[slot] = { digests: record.digests, cPk: record.cPk, sPk: record.sPk };
  }
  return {
    state: {
      ...withoutUnmasking(state),
      phase: "done",
      deadline: null,
      maskedSum: null,
      devices,
      result: { sum: bytesToBase64(wordsToBytes(sum)), contributors: [...survivors] },
    },
    changed: [CORE_KEY, SUM_KEY, ...Object.keys(devices).map((s) => deviceKey(Number(s)))],
  };
}

function withoutUnmasking(state: ServerRoundState): ServerRoundState {
  const { unmasking: _unmasking, ...rest } = state;
  return rest;
}
