/**
 * The server's round state: a plain, JSON-able record (numbers, strings, arrays, base64 for
 * binary; no class instances), so a Durable Object can persist it after every message and resume
 * after a restart with nothing lost. `toStorageEntries` splits it into small entries (one core
 * record, one record per device, the running masked sum as raw words) and every transition names
 * the entries it changed, so a host writes only those.
 *
 * What the state holds about a device: its public keys, the sealed share boxes it addressed to
 * neighbours (ciphertexts the server cannot open), its consistency tags, the shares it revealed at
 * unmask time, and digests of its accepted messages. Masked inputs are added into one running
 * sum on arrival and never stored per device, so the state never holds any device's vector,
 * masked or not (Bonawitz et al. §4: the server needs only Σ y_u).
 */

import {
  base64ToBytes,
  bytesToBase64,
  bytesToWords,
  type RandomBytes,
  systemRandomBytes,
} from "@fedprofile/protocol/bytes";
import {
  checkDegree,
  ERROR_CODES,
  MAX_MODULUS_BITS,
  type RoundPhase,
  SECAGG_VERSION,
  SIZES,
  STAGES,
  type Stage,
} from "@fedprofile/protocol/secagg";
import { RoundId } from "@fedprofile/protocol/wire";
import * as z from "zod";

/** Per-stage time limits in milliseconds; a device that misses one is treated as dropped. */
export type StageTimeouts = Record<Stage, number>;

/** Everything fixed when a round opens. */
export interface SecAggRoundConfig {
  roundId: string;
  /** Cohort size n; devices are named by slot 0..n-1 (the host maps slots to participants). */
  cohortSize: number;
  /** Neighbour-graph degree (even); a cohort with n - 1 ≤ k uses the complete graph. */
  k: number;
  /** Shamir threshold: shares needed to rebuild b_u or s_u^SK. */
  t: number;
  /** Vector length d. */
  dimension: number;
  /** Bits per encoded input value, b. */
  valueBits: number;
  /** Mask modulus bits, m ≥ b + ⌈log2 n⌉ (see `encoding.ts`), or m = b with `modularInputs`. */
  modulusBits: number;
  /**
   * Inputs are already residues mod 2^m whose sum is meant to wrap (the distributed discrete
   * Gaussian, KLS21 Alg. 1): b = m, and the no-overflow premise does not apply.
   */
  modularInputs?: boolean;
  /**
   * The fewest masked inputs the round will unmask (≥ t): below it the round aborts before
   * anything is revealed. Distributed DP sets it to the noise shares its calibration assumed.
   */
  minInputs?: number;
  /** Public 32-byte seed of the neighbour graph, base64. */
  graphSeed: string;
  /** Whether to run Bonawitz's consistency-check round (stage 3). */
  consistencyCheck: boolean;
  /** This shard's index in the round: devices sign it into their advertisements. */
  shard?: number;
  /** Every advertisement must be signed and bound to an admission token (`maliciousServer`). */
  signedKeys?: true;
  stageTimeoutsMs: StageTimeouts;
}

/** What the server keeps per device (never its input vector). */
export interface DeviceRecord {
  /** X25519 public keys from advertise-keys, base64. */
  cPk?: string;
  sPk?: string;
  /** The signed advertisement's identity (idPk, salt, token, sig), base64; relayed to neighbours. */
  identity?: { idPk: string; salt: string; token: string; sig: string };
  /** SHA-256 (base64) of each accepted message, to tell an idempotent retry from a conflict. */
  digests: Partial<Record<Stage, string>>;
  /** Sealed share boxes addressed to neighbours: [recipient slot, ciphertext]. */
  boxes?: Array<[number, string]>;
  /** Consistency tags addressed to neighbours: [recipient slot, tag]. */
  tags?: Array<[number, string]>;
  /** Revealed shares of neighbours' self-mask seeds and mask keys: [owner slot, share]. */
  bShares?: Array<[number, string]>;
  sShares?: Array<[number, string]>;
}

/** Why a round aborted. */
export interface AbortRecord {
  code: string;
  stage: Stage;
  reason: string;
  at: number;
}

/** The result of a finished round: the exact integer sum of the survivors' inputs. */
export interface RoundResult {
  /** Σ x_u over contributors, as little-endian 32-bit words (< 2^m, no wrap; base64). */
  sum: string;
  /** Slots whose inputs are in the sum (U3). */
  contributors: number[];
}

