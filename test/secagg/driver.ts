/**
 * An in-memory driver that runs one whole SecAgg+ round: n simulated clients (the real client
 * stage functions) against the real server functions, with any dropout schedule. Used by the
 * property tests and the benchmark; a Durable Object host follows the same loop with HTTP in the
 * middle and alarms in place of the simulated clock.
 *
 * Dropout semantics: a device scheduled to drop at stage S sends nothing from S on (it does take
 * part in every earlier stage). Every stage is then closed by its deadline, as an alarm would.
 */

import { canonicalJson } from "@fedprofile/coordinator/ledger";
import {
  type AbortRecord,
  base64ToBytes,
  bytesToWords,
  createRoundState,
  encodeClientFrame,
  fromStorageEntries,
  handleFrame,
  type KeyAgreement,
  onDeadline,
  type Prg,
  type RandomBytes,
  type SecAggClientMessage,
  type ServerRoundState,
  STAGES,
  type Stage,
  storageEntry,
  toStorageEntries,
  viewFor,
} from "@fedprofile/coordinator/secagg";
import { blake3 } from "@noble/hashes/blake3.js";
import {
  advertiseKeys,
  type ClientIdentity,
  type ClientOptions,
  type ClientState,
  consistencyCheck,
  maskedInput,
  shareKeys,
  unmask,
} from "../../sdk/src/secagg/client";

/**
 * A deterministic `randomBytes` for tests and benchmarks: BLAKE3 XOF of a seed and a counter.
 * Never use it for real rounds.
 */
export function seededRandomBytes(seed: number | string): RandomBytes {
  const key = blake3(new TextEncoder().encode(`fedprofile/secagg/test-rng/${seed}`));
  let counter = 0;
  return (length) => {
    const info = new Uint8Array(8);
    new DataView(info.buffer).setFloat64(0, counter++);
    return blake3(info, { key, dkLen: length });
  };
}

/** Parameters of a simulated round. */
export interface SimulatedRound {
  roundId?: string;
  cohortSize: number;
  k: number;
  t: number;
  dimension: number;
  valueBits: number;
  modulusBits: number;
  consistencyCheck?: boolean;
  /** Inputs are residues mod 2^m that may wrap (distributed DP); then valueBits = modulusBits. */
  modularInputs?: boolean;
  /** The fewest masked inputs the server unmasks. */
  minInputs?: number;
  /** Encoded inputs per slot (each value < 2^valueBits). */
  inputs: readonly Uint32Array[];
  /** Slot → the stage at which it stops sending. */
  dropouts?: ReadonlyMap<number, Stage>;
  randomBytes?: RandomBytes;
  keyAgreement?: KeyAgreement;
  prg?: Prg;
  /**
   * Serialise every server and client state through JSON after every step, as a host that
   * persists and restarts between messages would. Slower; proves nothing is lost. `"changed"`
   * writes only each step's `changed` entries into one store and restores the server from it, as
   * the shard host does, and checks the restored state equals the one the step returned.
   */
  persist?: boolean | "changed";
  /** Called with the server state after every accepted message and every deadline. */
  onServerState?: (state: ServerRoundState) => void;
  /** Per-slot round identities: devices sign their keys and verify their neighbours' (preset). */
  identities?: readonly ClientIdentity[];
  /** The server requires signed advertisements (`maliciousServer`). */
  signedKeys?: boolean;
  /** Unmask in slices of at most this many mask words (`UnmaskOptions.maxMaskWordsPerSlice`). */
  maxMaskWordsPerSlice?: number;
}

/** Per-device and server costs observed during a simulated round. */
export interface RoundStats {
  /** Wall-clock ms spent in each device's stage functions. */
  clientMs: Float64Array;
  /** Bytes each device sent, as binary frames (`encodeClientFrame`). */
  bytesSent: Float64Array;
  /** Bytes each device received (the JSON stage views). */
  bytesReceived: Float64Array;
  /** Server ms per stage (handling messages, closing stages; unmask includes reconstruction). */
  serverMs: Record<Stage, number>;
}

/** Outcome of a simulated round. */
export interface SimulatedOutcome {
  state: ServerRoundState;
  /** The exact integer sum of the contributors' inputs, or null if the round aborted. */
  sum: Uint32Array | null;
  contributors: number[];
  abort: AbortRecord | null;
  stats: RoundStats;
  /** Final client states (null for devices that dropped before advertising). */
  clients: Array<ClientState | null>;
}

