/**
 * The rounds the HTTP layer sees: find the open round for a model, open new ones, and route
 * joins and contributions to the round's host, wherever it lives.
 */

import { type RandomBytes, systemRandomBytes } from "@fedprofile/protocol/bytes";
import type {
  ContributionRequest,
  ContributionResponse,
  JoinResponse,
  OpenRoundRequest,
  RoundInfo,
  RoundStatus,
  RoundTask,
  SecAggAck,
  SecAggServerView,
} from "@fedprofile/protocol/wire";
import { WIRE_VERSION } from "@fedprofile/protocol/wire";
import { ConflictError, FedprofileError, NotFoundError } from "../errors";
import { newParticipantId, newRoundId, newToken, sha256Hex } from "../ids";
import type { RoundResult } from "../models/trainer";
import type { Clock, RoundHostHandle, RoundIndex } from "../ports";
import { isShardClosedToJoins, pickShard } from "./pick-shard";
import {
  assertOpenRoundsBelowLimit,
  assertRoundFits,
  DEFAULT_ROUND_LIMITS,
  type RoundLimits,
} from "./round-limits";
import type { SecAggShardHandle } from "./secagg-shard-host";
import type { StageSocketPort } from "./stage-notify";

/** The stage socket route of a shard (`./stage-notify.ts`). */
const socketPath = (roundId: string, shard: number) => `/v1/rounds/${roundId}/shards/${shard}/socket`;

/** How long a place taken for an open that never finished (a crash) holds: longer than any open. */
const OPEN_PLACE_MS = 5 * 60_000;

export interface RoundServiceOptions {
  index: RoundIndex;
  /** The host of round `roundId` of `tenantId` (a Durable Object stub, or an in-process host). */
  hostFor(tenantId: string, roundId: string): RoundHostHandle;
  /** The host of shard `shard` of a SecAgg round. */
  shardFor?(tenantId: string, roundId: string, shard: number): SecAggShardHandle;
  /** Stage push: with it, a SecAgg join offers a socket to the shard (`./stage-notify.ts`). */
  stageSockets?: StageSocketPort;
  /** Bounds checked at open (default {@link DEFAULT_ROUND_LIMITS}). */
  limits?: RoundLimits;
  clock?: Clock;
  randomBytes?: RandomBytes;
}

/** `<participantId>.<participantToken>`, as the SDK sends it in `X-Participant`. */
export interface ParticipantCredential {
  participantId: string;
  participantToken: string;
}

export interface RoundService {
  open(tenantId: string, request: OpenRoundRequest, task?: RoundTask): Promise<RoundStatus>;
  /** A trainer's round once it has ended. */
  result(tenantId: string, roundId: string): Promise<RoundResult | null>;
  findOpen(tenantId: string, modelId: string): Promise<RoundInfo | null>;
  status(tenantId: string, roundId: string): Promise<RoundStatus>;
  /**
   * Joins a round. A SecAgg round's join goes straight to a shard picked by `pickShard` (fresh
   * random bytes), not the root, unless the round admits by token (`token`): then the root's
   * serialised join redeems it against the round's one spent set.
   */
  join(tenantId: string, roundId: string, token?: string): Promise<JoinResponse>;
  contribute(tenantId: string, roundId: string, request: ContributionRequest): Promise<ContributionResponse>;
  /** The SecAgg stage view for this participant. */
  secaggView(
    tenantId: string,
    roundId: string,
    shard: number,
    who: ParticipantCredential,
  ): Promise<SecAggServerView>;
  /** One SecAgg protocol message from this participant, as its binary frame (decoded by the shard). */
  secaggMessage(
    tenantId: string,
    roundId: string,
    shard: number,
    who: ParticipantCredential,
    frame: Uint8Array,
  ): Promise<SecAggAck>;
  /**
   * Opens this participant's stage socket (a WebSocket upgrade `request`) at its shard; the shard
   * checks the credential as `secaggView` does. 404 when this coordinator offers no push.
   */
  secaggSocket(
    tenantId: string,
    roundId: string,
    shard: number,
    who: ParticipantCredential,
    request: Request,
  ): Promise<Response>;
}

