/**
 * The wire schemas as the HTTP layer uses them: the protocol's `zod/mini` schemas seen through
 * {@link toClassic} (same validation, documented in `/openapi.json`), and the coordinator's own
 * privacy schemas, which are classic zod already.
 */
import * as wire from "@fedprofile/protocol/wire";
import { toClassic } from "../wire/classic";

export { encodeClientFrame, modelEtag, WIRE_VERSION } from "@fedprofile/protocol/wire";
export {
  CheckpointQuery,
  CheckpointResponse,
  LedgerQuery,
  LedgerRowsPage,
  PrivacyBudgetRequest,
  PublishedCheckpointsQuery,
} from "../wire/privacy";

export const ErrorEnvelope = toClassic(wire.ErrorEnvelope);
export const ModelId = toClassic(wire.ModelId);
export const RoundId = toClassic(wire.RoundId);
export const HealthResponse = toClassic(wire.HealthResponse);
export const ModelVersion = toClassic(wire.ModelVersion);
export const ModelVersionPage = toClassic(wire.ModelVersionPage);
export const CheckinRequest = toClassic(wire.CheckinRequest);
export const CheckinResponse = toClassic(wire.CheckinResponse);
export const ContributionRequest = toClassic(wire.ContributionRequest);
export const ContributionResponse = toClassic(wire.ContributionResponse);
export const JoinRequest = toClassic(wire.JoinRequest);
export const JoinResponse = toClassic(wire.JoinResponse);
export const OpenRoundRequest = toClassic(wire.OpenRoundRequest);
export const RoundStatus = toClassic(wire.RoundStatus);
export const SecAggAck = toClassic(wire.SecAggAck);
export const SecAggClientMessage = toClassic(wire.SecAggClientMessage);
export const SecAggServerView = toClassic(wire.SecAggServerView);
export const TasksResponse = toClassic(wire.TasksResponse);
export const ModelDeclaration = toClassic(wire.ModelDeclaration);
export const ModelStatus = toClassic(wire.ModelStatus);
export const TrainingRoundPage = toClassic(wire.TrainingRoundPage);
export const PrivacyBudgetStatus = toClassic(wire.PrivacyBudgetStatus);
export const LedgerPublicKey = toClassic(wire.LedgerPublicKey);
