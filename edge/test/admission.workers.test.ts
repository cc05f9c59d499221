/**
 * Admission by Privacy Pass token in real workerd (issue 13, finding 1): the issuer, the device's
 * blinding and the root Durable Object's verification all run on workerd's WebCrypto (RSA-PSS);
 * the issuer key is registered in D1 and the spent set is the round object's storage.
 */
import { createTokenIssuer, generateIssuerKeys, type TokenIssuer } from "@fedprofile/coordinator/admission";
import { createTokenRequest } from "@fedprofile/protocol/admission";
import { bytesToBase64 } from "@fedprofile/protocol/bytes";
import { describe, expect, it } from "vitest";
import { call, seedTenant } from "./helpers";

async function tokenFor(issuer: TokenIssuer, customerId: string, roundId: string): Promise<string> {
  const pending = await createTokenRequest(issuer.name, roundId, issuer.publicKey);
  return bytesToBase64(await pending.finalize(await issuer.issue({ customerId }, pending.request)));
}

async function errorCode(response: Response): Promise<string> {
  const body: unknown = await response.json();
  const error = typeof body === "object" && body !== null && "error" in body ? body.error : null;
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
}

describe("admission tokens through the Worker, the round Durable Object and D1 (workerd)", () => {
  it("a Sybil flood is refused after its tokens run out, honest devices join, a token is spent once", async () => {
    const keys = await seedTenant("sybil-edge");
    const issuer = await createTokenIssuer({
      name: "sybil-edge.example",
      keys: await generateIssuerKeys(),
      limits: { perCustomer: 2 },
    });
    expect((await call("PUT", "/v1/admission/issuer", keys.secret, issuer.registration())).status).toBe(200);
    const open = async () => {
      const response = await call("POST", "/v1/rounds", keys.secret, {
        v: 1,
        modelId: "segments",
        dimension: 2,
        minContributions: 2,
        maxContributions: 6,
        deadlineSeconds: 60,
        aggregation: "secagg",
        secagg: { minShardSize: 6, encoding: { kind: "fixed-point", clip: 1, valueBits: 16 } },
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { roundId: string }).roundId;
    };
    const roundId = await open();
    const checkin = await call("POST", "/v1/checkin", keys.publishable, {
      v: 1,
      modelId: "segments",
      sdkVersion: "0.1.0",
    });
    expect(await checkin.json()).toMatchObject({
      round: { roundId, secagg: { admission: { kind: "privacypass", issuerName: "sybil-edge.example" } } },
    });
    const join = (token?: string, round = roundId) =>
      call("POST", `/v1/rounds/${round}/join`, keys.publishable, { v: 1, ...(token ? { token } : {}) });

    // The flooder: one account. Two tokens, then the issuer refuses; bare joins are refused.
    const places: string[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        const token = await tokenFor(issuer, "mallory", roundId);
        expect((await join(token)).status).toBe(200);
        places.push(token);
      } catch (error) {
        expect(error).toMatchObject({ code: "token_quota_exhausted" });
      }
      const bare = await join();
      expect(bare.status).toBe(401);
      expect(await errorCode(bare)).toBe("admission_token_required");
    }
    expect(places).toHaveLength(2);
    // Double-spend: the same token again is a 409, in the same Durable Object's storage.
    const again = await join(places[0]);
    expect(again.status).toBe(409);
    expect(await errorCode(again)).toBe("admission_token_spent");
    // A token of this round at another round: 403.
    const other = await open();
    const crossed = await join(await tokenFor(issuer, "alice", roundId), other);
    expect(crossed.status).toBe(403);
    expect(await errorCode(crossed)).toBe("admission_token_wrong_round");
    // Honest customers fill the rest of the round.
    for (const customer of ["bob", "carol", "dave", "erin"]) {
      expect((await join(await tokenFor(issuer, customer, roundId))).status).toBe(200);
    }
    const full = await join(await tokenFor(issuer, "frank", roundId));
    expect(await errorCode(full)).toBe("round_full");
  });
});
