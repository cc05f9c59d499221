/**
 * The client side of SecAgg+ (Bonawitz et al. CCS 2017 §4, Fig. 5, user side; neighbour graph of
 * Bell et al. CCS 2020): one function per stage, each taking the serialisable `ClientState` and the
 * coordinator's stage view and returning the next state and the message to send.
 *
 * The state is plain JSON (base64 for bytes) so the SDK can keep it in IndexedDB and resume after
 * a reload. Calling a stage again after it succeeded returns the stored message unchanged: a device
 * must never send two different masked inputs for one round, since their difference would reveal
 * the difference of its inputs (the masks are the same).
 */

import {
  base64ToBytes,
  bytesToBase64,
  constantTimeEqual,
  decodeSlotSet,
  type RandomBytes,
  systemRandomBytes,
} from "@fedprofile/protocol/bytes";
import {
  advertStatement,
  applyMasks,
  buildNeighbourGraph,
  consistencyKey,
  consistencyTag,
  decodeBoxPlaintext,
  defaultKeyAgreement,
  ERROR_CODES,
  encodeBoxPlaintext,
  encodeShareValues,
  generateKeyPair,
  type KeyAgreement,
  type MaskJob,
  openShares,
  type Prg,
  ProtocolAbortError,
  ProtocolError,
  packWords,
  pairwiseMaskSeed,
  pairwiseSign,
  SIZES,
  type SignatureVerifier,
  type Stage,
  sealShares,
  selfMaskSeed,
  shareBoxKey,
  sharePoint,
  signStatement,
  splitSecret,
} from "@fedprofile/protocol/secagg";
import {
  type AdvertiseKeysMessage,
  AdvertiseKeysView,
  type ConsistencyCheckMessage,
  ConsistencyCheckView,
  type MaskedInputMessage,
  MaskedInputView,
  type SecAggClientMessage,
  type SecAggConfig,
  type ShareKeysMessage,
  ShareKeysView,
  type UnmaskMessage,
  UnmaskView,
} from "@fedprofile/protocol/wire";
import type * as z from "zod/mini";
import type { IdentityContext } from "./identity";

/**
 * The round identity a device signs its advertisement with (`maliciousServer` preset,
 * `@fedprofile/protocol/secagg` identity.ts). Made before the join, because the admission token's
 * nonce is bound to it; all base64.
 */
export interface ClientIdentity extends IdentityContext {
  /** Ed25519 secret seed; used once, to sign the advertisement, and not kept in the state. */
  seed: string;
  publicKey: string;
  salt: string;
}

/** Injectable primitives; defaults are the platform CSPRNG, native X25519 if present, AES-CTR. */
export interface ClientOptions {
  randomBytes?: RandomBytes;
  keyAgreement?: KeyAgreement;
  prg?: Prg;
  /** Sign the advertisement and verify the neighbours' (needed under `maliciousServer`). */
  identity?: ClientIdentity;
  signatureVerifier?: SignatureVerifier;
}

/** The last stage a device completed. */
export type ClientStep = "advertised" | "shared" | "masked" | "checked" | "unmasked";

/** A neighbour's advertised keys and the X25519 secret shared with it over c-keys, base64. */
export interface ClientNeighbour {
  slot: number;
  cPk: string;
  sPk: string;
  /** X25519(c_u^SK, c_v^PK): keys the share boxes and consistency tags both ways. */
  boxSecret: string;
}

/** The serialisable client state of one round (store it after every step). */
export interface ClientState {
  v: 1;
  config: SecAggConfig;
  slot: number;
  step: ClientStep;
  /** Secret material, wiped (nulled) once the device has revealed its shares. */
  secrets: { cSk: string; cPk: string; sSk: string; sPk: string; selfSeed: string } | null;
  neighbours: ClientNeighbour[] | null;
  /** Shares this device holds for neighbours that shared with it (U2 ∩ N(u)): [from, b, s]. */
  held: Array<[number, string, string]> | null;
  /** U3 as the server announced it (bitmap, base64), pinned at the first view that carries it. */
  survivors: string | null;
  /** The last message sent, replayed verbatim on a retry of the same stage. */
  outbox: SecAggClientMessage | null;
  /** Set when the device signed its keys: then every neighbour's advertisement is verified. */
  identity?: IdentityContext;
}

/** A stage result: the next state and the message to send. */
export interface ClientStepResult<M extends SecAggClientMessage> {
  state: ClientState;
  message: M;
}

