/**
 * The server side of SecAgg+ (Bonawitz et al. CCS 2017 §4, Fig. 5; Bell et al. CCS 2020 graph):
 * one pure-ish function per stage, `handle<Stage>(state, message, now) -> {state, reply, changed}`,
 * plus `onDeadline(state, now)` for stage time limits and `viewFor(state, slot)` for what each
 * device fetches next. Inputs are never mutated; the returned state shares unchanged parts.
 * `changed` lists the storage entries (`toStorageEntries`) a host must write.
 *
 * A stage closes when every eligible device has answered or when its deadline passes; devices
 * that did not answer are dropped. Each close checks that every device whose secrets may be
 * needed still has at least t share holders among its neighbours; otherwise the round aborts
 * before anything more is revealed (Bonawitz §4: "if |U_i| < t, abort").
 *
 * Hosting (e.g. one Durable Object per round or shard):
 * - open: `createRoundState(options, now)`, write `toStorageEntries(state)`, set an alarm at
 *   `state.deadline`;
 * - device message: decode the binary frame once (`receiveFrame`), authenticate the participant,
 *   check `message.slot` against its slot, then `handleReceived(state, received, now)`; write only
 *   `changed` entries, answer `reply`, and move the alarm to the new `state.deadline` (delete it
 *   when null). `handleMessage` takes a JSON-form message instead (in-process hosts and tests);
 *
 * - device poll: `viewFor(state, slot)`; alarm: `onDeadline(state, now)`, same bookkeeping;
 * - restart: `fromStorageEntries(await storage.list())`: nothing else lives in memory.
 * Handlers await WebCrypto, and a Durable Object's input gate does not hold other events during
 * such awaits, so a host must run them one at a time (a promise chain, or
 * `blockConcurrencyWhile`), persisting each result before starting the next.
 */

import { base64ToBytes, bytesToBase64, constantTimeEqual, encodeSlotSet } from "@fedprofile/protocol/bytes";
import {
  addPackedInPlace,
  advertStatement,
  B_SHARE_BYTES,
  BOX_BYTES,
  buildNeighbourGraph,
  defaultSignatureVerifier,
  ERROR_CODES,
  expectLength,
  identityBindingFault,
  type NeighbourGraph,
  ProtocolError,
  packedLength,
  S_SHARE_BYTES,
  SECAGG_VERSION,
  SIZES,
  type Stage,
} from "@fedprofile/protocol/secagg";
import type { FrameOf, SecAggAck, SecAggFrameMessage, SecAggServerView } from "@fedprofile/protocol/wire";
import nacl from "tweetnacl";
import { admit, type Received, receiveFrame, receiveJson } from "./guard";
import {
  type Advance,
  abortRound,
  CORE_KEY,
  type DeviceRecord,
  deviceKey,
  maskedSumWords,
  roundStages,
  type ServerRoundState,
  SUM_KEY,
} from "./state";
import { finalizeUnmask, type UnmaskOptions } from "./unmask";

/** Options of one server step. */
export interface StepOptions extends UnmaskOptions {
  /**
   * The caller hands over `state.maskedSum`: a masked input is added into it in place rather than
   * into a copy (one 256 KB copy less per input at d = 2^16). The `state` passed in must then not
   * be used again after a masked-input step, whether it returned or threw; the shard host, which
   * reloads from storage after such a failure, sets this.
   */
  consumeSum?: boolean;
}

/** Result of accepting a message. */
export interface Transition {
  state: ServerRoundState;
  reply: SecAggAck;
  /** Storage entries to write (`core`, `sum`, `device:<slot>`). */
  changed: string[];
}

const graphCache = new WeakMap<readonly number[], NeighbourGraph>();

/** The round's neighbour graph over U1 (cached per members array; rebuilt after a restart). */
export function roundGraph(state: ServerRoundState): NeighbourGraph {
  const members = state.members;
  if (members === null) throw new RangeError("the neighbour graph exists once advertise-keys has closed");
  let graph = graphCache.get(members);
  if (!graph) {
    graph = buildNeighbourGraph(base64ToBytes(state.config.graphSeed), members, state.config.k);
    graphCache.set(members, graph);
  }
  return graph;
}

