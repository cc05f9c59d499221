/**
 * Bad requests never get a 500. Every route in /openapi.json is sent malformed JSON, wrong
 * types, a missing key, a malformed key, an unknown tenant (the same answer as a wrong key) and a key of the wrong kind, plus
 * fuzzed bodies; each must answer a 4xx with the `{error:{code,message}}` envelope.
 */
import { ErrorEnvelope } from "@fedprofile/coordinator/wire";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { call, seedTenant } from "./helpers";

interface Operation {
  method: string;
  path: string;
  secured: boolean;
  hasBody: boolean;
  /** Names of its query parameters. */
  query: string[];
}

let keys: Awaited<ReturnType<typeof seedTenant>>;
let operations: Operation[] = [];

const SAMPLE_PARAMS: Record<string, string> = {
  roundId: "r_AAAAAAAAAAAAAAAAAAAAAA",
  modelId: "activity",
  version: "1",
  shard: "0",
};
const fill = (path: string) => path.replace(/\{(\w+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? "x");
/** Which key kinds each route accepts (DESIGN.md: publishable = devices, secret = backends, auditor = read-only). */
const ALLOWED_KINDS: Record<string, string[]> = {
  "POST /v1/checkin": ["publishable"],
  "POST /v1/rounds": ["secret"],
  "GET /v1/rounds/{roundId}": ["publishable", "secret"],
  "POST /v1/rounds/{roundId}/join": ["publishable"],
  "POST /v1/rounds/{roundId}/contributions": ["publishable"],
  "GET /v1/rounds/{roundId}/shards/{shard}/view": ["publishable"],
  "POST /v1/rounds/{roundId}/shards/{shard}/messages": ["publishable"],
  "GET /v1/models/{modelId}/latest": ["publishable", "secret", "auditor"],
  "GET /v1/models/{modelId}/versions": ["secret", "auditor"],
  "GET /v1/models/{modelId}/versions/{version}": ["publishable", "secret", "auditor"],
  "GET /v1/models/{modelId}/versions/{version}/weights/{roundId}": ["publishable", "secret", "auditor"],
  "PUT /v1/privacy/budgets/{modelId}": ["secret"],
  "GET /v1/privacy/budgets/{modelId}": ["secret", "auditor"],
  "GET /v1/audit/ledger": ["auditor"],
  "GET /v1/audit/public-key": ["publishable", "secret", "auditor"],
  "GET /v1/audit/checkpoint": ["secret", "auditor"],
  "GET /v1/audit/checkpoints": ["secret", "auditor"],
  "PUT /v1/models/{modelId}": ["secret"],
  "GET /v1/models/{modelId}": ["secret", "auditor"],
  "GET /v1/models/{modelId}/rounds": ["secret", "auditor"],
  "GET /v1/tasks": ["publishable"],
  "PUT /v1/admission/issuer": ["secret"],
  "GET /v1/admission/issuer": ["publishable", "secret", "auditor"],
};
/** A well-formed participant credential (SecAgg routes check its shape before anything else). */
const PARTICIPANT = { "x-participant": `p_${"A".repeat(22)}.${"B".repeat(32)}` };
const send = (method: string, path: string, key?: string, body?: unknown) =>
  call(method, path, key, body, PARTICIPANT);
const UNKNOWN_TENANT_KEY = "fp_pub_no-such-tenant.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

async function expectEnvelope(response: Response, status: number | "4xx", code?: string) {
  const text = await response.text();
  if (status === "4xx") expect(response.status, text).toBeGreaterThanOrEqual(400);
  else expect(response.status, text).toBe(status);
  expect(response.status, text).toBeLessThan(500);
  const parsed = ErrorEnvelope.safeParse(JSON.parse(text));
  expect(parsed.success, text).toBe(true);
  const body = parsed.success ? parsed.data : { error: { code: "", message: "" } };
  if (code) expect(body.error.code, text).toBe(code);
}

const OpenApiDoc = z.object({
  paths: z.record(
    z.string(),
    z.record(
      z.string(),
      z.object({
        security: z.array(z.unknown()).optional(),
        requestBody: z.unknown().optional(),
        parameters: z.array(z.object({ name: z.string(), in: z.string() })).optional(),
      }),
    ),
  ),
});

/** A key of the first kind the route accepts, so fuzzed input reaches its validation. */
function allowedKey(op: Operation): string {
  const kind = ALLOWED_KINDS[`${op.method} ${op.path}`]?.[0];
  const key = kind === "publishable" || kind === "secret" || kind === "auditor" ? keys[kind] : undefined;
  if (!key) throw new Error(`key table has no entry for ${op.method} ${op.path}`);
  return key;
}

beforeAll(async () => {
  keys = await seedTenant("fuzz-shop");
  const doc = OpenApiDoc.parse(await (await call("GET", "/openapi.json")).json());
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations.push({
        method: method.toUpperCase(),
        path,
        secured: Boolean(op.security?.length),
        hasBody: Boolean(op.requestBody),
        query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
      });
    }
  }
});

