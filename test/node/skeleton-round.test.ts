import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { decodeFloat64Vector } from "@fedprofile/coordinator/wire";
import { createProfiler } from "@fedprofile/sdk";
import { describe, expect, it } from "vitest";

function setup() {
  let now = Date.parse("2026-11-23T10:00:00Z");
  const clock = () => now;
  const memory = createMemoryCoordinator({ clock });
  const keys = generateTenantKeys("shop");
  memory.tenants.addTenant({ id: "shop", name: "Shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({
    tenants: memory.tenants,
    models: memory.models,
    rounds: memory.rounds,
    clock,
  });
  const appFetch: typeof fetch = async (input, init) =>
    app.request(input instanceof Request ? input : String(input), init);
  const device = () =>
    createProfiler({
      endpoint: "http://coordinator.test",
      privacyPolicy: "development",
      apiKey: keys.publishable.key,
      storage: "memory",
      fetch: appFetch,
      now: clock,
    });
  const openRound = (body: Record<string, unknown>) =>
    app.request("/v1/rounds", {
      method: "POST",
      headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
      body: JSON.stringify({ v: 1, modelId: "activity", dimension: 2, deadlineSeconds: 60, ...body }),
    });
  return { memory, app, keys, device, openRound, advance: (ms: number) => (now += ms) };
}

describe("walking skeleton: plain-sum round through the SDK and the coordinator core", () => {
  it("three devices contribute, the round closes on count, and the SDK pulls the sum", async () => {
    const { device, openRound } = setup();
    expect((await openRound({ minContributions: 3, maxContributions: 3 })).status).toBe(201);
    const devices = [device(), device(), device()];
    const eventCounts = [2, 5, 1];
    for (const [i, d] of devices.entries()) {
      for (let e = 0; e < (eventCounts[i] as number); e++)
        await d.track("Product Viewed", { product_id: `p${e}` });
    }
    const outcomes = [];
    for (const d of devices) outcomes.push(await d.sync("activity"));
    expect(outcomes.map((o) => o.status)).toEqual(["contributed", "contributed", "contributed"]);
    expect(outcomes.at(-1)).toMatchObject({ stage: "closed", contributions: 3 });

    const model = await devices[0]!.pullModel();
    expect(model?.version).toBe(1);
    expect(Array.from(decodeFloat64Vector(model!.weights, 2))).toEqual([3, 8]);
  });

  it("closes on the deadline alarm with enough contributions, aborts without", async () => {
    const { device, openRound, memory, advance } = setup();
    await openRound({ minContributions: 2, maxContributions: 10 });
    const a = device();
    const b = device();
    await a.track("Product Added");
    await a.sync("activity");
    await b.sync("activity");
    advance(61_000);
    await memory.fireDueAlarms();
    expect(await a.pullModel()).toMatchObject({ version: 1, contributions: 2 });

    await openRound({ minContributions: 3, maxContributions: 10 });
    await device().sync("activity");
    advance(61_000);
    await memory.fireDueAlarms();
    const [host] = [...memory.hosts.values()].slice(-1);
    expect(host?.store.state).toMatchObject({ stage: "aborted", sum: [] });
    expect((await a.pullModel())?.version).toBe(1);
  });

  it("a device contributes at most once per round", async () => {
    const { device, openRound } = setup();
    await openRound({ minContributions: 1, maxContributions: 5 });
    const d = device();
    expect((await d.sync("activity")).status).toBe("contributed");
    expect((await d.sync("activity")).status).toBe("already-contributed");
  });
});
