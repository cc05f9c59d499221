/**
 * Stage push over a WebSocket (issue 16 "Push, not polling"): a device that joined a SecAgg shard
 * may hold a socket to it, and the shard pushes the device's own stage view whenever the stage
 * changes, so the device never polls `GET …/view`. Polling stays the fallback.
 *
 * A browser cannot set headers on a WebSocket handshake, so the credentials travel in
 * `Sec-WebSocket-Protocol` (RFC 6455 §4.1, §11.3.4): the protocol name, then `k.<api key>` and
 * `p.<participantId>.<participantToken>`. API keys and participant credentials are base64url with
 * `_` and `.`, all RFC 9110 `tchar`s, so each is one subprotocol token. The server answers only
 * the protocol name; the credentials are checked exactly as the HTTP device routes check them.
 */
import * as z from "zod/mini";
import { WireVersion } from "./common";
import { SecAggServerView } from "./secagg";

/** The subprotocol the shard answers with. */
export const STAGE_SOCKET_PROTOCOL = "fedprofile.push.v1";

/** One push from a shard: the receiving device's view of the shard's current stage. */
export const StagePush = z.object({
  v: WireVersion,
  type: z.literal("view"),
  view: SecAggServerView,
});
export type StagePush = z.infer<typeof StagePush>;

/** What a join says about the socket (absent: the server offers no push; poll). */
export const StageSocketOffer = z.object({
  /** Path of the socket route, relative to the endpoint. */
  path: z
    .string()
    .check(z.regex(/^\/v1\/rounds\/[^/?#]+\/shards\/[0-9]+\/socket$/, "push.path: a socket route")),
});
export type StageSocketOffer = z.infer<typeof StageSocketOffer>;

/** The `Sec-WebSocket-Protocol` list a device offers. */
export function stageSocketProtocols(apiKey: string, participant: string): string[] {
  return [STAGE_SOCKET_PROTOCOL, `k.${apiKey}`, `p.${participant}`];
}

/**
 * The credentials in a `Sec-WebSocket-Protocol` header, or a message naming what is missing.
 * Formats are not checked here: the key and participant checks of the device routes do that.
 */
export function parseStageSocketProtocols(
  header: string | undefined,
): { ok: true; apiKey: string; participant: string } | { ok: false; message: string } {
  const offered = (header ?? "").split(",").map((p) => p.trim());
  if (!offered.includes(STAGE_SOCKET_PROTOCOL)) {
    return { ok: false, message: `sec-websocket-protocol: must offer ${STAGE_SOCKET_PROTOCOL}` };
  }
  const apiKey = offered.find((p) => p.startsWith("k."))?.slice(2);
  const participant = offered.find((p) => p.startsWith("p."))?.slice(2);
  if (!apiKey) return { ok: false, message: "sec-websocket-protocol: missing k.<api key>" };
  if (!participant)
    return { ok: false, message: "sec-websocket-protocol: missing p.<participant credential>" };
  return { ok: true, apiKey, participant };
}
