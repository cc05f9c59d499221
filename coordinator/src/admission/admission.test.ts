/**
 * Issue 13, finding 1 (Sybils): one client took every slot of a round with the publishable key
 * alone. With admission tokens, a flood of one round is refused once the flooder's tokens run
 * out, honest devices still join, a token is redeemed once, and a token of one round is refused
 * at another. In process, over the real HTTP app.
 */
import { createTokenRequest } from "@fedprofile/protocol/admission";
import { base64ToBytes, bytesToBase64 } from "@fedprofile/protocol/bytes";
import type { OpenRoundInput } from "@fedprofile/protocol/wire";
import { beforeAll, describe, expect, it } from "vitest";
import { generateTenantKeys } from "../api-keys";
import { createCoordinatorApp } from "../app/create-app";
import { createMemoryCoordinator } from "../memory/index";
import { createTokenIssuer, generateIssuerKeys, type TokenIssuer, type TokenRequester } from "./issuer";

const TENANT = "sybil-shop";
const ISSUER = "shop.example";

let keys: CryptoKeyPair;
let otherKeys: CryptoKeyPair;
beforeAll(async () => {
  [keys, otherKeys] = await Promise.all([generateIssuerKeys(), generateIssuerKeys()]);
}, 60_000);

const round = (maxContributions: number): OpenRoundInput => ({
  v: 1,
  modelId: "segments",
  dimension: 2,
  minContributions: 2,
  maxContributions,
  deadlineSeconds: 60,
  aggregation: "secagg",
  secagg: { minShardSize: maxContributions, encoding: { kind: "fixed-point", clip: 1, valueBits: 16 } },
});

async function setup(limits = { perCustomer: 3, perClient: 1, anonymousTotal: 5 }) {
  const memory = createMemoryCoordinator();
  const apiKeys = generateTenantKeys(TENANT);
  memory.tenants.addTenant({ id: TENANT, name: "Sybil shop", createdAt: 0 }, apiKeys);
  const app = createCoordinatorApp({ ...memory });
  const issuer = await createTokenIssuer({ name: ISSUER, keys, limits });
  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = await response.json();
    return { status: response.status, json, code: errorCode(json) };
  };
  const registered = await call(apiKeys.secret.key, "PUT", "/v1/admission/issuer", issuer.registration());
  expect(registered.status).toBe(200);
  const open = async (max: number) => {
    const opened = await call(apiKeys.secret.key, "POST", "/v1/rounds", round(max));
    expect(opened.status).toBe(201);
    return (opened.json as { roundId: string }).roundId;
  };
  const join = (roundId: string, token?: string) =>
    call(apiKeys.publishable.key, "POST", `/v1/rounds/${roundId}/join`, {
      v: 1,
      ...(token === undefined ? {} : { token }),
    });
  return { memory, issuer, call, open, join, apiKeys };
}

