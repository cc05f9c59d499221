/**
 * Wire schemas of admission: a storefront registers the public key of the Privacy Pass issuer
 * that admits its devices (`PUT /v1/admission/issuer`, secret key), and the coordinator answers
 * with what it will check tokens against. The issuer's secret key never leaves the storefront.
 */
import * as z from "zod/mini";
import { Base64, WireVersion } from "./common";

/** An issuer name as it appears in a token challenge (RFC 9577 §2.1: an ASCII host name). */
export const IssuerName = z
  .string()
  .check(z.minLength(1), z.maxLength(255), z.regex(/^[a-z0-9.-]+(?::[0-9]{1,5})?$/, "a host name"));

/** Registers (or replaces) the tenant's issuer: its name and RSASSA-PSS SPKI public key. */
export const AdmissionIssuerRequest = z.strictObject({
  v: WireVersion,
  issuerName: IssuerName,
  /** Standard base64 of the issuer's public key (RFC 9578 §6.5 encoding), about 420 bytes. */
  publicKey: Base64.check(z.maxLength(2048)),
});
export type AdmissionIssuerRequest = z.infer<typeof AdmissionIssuerRequest>;

/** The tenant's registered issuer: rounds opened from now on admit by its tokens. */
export const AdmissionIssuerStatus = z.strictObject({
  v: WireVersion,
  issuerName: IssuerName,
  publicKey: Base64,
  /** token_key_id (RFC 9578 §6.5), standard base64. */
  keyId: Base64,
  updatedAt: z.int().check(z.nonnegative()),
});
export type AdmissionIssuerStatus = z.infer<typeof AdmissionIssuerStatus>;
