/**
 * The device's side of a SecAgg+ round over HTTP: join a shard, then repeatedly fetch the stage
 * view and answer it with the matching client stage (`../secagg/client.ts`), until the round is
 * done or aborted. The session (participant credential and protocol state) is saved before every
 * message is sent, so a reload resumes where it stopped and a retried message is byte-identical
 * (the server accepts it as an idempotent duplicate).
 */

import { bytesToBase64, type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import { FedprofileError } from "@fedprofile/protocol/errors";
import {
  ERROR_CODES,
  encodeFixedPoint,
  generateRoundIdentity,
  identityNonce,
  ProtocolError,
  type Stage,
} from "@fedprofile/protocol/secagg";
import type { RoundInfo } from "@fedprofile/protocol/wire";
import { encodeClientFrame } from "@fedprofile/protocol/wire";
import { prepareDpContribution } from "../dp/client";
import type { PrivacyPolicyOption } from "../privacy-policy";
import {
  advertiseKeys,
  type ClientIdentity,
  type ClientOptions,
  type ClientState,
  type ClientStep,
  consistencyCheck,
  maskedInput,
  shareKeys,
  unmask,
} from "../secagg/client";
import type { AdmissionOptions } from "./admission";
import { type CoordinatorClient, CoordinatorError } from "./coordinator-client";
import {
  assertFiniteVector,
  assertRoundMeetsPolicy,
  assertSecAggMeetsPolicy,
  resolvePolicy,
} from "./policy-check";
import type { StageSocket, StageSocketFactory } from "./stage-socket";

/** What a device keeps between stages (and across reloads) for one round. */
export interface SecAggSession {
  roundId: string;
  shard: number;
  slot: number;
  /** `<participantId>.<participantToken>`: a round-scoped credential, never reused. */
  participant: string;
  client: ClientState | null;
  /**
   * The round identity of a signed advertisement (`maliciousServer`), made before the join because
   * the token's nonce is bound to it; dropped (with its secret seed) once the keys are signed.
   */
  identity?: Omit<ClientIdentity, "shard"> | null;
  /** The stage socket's path, when the join offered push (`./stage-socket.ts`). */
  push?: string;
}

/** Where sessions live: IndexedDB in the browser, memory in node. */
export interface SecAggSessionStore {
  load(roundId: string): Promise<SecAggSession | null>;
  save(session: SecAggSession): Promise<void>;
  remove(roundId: string): Promise<void>;
}

export function createMemorySessionStore(): SecAggSessionStore {
  const sessions = new Map<string, SecAggSession>();
  return {
    load: async (roundId) => structuredClone(sessions.get(roundId) ?? null),
    save: async (session) => void sessions.set(session.roundId, structuredClone(session)),
    remove: async (roundId) => void sessions.delete(roundId),
  };
}

export type SecAggOutcome =
  | { status: "contributed"; roundId: string; contributors: number }
  | { status: "aborted"; roundId: string; code: string; reason: string }
  | { status: "dropped"; roundId: string; reason: string };

export interface SecAggParticipationOptions {
  sessions?: SecAggSessionStore;
  /** Delay between polls while the other devices finish a stage (default 200 ms, backing off to 2 s). */
  pollMs?: number;
  randomBytes?: RandomBytes;
  clientOptions?: ClientOptions;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** The device's privacy policy (default: the production floors); see `PolicyRefusedError`. */
  policy?: PrivacyPolicyOption;
  /** Where to get the round's admission token, when it admits by token (`./admission.ts`). */
  admission?: AdmissionOptions;
  /**
   * How to open the stage socket a join offers (default the global `WebSocket`, where there is
   * one); `false` always polls. A socket that cannot open or drops falls back to polling.
   */
  socket?: StageSocketFactory | false;
}

/** Waiting for a push, the view is still fetched this often: a silent socket loses nothing. */
const PUSH_SAFETY_MS = 30_000;
/** How long a new socket may take to deliver its first view before the device fetches it. */
const PUSH_OPEN_MS = 5_000;

const STEP_OF: Record<Stage, ClientStep> = {
  "advertise-keys": "advertised",
  "share-keys": "shared",
  "masked-input": "masked",
  "consistency-check": "checked",
  unmask: "unmasked",
};
const STEPS: ClientStep[] = ["advertised", "shared", "masked", "checked", "unmasked"];

const answered = (client: ClientState | null, stage: Stage) =>
  client !== null && STEPS.indexOf(client.step) >= STEPS.indexOf(STEP_OF[stage]);

/**
 * The join's token for a round that admits by token (none otherwise), fetched from the issuer.
 * A round under the `maliciousServer` preset (claimed by the round or required by the policy)
 * also gets a round identity whose public key the token's nonce is bound to
 * (`@fedprofile/protocol/secagg` identity.ts).
 */
async function admissionFor(
  round: RoundInfo,
  signed: boolean,
  options: SecAggParticipationOptions,
): Promise<{ token?: string; identity?: Omit<ClientIdentity, "shard"> }> {
  const info = round.secagg?.admission;
  if (!info) return {};
  const admission = options.admission;
  if (!admission) {
    throw new FedprofileError(
      "admission_unavailable",
      `round ${round.roundId} admits by Privacy Pass token from ${info.issuerName}; no admission option is set`,
      0,
    );
  }
  // Loaded only here: the blind-RSA code stays out of the bundle of pages without admission.
  const { fetchBoundAdmissionToken } = await import("./admission");
  if (!signed) return { token: (await fetchBoundAdmissionToken(admission, round.roundId, info)).token };
  const id = generateRoundIdentity(options.randomBytes ?? systemRandomBytes);
  const nonce = identityNonce(id.publicKey, id.salt);
  const bound = await fetchBoundAdmissionToken(admission, round.roundId, info, nonce);
  const identity = {
    seed: bytesToBase64(id.seed),
    publicKey: bytesToBase64(id.publicKey),
    salt: bytesToBase64(id.salt),
    token: bound.token,
    issuer: { name: info.issuerName, publicKey: bound.issuerPublicKey },
  };
  id.seed.fill(0);
  return { token: bound.token, identity };
}

/** Takes part in `round` (a SecAgg round from check-in) with the vector `vectorFor` returns. */
export async function participateInSecAggRound(
  client: CoordinatorClient,
  round: RoundInfo,
  vectorFor: (dimension: number, round: RoundInfo) => Promise<Float64Array> | Float64Array,
  options: SecAggParticipationOptions = {},
): Promise<SecAggOutcome> {
  const info = round.secagg;
  if (round.aggregation !== "secagg" || !info)
    throw new TypeError(`round ${round.roundId} is not a SecAgg round`);
  // A round that claims the maliciousServer preset is held to it: t > k/2 and signed keys.
  const claimed = resolvePolicy(options.policy);
  const policy = info.threat === "maliciousServer" ? { ...claimed, requireHonestMajority: true } : claimed;
  assertRoundMeetsPolicy(policy, round);
  const sessions = options.sessions ?? createMemorySessionStore();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const now = options.now ?? Date.now;
  const clientOptions: ClientOptions = {
    ...options.clientOptions,
    ...(options.randomBytes ? { randomBytes: options.randomBytes } : {}),
  };
  const stages = 5;
  const giveUpAt = Math.max(now(), round.closesAt) + (stages + 1) * info.stageSeconds * 1000;

  let session = await sessions.load(round.roundId);
  if (!session) {
    const admitted = await admissionFor(round, policy.requireHonestMajority, options);
    const joined = await client.join(
      round.roundId,
      admitted.token === undefined ? undefined : { token: admitted.token },
    );
    if (!joined.secagg) throw new CoordinatorError("bad_response", "join did not assign a SecAgg shard", 200);
    session = {
      roundId: round.roundId,
      shard: joined.secagg.shard,
      slot: joined.secagg.slot,
      participant: `${joined.participantId}.${joined.participantToken}`,
      client: null,
      ...(admitted.identity ? { identity: admitted.identity } : {}),
      ...(joined.secagg.push ? { push: joined.secagg.push.path } : {}),
    };
    await sessions.save(session);
  }

  const socket = await stageSocketFor(client, session, options.socket);
  try {
    let poll = options.pollMs ?? 200;
    while (now() < giveUpAt) {
      // A pushed view replaces the poll. Without one, a live socket is waited on (a new one only
      // briefly); the view is fetched only when nothing came (a silent socket loses nothing).
      let view: Awaited<ReturnType<CoordinatorClient["secaggView"]>> | null = socket?.take() ?? null;
      if (!view && socket?.alive) {
        await socket.wait(socket.received ? PUSH_SAFETY_MS : PUSH_OPEN_MS);
        view = socket.take();
      }
      if (!view)
        try {
          view = await client.secaggView(round.roundId, session.shard, session.participant);
        } catch (error) {
          // The server no longer lists this device in the stage (it missed a deadline): dropped.
          if (error instanceof CoordinatorError && error.status >= 400 && error.status < 500) {
            await sessions.remove(round.roundId);
            return { status: "dropped", roundId: round.roundId, reason: `${error.code}: ${error.message}` };
          }
          throw error;
        }
      if (view.stage === "done") {
        await sessions.remove(round.roundId);
        return answered(session.client, "masked-input")
          ? { status: "contributed", roundId: round.roundId, contributors: view.contributors }
          : {
              status: "dropped",
              roundId: round.roundId,
              reason: "the round finished without this device's input",
            };
      }
      if (view.stage === "aborted") {
        await sessions.remove(round.roundId);
        return { status: "aborted", roundId: round.roundId, code: view.code, reason: view.reason };
      }
      if (answered(session.client, view.stage)) {
        // With a live socket the loop's head waits for the next push.
        if (socket?.alive) continue;
        // Jittered (0.5–1.5×), so devices that joined together do not poll together.
        await sleep(poll * (0.5 + Math.random()));
        poll = Math.min(2000, poll * 1.5);
        continue;
      }
      poll = options.pollMs ?? 200;
      let step: { state: ClientState; message: Parameters<typeof encodeClientFrame>[0] };
      try {
        step = await runStage(
          view.stage,
          session.client,
          view,
          async () => encodeInput(round, await vectorFor(round.dimension, round), clientOptions.randomBytes),
          session.identity
            ? { ...clientOptions, identity: { ...session.identity, shard: session.shard } }
            : clientOptions,
        );
      } catch (error) {
        // A stage this device cannot answer (it missed the one before), or a model it cannot
        // compute with (`model_unusable`, e.g. an indefinite fcf Gram): it drops out, sync goes on.
        // A neighbour's advertisement failed its check (maliciousServer preset): the server relayed
        // keys it cannot vouch for, so this device stops before revealing anything, and says why.
        if (error instanceof ProtocolError && error.code === ERROR_CODES.unauthenticated) {
          await sessions.remove(round.roundId);
          return { status: "aborted", roundId: round.roundId, code: error.code, reason: error.message };
        }
        if (error instanceof ProtocolError || isModelUnusable(error)) {
          await sessions.remove(round.roundId);
          return { status: "dropped", roundId: round.roundId, reason: `${error.code}: ${error.message}` };
        }
        throw error;
      }
      if (view.stage === "advertise-keys") {
        // The configuration the shard really runs: checked before this device's keys leave it.
        try {
          assertSecAggMeetsPolicy(policy, round, step.state.config);
        } catch (error) {
          await sessions.remove(round.roundId);
          throw error;
        }
      }
      // The identity's secret seed has signed the advertisement: it is not kept.
      session = { ...session, client: step.state, identity: null };
      await sessions.save(session);
      try {
        await client.secaggMessage(
          round.roundId,
          session.shard,
          session.participant,
          encodeClientFrame(step.message),
        );
      } catch (error) {
        // An earlier attempt of this very message got through: that is success.
        if (error instanceof CoordinatorError && error.code === "secagg_duplicate") continue;
        // The stage closed before the message arrived (a slow link): the others go on without it.
        if (error instanceof CoordinatorError && error.code === ERROR_CODES.staleStage) {
          await sessions.remove(round.roundId);
          return { status: "dropped", roundId: round.roundId, reason: `${error.code}: ${error.message}` };
        }
        throw error;
      }
    }
  } finally {
    socket?.close();
  }
  return { status: "dropped", roundId: round.roundId, reason: "the round did not finish in time" };
}

/** The stage socket the join offered, opened lazily (its code is a separate chunk), or null. */
async function stageSocketFor(
  client: CoordinatorClient,
  session: SecAggSession,
  option: StageSocketFactory | false | undefined,
): Promise<StageSocket | null> {
  if (option === false || !session.push || !client.stageSocket) return null;
  const { defaultSocketFactory, openStageSocket } = await import("./stage-socket");
  const factory = option ?? defaultSocketFactory();
  if (!factory) return null;
  const { url, protocols } = client.stageSocket(session.push, session.participant);
  return openStageSocket(url, protocols, factory);
}

/**
 * The integers this device hands to SecAgg: in a DP round, its clipped, rotated, rounded and
 * noised update mod 2^m (KLS21 Alg. 1, `prepareDpContribution`); otherwise the fixed-point code.
 */
function encodeInput(round: RoundInfo, vector: Float64Array, randomBytes?: RandomBytes): Uint32Array {
  assertFiniteVector(vector);
  if (round.dp) {
    return prepareDpContribution(round.dp, vector, randomBytes ? { randomBytes } : {}).values;
  }
  const encoding = round.secagg?.encoding;
  if (!encoding)
    throw new CoordinatorError(
      "bad_response",
      "the round has neither a DP configuration nor an encoding",
      200,
    );
  return encodeFixedPoint(vector, encoding, randomBytes);
}

async function runStage(
  stage: Stage,
  state: ClientState | null,
  view: unknown,
  input: () => Promise<Uint32Array>,
  options: ClientOptions,
) {
  if (stage === "advertise-keys") return advertiseKeys(view, options);
  if (state === null) throw new ProtocolError("secagg_not_participant", `joined too late for ${stage}`);
  switch (stage) {
    case "share-keys":
      return shareKeys(state, view, options);
    case "masked-input":
      return maskedInput(state, view, await input(), options);
    case "consistency-check":
      return consistencyCheck(state, view);
    case "unmask":
      return unmask(state, view);
  }
}

/** A contribution the device cannot compute with the round's model (`FcfModelError`). */
function isModelUnusable(error: unknown): error is Error & { code: string } {
  return error instanceof Error && "code" in error && error.code === "model_unusable";
}
