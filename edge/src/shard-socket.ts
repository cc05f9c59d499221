/**
 * Stage push from a shard's Durable Object (issue 16 "Push, not polling"), with the WebSocket
 * Hibernation API: the object accepts each device's socket with `ctx.acceptWebSocket`, so it can
 * be evicted between stages while the sockets stay open, and finds them again on a stage change
 * with `ctx.getWebSockets()`. Who a socket belongs to lives in its attachment
 * (`serializeAttachment`, which survives hibernation) and its tag (the participant id).
 * https://developers.cloudflare.com/durable-objects/best-practices/websockets/
 */

import {
  FedprofileError,
  type SecAggShardHost,
  type StageNotifier,
  type StageSocketPort,
} from "@fedprofile/coordinator";
import { STAGE_SOCKET_PROTOCOL, type StagePush, WIRE_VERSION } from "@fedprofile/coordinator/wire";
import * as z from "zod";
import type { Env } from "./env";

/**
 * Set by the Worker on the request it forwards to the shard, after the key check; a Durable
 * Object is reachable only through this Worker's binding, and the shard still checks the token
 * digest against the one it stored at join.
 */
const PARTICIPANT_HEADER = "x-fedprofile-participant";
const TOKEN_HASH_HEADER = "x-fedprofile-token-hash";

/** A socket's attachment: small (the runtime caps it at 2 KiB), and checked when read back. */
const Attachment = z.object({
  participantId: z.string().regex(/^p_[A-Za-z0-9_-]{22}$/),
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
});

/** The Worker's side: forwards an authenticated upgrade to the participant's shard object. */
export function stageSocketPort(env: Env): StageSocketPort {
  return {
    connect(target, request) {
      // The same object name as `shardHandle` (./shard-do.ts).
      const stub = env.SHARD.get(
        env.SHARD.idFromName(`${target.tenantId}/${target.roundId}/${target.shard}`),
      );
      const headers = new Headers(request.headers);
      headers.set(PARTICIPANT_HEADER, target.participantId);
      headers.set(TOKEN_HASH_HEADER, target.tokenHash);
      return stub.fetch(new Request(request.url, { method: "GET", headers }));
    },
  };
}

const push = (view: StagePush["view"]): string =>
  JSON.stringify({ v: WIRE_VERSION, type: "view", view } satisfies StagePush);

/**
 * The shard object's side of the handshake: checks the participant as `GET …/view` does, accepts
 * the socket as hibernatable and pushes the current view at once. A refused credential answers
 * the HTTP error (no socket is opened).
 */
export async function acceptStageSocket(
  ctx: DurableObjectState,
  host: SecAggShardHost,
  request: Request,
): Promise<Response> {
  const who = Attachment.safeParse({
    participantId: request.headers.get(PARTICIPANT_HEADER),
    tokenHash: request.headers.get(TOKEN_HASH_HEADER),
  });
  if (!who.success || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return Response.json(
      { error: { code: "invalid_request", message: "not a stage socket request" } },
      { status: 400 },
    );
  }
  const { participantId, tokenHash } = who.data;
  try {
    await host.view(participantId, tokenHash);
  } catch (error) {
    // The envelope of the HTTP routes: an unknown participant or a wrong token is the same 403.
    if (!(error instanceof FedprofileError)) throw error;
    return Response.json({ error: { code: error.code, message: error.message } }, { status: error.status });
  }
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  ctx.acceptWebSocket(server, [participantId]);
  server.serializeAttachment(who.data);
  // Read after the accept: a stage change from here on finds this socket, so none is missed.
  const view = await host.view(participantId, tokenHash);
  server.send(push(view));
  if (view.stage === "done" || view.stage === "aborted") server.close(1000, "round ended");
  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: { "sec-websocket-protocol": STAGE_SOCKET_PROTOCOL },
  });
}

/**
 * Pushes each connected device its own view of the new stage; an ended shard closes the sockets
 * after the last view. A socket whose participant the host no longer knows is closed.
 */
export function socketNotifier(ctx: DurableObjectState): StageNotifier {
  return {
    async stageChanged(change) {
      const ended = change.stage === "done" || change.stage === "aborted";
      for (const socket of ctx.getWebSockets()) {
        const who = Attachment.safeParse(socket.deserializeAttachment());
        try {
          if (!who.success) throw new Error("socket without a valid attachment");
          socket.send(push(await change.viewOf(who.data.participantId, who.data.tokenHash)));
          if (ended) socket.close(1000, "round ended");
        } catch {
          closeQuietly(socket, 1011, "no view for this participant");
        }
      }
    },
  };
}

/** Closes a socket that may already be closing. */
export function closeQuietly(socket: WebSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed by the other side.
  }
}