function errorCode(json: unknown): string | undefined {
  if (typeof json !== "object" || json === null || !("error" in json)) return undefined;
  const error = json.error;
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/** What a device does: blind a request for `roundId`, have it signed, unblind the token. */
async function tokenFor(issuer: TokenIssuer, who: TokenRequester, roundId: string): Promise<string> {
  const pending = await createTokenRequest(issuer.name, roundId, issuer.publicKey);
  return bytesToBase64(await pending.finalize(await issuer.issue(who, pending.request)));
}

describe("admission by Privacy Pass token (issue 13, finding 1)", () => {
  it("a Sybil flood of one round is refused after the tokens run out; honest devices still join", async () => {
    const { issuer, open, join } = await setup();
    const roundId = await open(10);
    // One attacker: one customer account and one network address, trying for every slot.
    let attackerPlaces = 0;
    let refusedByIssuer = 0;
    for (let i = 0; i < 10; i++) {
      for (const who of [{ customerId: "mallory" }, { anonymous: "203.0.113.7" }]) {
        let token: string;
        try {
          token = await tokenFor(issuer, who, roundId);
        } catch (error) {
          expect(error).toMatchObject({ code: "token_quota_exhausted", status: 429 });
          refusedByIssuer++;
          continue;
        }
        expect((await join(roundId, token)).status).toBe(200);
        attackerPlaces++;
      }
      // Without a token, the publishable key alone no longer buys a place.
      expect((await join(roundId)).code).toBe("admission_token_required");
    }
    expect(attackerPlaces).toBe(3 + 1);
    expect(refusedByIssuer).toBe(20 - 4);
    // Six honest customers, one token each, all get a place.
    for (let i = 0; i < 6; i++) {
      const joined = await join(roundId, await tokenFor(issuer, { customerId: `customer-${i}` }, roundId));
      expect(joined.status).toBe(200);
    }
    // The round is full with the attacker holding 4 of 10 places, not all of them.
    const late = await join(roundId, await tokenFor(issuer, { customerId: "late" }, roundId));
    expect(late.code).toBe("round_full");
  }, 60_000);

  it("a double-spend is refused (409) and the first join stands", async () => {
    const { issuer, open, join, memory } = await setup();
    const roundId = await open(5);
    const token = await tokenFor(issuer, { customerId: "alice" }, roundId);
    expect((await join(roundId, token)).status).toBe(200);
    const again = await join(roundId, token);
    expect(again.status).toBe(409);
    expect(again.code).toBe("admission_token_spent");
    // Also after the round object restarts: the spent set is in its storage.
    memory.restartAll();
    expect((await join(roundId, token)).code).toBe("admission_token_spent");
    const status = await memory.rounds.status(TENANT, roundId);
    expect(status.secagg?.admission).toMatchObject({ kind: "privacypass", issuerName: ISSUER });
  }, 60_000);

  it("a token of another round, of another issuer key, forged or malformed is refused", async () => {
    const { issuer, open, join } = await setup();
    const [a, b] = [await open(5), await open(5)];
    const forA = await tokenFor(issuer, { customerId: "alice" }, a);
    const wrongRound = await join(b, forA);
    expect(wrongRound.status).toBe(403);
    expect(wrongRound.code).toBe("admission_token_wrong_round");
    // The refused token was not spent: it still admits at its own round.
    expect((await join(a, forA)).status).toBe(200);

    const other = await createTokenIssuer({ name: ISSUER, keys: otherKeys });
    const otherKey = await join(b, await tokenFor(other, { customerId: "alice" }, b));
    expect(otherKey.code).toBe("admission_token_wrong_issuer");

    // A valid token's fields with the authenticator flipped: the signature no longer verifies.
    const good = base64ToBytes(await tokenFor(issuer, { customerId: "bob" }, b));
    good[good.length - 1] = (good[good.length - 1] ?? 0) ^ 1;
    const forged = await join(b, bytesToBase64(good));
    expect(forged.status).toBe(403);
    expect(forged.code).toBe("admission_token_invalid");

    const malformed = await join(b, bytesToBase64(new Uint8Array(10)));
    expect(malformed.status).toBe(400);
    expect(malformed.code).toBe("admission_token_malformed");
    const notBase64 = await join(b, "not base64!");
    expect(notBase64.status).toBe(400);
    expect(JSON.stringify(notBase64.json)).toContain("token");
  }, 60_000);

  it("an issuer registration with a key that is not RSA-PSS 2048 is a 400 naming publicKey", async () => {
    const { call, apiKeys } = await setup();
    const bad = await call(apiKeys.secret.key, "PUT", "/v1/admission/issuer", {
      v: 1,
      issuerName: ISSUER,
      publicKey: bytesToBase64(new Uint8Array(64).fill(7)),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain("publicKey");
    const devices = await call(apiKeys.publishable.key, "PUT", "/v1/admission/issuer", {
      v: 1,
      issuerName: ISSUER,
      publicKey: "AAAA",
    });
    expect(devices.status).toBe(403);
  }, 60_000);
});
