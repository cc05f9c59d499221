/**
 * The client half of a plain-sum round: check in, join, contribute once. The walking
 * skeleton's protocol; SecAgg+ replaces `contribute` with its masked stages.
 */
import { encodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { type CoordinatorClient, SyncError } from "./coordinator-client";

export type RoundOutcome =
  | { status: "no-round"; latestModelVersion: number | null }
  | { status: "contributed"; roundId: string; contributions: number; stage: string }
  | { status: "already-contributed"; roundId: string };

/**
 * Takes part in the open round of `modelId`, if any. `alreadyContributed(roundId)` lets the
 * caller enforce one contribution per device per round across reloads.
 */
export async function participateInPlainRound(
  client: CoordinatorClient,
  modelId: string,
  vectorFor: (dimension: number) => Promise<Float64Array> | Float64Array,
  alreadyContributed: (roundId: string) => Promise<boolean> | boolean = () => false,
): Promise<RoundOutcome> {
  const checkin = await client.checkin(modelId);
  const round = checkin.round;
  if (!round) return { status: "no-round", latestModelVersion: checkin.latestModelVersion };
  if (await alreadyContributed(round.roundId))
    return { status: "already-contributed", roundId: round.roundId };
  const joined = await client.join(round.roundId);
  const vector = await vectorFor(joined.dimension);
  if (vector.length !== joined.dimension) {
    throw new RangeError(`vector: expected dimension ${joined.dimension}, got ${vector.length}`);
  }
  try {
    const accepted = await client.contribute(
      round.roundId,
      joined.participantId,
      joined.participantToken,
      encodeFloat64Vector(vector),
    );
    return {
      status: "contributed",
      roundId: round.roundId,
      contributions: accepted.contributions,
      stage: accepted.stage,
    };
  } catch (error) {
    // A retry after a lost response finds our own contribution already counted: that is success.
    if (!(error instanceof SyncError && error.code === "duplicate_contribution")) throw error;
    const status = await client.roundStatus(round.roundId);
    return {
      status: "contributed",
      roundId: round.roundId,
      contributions: status.contributions,
      stage: status.stage,
    };
  }
}
