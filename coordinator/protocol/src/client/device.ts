/**
 * The device routes (publishable key): what the SDK's sync calls. Kept apart from the operator
 * and auditor routes so a page's sync bundle carries only these schemas.
 */

import { WIRE_VERSION } from "../wire/common";
import { ModelVersion, modelEtag } from "../wire/model";
import {
  CheckinResponse,
  ContributionResponse,
  JoinResponse,
  RoundStatus,
  TasksResponse,
} from "../wire/round";
import { SecAggAck, SecAggServerView } from "../wire/secagg";
import { stageSocketProtocols } from "../wire/stage-push";
import {
  type CallOptions,
  type ClientOptions,
  CoordinatorError,
  callJson,
  createHttp,
  NOT_MODIFIED,
  seg,
} from "./http";

/** Per-call options the device routes take. */
export type DeviceCallOptions = Pick<CallOptions, "signal">;

/** The device side of the HTTP API. Every answer is parsed with its wire schema. */
export interface DeviceClient {
  readonly endpoint: string;
  /** `POST /v1/checkin`: is a round open for `modelId`? Sends only the SDK version. */
  checkin(modelId: string, o?: DeviceCallOptions): Promise<CheckinResponse>;
  /**
   * `POST /v1/rounds/{id}/join`: a fresh, round-scoped identity (and a SecAgg shard). `token`: the
   * round's Privacy Pass token (standard base64) when it admits by token.
   */
  join(roundId: string, o?: DeviceCallOptions & { token?: string }): Promise<JoinResponse>;
  /** `POST /v1/rounds/{id}/contributions` (plain-sum): `vector` is base64 float64s. */
  contribute(
    roundId: string,
    participantId: string,
    participantToken: string,
    vector: string,
    o?: DeviceCallOptions,
  ): Promise<ContributionResponse>;
  /** `GET /v1/rounds/{id}`. */
  roundStatus(roundId: string, o?: DeviceCallOptions): Promise<RoundStatus>;
  /** `GET /v1/tasks`: every declared model with its newest version and open round. */
  tasks(o?: DeviceCallOptions): Promise<TasksResponse>;
  /**
   * `GET /v1/models/{id}/latest` or `/versions/{v}`, or `null` on 404. With `cached`, sends its
   * ETag (`If-None-Match`) and resolves to `cached` itself on a 304: an unchanged model is free.
   */
  model(
    modelId: string,
    version: number | "latest",
    cached?: ModelVersion | null,
    o?: DeviceCallOptions,
  ): Promise<ModelVersion | null>;
  /** `GET …/shards/{s}/view`: this participant's view of its shard's current SecAgg stage. */
  secaggView(
    roundId: string,
    shard: number,
    participant: string,
    o?: DeviceCallOptions,
  ): Promise<SecAggServerView>;
  /**
   * `POST …/shards/{s}/messages`: one SecAgg stage message, already encoded by the caller (a
   * binary frame as bytes, or a JSON value); the framing is the protocol's, not this client's.
   */
  secaggMessage(
    roundId: string,
    shard: number,
    participant: string,
    body: Uint8Array | object,
    o?: DeviceCallOptions,
  ): Promise<SecAggAck>;
  /**
   * Where and how to open the stage socket a join offered (`push.path`): its ws(s) URL and the
   * `Sec-WebSocket-Protocol` list carrying this client's key and the participant credential.
   * Optional: a client without it polls.
   */
  stageSocket?(path: string, participant: string): { url: string; protocols: string[] };
}

/** A client for the device routes; `apiKey` must be publishable (`fp_pub_…`). */
export function createDeviceClient(options: ClientOptions & { sdkVersion: string }): DeviceClient {
  const http = createHttp(options, "publishable");
  const round = (id: string) => `/v1/rounds/${seg(id)}`;
  return {
    endpoint: http.endpoint,
    checkin: (modelId, o) =>
      callJson(http, CheckinResponse, "POST", "/v1/checkin", {
        ...o,
        body: { v: WIRE_VERSION, modelId, sdkVersion: options.sdkVersion },
      }),
    join: (roundId, o) => {
      const { token, ...call } = o ?? {};
      return callJson(http, JoinResponse, "POST", `${round(roundId)}/join`, {
        ...call,
        body: { v: WIRE_VERSION, ...(token === undefined ? {} : { token }) },
      });
    },
    contribute: (roundId, participantId, participantToken, vector, o) =>
      callJson(http, ContributionResponse, "POST", `${round(roundId)}/contributions`, {
        ...o,
        body: { v: WIRE_VERSION, participantId, participantToken, vector },
      }),
    roundStatus: (roundId, o) => callJson(http, RoundStatus, "GET", round(roundId), o),
    tasks: (o) => callJson(http, TasksResponse, "GET", "/v1/tasks", o),
    async model(modelId, version, cached, o) {
      const path = `/v1/models/${seg(modelId)}/${version === "latest" ? "latest" : `versions/${seg(version)}`}`;
      try {
        const found = await http.call(ModelVersion, "GET", path, {
          ...o,
          ...(cached ? { etag: modelEtag(cached) } : {}),
        });
        return found === NOT_MODIFIED ? (cached ?? null) : found;
      } catch (error) {
        if (error instanceof CoordinatorError && error.status === 404) return null;
        throw error;
      }
    },
    secaggView: (roundId, shard, participant, o) =>
      callJson(http, SecAggServerView, "GET", `${round(roundId)}/shards/${seg(shard)}/view`, {
        ...o,
        headers: { "x-participant": participant },
      }),
    secaggMessage: (roundId, shard, participant, body, o) =>
      callJson(http, SecAggAck, "POST", `${round(roundId)}/shards/${seg(shard)}/messages`, {
        ...o,
        body,
        headers: { "x-participant": participant },
      }),
    stageSocket(path, participant) {
      const url = new URL(path, `${http.endpoint}/`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      return { url: url.href, protocols: stageSocketProtocols(options.apiKey, participant) };
    },
  };
}
