/**
 * Signed key advertisements end to end (issue 13): the real HTTP coordinator in process, a real
 * storefront issuer (blinded issuance), and the SDK's `participateInSecAggRound`. A round under
 * the `maliciousServer` preset sums exactly with every advertisement signed and checked; a server
 * that swaps one device's c-key in what it relays is refused by that device before it sends a
 * share, with the reason reported.
 */
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import type { TokenIssuer } from "@fedprofile/coordinator/admission";
import { decodeFloat64Vector } from "@fedprofile/coordinator/wire";
import {
  type AdmissionOptions,
  type CoordinatorClient,
  createCoordinatorClient,
  participateInSecAggRound,
  type SecAggOutcome,
} from "@fedprofile/sdk/sync";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { stubbedStorefrontIssuer } from "./identities";

const TENANT = "signed-shop";
const ENCODING = { kind: "fixed-point" as const, clip: 64, valueBits: 16 };
const STEP = (2 * ENCODING.clip) / (2 ** ENCODING.valueBits - 1);
const VECTORS = [
  [1, 2.5, -3],
  [1, 0.25, 4],
  [1, 10, 0],
  [1, -1, 7.75],
  [1, 3, 3],
];

let issuer: TokenIssuer;
let admission: AdmissionOptions;
beforeAll(async () => {
  ({ issuer, admission } = await stubbedStorefrontIssuer());
}, 60_000);

let stop: (() => void) | undefined;
afterEach(() => stop?.());

async function setup() {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: TENANT, createdAt: 0 }, keys);
  const app = createCoordinatorApp({ ...memory });
  const appFetch: typeof fetch = async (input, init) =>
    app.request(input instanceof Request ? input : String(input), init);
  const ticker = setInterval(() => void memory.fireDueAlarms(), 25);
  stop = () => clearInterval(ticker);
  const secret = async (method: string, path: string, body: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${keys.secret.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status, await response.clone().text()).toBeLessThan(300);
    return response.json() as Promise<unknown>;
  };
  await secret("PUT", "/v1/admission/issuer", issuer.registration());
  await secret("POST", "/v1/rounds", {
    v: 1,
    modelId: "activity",
    dimension: 3,
    minContributions: 5,
    maxContributions: 5,
    deadlineSeconds: 60,
    aggregation: "secagg",
    secagg: {
      encoding: ENCODING,
      minShardSize: 5,
      maxShardSize: 5,
      k: 4,
      t: 3,
      threat: "maliciousServer",
      stageSeconds: 20,
    },
  });
  const device = (): CoordinatorClient =>
    createCoordinatorClient({
      endpoint: "http://coordinator.test",
      apiKey: keys.publishable.key,
      fetch: appFetch,
    });
  return { memory, device };
}

async function run(
  device: () => CoordinatorClient,
  tamper?: (slotView: unknown, index: number) => unknown,
): Promise<SecAggOutcome[]> {
  return Promise.all(
    VECTORS.map(async (v, index) => {
      const honest = device();
      const client: CoordinatorClient = tamper
        ? {
            ...honest,
            secaggView: async (...args) => tamper(await honest.secaggView(...args), index) as never,
          }
        : honest;
      const { round } = await client.checkin("activity");
      if (!round) throw new Error("no open round");
      expect(round.secagg?.threat).toBe("maliciousServer");
      return participateInSecAggRound(client, round, () => Float64Array.from(v), {
        policy: "development",
        admission,
        pollMs: 10,
      });
    }),
  );
}

describe("signed key advertisements over HTTP (maliciousServer preset)", () => {
  it("an honest round: every device signs, checks its neighbours, and the sum is published", async () => {
    const { memory, device } = await setup();
    const outcomes = await run(device);
    expect(outcomes.map((o) => o.status)).toEqual(VECTORS.map(() => "contributed"));
    const model = await memory.models.latest(TENANT, "activity");
    expect(model).toMatchObject({ version: 1, contributions: 5, aggregation: "secagg" });
    const weights = Array.from(decodeFloat64Vector(model!.weights, 3));
    const expected = [5, 14.75, 11.75];
    for (const [i, w] of weights.entries())
      expect(Math.abs(w - (expected[i] as number))).toBeLessThanOrEqual(5 * STEP);
    // The shards of a preset round with admission refuse unsigned advertisements
    // (`signedKeys`), so every one of these five was signed and checked by its neighbours.
  }, 120_000);

  it("a server that swaps a neighbour's c-key in one device's view is refused by that device", async () => {
    const { device } = await setup();
    const outcomes = await run(device, (view, index) => {
      const v = view as { stage: string; neighbours?: Array<{ cPk: string }> };
      if (index !== 0 || v.stage !== "share-keys" || !v.neighbours?.[0]) return view;
      // The server's own X25519 public key (the base point's multiple of 9s) in place of the real one.
      const swapped = { ...v.neighbours[0], cPk: "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=" };
      return { ...v, neighbours: [swapped, ...v.neighbours.slice(1)] };
    });
    const victim = outcomes[0] as SecAggOutcome;
    expect(victim.status).toBe("aborted");
    expect(victim).toMatchObject({ code: "secagg_unauthenticated" });
    expect(victim.status === "aborted" && victim.reason).toMatch(/signature on its keys does not verify/);
  }, 120_000);
});