describe("every route rejects bad requests with a 4xx envelope", () => {
  it("discovers every route from /openapi.json", () => {
    expect(operations.length).toBeGreaterThanOrEqual(9);
    operations = operations.filter((op) => op.secured);
    expect(operations.length).toBeGreaterThanOrEqual(8);
  });

  it("missing key → 401 missing_api_key", async () => {
    for (const op of operations)
      await expectEnvelope(await send(op.method, fill(op.path)), 401, "missing_api_key");
  });

  it("malformed key → 401 malformed_api_key", async () => {
    for (const op of operations) {
      await expectEnvelope(
        await send(op.method, fill(op.path), "not-a-key", op.hasBody ? { v: 1 } : undefined),
        401,
        "malformed_api_key",
      );
    }
  });

  it("unknown tenant → 401 invalid_api_key, the same envelope as a forged key (no tenant enumeration)", async () => {
    const forged = keys.publishable.replace(/\.[^.]+$/, ".BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    for (const op of operations) {
      const body = op.hasBody ? { v: 1 } : undefined;
      const unknown = await send(op.method, fill(op.path), UNKNOWN_TENANT_KEY, body);
      const wrong = await send(op.method, fill(op.path), forged, body);
      expect(unknown.status).toBe(401);
      // Byte for byte the same answer: nothing in it names or hints at the tenant.
      expect(await unknown.text()).toBe(await wrong.text());
    }
    await expectEnvelope(
      await send("GET", "/v1/rounds/r_AAAAAAAAAAAAAAAAAAAAAA", UNKNOWN_TENANT_KEY),
      401,
      "invalid_api_key",
    );
  });

  it("a forged key for a real tenant → 401 invalid_api_key", async () => {
    const forged = keys.publishable.replace(/\.[^.]+$/, ".BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    for (const op of operations) {
      await expectEnvelope(
        await send(op.method, fill(op.path), forged, op.hasBody ? { v: 1 } : undefined),
        401,
        "invalid_api_key",
      );
    }
  });

  it("the wrong kind of key → 403 forbidden, exactly where the route's key table says", async () => {
    const kinds = { publishable: keys.publishable, secret: keys.secret, auditor: keys.auditor };
    for (const op of operations) {
      const allowed = ALLOWED_KINDS[`${op.method} ${op.path}`];
      expect(allowed, `key table has no entry for ${op.method} ${op.path}`).toBeDefined();
      for (const [kind, key] of Object.entries(kinds)) {
        const response = await send(op.method, fill(op.path), key, op.hasBody ? "{}" : undefined);
        if (allowed?.includes(kind)) {
          expect(response.status, `${kind} on ${op.method} ${op.path}`).not.toBe(403);
          expect(response.status).toBeLessThan(500);
        } else {
          await expectEnvelope(response, 403, "forbidden");
        }
      }
    }
  });

  it("malformed JSON → 400 malformed_json, wrong types → 400 invalid_request", async () => {
    const bodyOps = operations.filter((op) => op.hasBody);
    expect(bodyOps.length).toBeGreaterThanOrEqual(4);
    for (const op of bodyOps) {
      for (const key of [keys.publishable, keys.secret]) {
        const malformed = await send(op.method, fill(op.path), key, '{"v": 1,');
        if (malformed.status === 403) continue;
        await expectEnvelope(malformed, 400, "malformed_json");
        await expectEnvelope(
          await send(op.method, fill(op.path), key, { v: "one", modelId: 7, dimension: "x" }),
          400,
          "invalid_request",
        );
        await expectEnvelope(await send(op.method, fill(op.path), key, [1, 2, 3]), 400, "invalid_request");
      }
    }
  });

  it("malformed path parameters → 400 naming the parameter", async () => {
    for (const op of operations.filter((o) => o.path.includes("{"))) {
      const path = op.path.replace(/\{(\w+)\}/g, "%00bad");
      for (const key of [keys.publishable, keys.secret, keys.auditor]) {
        const response = await send(op.method, path, key, op.hasBody ? { v: 1 } : undefined);
        if (response.status === 403) continue;
        await expectEnvelope(response, 400, "invalid_request");
      }
    }
  });

  it("fuzzed bodies and query strings never produce a 5xx", async () => {
    const bodyOps = operations.filter((op) => op.hasBody);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bodyOps),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify({ v: 1, payload: v })),
        ),
        async (op, body) => {
          const response = await send(op.method, fill(op.path), allowedKey(op), body);
          expect(response.status).toBeLessThan(500);
        },
      ),
      { numRuns: 60, seed: 20261123 },
    );
    const queryOps = operations.filter((op) => op.query.length > 0);
    expect(queryOps.length).toBeGreaterThanOrEqual(2);
    // The route's own query parameters and random ones, with random values.
    const queries = fc
      .constantFrom(...queryOps)
      .chain((op) =>
        fc.tuple(
          fc.constant(op),
          fc.array(
            fc.tuple(
              fc.oneof(fc.constantFrom(...op.query), fc.string()),
              fc.oneof(fc.string(), fc.integer().map(String)),
            ),
            { maxLength: 4 },
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(queries, async ([op, pairs]) => {
        const query = new URLSearchParams(pairs).toString();
        const response = await send(op.method, `${fill(op.path)}?${query}`, allowedKey(op));
        expect(response.status).toBeLessThan(500);
      }),
      { numRuns: 60, seed: 20261129 },
    );
  });

  it("out-of-range query parameters → 400 invalid_request naming the parameter", async () => {
    const bad: Array<[string, string]> = [
      ["limit", "0"],
      ["limit", "100000"],
      ["limit", "ten"],
      ["cursor", "not a cursor"],
      ["model", "Not_A_Model"],
    ];
    let checked = 0;
    for (const op of operations.filter((o) => o.query.length > 0)) {
      for (const [name, value] of bad) {
        if (!op.query.includes(name)) continue;
        checked++;
        const response = await send(
          op.method,
          `${fill(op.path)}?${name}=${encodeURIComponent(value)}`,
          allowedKey(op),
        );
        const text = await response.clone().text();
        await expectEnvelope(response, 400, "invalid_request");
        expect(text).toContain(name);
      }
    }
    // Versions pages (limit, cursor), ledger pages (limit, cursor, model), training rounds (limit)
    // the checkpoint (model) and the published checkpoints (limit, model).
    expect(checked).toBe(17);
  });
});