/** The serialisable server state of one SecAgg round. */
export interface ServerRoundState {
  v: typeof SECAGG_VERSION;
  config: SecAggRoundConfig;
  phase: RoundPhase;
  openedAt: number;
  /** When the current stage closes; hosts set an alarm for it. Null once the round ended. */
  deadline: number | null;
  /** U1: devices that advertised keys (members of the neighbour graph). */
  members: number[] | null;
  /** U2: devices whose shares were forwarded. */
  sharers: number[] | null;
  /** U3: devices whose masked input is in the running sum. */
  survivors: number[] | null;
  /** U4: devices that passed the consistency check. */
  checked: number[] | null;
  /** Devices that revealed shares at unmask time. */
  revealers: number[] | null;
  /**
   * Unmasking split across invocations (`./unmask.ts`): masks already stripped from `maskedSum`,
   * in the deterministic order of the mask jobs. Stored with the sum in one write, so a host
   * killed between slices resumes from here and never strips a mask twice.
   */
  unmasking?: { applied: number };
  devices: Record<string, DeviceRecord>;
  /**
   * Running Σ y_u mod 2^m as d words; null before the first input. Kept and persisted as words
   * (structured clone), never re-encoded per input. Treated as immutable: a handler adds into a copy.
   */
  maskedSum: Uint32Array | null;
  result: RoundResult | null;
  abort: AbortRecord | null;
}

/** Options for `createRoundState`. */
export interface CreateRoundOptions {
  roundId: string;
  cohortSize: number;
  k: number;
  t: number;
  dimension: number;
  valueBits: number;
  modulusBits: number;
  /** See `SecAggRoundConfig.modularInputs`. */
  modularInputs?: boolean;
  /** See `SecAggRoundConfig.minInputs`. */
  minInputs?: number;
  /** Defaults to 32 fresh random bytes. */
  graphSeed?: Uint8Array;
  consistencyCheck?: boolean;
  /** See `SecAggRoundConfig.shard` (default 0). */
  shard?: number;
  /** See `SecAggRoundConfig.signedKeys`. */
  signedKeys?: boolean;
  stageTimeoutsMs?: Partial<StageTimeouts>;
  randomBytes?: RandomBytes;
}

/** Default stage time limits: generous for mobile devices that come and go. */
export const DEFAULT_STAGE_TIMEOUTS: StageTimeouts = {
  "advertise-keys": 60_000,
  "share-keys": 60_000,
  "masked-input": 120_000,
  "consistency-check": 30_000,
  unmask: 60_000,
};

/**
 * Opens a round in the advertise-keys stage. Validates the parameters, including the overflow
 * premise m ≥ b + ⌈log2 n⌉ (see `encoding.ts`), and throws `RangeError` naming the field.
 */
