/**
 * Stage push over hibernatable WebSockets (issue 16 "Push, not polling"), in workerd: devices
 * run the SDK's real SecAgg+ round through the Worker, each holding a socket to its shard, and
 * the shard pushes every stage change; a device whose socket is refused completes by polling.
 */

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { STAGE_SOCKET_PROTOCOL, StagePush } from "@fedprofile/coordinator/wire";
import {
  createCoordinatorClient,
  participateInSecAggRound,
  type StageSocketFactory,
  type StageSocketLike,
} from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";
import { BASE, call, seedTenant } from "./helpers";

const ENCODING = { kind: "fixed-point" as const, clip: 64, valueBits: 16 };
const vectorOf = (i: number) => Float64Array.of(1, i, -i / 2, 0.5);

/** Counts requests by kind, through the Worker's real fetch handler. */
function countingFetch(counts: Record<string, number>): typeof fetch {
  return (input, init) => {
    const request = new Request(input instanceof Request ? input : String(input), init);
    const kind = new URL(request.url).pathname.split("/").at(-1) ?? "";
    counts[kind] = (counts[kind] ?? 0) + 1;
    return exports.default.fetch(request);
  };
}

/** A socket through the Worker's fetch handler (an upgrade answered 101 with `webSocket`). */
function handshake(url: string, protocols: string[]): Promise<Response> {
  return exports.default.fetch(
    new Request(url.replace(/^ws/, "http"), {
      headers: { upgrade: "websocket", "sec-websocket-protocol": protocols.join(", ") },
    }),
  );
}

/** The SDK's socket factory over {@link handshake}; records every push and the handshake status. */
function workerSockets(log: { pushes: string[]; statuses: number[] }): StageSocketFactory {
  return (url, protocols) => {
    const listeners: Record<string, Array<(event: { data: unknown }) => void>> = {};
    const fire = (type: string, event: { data: unknown } = { data: null }) => {
      for (const listener of listeners[type] ?? []) listener(event);
    };
    let socket: WebSocket | null = null;
    void handshake(url, protocols).then((response) => {
      log.statuses.push(response.status);
      if (response.status !== 101 || !response.webSocket) return fire("error");
      socket = response.webSocket;
      socket.accept();
      socket.addEventListener("message", (event) => {
        const push = StagePush.parse(JSON.parse(String(event.data)));
        log.pushes.push(push.view.stage);
        fire("message", { data: event.data });
      });
      socket.addEventListener("close", () => fire("close"));
    });
    const like: StageSocketLike = {
      addEventListener: (type: string, listener: (event: { data: unknown }) => void) => {
        listeners[type] = [...(listeners[type] ?? []), listener];
      },
      close: () => socket?.close(1000, "done"),
    };
    return like;
  };
}