const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Runs one round to completion (done or aborted). */
export async function runSimulatedRound(round: SimulatedRound): Promise<SimulatedOutcome> {
  const n = round.cohortSize;
  const dropouts = round.dropouts ?? new Map<number, Stage>();
  const random = round.randomBytes ?? seededRandomBytes("driver");
  const options: ClientOptions = { randomBytes: random };
  if (round.keyAgreement) options.keyAgreement = round.keyAgreement;
  if (round.prg) options.prg = round.prg;
  const serverOptions = {
    ...(round.keyAgreement ? { keyAgreement: round.keyAgreement } : {}),
    ...(round.prg ? { prg: round.prg } : {}),
    ...(round.maxMaskWordsPerSlice ? { maxMaskWordsPerSlice: round.maxMaskWordsPerSlice } : {}),
  };
  let now = 0;
  let state = createRoundState(
    {
      roundId: round.roundId ?? "r_simulatedsimulatedsimu",
      cohortSize: n,
      k: round.k,
      t: round.t,
      dimension: round.dimension,
      valueBits: round.valueBits,
      modulusBits: round.modulusBits,
      consistencyCheck: round.consistencyCheck ?? true,
      ...(round.modularInputs ? { modularInputs: true } : {}),
      ...(round.minInputs === undefined ? {} : { minInputs: round.minInputs }),
      ...(round.signedKeys ? { signedKeys: true } : {}),
      ...(round.identities?.[0] ? { shard: round.identities[0].shard } : {}),
      randomBytes: random,
    },
    now,
  );
  const clients: Array<ClientState | null> = new Array(n).fill(null);
  const stats: RoundStats = {
    clientMs: new Float64Array(n),
    bytesSent: new Float64Array(n),
    bytesReceived: new Float64Array(n),
    serverMs: { "advertise-keys": 0, "share-keys": 0, "masked-input": 0, "consistency-check": 0, unmask: 0 },
  };
  // Durable Object storage keeps values by structured clone (the running sum stays words).
  const store: Record<string, unknown> = structuredClone(toStorageEntries(state));
  const persistServer = ({ state: s, changed }: { state: ServerRoundState; changed: readonly string[] }) => {
    let next = s;
    if (round.persist === "changed") {
      for (const key of changed) store[key] = structuredClone(storageEntry(s, key));
      next = fromStorageEntries(store);
      // Equal canonical text (RFC 8785, after JSON), equal state: the restored sum is words too.
      if (canonicalJson(roundTrip(next)) !== canonicalJson(roundTrip(s)))
        throw new Error(`state lost between steps: changed = ${changed.join(", ")}`);
    } else if (round.persist) next = fromStorageEntries(structuredClone(toStorageEntries(s)));
    round.onServerState?.(next);
    return next;
  };

  for (const stage of STAGES) {
    if (state.phase !== stage) continue;
    for (let slot = 0; slot < n; slot++) {
      const drop = dropouts.get(slot);
      if (drop !== undefined && STAGES.indexOf(drop) <= STAGES.indexOf(stage)) continue;
      if (stage !== "advertise-keys" && clients[slot] === null) continue;
      let view: unknown;
      try {
        view = viewFor(state, slot);
      } catch {
        continue; // dropped by the server (e.g. peeled at share-keys): nothing to do
      }
      if (state.phase !== stage) break; // the stage closed early (everyone answered)
      const viewText = JSON.stringify(view);
      stats.bytesReceived[slot] = (stats.bytesReceived[slot] as number) + viewText.length;
      const received: unknown = JSON.parse(viewText);
      const t0 = performance.now();
      const identity = round.identities?.[slot];
      const step = await runClientStage(
        stage,
        clients[slot] ?? null,
        received,
        round.inputs[slot],
        identity ? { ...options, identity } : options,
      );
      stats.clientMs[slot] = (stats.clientMs[slot] as number) + performance.now() - t0;
      clients[slot] = round.persist ? roundTrip(step.state) : step.state;
      // What a device sends: the message as one binary frame, decoded once by the server.
      const frame = encodeClientFrame(step.message);
      stats.bytesSent[slot] = (stats.bytesSent[slot] as number) + frame.length;
      const s0 = performance.now();
      const transition = await handleFrame(state, frame, now, serverOptions);
      stats.serverMs[stage] += performance.now() - s0;
      state = persistServer(transition);
    }
    if (state.phase === stage) {
      now = state.deadline ?? now;
      const s0 = performance.now();
      state = persistServer(await onDeadline(state, now, serverOptions));
      stats.serverMs[stage] += performance.now() - s0;
    }
  }
  const result = state.result;
  return {
    state,
    sum: result ? bytesToWords(base64ToBytes(result.sum)) : null,
    contributors: result?.contributors ?? [],
    abort: state.abort,
    stats,
    clients,
  };
}

async function runClientStage(
  stage: Stage,
  client: ClientState | null,
  view: unknown,
  input: Uint32Array | undefined,
  options: ClientOptions,
): Promise<{ state: ClientState; message: SecAggClientMessage }> {
  if (stage === "advertise-keys") return advertiseKeys(view, options);
  if (client === null) throw new RangeError(`no client state for ${stage}`);
  switch (stage) {
    case "share-keys":
      return shareKeys(client, view, options);
    case "masked-input":
      if (!input) throw new RangeError("no input for masked-input");
      return maskedInput(client, view, input, options);
    case "consistency-check":
      return consistencyCheck(client, view);
    case "unmask":
      return unmask(client, view);
  }
}

/** The plain sum of the given slots' inputs mod 2^m (what a correct round must output). */
export function plainSum(
  inputs: readonly Uint32Array[],
  slots: readonly number[],
  modulusBits: number,
): Uint32Array {
  const d = inputs[0]?.length ?? 0;
  const out = new Uint32Array(d);
  const modulus = 2 ** modulusBits;
  for (const s of slots) {
    const x = inputs[s] as Uint32Array;
    for (let i = 0; i < d; i++) out[i] = ((out[i] as number) + (x[i] as number)) % modulus;
  }
  return out;
}
