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
import { FedprofileError, NotFoundError } from "../errors";
import { newRoundId, sha256Hex } from "../ids";
import type { RoundResult } from "../models/trainer";
import type { Clock, RoundHostHandle, RoundIndex } from "../ports";
import {
  assertOpenRoundsBelowLimit,
  assertRoundFits,
  DEFAULT_ROUND_LIMITS,
  type RoundLimits,
} from "./round-limits";
import type { SecAggShardHandle } from "./secagg-shard-host";

export interface RoundServiceOptions {
  index: RoundIndex;
  /** The host of round `roundId` of `tenantId` (a Durable Object stub, or an in-process host). */
  hostFor(tenantId: string, roundId: string): RoundHostHandle;
  /** The host of shard `shard` of a SecAgg round. */
  shardFor?(tenantId: string, roundId: string, shard: number): SecAggShardHandle;
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

  return {
    async open(tenantId, request, task) {
      // Refused before any Durable Object exists: the state must fit, and a model's open rounds
      // are bounded (two opens racing may both pass the count; the bound is still a small one).
      const limits = options.limits ?? DEFAULT_ROUND_LIMITS;
      assertRoundFits(request, limits);
      assertOpenRoundsBelowLimit(request.modelId, await index.countOpen(tenantId, request.modelId), limits);
      const roundId = newRoundId(randomBytes);
      return hostFor(tenantId, roundId).open(tenantId, roundId, request, task);
    },
    result: async (tenantId, roundId) => (await knownHost(tenantId, roundId)).result(),
    findOpen: (tenantId, modelId) => index.findOpen(tenantId, modelId, clock()),
    async status(tenantId, roundId) {
      const status = await (await knownHost(tenantId, roundId)).status();
      if (!status) throw new NotFoundError(`round ${roundId} not found`);
      return status;
    },
    join: async (tenantId, roundId, token) => (await knownHost(tenantId, roundId)).join(token),
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
  };
}