const STEP_OF: Record<Stage, ClientStep> = {
  "advertise-keys": "advertised",
  "share-keys": "shared",
  "masked-input": "masked",
  "consistency-check": "checked",
  unmask: "unmasked",
};
const STEP_ORDER: ClientStep[] = ["advertised", "shared", "masked", "checked", "unmasked"];

function parseView<T extends z.ZodMiniType>(schema: T, view: unknown, stage: Stage): z.infer<T> {
  const parsed = schema.safeParse(view);
  if (!parsed.success) {
    throw new ProtocolError(
      ERROR_CODES.malformed,
      `${stage} view: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      {
        cause: parsed.error,
        stage,
      },
    );
  }
  return parsed.data;
}

/**
 * Checks the view belongs to this round and device and that `stage` is the next one. Returns the
 * stored message if this stage already ran (a retry), or null to proceed.
 */
function gate<M extends SecAggClientMessage>(
  state: ClientState,
  view: { roundId: string; slot: number },
  stage: Stage,
  previous: ClientStep[],
): ClientStepResult<M> | null {
  if (view.roundId !== state.config.roundId) {
    throw new ProtocolError(
      ERROR_CODES.wrongRound,
      `view is for round ${view.roundId}, device is in ${state.config.roundId}`,
      {
        stage,
      },
    );
  }
  if (view.slot !== state.slot)
    throw new ProtocolError(ERROR_CODES.foreign, `view is for slot ${view.slot}`, { stage });
  if (state.outbox?.stage === stage) return { state, message: state.outbox as M };
  if (!previous.includes(state.step)) {
    const behind = STEP_ORDER.indexOf(state.step) < STEP_ORDER.indexOf(STEP_OF[stage]);
    throw new ProtocolError(
      behind ? ERROR_CODES.outOfOrder : ERROR_CODES.staleStage,
      `cannot run ${stage} after ${state.step}`,
      { stage },
    );
  }
  return null;
}

function header(state: ClientState) {
  return { v: 1 as const, roundId: state.config.roundId, slot: state.slot };
}

function secretsOf(state: ClientState, stage: Stage) {
  if (!state.secrets) throw new ProtocolError(ERROR_CODES.staleStage, "secrets already wiped", { stage });
  return state.secrets;
}

/**
 * Stage 0 (Bonawitz round 0): draw the self-mask seed b_u and two X25519 key pairs (c for
 * encrypting shares, s for masks) and advertise the public keys.
 */
export function advertiseKeys(
  viewInput: unknown,
  options: ClientOptions = {},
): ClientStepResult<AdvertiseKeysMessage> {
  const view = parseView(AdvertiseKeysView, viewInput, "advertise-keys");
  const random = options.randomBytes ?? systemRandomBytes;
  const c = generateKeyPair(random);
  const s = generateKeyPair(random);
  const selfSeed = random(SIZES.selfSeed);
  const state: ClientState = {
    v: 1,
    config: view.config,
    slot: view.slot,
    step: "advertised",
    secrets: {
      cSk: bytesToBase64(c.secretKey),
      cPk: bytesToBase64(c.publicKey),
      sSk: bytesToBase64(s.secretKey),
      sPk: bytesToBase64(s.publicKey),
      selfSeed: bytesToBase64(selfSeed),
    },
    neighbours: null,
    held: null,
    survivors: null,
    outbox: null,
  };
  const message: AdvertiseKeysMessage = {
    ...header(state),
    stage: "advertise-keys",
    cPk: state.secrets!.cPk,
    sPk: state.secrets!.sPk,
  };
  const id = options.identity;
  if (id) {
    const statement = advertStatement(view.roundId, id.shard, view.slot, c.publicKey, s.publicKey);
    const sig = signStatement(base64ToBytes(id.seed), statement);
    message.identity = { idPk: id.publicKey, salt: id.salt, token: id.token, sig: bytesToBase64(sig) };
    state.identity = { shard: id.shard, token: id.token, issuer: id.issuer };
  }
  return { state: { ...state, outbox: message }, message };
}

/**
 * Stage 1 (round 1): rebuild the neighbour graph from the public seed and U1, check the server's
 * key list against it, Shamir-share b_u and s_u^SK with threshold t among the neighbours, and seal
 * each neighbour's pair of shares in a box keyed by the c-key agreement.
 */
export async function shareKeys(
  state: ClientState,
  viewInput: unknown,
  options: ClientOptions = {},
): Promise<ClientStepResult<ShareKeysMessage>> {
  const view = parseView(ShareKeysView, viewInput, "share-keys");
  const retry = gate<ShareKeysMessage>(state, view, "share-keys", ["advertised"]);
  if (retry) return retry;
  const { config, slot } = state;
  const secrets = secretsOf(state, "share-keys");
  const members = decodeSlotSet(base64ToBytes(view.members), config.cohortSize);
  const graph = buildNeighbourGraph(base64ToBytes(config.graphSeed), members, config.k);
  const expected = graph.neighbours(slot);
  const listed = view.neighbours.map((n) => n.slot).sort((a, b) => a - b);
  if (!graph.has(slot) || expected.length !== listed.length || expected.some((v, i) => v !== listed[i])) {
    throw new ProtocolAbortError(
      ERROR_CODES.inconsistent,
      "the server's neighbour list does not match the public graph",
      {
        stage: "share-keys",
      },
    );
  }
  if (expected.length < config.t) {
    throw new ProtocolAbortError(
      ERROR_CODES.belowThreshold,
      `${expected.length} neighbours, fewer than t = ${config.t}`,
      {
        stage: "share-keys",
      },
    );
  }
  if (state.identity) {
    // Before any share is sealed to a neighbour's keys (maliciousServer preset).
    const { verifyNeighbourAdverts } = await import("./identity");
    await verifyNeighbourAdverts(config.roundId, state.identity, view.neighbours, options.signatureVerifier);
  }
  for (const n of view.neighbours) {
    for (const key of [n.cPk, n.sPk]) {
      if (base64ToBytes(key).length !== SIZES.key) {
        throw new ProtocolError(
          ERROR_CODES.wrongLength,
          `neighbour ${n.slot}: key is not ${SIZES.key} bytes`,
          {
            stage: "share-keys",
          },
        );
      }
    }
  }
  const agreement = options.keyAgreement ?? (await defaultKeyAgreement());
  const random = options.randomBytes ?? systemRandomBytes;
  const own = { secretKey: base64ToBytes(secrets.cSk), publicKey: base64ToBytes(secrets.cPk) };
  const shared = await agreement.agreeMany(
    own,
    view.neighbours.map((n) => base64ToBytes(n.cPk)),
  );
  const points = view.neighbours.map((n) => sharePoint(n.slot));
  const bShares = splitSecret(base64ToBytes(secrets.selfSeed), config.t, points, random);
  const sShares = splitSecret(base64ToBytes(secrets.sSk), config.t, points, random);
  const neighbours: ClientNeighbour[] = [];
  const shares = view.neighbours.map((n, i) => {
    const secret = shared[i] as Uint8Array;
    neighbours.push({ slot: n.slot, cPk: n.cPk, sPk: n.sPk, boxSecret: bytesToBase64(secret) });
    const box = sealShares(
      shareBoxKey(secret, config.roundId, slot, n.slot),
      encodeBoxPlaintext(bShares[i] as (typeof bShares)[number], sShares[i] as (typeof sShares)[number]),
    );
    return { to: n.slot, ct: bytesToBase64(box) };
  });
  const message: ShareKeysMessage = { ...header(state), stage: "share-keys", shares };
  return { state: { ...state, step: "shared", neighbours, outbox: message }, message };
}

/**
 * Stage 2 (round 2): open the boxes from neighbours that shared (U2 ∩ N(u)), then send
 * y_u = x_u + PRG(b_u) + Σ Δ_{u,v} PRG(s_{u,v}) mod 2^m, bit-packed. `input` holds the encoded
 * values (each < 2^valueBits; see `encodeFixedPoint`), which is what makes overflow impossible.
 */
export async function maskedInput(
  state: ClientState,
  viewInput: unknown,
  input: Uint32Array,
  options: ClientOptions = {},
): Promise<ClientStepResult<MaskedInputMessage>> {
  const view = parseView(MaskedInputView, viewInput, "masked-input");
  const retry = gate<MaskedInputMessage>(state, view, "masked-input", ["shared"]);
  if (retry) return retry;
  const { config, slot } = state;
  const secrets = secretsOf(state, "masked-input");
  if (input.length !== config.dimension) {
    throw new ProtocolError(
      ERROR_CODES.wrongLength,
      `input has ${input.length} values, round expects ${config.dimension}`,
      {
        stage: "masked-input",
      },
    );
  }
  const limit = 2 ** config.valueBits;
  for (let i = 0; i < input.length; i++) {
    if ((input[i] as number) >= limit) {
      throw new ProtocolError(ERROR_CODES.outOfRange, `input[${i}] = ${input[i]} ≥ 2^${config.valueBits}`, {
        stage: "masked-input",
      });
    }
  }
  const byslot = new Map((state.neighbours ?? []).map((n) => [n.slot, n]));
  const held: Array<[number, string, string]> = [];
  for (const { from, ct } of view.shares) {
    const neighbour = byslot.get(from);
    if (!neighbour || held.some(([f]) => f === from)) {
      throw new ProtocolAbortError(
        ERROR_CODES.inconsistent,
        `share box from slot ${from}, not a neighbour (or twice)`,
        {
          stage: "masked-input",
        },
      );
    }
    const key = shareBoxKey(base64ToBytes(neighbour.boxSecret), config.roundId, from, slot);
    const { bShare, sShare } = decodeBoxPlaintext(slot, openShares(key, base64ToBytes(ct)));
    held.push([from, bytesToBase64(encodeShareValues(bShare)), bytesToBase64(encodeShareValues(sShare))]);
  }
  if (held.length < config.t) {
    throw new ProtocolAbortError(
      ERROR_CODES.belowThreshold,
      `${held.length} neighbours shared, fewer than t = ${config.t}`,
      {
        stage: "masked-input",
      },
    );
  }
  const peers = held.map(([from]) => byslot.get(from) as ClientNeighbour);
  const agreement = options.keyAgreement ?? (await defaultKeyAgreement());
  const own = { secretKey: base64ToBytes(secrets.sSk), publicKey: base64ToBytes(secrets.sPk) };
  const shared = await agreement.agreeMany(
    own,
    peers.map((p) => base64ToBytes(p.sPk)),
  );
  const jobs: MaskJob[] = [
    { seed: selfMaskSeed(base64ToBytes(secrets.selfSeed), config.roundId, slot), sign: 1 },
  ];
  peers.forEach((p, i) => {
    jobs.push({
      seed: pairwiseMaskSeed(shared[i] as Uint8Array, config.roundId, slot, p.slot),
      sign: pairwiseSign(slot, p.slot),
    });
  });
  const masked = input.slice();
  await applyMasks(masked, jobs, config.modulusBits, options.prg);
  const message: MaskedInputMessage = {
    ...header(state),
    stage: "masked-input",
    masked: bytesToBase64(packWords(masked, config.modulusBits)),
  };
  return { state: { ...state, step: "masked", held, outbox: message }, message };
}

/** Decodes U3 and checks it against what this device knows: it contains the device, and every
 * surviving neighbour is one that shared with it. */
function checkSurvivors(state: ClientState, bitmap: string, stage: Stage): Set<number> {
  const { config } = state;
  const survivors = new Set(decodeSlotSet(base64ToBytes(bitmap), config.cohortSize));
  const sharers = new Set((state.held ?? []).map(([from]) => from));
  if (!survivors.has(state.slot)) {
    throw new ProtocolAbortError(ERROR_CODES.inconsistent, "survivor set omits this device", { stage });
  }
  for (const n of state.neighbours ?? []) {
    if (survivors.has(n.slot) && !sharers.has(n.slot)) {
      throw new ProtocolAbortError(
        ERROR_CODES.inconsistent,
        `survivor ${n.slot} never shared with this device`,
        { stage },
      );
    }
  }
  if (survivors.size < config.t) {
    throw new ProtocolAbortError(
      ERROR_CODES.belowThreshold,
      `${survivors.size} survivors, fewer than t = ${config.t}`,
      {
        stage,
      },
    );
  }
  return survivors;
}

/**
 * Stage 3 (round 3, consistency check): MAC the announced survivor set U3 for each surviving
 * neighbour. The tags stand in for Bonawitz's signatures: only the neighbour can check them and the
 * server cannot forge them for keys it relayed faithfully, so a device aborts unless t neighbours
 * confirm the U3 it was shown. What that buys depends on the preset (`@fedprofile/protocol/secagg`
 * threat.ts):
 * - t ≤ k/2 (the default, honest-but-curious): a server that lies can show half of X's neighbours
 *   a U3 with X and half one without, each half confirms itself, and the server collects t
 *   b-shares and t s-shares of X and recovers X's input (`test/secagg/split-view.test.ts`).
 * - t > k/2 (`maliciousServer`): two disjoint halves cannot both reach t, so that attack fails.
 * - A server that substitutes neighbour keys (a man in the middle of the c- and s-key agreements)
 *   reads share boxes and forges these tags. Under `maliciousServer` each advertisement is signed
 *   by a round identity key bound to the device's admission token and verified at share-keys
 *   (`./identity.ts`), so the tags, keyed by X25519 of two signed c-keys, are bound to the same
 *   identity keys. Without the preset, keys are relayed unauthenticated.
 */
export function consistencyCheck(
  state: ClientState,
  viewInput: unknown,
): ClientStepResult<ConsistencyCheckMessage> {
  const view = parseView(ConsistencyCheckView, viewInput, "consistency-check");
  const retry = gate<ConsistencyCheckMessage>(state, view, "consistency-check", ["masked"]);
  if (retry) return retry;
  const survivors = checkSurvivors(state, view.survivors, "consistency-check");
  const bitmap = base64ToBytes(view.survivors);
  const tags = (state.neighbours ?? [])
    .filter((n) => survivors.has(n.slot))
    .map((n) => {
      const key = consistencyKey(base64ToBytes(n.boxSecret), state.config.roundId, state.slot, n.slot);
      return { to: n.slot, tag: bytesToBase64(consistencyTag(key, state.config.roundId, bitmap)) };
    });
  const message: ConsistencyCheckMessage = { ...header(state), stage: "consistency-check", tags };
  return { state: { ...state, step: "checked", survivors: view.survivors, outbox: message }, message };
}

/**
 * Stage 4 (round 4, unmask): verify the neighbours' tags on U3 (with the consistency check), then
 * reveal, for each neighbour that shared with this device, its b-share if it survived and its
 * s-share if it dropped — never both, which is what keeps a late device's input hidden. Wipes the
 * device's secrets afterwards.
 */
export function unmask(state: ClientState, viewInput: unknown): ClientStepResult<UnmaskMessage> {
  const view = parseView(UnmaskView, viewInput, "unmask");
  const withCheck = state.config.consistencyCheck;
  const retry = gate<UnmaskMessage>(state, view, "unmask", [withCheck ? "checked" : "masked"]);
  if (retry) return retry;
  const { config, slot } = state;
  if (withCheck && view.survivors !== state.survivors) {
    throw new ProtocolAbortError(
      ERROR_CODES.inconsistent,
      "survivor set changed since the consistency check",
      {
        stage: "unmask",
      },
    );
  }
  const survivors = checkSurvivors(state, view.survivors, "unmask");
  if (withCheck) {
    const byslot = new Map((state.neighbours ?? []).map((n) => [n.slot, n]));
    const bitmap = base64ToBytes(view.survivors);
    const seen = new Set<number>();
    for (const { from, tag } of view.tags) {
      const n = byslot.get(from);
      if (!n || !survivors.has(from) || seen.has(from)) {
        throw new ProtocolAbortError(
          ERROR_CODES.inconsistent,
          `tag from slot ${from}, not a surviving neighbour`,
          {
            stage: "unmask",
          },
        );
      }
      seen.add(from);
      const expected = consistencyTag(
        consistencyKey(base64ToBytes(n.boxSecret), config.roundId, from, slot),
        config.roundId,
        bitmap,
      );
      if (!constantTimeEqual(expected, base64ToBytes(tag))) {
        throw new ProtocolAbortError(
          ERROR_CODES.inconsistent,
          `neighbour ${from} saw a different survivor set`,
          {
            stage: "unmask",
          },
        );
      }
    }
    if (seen.size < config.t) {
      throw new ProtocolAbortError(
        ERROR_CODES.belowThreshold,
        `${seen.size} neighbours confirmed U3, fewer than t = ${config.t}`,
        {
          stage: "unmask",
        },
      );
    }
  }
  const bShares: UnmaskMessage["bShares"] = [];
  const sShares: UnmaskMessage["sShares"] = [];
  for (const [from, b, s] of state.held ?? []) {
    if (survivors.has(from)) bShares.push({ of: from, share: b });
    else sShares.push({ of: from, share: s });
  }
  const message: UnmaskMessage = { ...header(state), stage: "unmask", bShares, sShares };
  const wiped: ClientState = {
    ...state,
    step: "unmasked",
    secrets: null,
    held: null,
    neighbours: (state.neighbours ?? []).map((n) => ({ ...n, boxSecret: "" })),
    survivors: view.survivors,
    outbox: message,
  };
  return { state: wiped, message };
}