export function createRoundState(options: CreateRoundOptions, now: number): ServerRoundState {
  const { cohortSize: n, k, t, dimension, valueBits, modulusBits } = options;
  if (!RoundId.safeParse(options.roundId).success)
    throw new RangeError(`roundId must match r_ + 22 base64url characters`);
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`cohortSize must be an integer ≥ 2, got ${n}`);
  checkDegree(k);
  if (!Number.isInteger(t) || t < 1 || t > Math.min(k, n - 1)) {
    throw new RangeError(`t must be an integer in [1, min(k, n - 1)] = [1, ${Math.min(k, n - 1)}], got ${t}`);
  }
  if (!Number.isInteger(dimension) || dimension < 1)
    throw new RangeError(`dimension must be ≥ 1, got ${dimension}`);
  const modularInputs = options.modularInputs === true;
  if (modularInputs) {
    if (!Number.isInteger(modulusBits) || modulusBits < 2 || modulusBits > MAX_MODULUS_BITS)
      throw new RangeError(`modulusBits must be in [2, ${MAX_MODULUS_BITS}], got ${modulusBits}`);
    if (valueBits !== modulusBits)
      throw new RangeError(
        `with modularInputs, valueBits (${valueBits}) must equal modulusBits (${modulusBits})`,
      );
  } else if (!Number.isInteger(valueBits) || valueBits < 1 || valueBits > 31)
    throw new RangeError(`valueBits must be in [1, 31]`);
  else if (
    !Number.isInteger(modulusBits) ||
    modulusBits > MAX_MODULUS_BITS ||
    modulusBits < valueBits + Math.ceil(Math.log2(n))
  ) {
    throw new RangeError(
      `modulusBits ${modulusBits} must be in [b + ⌈log2 n⌉, 32] = [${valueBits + Math.ceil(Math.log2(n))}, 32] so the sum cannot wrap`,
    );
  }
  const { minInputs } = options;
  if (minInputs !== undefined && (!Number.isInteger(minInputs) || minInputs < t || minInputs > n)) {
    throw new RangeError(`minInputs must be an integer in [t, n] = [${t}, ${n}], got ${minInputs}`);
  }
  const seed = options.graphSeed ?? (options.randomBytes ?? systemRandomBytes)(SIZES.seed);
  if (seed.length !== SIZES.seed) throw new RangeError(`graphSeed must be ${SIZES.seed} bytes`);
  const stageTimeoutsMs = { ...DEFAULT_STAGE_TIMEOUTS, ...options.stageTimeoutsMs };
  return {
    v: SECAGG_VERSION,
    config: {
      roundId: options.roundId,
      cohortSize: n,
      k,
      t,
      dimension,
      valueBits,
      modulusBits,
      ...(modularInputs ? { modularInputs } : {}),
      ...(minInputs !== undefined && minInputs > t ? { minInputs } : {}),
      graphSeed: bytesToBase64(seed),
      consistencyCheck: options.consistencyCheck ?? true,
      ...(options.shard ? { shard: options.shard } : {}),
      ...(options.signedKeys ? { signedKeys: true as const } : {}),
      stageTimeoutsMs,
    },
    phase: "advertise-keys",
    openedAt: now,
    deadline: now + stageTimeoutsMs["advertise-keys"],
    members: null,
    sharers: null,
    survivors: null,
    checked: null,
    revealers: null,
    devices: {},
    maskedSum: null,
    result: null,
    abort: null,
  };
}

/** The stages this round runs, in order (the consistency check is optional). */
export function roundStages(config: SecAggRoundConfig): Stage[] {
  return STAGES.filter((s) => s !== "consistency-check" || config.consistencyCheck);
}

/** Storage key of the core record. */
export const CORE_KEY = "core";
/** Storage key of the running masked sum. */
export const SUM_KEY = "sum";
/** Storage key of a device record. */
export function deviceKey(slot: number): string {
  return `device:${slot}`;
}

/**
 * Splits the state into storage entries: "core" (everything small), "sum" (the running masked
 * sum, one d-word vector) and "device:<slot>" per device. Each entry stays well under Durable
 * Object value limits for d ≤ 2^18 and k ≤ 1000.
 */
export function toStorageEntries(state: ServerRoundState): Record<string, unknown> {
  const { devices, maskedSum, ...core } = state;
  const entries: Record<string, unknown> = { [CORE_KEY]: core, [SUM_KEY]: maskedSum };
  for (const [slot, record] of Object.entries(devices)) entries[deviceKey(Number(slot))] = record;
  return entries;
}

/** One storage entry of `toStorageEntries(state)`, without building the others. */
export function storageEntry(state: ServerRoundState, key: string): unknown {
  if (key === SUM_KEY) return state.maskedSum;
  if (key === CORE_KEY) {
    const { devices: _devices, maskedSum: _sum, ...core } = state;
    return core;
  }
  return state.devices[key.slice("device:".length)];
}

const slotList = z.array(z.number().int().nonnegative());
const pairList = z.array(z.tuple([z.number().int().nonnegative(), z.string()]));
const stageEnum = z.enum(STAGES);

/** Schema of a stored device record (`device:<slot>`). */
export const DeviceRecordSchema = z
  .object({
    cPk: z.string().optional(),
    sPk: z.string().optional(),
    identity: z
      .object({ idPk: z.string(), salt: z.string(), token: z.string(), sig: z.string() })
      .strict()
      .optional(),
    digests: z.partialRecord(stageEnum, z.string()),
    boxes: pairList.optional(),
    tags: pairList.optional(),
    bShares: pairList.optional(),
    sShares: pairList.optional(),
  })
  .strict();

