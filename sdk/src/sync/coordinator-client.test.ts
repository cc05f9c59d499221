import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { describe, expect, it } from "vitest";
import { createCoordinatorClient, SyncError } from "./coordinator-client";
import { participateInPlainRound } from "./plain-round";

function coordinator() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("flaky");
  memory.tenants.addTenant({ id: "flaky", name: "Flaky", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  const appFetch = async (input: RequestInfo | URL, init?: RequestInit) =>
    app.request(input instanceof Request ? input : String(input), init);
  return { memory, keys, app, appFetch };
}

const noSleep = { sleep: async () => {}, random: () => 0.5 };

describe("coordinator client on a flaky link", () => {
  it("retries network failures and 5xx, then succeeds", async () => {
    const { keys, appFetch } = coordinator();
    const failures = ["network", 503, "network"];
    const calls: string[] = [];
    const flakyFetch: typeof fetch = async (input, init) => {
      const failure = failures.shift();
      calls.push(String(failure ?? "ok"));
      if (failure === "network") throw new TypeError("Failed to fetch");
      if (typeof failure === "number") return new Response("{}", { status: failure });
      return appFetch(input, init);
    };
    const client = createCoordinatorClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      fetch: flakyFetch,
      retry: noSleep,
    });
    const checkin = await client.checkin("activity");
    expect(checkin.round).toBeNull();
    expect(calls).toEqual(["network", "503", "network", "ok"]);
  });

  it("never retries a 4xx, and gives up after the configured attempts", async () => {
    const { keys, appFetch } = coordinator();
    let count = 0;
    const counting: typeof fetch = async (input, init) => {
      count++;
      return appFetch(input, init);
    };
    const bad = createCoordinatorClient({
      endpoint: "http://c",
      apiKey: `${keys.publishable.key}x`,
      fetch: counting,
      retry: noSleep,
    });
    await expect(bad.checkin("activity")).rejects.toMatchObject({ code: "malformed_api_key", status: 401 });
    expect(count).toBe(1);

    const down = createCoordinatorClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      fetch: async () => new Response("oops", { status: 502 }),
      retry: { ...noSleep, attempts: 3 },
    });
    const error = await down.checkin("activity").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SyncError);
    expect(error).toMatchObject({ status: 502, code: "http" });
  });

  it("a contribution whose response was lost is retried once and counted once", async () => {
    const { keys, appFetch, memory } = coordinator();
    await memory.rounds.open("flaky", {
      v: 1,
      modelId: "activity",
      dimension: 2,
      minContributions: 1,
      maxContributions: 5,
      deadlineSeconds: 60,
      aggregation: "plain-sum",
    });
    let dropped = false;
    const losesFirstContributionResponse: typeof fetch = async (input, init) => {
      const response = await appFetch(input, init);
      if (!dropped && String(input).endsWith("/contributions")) {
        dropped = true;
        throw new TypeError("connection reset after the request was processed");
      }
      return response;
    };
    const client = createCoordinatorClient({
      endpoint: "http://c",
      apiKey: keys.publishable.key,
      fetch: losesFirstContributionResponse,
      retry: noSleep,
    });
    const outcome = await participateInPlainRound(
      client,
      "activity",
      () => Float64Array.of(1, 7),
      () => false,
      "development",
    );
    expect(outcome).toMatchObject({ status: "contributed", contributions: 1 });
    const [entry] = [...memory.hosts.values()];
    expect(entry?.store.state).toMatchObject({ contributions: 1 });
    const state = entry?.store.state;
    expect(state?.kind === "plain-sum" ? state.sum : null).toEqual([1, 7]);
  });
});