export function createRoundService(options: RoundServiceOptions): RoundService {
  const { index, hostFor } = options;
  const clock = options.clock ?? Date.now;
  const randomBytes = options.randomBytes ?? systemRandomBytes;

  /** Only rounds the index knows for this tenant are routed: ids cannot cross tenants. */
  async function knownHost(tenantId: string, roundId: string): Promise<RoundHostHandle> {
    const info = await index.get(tenantId, roundId);
    if (!info) throw new NotFoundError(`round ${roundId} not found`);
    return hostFor(tenantId, roundId);
  }

  async function knownShard(tenantId: string, roundId: string, shard: number): Promise<SecAggShardHandle> {
    const info = await index.get(tenantId, roundId);
    if (!info) throw new NotFoundError(`round ${roundId} not found`);
    if (info.aggregation !== "secagg" || !info.secagg || !options.shardFor) {
      throw new FedprofileError("wrong_aggregation", `round ${roundId} does not use secure aggregation`, 409);
    }
    if (shard >= info.secagg.shards) throw new NotFoundError(`round ${roundId} has no shard ${shard}`);
    return options.shardFor(tenantId, roundId, shard);
  }

  /**
   * Admits a device to the shard `pickShard` names, or the next one with a free slot: the root
   * is not on the join path, and the shards report how many they admitted.
   */
  async function joinShard(tenantId: string, info: RoundInfo, joinKey: Uint8Array): Promise<JoinResponse> {
    const shards = info.secagg?.shards ?? 1;
    if (info.stage !== "collecting" || clock() >= info.closesAt) {
      throw new ConflictError("round_not_collecting", `round ${info.roundId} is not collecting`);
    }
    const participantId = newParticipantId(randomBytes);
    const participantToken = newToken(randomBytes);
    const first = pickShard(joinKey, shards);
    let movedOn = false;
    for (let attempt = 0; attempt < shards; attempt++) {
      const shard = (first + attempt) % shards;
      try {
        const slot = await (options.shardFor as NonNullable<RoundServiceOptions["shardFor"]>)(
          tenantId,
          info.roundId,
          shard,
        ).admit(participantId, sha256Hex(participantToken), {
          tenantId,
          roundId: info.roundId,
          shard,
          shards,
        });
        return {
          v: WIRE_VERSION,
          roundId: info.roundId,
          participantId,
          participantToken,
          dimension: info.dimension,
          closesAt: info.closesAt,
          secagg: {
            shard,
            slot,
            ...(options.stageSockets ? { push: { path: socketPath(info.roundId, shard) } } : {}),
          },
        };
      } catch (error) {
        // Across a Durable Object RPC the error comes back as a FedprofileError with its code.
        // A shard whose devices have all advertised has moved on: as full as a full one.
        if (!(error instanceof FedprofileError && isShardClosedToJoins(error.code))) throw error;
        movedOn ||= error.code === "round_not_collecting";
      }
    }
    // Every shard refused: if one had moved on, the round has (its join window closed).
    if (movedOn) throw new ConflictError("round_not_collecting", `round ${info.roundId} is not collecting`);
    throw new ConflictError("round_full", `round ${info.roundId} has no free slot`);
  }

  return {
    async open(tenantId, request, task) {
      // Refused before any Durable Object exists: the state must fit, and a model's open rounds
      // are bounded. The place is taken atomically (one statement), so two opens racing at one
      // below the limit cannot both pass; it is given back once the round is in the index.
      const limits = options.limits ?? DEFAULT_ROUND_LIMITS;
      assertRoundFits(request, limits);
      const roundId = newRoundId(randomBytes);
      const now = clock();
      const placed = await index.reserveOpen(
        tenantId,
        request.modelId,
        roundId,
        limits.maxOpenRoundsPerModel,
        now,
        now + OPEN_PLACE_MS,
      );
      if (!placed) {
        assertOpenRoundsBelowLimit(request.modelId, limits.maxOpenRoundsPerModel, limits);
      }
      try {
        return await hostFor(tenantId, roundId).open(tenantId, roundId, request, task);
      } finally {
        await index.releaseOpen(tenantId, roundId);
      }
    },
    result: async (tenantId, roundId) => (await knownHost(tenantId, roundId)).result(),
    findOpen: (tenantId, modelId) => index.findOpen(tenantId, modelId, clock()),
    async status(tenantId, roundId) {
      const status = await (await knownHost(tenantId, roundId)).status();
      if (!status) throw new NotFoundError(`round ${roundId} not found`);
      return status;
    },
    async join(tenantId, roundId, token) {
      const info = await index.get(tenantId, roundId);
      if (!info) throw new NotFoundError(`round ${roundId} not found`);
      // Token rounds join through the root: a shard picked by the token's nonce could be full and
      // pass the device on to another shard, whose spent set would not know the token.
      if (info.aggregation !== "secagg" || !info.secagg || !options.shardFor || info.secagg.admission) {
        const joined = await hostFor(tenantId, roundId).join(token);
        return joined.secagg && options.stageSockets
          ? {
              ...joined,
              secagg: { ...joined.secagg, push: { path: socketPath(roundId, joined.secagg.shard) } },
            }
          : joined;
      }
      return joinShard(tenantId, info, randomBytes(16));
    },
    contribute: async (tenantId, roundId, request) =>
      (await knownHost(tenantId, roundId)).contribute(request),
    secaggView: async (tenantId, roundId, shard, who) =>
      (await knownShard(tenantId, roundId, shard)).view(who.participantId, sha256Hex(who.participantToken)),
    secaggMessage: async (tenantId, roundId, shard, who, frame) =>
      (await knownShard(tenantId, roundId, shard)).message(
        who.participantId,
        sha256Hex(who.participantToken),
        frame,
      ),
    async secaggSocket(tenantId, roundId, shard, who, request) {
      if (!options.stageSockets)
        throw new NotFoundError("this coordinator offers no stage push; poll the view");
      await knownShard(tenantId, roundId, shard);
      return options.stageSockets.connect(
        {
          tenantId,
          roundId,
          shard,
          participantId: who.participantId,
          tokenHash: sha256Hex(who.participantToken),
        },
        request,
      );
    },
  };
}