function ack(state: ServerRoundState, slot: number, stage: Stage): SecAggAck {
  return { v: SECAGG_VERSION, roundId: state.config.roundId, slot, stage, accepted: true };
}

/**
 * Per-stage submission counts of a `devices` object, carried from one state to the next by
 * `withDevice`, so that accept does not scan every device record per message.
 */
const countsOf = new WeakMap<ServerRoundState["devices"], Partial<Record<Stage, number>>>();

function withDevice(
  state: ServerRoundState,
  slot: number,
  update: (r: DeviceRecord) => DeviceRecord,
): ServerRoundState {
  const current = state.devices[String(slot)] ?? { digests: {} };
  const updated = update(current);
  const devices = { ...state.devices, [String(slot)]: updated };
  const counts = countsOf.get(state.devices);
  if (counts) {
    const next = { ...counts };
    for (const stage in next) {
      const key = stage as Stage;
      const delta = Number(updated.digests[key] !== undefined) - Number(current.digests[key] !== undefined);
      next[key] = (next[key] as number) + delta;
    }
    countsOf.set(devices, next);
  }
  return { ...state, devices };
}

/** How many devices have submitted `stage` (no list, no sort: accept asks this per message). */
function submittedCount(state: ServerRoundState, stage: Stage): number {
  const counts = countsOf.get(state.devices);
  const known = counts?.[stage];
  if (known !== undefined) return known;
  let count = 0;
  for (const slot in state.devices) if (state.devices[slot]?.digests[stage] !== undefined) count++;
  countsOf.set(state.devices, { ...counts, [stage]: count });
  return count;
}

function submitted(state: ServerRoundState, stage: Stage): number[] {
  const out: number[] = [];
  for (const [slot, record] of Object.entries(state.devices))
    if (record.digests[stage] !== undefined) out.push(Number(slot));
  return out.sort((a, b) => a - b);
}

/** Cheap small-order test: X25519 with any clamped scalar is zero exactly on the small subgroup. */
const PROBE_SCALAR = new Uint8Array(SIZES.key).fill(9);
function hasSmallOrder(publicKey: Uint8Array): boolean {
  return nacl.scalarMult(PROBE_SCALAR, publicKey).every((b) => b === 0);
}

/**
 * An honest coordinator's check of a signed advertisement (`@fedprofile/protocol/secagg`
 * identity.ts), so that one device's bad signature is refused here rather than making every
 * neighbour abort. Devices check again for themselves: this check protects availability only.
 * The token's RSA signature was checked when the device joined.
 */
async function checkAdvertIdentity(
  state: ServerRoundState,
  message: FrameOf<"advertise-keys">,
): Promise<DeviceRecord["identity"]> {
  const identity = message.identity;
  const refuse = (why: string) =>
    new ProtocolError(ERROR_CODES.unauthenticated, `slot ${message.slot}: ${why}`, {
      stage: "advertise-keys",
    });
  if (!identity) {
    if (state.config.signedKeys) throw refuse("this round (maliciousServer) needs a signed advertisement");
    return undefined;
  }
  const fault = identityBindingFault(identity);
  if (fault) throw refuse(fault);
  const statement = advertStatement(
    state.config.roundId,
    state.config.shard ?? 0,
    message.slot,
    message.cPk,
    message.sPk,
  );
  const verifier = await defaultSignatureVerifier();
  const [ok] = await verifier.verifyMany([
    { publicKey: identity.idPk, message: statement, signature: identity.sig },
  ]);
  if (!ok) throw refuse("the advertisement's signature does not verify");
  const text = {
    idPk: bytesToBase64(identity.idPk),
    salt: bytesToBase64(identity.salt),
    token: bytesToBase64(identity.token),
    sig: bytesToBase64(identity.sig),
  };
  for (const [slot, record] of Object.entries(state.devices)) {
    if (record.identity?.token === text.token || record.identity?.idPk === text.idPk)
      throw refuse(`token or identity key already advertised by slot ${slot}`);
  }
  return text;
}