async function openRound(secret: string, maxContributions: number) {
  const response = await call("POST", "/v1/rounds", secret, {
    v: 1,
    modelId: "activity",
    dimension: 4,
    minContributions: 2,
    maxContributions,
    deadlineSeconds: 600,
    aggregation: "secagg",
    secagg: { encoding: ENCODING, minShardSize: 2, stageSeconds: 30, k: 2, t: 2 },
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as { roundId: string; secagg: { shards: number } };
}

describe("stage push over hibernatable WebSockets (workerd)", () => {
  it("devices on sockets get every stage pushed and never poll; a refused socket falls back to polling", async () => {
    const keys = await seedTenant("push-a");
    const { roundId } = await openRound(keys.secret, 4);
    const runs = [1, 2, 3, 4].map((i) => ({
      i,
      counts: {} as Record<string, number>,
      log: { pushes: [] as string[], statuses: [] as number[] },
    }));
    const outcomes = await Promise.all(
      runs.map(async ({ i, counts, log }) => {
        const client = createCoordinatorClient({
          endpoint: BASE,
          apiKey: keys.publishable,
          fetch: countingFetch(counts),
          retry: { windowMs: 2_000, baseDelayMs: 20 },
        });
        const { round } = await client.checkin("activity");
        // Device 4 offers a wrong participant token on its socket: the shard refuses it (403).
        const sockets = workerSockets(log);
        const refused: StageSocketFactory = (url, protocols) =>
          sockets(
            url,
            protocols.map((p) => (p.startsWith("p.") ? `${p.slice(0, -4)}AAAA` : p)),
          );
        return participateInSecAggRound(client, round!, () => vectorOf(i), {
          policy: "development",
          pollMs: 5,
          socket: i === 4 ? refused : sockets,
        });
      }),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      "contributed",
      "contributed",
      "contributed",
      "contributed",
    ]);
    for (const { i, counts, log } of runs.slice(0, 3)) {
      expect(log.statuses, `device ${i}`).toEqual([101]);
      // The first view on connect, then one per stage change: the five stages and done.
      expect(log.pushes, `device ${i}`).toEqual([
        "advertise-keys",
        "share-keys",
        "masked-input",
        "consistency-check",
        "unmask",
        "done",
      ]);
      expect(counts.view ?? 0, `device ${i} polled`).toBe(0);
      expect(counts.messages, `device ${i}`).toBe(5);
    }
    const polled = runs[3]!;
    expect(polled.log.statuses).toEqual([403]);
    expect(polled.log.pushes).toEqual([]);
    expect(polled.counts.view).toBeGreaterThanOrEqual(6);
    const row = await env.DB.prepare("SELECT stage FROM rounds WHERE round_id = ?").bind(roundId).first();
    expect(row).toEqual({ stage: "closed" });
  });

  it("the socket route checks the key and the participant as the HTTP device routes do", async () => {
    const keys = await seedTenant("push-b");
    const { roundId } = await openRound(keys.secret, 3);
    const client = createCoordinatorClient({
      endpoint: BASE,
      apiKey: keys.publishable,
      fetch: countingFetch({}),
    });
    const joined = await client.join(roundId);
    expect(joined.secagg?.push?.path).toBe(`/v1/rounds/${roundId}/shards/${joined.secagg?.shard}/socket`);
    const participant = `${joined.participantId}.${joined.participantToken}`;
    const { url, protocols } = client.stageSocket!(joined.secagg!.push!.path, participant);
    const statusOf = async (offered: string[]) => (await handshake(url, offered)).status;
    expect(await statusOf([STAGE_SOCKET_PROTOCOL, `p.${participant}`])).toBe(400);
    expect(await statusOf([STAGE_SOCKET_PROTOCOL, `k.${keys.secret}`, `p.${participant}`])).toBe(403);
    expect(
      await statusOf([
        STAGE_SOCKET_PROTOCOL,
        "k.fp_pub_push-b.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        `p.${participant}`,
      ]),
    ).toBe(401);
    const other = await client.join(roundId);
    const wrongToken = `${joined.participantId}.${other.participantToken}`;
    expect(await statusOf([STAGE_SOCKET_PROTOCOL, `k.${keys.publishable}`, `p.${wrongToken}`])).toBe(403);
    const plain = await exports.default.fetch(new Request(url.replace(/^ws/, "http")));
    expect(plain.status).toBe(426);
    const ok = await handshake(url, protocols);
    expect(ok.status).toBe(101);
    expect(ok.headers.get("sec-websocket-protocol")).toBe(STAGE_SOCKET_PROTOCOL);
    ok.webSocket?.accept();
    ok.webSocket?.close(1000, "done");
  });

  it("state is hibernation-safe: tags and attachments name the participant, and an alarm's stage change is pushed", async () => {
    const keys = await seedTenant("push-c");
    const { roundId } = await openRound(keys.secret, 3);
    const client = createCoordinatorClient({
      endpoint: BASE,
      apiKey: keys.publishable,
      fetch: countingFetch({}),
    });
    const joined = await client.join(roundId);
    const shard = joined.secagg!.shard;
    const { url, protocols } = client.stageSocket!(
      joined.secagg!.push!.path,
      `${joined.participantId}.${joined.participantToken}`,
    );
    const response = await handshake(url, protocols);
    const socket = response.webSocket!;
    const received: string[] = [];
    const closed = new Promise<number>((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
    socket.addEventListener("message", (e) =>
      received.push(StagePush.parse(JSON.parse(String(e.data))).view.stage),
    );
    socket.accept();
    const stub = env.SHARD.get(env.SHARD.idFromName(`push-c/${roundId}/${shard}`));
    await runInDurableObject(stub, async (_instance, state) => {
      const sockets = state.getWebSockets(joined.participantId);
      expect(sockets).toHaveLength(1);
      expect(state.getTags(sockets[0]!)).toEqual([joined.participantId]);
      expect(sockets[0]!.deserializeAttachment()).toMatchObject({ participantId: joined.participantId });
      // Only what the socket itself carries is used: the advertise-keys deadline runs out.
      const core = await state.storage.get<{ deadline: number }>("core");
      await state.storage.put("core", { ...core, deadline: Date.now() - 1 });
    });
    await runDurableObjectAlarm(stub);
    expect(await closed).toBe(1000);
    // One device cannot make a round: the deadline aborts the shard, and the socket hears it.
    expect(received).toEqual(["advertise-keys", "aborted"]);
  });
});
