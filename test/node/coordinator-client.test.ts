/**
 * `@fedprofile/protocol/client`, the one typed client: retries (only what a retry can fix, within
 * the window), the error envelope as one typed error, ETag, timeouts, AbortSignal, key kinds.
 */
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import {
  CoordinatorError,
  createAuditorClient,
  createDeviceClient,
  createOperatorClient,
} from "@fedprofile/protocol/client";
import { participateInRound } from "@fedprofile/sdk/sync";
import { describe, expect, it } from "vitest";
import { plainActivityRound } from "./http-coordinator";

function coordinator() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("flaky");
  memory.tenants.addTenant({ id: "flaky", name: "Flaky", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  const appFetch: typeof fetch = async (input, init) =>
    app.request(input instanceof Request ? input : String(input), init);
  return { memory, keys, appFetch };
}

/** A clock the injected sleep advances: retries take no wall time. */
function fakeTime() {
  let t = 0;
  const waits: number[] = [];
  return {
    waits,
    retry: {
      now: () => t,
      random: () => 1,
      sleep: async (ms: number) => {
        waits.push(ms);
        t += ms;
      },
    },
  };
}

describe("the typed coordinator client", () => {
  it("retries no answer, 429 and 5xx with exponential backoff, then succeeds", async () => {
    const { keys, appFetch } = coordinator();
    const failures: Array<"network" | number> = ["network", 503, 429, "network"];
    const flaky: typeof fetch = async (input, init) => {
      const failure = failures.shift();
      if (failure === "network") throw new TypeError("fetch failed");
      if (typeof failure === "number") return new Response("{}", { status: failure });
      return appFetch(input, init);
    };
    const time = fakeTime();
    const client = createDeviceClient({
      endpoint: "http://c/",
      apiKey: keys.publishable.key,
      sdkVersion: "1.0.0",
      fetch: flaky,
      retry: { ...time.retry, windowMs: 60_000, baseDelayMs: 100, maxDelayMs: 1000 },
    });
    expect((await client.checkin("activity")).round).toBeNull();
    expect(time.waits).toEqual([100, 200, 400, 800]);
  });

  it("never retries a 4xx, stops at the window, and keeps the server's code and status", async () => {
    const { keys, appFetch } = coordinator();
    let calls = 0;
    const counting: typeof fetch = async (input, init) => {
      calls++;
      return appFetch(input, init);
    };
    const bad = createDeviceClient({
      endpoint: "http://c",
      apiKey: `${keys.publishable.key}x`,
      sdkVersion: "1.0.0",
      fetch: counting,
      retry: { ...fakeTime().retry, windowMs: 60_000 },
    });
    await expect(bad.checkin("activity")).rejects.toMatchObject({ code: "malformed_api_key", status: 401 });
    expect(calls).toBe(1);

    const time = fakeTime();
    const down = createDeviceClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      sdkVersion: "1.0.0",
      fetch: async () => new Response("<html>bad gateway</html>", { status: 502 }),
      retry: { ...time.retry, windowMs: 60_000, baseDelayMs: 1000, maxDelayMs: 16_000 },
    });
    const error = await down.checkin("activity").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CoordinatorError);
    expect(error).toMatchObject({ status: 502, code: "http" });
    // 1 + 2 + 4 + 8 + 16 + 16 = 47 s; one more 16 s wait would pass the 60 s window.
    expect(time.waits).toEqual([1000, 2000, 4000, 8000, 16_000, 16_000]);
  });

  it("a contribution whose answer was lost is retried and counted once", async () => {
    const { keys, appFetch, memory } = coordinator();
    await memory.rounds.open("flaky", plainActivityRound(5));
    let dropped = false;
    const losesFirstAnswer: typeof fetch = async (input, init) => {
      const response = await appFetch(input, init);
      if (!dropped && String(input).endsWith("/contributions")) {
        dropped = true;
        throw new TypeError("connection reset after the request was processed");
      }
      return response;
    };
    const client = createDeviceClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      sdkVersion: "1.0.0",
      fetch: losesFirstAnswer,
      retry: { ...fakeTime().retry, windowMs: 10_000 },
    });
    const outcome = await participateInRound(client, "activity", () => Float64Array.of(1, 7), {
      policy: "development",
    });
    expect(outcome).toMatchObject({ status: "contributed", contributions: 1 });
    const [entry] = [...memory.hosts.values()];
    const state = entry?.store.state;
    expect(state?.kind === "plain-sum" ? state.sum : null).toEqual([1, 7]);
  });

  it("sends If-None-Match and answers a 304 with the cached version; 404 is null", async () => {
    const { keys, appFetch, memory } = coordinator();
    const opened = await memory.rounds.open("flaky", plainActivityRound(1));
    const seen: Array<string | null> = [];
    const client = createDeviceClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      sdkVersion: "1.0.0",
      fetch: async (input, init) => {
        seen.push(new Headers(init?.headers).get("if-none-match"));
        return appFetch(input, init);
      },
    });
    expect(await client.model("activity", "latest")).toBeNull();
    await participateInRound(client, "activity", () => Float64Array.of(1, 3), { policy: "development" });
    const first = await client.model("activity", "latest");
    expect(first).toMatchObject({ modelId: "activity", version: 1, roundId: opened.roundId });
    const again = await client.model("activity", "latest", first);
    expect(again).toBe(first); // the very object: nothing was downloaded
    expect(seen.at(-1)).toBe('"activity.1"');
  });

  it("times out, honours AbortSignal, and names the field of an answer the schema rejects", async () => {
    const { keys } = coordinator();
    const hang: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    const slow = createDeviceClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      sdkVersion: "1.0.0",
      fetch: hang,
      timeoutMs: 50,
    });
    await expect(slow.tasks()).rejects.toMatchObject({ code: "timeout", status: 0 });
    const controller = new AbortController();
    const pending = slow.tasks({ signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: "aborted" });

    const liar = createAuditorClient({
      endpoint: "http://c",
      apiKey: keys.auditor.key,
      fetch: async () =>
        Response.json({ v: 1, algorithm: "Ed25519", publicKey: "zz", keyId: "0".repeat(16) }),
    });
    await expect(liar.publicKey()).rejects.toMatchObject({ code: "bad_response", status: 200 });
    await expect(liar.publicKey()).rejects.toThrow(/publicKey:/);
  });

  it("checks the key kind and the endpoint before sending anything", () => {
    const { keys } = coordinator();
    expect(() => createOperatorClient({ endpoint: "http://c", apiKey: keys.publishable.key })).toThrow(
      "apiKey: expected a secret key (fp_sec_…)",
    );
    expect(() =>
      createDeviceClient({ endpoint: "http://c", apiKey: keys.secret.key, sdkVersion: "1" }),
    ).toThrow("apiKey: expected a publishable key");
    expect(() => createAuditorClient({ endpoint: "127.0.0.1:8787", apiKey: keys.auditor.key })).toThrow(
      /endpoint: .*give the scheme too/,
    );
    expect(() => createAuditorClient({ endpoint: "http://c/?x=1", apiKey: keys.auditor.key })).toThrow(
      "endpoint: the coordinator's base URL only",
    );
  });
});