/** Stage 0: record a device's two public keys (Bonawitz round 0, "AdvertiseKeys"). */
async function advertiseKeys(state: ServerRoundState, received: Received, now: number): Promise<Transition> {
  const { message, digest } = admit(state, received, "advertise-keys");
  const { cPk, sPk } = message;
  expectLength("cPk", cPk, SIZES.key, "advertise-keys");
  expectLength("sPk", sPk, SIZES.key, "advertise-keys");
  if (constantTimeEqual(cPk, sPk))
    throw new ProtocolError(ERROR_CODES.badKey, "cPk and sPk must differ", { stage: "advertise-keys" });
  if (hasSmallOrder(cPk) || hasSmallOrder(sPk)) {
    throw new ProtocolError(ERROR_CODES.badKey, "public key has small order", { stage: "advertise-keys" });
  }
  const cText = bytesToBase64(cPk);
  const sText = bytesToBase64(sPk);
  for (const [slot, record] of Object.entries(state.devices)) {
    if (record.cPk === cText || record.sPk === sText || record.cPk === sText || record.sPk === cText) {
      throw new ProtocolError(ERROR_CODES.badKey, `public key already advertised by slot ${slot}`, {
        stage: "advertise-keys",
      });
    }
  }
  const identity = await checkAdvertIdentity(state, message);
  const next = withDevice(state, message.slot, (r) => ({
    ...r,
    cPk: cText,
    sPk: sText,
    ...(identity ? { identity } : {}),
    digests: { ...r.digests, "advertise-keys": digest },
  }));
  return accept(next, message, now);
}

/** Stage 1: store one sealed share box per neighbour (round 1, "ShareKeys"). */
async function shareKeys(state: ServerRoundState, received: Received, now: number): Promise<Transition> {
  const { message, digest } = admit(state, received, "share-keys");
  const graph = roundGraph(state);
  const expected = new Set(graph.neighbours(message.slot));
  const seen = new Set<number>();
  for (const { to, ct } of message.shares) {
    if (!expected.has(to)) {
      throw new ProtocolError(
        ERROR_CODES.foreign,
        `share addressed to slot ${to}, not a neighbour of ${message.slot}`,
        {
          stage: "share-keys",
        },
      );
    }
    if (seen.has(to))
      throw new ProtocolError(ERROR_CODES.malformed, `two shares for slot ${to}`, { stage: "share-keys" });
    seen.add(to);
    expectLength(`shares[to=${to}].ct`, ct, BOX_BYTES, "share-keys");
  }
  if (seen.size !== expected.size) {
    throw new ProtocolError(
      ERROR_CODES.wrongLength,
      `expected ${expected.size} shares (one per neighbour), got ${seen.size}`,
      {
        stage: "share-keys",
      },
    );
  }
  const next = withDevice(state, message.slot, (r) => ({
    ...r,
    boxes: message.shares.map(({ to, ct }) => [to, bytesToBase64(ct)] as [number, string]),
    digests: { ...r.digests, "share-keys": digest },
  }));
  return accept(next, message, now);
}

/**
 * Stage 2: add the masked input y_u into the running sum (round 2, "MaskedInputCollection").
 * The vector itself is not kept: only Σ y_u mod 2^m, as words, added straight from the packed
 * bytes of the frame (`addSumInput`).
 */
async function maskedInput(
  state: ServerRoundState,
  received: Received,
  now: number,
  consumeSum: boolean,
): Promise<Transition> {
  const { message, digest } = admit(state, received, "masked-input");
  const sum = addSumInput(state, message.masked, consumeSum);
  const next = withDevice({ ...state, maskedSum: sum }, message.slot, (r) => ({
    ...r,
    digests: { ...r.digests, "masked-input": digest },
  }));
  const result = await accept(next, message, now);
  return { ...result, changed: unique([...result.changed, SUM_KEY]) };
}

/**
 * The running sum after one more packed masked input, mod 2^m: the stored words themselves when
 * `consumeSum`, else a copy. Checks the exact packed length and the padding bits first.
 */
