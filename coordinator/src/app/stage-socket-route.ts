/**
 * `GET /v1/rounds/{roundId}/shards/{shard}/socket`: a device's stage socket (issue 16 "Push, not
 * polling"). A WebSocket handshake, authenticated exactly as the HTTP device routes are: the
 * publishable key through `authenticate` (the check of `requireKey`), the participant credential
 * by the same pattern as `X-Participant`, and then by the shard itself against the token digest
 * it stored at join (`RoundService.secaggSocket`). Both come in `Sec-WebSocket-Protocol`
 * (`@fedprofile/protocol/wire` stage-push.ts), because a browser cannot set headers on a socket.
 */

import { parseStageSocketProtocols } from "@fedprofile/protocol/wire";
import type { OpenAPIHono } from "@hono/zod-openapi";
import * as z from "zod";
import { FedprofileError, InvalidRequestError } from "../errors";
import type { TenantStore } from "../ports";
import type { RoundService } from "../rounds/round-service";
import { type AppEnv, authenticate } from "./auth";
import { describeZodError } from "./errors";
import { RoundId } from "./openapi-schemas";

const SocketParams = z.object({ roundId: RoundId, shard: z.coerce.number().int().min(0).max(65_535) });
/** The same shape as the `X-Participant` header of the view and message routes. */
const Participant = z
  .string()
  .regex(
    /^p_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{32}$/,
    "sec-websocket-protocol: p.<participantId>.<participantToken> from join",
  );

/** Registers the stage socket route on `app`. */
export function addStageSocketRoute(
  app: OpenAPIHono<AppEnv>,
  deps: { tenants: TenantStore; rounds: RoundService },
): void {
  app.get("/v1/rounds/:roundId/shards/:shard/socket", async (c) => {
    if ((c.req.header("upgrade") ?? "").toLowerCase() !== "websocket") {
      throw new FedprofileError("upgrade_required", "this route takes a WebSocket handshake", 426);
    }
    const params = SocketParams.safeParse(c.req.param());
    if (!params.success) throw new InvalidRequestError(describeZodError(params.error));
    const offered = parseStageSocketProtocols(c.req.header("sec-websocket-protocol"));
    if (!offered.ok) throw new InvalidRequestError(offered.message);
    const auth = await authenticate(deps.tenants, `Bearer ${offered.apiKey}`, ["publishable"]);
    const participant = Participant.safeParse(offered.participant);
    if (!participant.success) throw new InvalidRequestError(describeZodError(participant.error));
    const [participantId = "", participantToken = ""] = participant.data.split(".");
    return deps.rounds.secaggSocket(
      auth.tenantId,
      params.data.roundId,
      params.data.shard,
      { participantId, participantToken },
      c.req.raw,
    );
  });
}
