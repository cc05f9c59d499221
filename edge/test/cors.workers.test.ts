/**
 * CORS by route kind (issue 11, finding 6): `*` only on device routes (publishable key); the
 * secret- and auditor-key routes answer only the configured operator origins (wrangler.toml's
 * OPERATOR_ORIGINS: loopback on any port, where the local compliance dashboard is served).
 * Before, `*` covered every route.
 */
import { describe, expect, it } from "vitest";
import { call, seedTenant } from "./helpers";

const preflight = (path: string, method: string, origin: string) =>
  call("OPTIONS", path, undefined, undefined, {
    origin,
    "access-control-request-method": method,
    "access-control-request-headers": "authorization,content-type",
  });

describe("CORS (workerd)", () => {
  it("device routes allow any origin, in the preflight and the answer", async () => {
    const keys = await seedTenant("cors-a");
    for (const [path, method] of [
      ["/v1/checkin", "POST"],
      ["/v1/tasks", "GET"],
      ["/v1/rounds/r_AAAAAAAAAAAAAAAAAAAAAA/join", "POST"],
      ["/v1/rounds/r_AAAAAAAAAAAAAAAAAAAAAA/shards/0/messages", "POST"],
      ["/v1/models/activity/latest", "GET"],
    ] as const) {
      const response = await preflight(path, method, "https://shop.example");
      expect(response.headers.get("access-control-allow-origin"), `${method} ${path}`).toBe("*");
    }
    const tasks = await call("GET", "/v1/tasks", keys.publishable, undefined, {
      origin: "https://shop.example",
    });
    expect(tasks.status).toBe(200);
    expect(tasks.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("secret and auditor routes never answer *, and a foreign origin gets no CORS header", async () => {
    const keys = await seedTenant("cors-b");
    for (const [path, method] of [
      ["/v1/rounds", "POST"],
      ["/v1/audit/ledger", "GET"],
      ["/v1/privacy/budgets/activity", "PUT"],
      ["/v1/privacy/budgets/activity", "GET"],
      ["/v1/models/activity", "PUT"],
      ["/v1/models/activity/rounds", "GET"],
    ] as const) {
      const response = await preflight(path, method, "https://evil.example");
      expect(response.headers.get("access-control-allow-origin"), `${method} ${path}`).toBeNull();
    }
    const ledger = await call("GET", "/v1/audit/ledger", keys.auditor, undefined, {
      origin: "https://evil.example",
    });
    expect(ledger.status).toBe(200);
    expect(ledger.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the dashboard's loopback origin (any port) may call the auditor routes", async () => {
    const keys = await seedTenant("cors-c");
    const origin = "http://127.0.0.1:41234";
    const response = await preflight("/v1/audit/ledger", "GET", origin);
    expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    const ledger = await call("GET", "/v1/audit/ledger", keys.auditor, undefined, { origin });
    expect(ledger.headers.get("access-control-allow-origin")).toBe(origin);
    // Not a look-alike host.
    const other = await preflight("/v1/audit/ledger", "GET", "http://127.0.0.1.evil.example:80");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