function addSumInput(state: ServerRoundState, packed: Uint8Array, consumeSum: boolean): Uint32Array {
  const { dimension, modulusBits } = state.config;
  expectLength("masked", packed, packedLength(dimension, modulusBits), "masked-input");
  const sum = consumeSum && state.maskedSum !== null ? state.maskedSum : maskedSumWords(state);
  try {
    addPackedInPlace(sum, packed, modulusBits);
  } catch (cause) {
    throw new ProtocolError(ERROR_CODES.outOfRange, "masked: nonzero padding bits", {
      cause,
      stage: "masked-input",
    });
  }
  return sum;
}

/** Stage 3: store one consistency tag per surviving neighbour (round 3, "ConsistencyCheck"). */
async function consistencyCheck(
  state: ServerRoundState,
  received: Received,
  now: number,
): Promise<Transition> {
  const { message, digest } = admit(state, received, "consistency-check");
  const survivors = new Set(state.survivors ?? []);
  const expected = new Set(
    roundGraph(state)
      .neighbours(message.slot)
      .filter((v) => survivors.has(v)),
  );
  const seen = new Set<number>();
  for (const { to, tag } of message.tags) {
    if (!expected.has(to)) {
      throw new ProtocolError(ERROR_CODES.foreign, `tag addressed to slot ${to}, not a surviving neighbour`, {
        stage: "consistency-check",
      });
    }
    if (seen.has(to))
      throw new ProtocolError(ERROR_CODES.malformed, `two tags for slot ${to}`, {
        stage: "consistency-check",
      });
    seen.add(to);
    expectLength(`tags[to=${to}].tag`, tag, SIZES.tag, "consistency-check");
  }
  if (seen.size !== expected.size) {
    throw new ProtocolError(ERROR_CODES.wrongLength, `expected ${expected.size} tags, got ${seen.size}`, {
      stage: "consistency-check",
    });
  }
  const next = withDevice(state, message.slot, (r) => ({
    ...r,
    tags: message.tags.map(({ to, tag }) => [to, bytesToBase64(tag)] as [number, string]),
    digests: { ...r.digests, "consistency-check": digest },
  }));
  return accept(next, message, now);
}

/**
 * Stage 4: store revealed shares (round 4, "Unmasking"): b-shares exactly for surviving
 * neighbours that shared, s-shares exactly for dropped ones, never both for one neighbour.
 */
async function unmask(
  state: ServerRoundState,
  received: Received,
  now: number,
  options: UnmaskOptions = {},
): Promise<Transition> {
  const { message, digest } = admit(state, received, "unmask");
  if (state.unmasking) {
    // The stage closed when unmasking began; its shares are fixed (issue 16: a sliced unmask).
    throw new ProtocolError(
      ERROR_CODES.staleStage,
      "unmask: the stage has closed; the sum is being unmasked",
      {
        stage: "unmask",
      },
    );
  }
  const survivors = new Set(state.survivors ?? []);
  const sharers = new Set(state.sharers ?? []);
  const holders = roundGraph(state)
    .neighbours(message.slot)
    .filter((u) => sharers.has(u));
  checkReveals("bShares", message.bShares, new Set(holders.filter((u) => survivors.has(u))), B_SHARE_BYTES);
  checkReveals("sShares", message.sShares, new Set(holders.filter((u) => !survivors.has(u))), S_SHARE_BYTES);
  const next = withDevice(state, message.slot, (r) => ({
    ...r,
    bShares: message.bShares.map(({ of, share }) => [of, bytesToBase64(share)] as [number, string]),
    sShares: message.sShares.map(({ of, share }) => [of, bytesToBase64(share)] as [number, string]),
    digests: { ...r.digests, unmask: digest },
  }));
  return accept(next, message, now, options);
}

function checkReveals(
  field: string,
  reveals: FrameOf<"unmask">["bShares"],
  expected: Set<number>,
  size: number,
): void {
  const seen = new Set<number>();
  for (const { of, share } of reveals) {
    if (!expected.has(of)) {
      throw new ProtocolError(
        ERROR_CODES.foreign,
        `${field}: no ${field === "bShares" ? "b" : "s"}-share of slot ${of} is due`,
        {
          stage: "unmask",
        },
      );
    }
    if (seen.has(of))
      throw new ProtocolError(ERROR_CODES.malformed, `${field}: two shares of slot ${of}`, {
        stage: "unmask",
      });
    seen.add(of);
    expectLength(`${field}[of=${of}].share`, share, size, "unmask");
  }
  if (seen.size !== expected.size) {
    throw new ProtocolError(
      ERROR_CODES.wrongLength,
      `${field}: expected ${expected.size} shares, got ${seen.size}`,
      {
        stage: "unmask",
      },
    );
  }
}