/** Schema of the stored core record (`core`): everything but devices and the running sum. */
export const RoundCoreSchema = z
  .object({
    v: z.literal(SECAGG_VERSION),
    config: z
      .object({
        roundId: RoundId,
        cohortSize: z.number().int().min(2),
        k: z.number().int().min(2),
        t: z.number().int().min(1),
        dimension: z.number().int().min(1),
        valueBits: z.number().int().min(1).max(MAX_MODULUS_BITS),
        modulusBits: z.number().int().min(2).max(MAX_MODULUS_BITS),
        modularInputs: z.literal(true).optional(),
        minInputs: z.number().int().min(1).optional(),
        graphSeed: z.string(),
        consistencyCheck: z.boolean(),
        shard: z.number().int().min(0).optional(),
        signedKeys: z.literal(true).optional(),
        stageTimeoutsMs: z.record(stageEnum, z.number().nonnegative()),
      })
      .strict(),
    phase: z.enum([...STAGES, "done", "aborted"]),
    openedAt: z.number(),
    deadline: z.number().nullable(),
    members: slotList.nullable(),
    sharers: slotList.nullable(),
    survivors: slotList.nullable(),
    checked: slotList.nullable(),
    revealers: slotList.nullable(),
    unmasking: z.object({ applied: z.number().int().nonnegative() }).strict().optional(),
    result: z.object({ sum: z.string(), contributors: slotList }).strict().nullable(),
    abort: z
      .object({ code: z.string(), stage: stageEnum, reason: z.string(), at: z.number() })
      .strict()
      .nullable(),
  })
  .strict();

/**
 * Reassembles a state from `toStorageEntries` output, validating every entry (storage is
 * input like any other: a wrong or foreign record is rejected with a `RangeError`, not cast).
 */
export function fromStorageEntries(entries: Record<string, unknown>): ServerRoundState {
  const core = RoundCoreSchema.safeParse(entries[CORE_KEY]);
  if (!core.success)
    throw new RangeError("storage: missing or invalid SecAgg core record", { cause: core.error });
  const devices: Record<string, DeviceRecord> = {};
  for (const [key, value] of Object.entries(entries)) {
    if (!key.startsWith("device:")) continue;
    const record = DeviceRecordSchema.safeParse(value);
    if (!record.success) throw new RangeError(`storage: invalid ${key}`, { cause: record.error });
    devices[key.slice("device:".length)] = record.data;
  }
  const sum = storedSum(entries[SUM_KEY], core.data.config.dimension);
  return { ...core.data, devices, maskedSum: sum };
}

/**
 * The stored running sum: d words (what `toStorageEntries` writes), or the base64 text that
 * earlier versions wrote (decoded once, so a round open across an upgrade resumes).
 */
function storedSum(value: unknown, dimension: number): Uint32Array | null {
  if (value === null || value === undefined) return null;
  let words: Uint32Array | null = null;
  if (value instanceof Uint32Array) words = value;
  else if (typeof value === "string") {
    try {
      words = bytesToWords(base64ToBytes(value));
    } catch (cause) {
      throw new RangeError("storage: invalid running sum", { cause });
    }
  }
  if (words === null || words.length !== dimension)
    throw new RangeError(`storage: the running sum must be ${dimension} words`);
  return words;
}

/**
 * The running masked sum as a fresh array of words (zeros before the first input), for a
 * handler to add into without touching the state it was given.
 */
export function maskedSumWords(state: ServerRoundState): Uint32Array {
  return state.maskedSum === null ? new Uint32Array(state.config.dimension) : state.maskedSum.slice();
}

/** Result of a deadline or close: no reply. */
export interface Advance {
  state: ServerRoundState;
  changed: string[];
}

/** Aborts the round: drops the running sum and every revealed share, so nothing can leak later. */
export function abortRound(
  state: ServerRoundState,
  stage: Stage,
  reason: string,
  now: number,
  code: string = ERROR_CODES.belowThreshold,
): Advance {
  const devices: Record<string, DeviceRecord> = {};
  for (const [slot, record] of Object.entries(state.devices))
    devices[slot] = { digests: record.digests, cPk: record.cPk, sPk: record.sPk };
  return {
    state: {
      ...state,
      phase: "aborted",
      deadline: null,
      maskedSum: null,
      result: null,
      devices,
      abort: { code, stage, reason, at: now },
    },
    changed: [CORE_KEY, SUM_KEY, ...Object.keys(state.devices).map((s) => deviceKey(Number(s)))],
  };
}
