/** Issue 13, finding 3: two plain-sum contributions of 1e308 published +Infinity. */

import { encodeFloat64Vector } from "@fedprofile/protocol/wire";
import { expect, it } from "vitest";
import { generateTenantKeys } from "../api-keys";
import { createCoordinatorApp } from "../app/create-app";
import { createMemoryCoordinator } from "../memory/index";

it("a contribution that would make the sum non-finite is refused; the round stays finite", async () => {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("finite-shop");
  memory.tenants.addTenant({ id: "finite-shop", name: "Finite shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp(memory);
  const call = async (path: string, key: string, body: unknown) => {
    const response = await app.request(path, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const opened = await call("/v1/rounds", keys.secret.key, {
    v: 1,
    modelId: "activity",
    dimension: 2,
    minContributions: 2,
    maxContributions: 3,
    deadlineSeconds: 60,
  });
  expect(opened.status).toBe(201);
  const roundId = String(opened.json.roundId);
  const contribute = async (vector: number[]) => {
    const joined = await call(`/v1/rounds/${roundId}/join`, keys.publishable.key, { v: 1 });
    return call(`/v1/rounds/${roundId}/contributions`, keys.publishable.key, {
      v: 1,
      participantId: joined.json.participantId,
      participantToken: joined.json.participantToken,
      vector: encodeFloat64Vector(Float64Array.from(vector)),
    });
  };
  expect((await contribute([1e308, 1])).status).toBe(200);
  const overflow = await contribute([1e308, 1]);
  expect(overflow.status).toBe(400);
  expect(overflow.json).toMatchObject({ error: { code: "non_finite_sum" } });
  expect((await contribute([Number.POSITIVE_INFINITY, 1])).status).toBe(400);
  expect((await contribute([-1e308, 2])).status).toBe(200);
});