/** Dispatches a received (decoded, digested) message to its stage handler. */
export function handleReceived(
  state: ServerRoundState,
  received: Received,
  now: number,
  options: StepOptions = {},
): Promise<Transition> {
  switch (received.message.stage) {
    case "advertise-keys":
      return advertiseKeys(state, received, now);
    case "share-keys":
      return shareKeys(state, received, now);
    case "masked-input":
      return maskedInput(state, received, now, options.consumeSum === true);
    case "consistency-check":
      return consistencyCheck(state, received, now);
    case "unmask":
      return unmask(state, received, now, options);
  }
}

/** Handles one binary frame: decoded once, digested over its raw bytes, then dispatched. */
export async function handleFrame(
  state: ServerRoundState,
  frame: Uint8Array,
  now: number,
  options: StepOptions = {},
): Promise<Transition> {
  return handleReceived(state, await receiveFrame(frame), now, options);
}

/** Handles one JSON-form message (what a device keeps in its state), as its frame would be. */
export async function handleMessage(
  state: ServerRoundState,
  input: unknown,
  now: number,
  options: UnmaskOptions = {},
): Promise<Transition> {
  return handleReceived(state, await receiveJson(input), now, options);
}

/** One stage's handler over a JSON-form message: a message of another stage is `malformed`. */
function stageHandler(stage: Stage) {
  return async (state: ServerRoundState, input: unknown, now: number, options: UnmaskOptions = {}) => {
    const received = await receiveJson(input);
    admit(state, received, stage); // names a wrong stage before the handler runs
    return handleReceived(state, received, now, options);
  };
}

/** Stage handlers over JSON-form messages (tests call them directly). */
export const handleAdvertiseKeys = stageHandler("advertise-keys");
export const handleShareKeys = stageHandler("share-keys");
export const handleMaskedInput = stageHandler("masked-input");
export const handleConsistencyCheck = stageHandler("consistency-check");
export const handleUnmask = stageHandler("unmask");

/** Records acceptance and closes the stage early once every eligible device has answered. */
async function accept(
  state: ServerRoundState,
  message: SecAggFrameMessage,
  now: number,
  options: UnmaskOptions = {},
): Promise<Transition> {
  // A step that does not close its stage changes only the device's record (and the sum): the
  // core is rewritten, with its member lists, only when a stage closes.
  const changed = [deviceKey(message.slot)];
  const stage = message.stage;
  const expected = stage === "advertise-keys" ? state.config.cohortSize : (eligibleCount(state, stage) ?? 0);
  let next = state;
  if (submittedCount(state, stage) >= expected) {
    const closed = await closeStage(state, now, options);
    next = closed.state;
    changed.push(...closed.changed);
  }
  return { state: next, reply: ack(next, message.slot, stage), changed: unique(changed) };
}

function eligibleCount(state: ServerRoundState, stage: Stage): number | null {
  switch (stage) {
    case "share-keys":
      return state.members?.length ?? null;
    case "masked-input":
      return state.sharers?.length ?? null;
    case "consistency-check":
      return state.survivors?.length ?? null;
    case "unmask":
      return (state.config.consistencyCheck ? state.checked : state.survivors)?.length ?? null;
    default:
      return state.config.cohortSize;
  }
}

/**
 * Deadline transition: if the current stage's deadline has passed, close it, treating every
 * device that has not answered as dropped. A no-op before the deadline or after the round ended,
 * so a host may call it on every alarm, including a spurious or repeated one.
 */
export async function onDeadline(
  state: ServerRoundState,
  now: number,
  options: UnmaskOptions = {},
): Promise<Advance> {
  if (state.deadline === null || now < state.deadline) return { state, changed: [] };
  return closeStage(state, now, options);
}

export function unique(keys: string[]): string[] {
  return [...new Set(keys)];
}

