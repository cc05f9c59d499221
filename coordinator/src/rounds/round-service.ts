/**
 * The rounds the HTTP layer sees: find the open round for a model, open new ones, and route
 * joins and contributions to the round's host, wherever it lives.
 */
import { NotFoundError } from "../errors";
import { cryptoRandomBytes, newRoundId, type RandomBytes } from "../ids";
import type { Clock, RoundHostHandle, RoundIndex } from "../ports";
import type {
  ContributionRequest,
  ContributionResponse,
  JoinResponse,
  OpenRoundRequest,
  RoundInfo,
  RoundStatus,
} from "../wire/round";

export interface RoundServiceOptions {
  index: RoundIndex;
  /** The host of round `roundId` of `tenantId` (a Durable Object stub, or an in-process host). */
  hostFor(tenantId: string, roundId: string): RoundHostHandle;
  clock?: Clock;
  randomBytes?: RandomBytes;
}

export interface RoundService {
  open(tenantId: string, request: OpenRoundRequest): Promise<RoundStatus>;
  findOpen(tenantId: string, modelId: string): Promise<RoundInfo | null>;
  status(tenantId: string, roundId: string): Promise<RoundStatus>;
  join(tenantId: string, roundId: string): Promise<JoinResponse>;
  contribute(tenantId: string, roundId: string, request: ContributionRequest): Promise<ContributionResponse>;
}

export function createRoundService(options: RoundServiceOptions): RoundService {
  const { index, hostFor } = options;
  const clock = options.clock ?? Date.now;
  const randomBytes = options.randomBytes ?? cryptoRandomBytes;

  /** Only rounds the index knows for this tenant are routed: ids cannot cross tenants. */
  async function knownHost(tenantId: string, roundId: string): Promise<RoundHostHandle> {
    const info = await index.get(tenantId, roundId);
    if (!info) throw new NotFoundError(`round ${roundId} not found`);
    return hostFor(tenantId, roundId);
  }

  return {
    open(tenantId, request) {
      const roundId = newRoundId(randomBytes);
      return hostFor(tenantId, roundId).open(tenantId, roundId, request);
    },
    findOpen: (tenantId, modelId) => index.findOpen(tenantId, modelId, clock()),
    async status(tenantId, roundId) {
      const status = await (await knownHost(tenantId, roundId)).status();
      if (!status) throw new NotFoundError(`round ${roundId} not found`);
      return status;
    },
    join: async (tenantId, roundId) => (await knownHost(tenantId, roundId)).join(),
    contribute: async (tenantId, roundId, request) =>
      (await knownHost(tenantId, roundId)).contribute(request),
  };
}