function nextStage(state: ServerRoundState, stage: Stage, now: number): ServerRoundState {
  const stages = roundStages(state.config);
  const following = stages[stages.indexOf(stage) + 1];
  if (following === undefined) throw new RangeError(`no stage follows ${stage}`);
  return { ...state, phase: following, deadline: now + state.config.stageTimeoutsMs[following] };
}

/**
 * Devices of `among` with fewer than t neighbours in `holders`: their secrets could not be
 * rebuilt, so the round cannot finish.
 */
function shortOfHolders(
  graph: NeighbourGraph,
  among: readonly number[],
  holders: ReadonlySet<number>,
  t: number,
): number[] {
  return among.filter((u) => graph.neighbours(u).filter((v) => holders.has(v)).length < t);
}

/** Closes the current stage with whoever answered and opens the next one (or ends the round). */
export async function closeStage(
  state: ServerRoundState,
  now: number,
  options: UnmaskOptions = {},
): Promise<Advance> {
  const { t } = state.config;
  const phase = state.phase;
  switch (phase) {
    case "advertise-keys": {
      const members = submitted(state, phase);
      // Each member needs ≥ t neighbours, and its degree is min(k, |U1| - 1).
      if (members.length < t + 1) {
        return abortRound(
          state,
          phase,
          `${members.length} devices advertised keys; need at least t + 1 = ${t + 1}`,
          now,
        );
      }
      return { state: nextStage({ ...state, members }, phase, now), changed: [CORE_KEY] };
    }
    case "share-keys": {
      const graph = roundGraph(state);
      // Peel devices that could never be recovered (fewer than t sharing neighbours), repeatedly:
      // removing one can leave a neighbour short in turn.
      let sharers = submitted(state, phase);
      for (;;) {
        const holders = new Set(sharers);
        const short = new Set(shortOfHolders(graph, sharers, holders, t));
        if (short.size === 0) break;
        sharers = sharers.filter((u) => !short.has(u));
      }
      if (sharers.length < t + 1) {
        return abortRound(
          state,
          phase,
          `${sharers.length} devices shared keys with enough neighbours; need at least ${t + 1}`,
          now,
        );
      }
      return { state: nextStage({ ...state, sharers }, phase, now), changed: [CORE_KEY] };
    }
    case "masked-input": {
      const survivors = submitted(state, phase);
      const short = shortOfHolders(roundGraph(state), state.sharers ?? [], new Set(survivors), t);
      if (short.length > 0 || survivors.length < t) {
        return abortRound(
          state,
          phase,
          belowThreshold(survivors.length, short, t, "sent masked inputs"),
          now,
        );
      }
      // The sum is over exactly these inputs: below the operator's floor it is never revealed.
      const floor = state.config.minInputs ?? t;
      if (survivors.length < floor) {
        return abortRound(
          state,
          phase,
          `${survivors.length} devices sent masked inputs; this round unmasks no fewer than ${floor}`,
          now,
        );
      }
      // Boxes have been delivered; the server has no further use for them.
      const devices: Record<string, DeviceRecord> = {};
      for (const [slot, record] of Object.entries(state.devices)) {
        const { boxes: _boxes, ...rest } = record;
        devices[slot] = rest;
      }
      const next = nextStage({ ...state, survivors, devices }, phase, now);
      return { state: next, changed: [CORE_KEY, ...Object.keys(devices).map((s) => deviceKey(Number(s)))] };
    }
    case "consistency-check": {
      const checked = submitted(state, phase);
      const short = shortOfHolders(roundGraph(state), state.sharers ?? [], new Set(checked), t);
      if (short.length > 0 || checked.length < t) {
        return abortRound(
          state,
          phase,
          belowThreshold(checked.length, short, t, "passed the consistency check"),
          now,
        );
      }
      return { state: nextStage({ ...state, checked }, phase, now), changed: [CORE_KEY] };
    }
    case "unmask": {
      // Unmasking under way (split across alarms): the revealers were fixed when it began.
      const revealers = state.unmasking ? (state.revealers ?? []) : submitted(state, phase);
      return finalizeUnmask({ ...state, revealers }, roundGraph(state), now, options);
    }
    default:
      return { state, changed: [] };
  }
}

function belowThreshold(count: number, short: number[], t: number, what: string): string {
  if (short.length === 0) return `${count} devices ${what}; need at least t = ${t}`;
  return `${short.length} device(s) would have fewer than t = ${t} share holders (e.g. slot ${short[0]}); ${count} devices ${what}`;
}

/**
 * What device `slot` should see now: the current stage's request, or the round's outcome.
 * Throws `notParticipant` for a device dropped earlier and `foreign` outside the cohort.
 */
export function viewFor(state: ServerRoundState, slot: number): SecAggServerView {
  const { config } = state;
  const header = { v: SECAGG_VERSION, roundId: config.roundId, slot };
  if (!Number.isInteger(slot) || slot < 0 || slot >= config.cohortSize) {
    throw new ProtocolError(
      ERROR_CODES.foreign,
      `slot ${slot} is not in this cohort of ${config.cohortSize}`,
    );
  }
  const dropped = (stage: Stage) =>
    new ProtocolError(ERROR_CODES.notParticipant, `slot ${slot} was dropped before ${stage}`, { stage });
  switch (state.phase) {
    case "advertise-keys":
      return {
        ...header,
        stage: "advertise-keys",
        config: {
          v: SECAGG_VERSION,
          roundId: config.roundId,
          cohortSize: config.cohortSize,
          k: config.k,
          t: config.t,
          dimension: config.dimension,
          valueBits: config.valueBits,
          modulusBits: config.modulusBits,
          ...(config.modularInputs ? { modularInputs: true as const } : {}),
          graphSeed: config.graphSeed,
          consistencyCheck: config.consistencyCheck,
        },
      };
    case "share-keys": {
      const graph = roundGraph(state);
      if (!graph.has(slot)) throw dropped("share-keys");
      const neighbours = graph.neighbours(slot).map((v) => {
        const record = state.devices[String(v)] as DeviceRecord;
        return {
          slot: v,
          cPk: record.cPk as string,
          sPk: record.sPk as string,
          ...(record.identity ? { identity: record.identity } : {}),
        };
      });
      return {
        ...header,
        stage: "share-keys",
        members: bytesToBase64(encodeSlotSet(graph.members, config.cohortSize)),
        neighbours,
      };
    }
    case "masked-input": {
      const sharers = new Set(state.sharers ?? []);
      if (!sharers.has(slot)) throw dropped("masked-input");
      const shares = roundGraph(state)
        .neighbours(slot)
        .filter((u) => sharers.has(u))
        .map((u) => {
          const box = state.devices[String(u)]?.boxes?.find(([to]) => to === slot);
          if (!box) throw new RangeError(`state: sharer ${u} has no box for ${slot}`);
          return { from: u, ct: box[1] };
        });
      return { ...header, stage: "masked-input", shares };
    }
    case "consistency-check": {
      if (!(state.survivors ?? []).includes(slot)) throw dropped("consistency-check");
      return { ...header, stage: "consistency-check", survivors: survivorBitmap(state) };
    }
    case "unmask": {
      const allowed = config.consistencyCheck ? state.checked : state.survivors;
      if (!(allowed ?? []).includes(slot)) throw dropped("unmask");
      const tags: Array<{ from: number; tag: string }> = [];
      if (config.consistencyCheck) {
        const checked = new Set(state.checked ?? []);
        for (const u of roundGraph(state).neighbours(slot)) {
          if (!checked.has(u)) continue;
          const tag = state.devices[String(u)]?.tags?.find(([to]) => to === slot);
          if (tag) tags.push({ from: u, tag: tag[1] });
        }
      }
      return { ...header, stage: "unmask", survivors: survivorBitmap(state), tags };
    }
    case "done":
      return { ...header, stage: "done", contributors: state.result?.contributors.length ?? 0 };
    case "aborted":
      return {
        ...header,
        stage: "aborted",
        code: state.abort?.code ?? ERROR_CODES.belowThreshold,
        reason: state.abort?.reason ?? "aborted",
      };
  }
}

function survivorBitmap(state: ServerRoundState): string {
  return bytesToBase64(encodeSlotSet(state.survivors ?? [], state.config.cohortSize));
}
