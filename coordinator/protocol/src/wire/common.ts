import * as z from "zod/mini";

/** Wire protocol version carried by every message. Bump on any breaking change. */
export const WIRE_VERSION = 1 as const;

/** The `v` field of every message. */
export const WireVersion = z.literal(WIRE_VERSION);

/** Tenant ids are short, lowercase and URL-safe: they appear inside API keys. */
export const TenantId = z
  .string()
  .check(z.regex(/^[a-z0-9][a-z0-9-]{2,39}$/, "tenant id: 3-40 of [a-z0-9-]"));
export type TenantId = z.infer<typeof TenantId>;

/** A model is named by its tenant; e.g. `activity`, `segments`, `recommendations`. */
export const ModelId = z
  .string()
  .check(z.regex(/^[a-z][a-z0-9-]{1,62}$/, "model id: 2-63 of [a-z0-9-], starting with a letter"));
export type ModelId = z.infer<typeof ModelId>;

/** Round ids are random and opaque: `r_` + 22 base64url characters (128 bits). */
export const RoundId = z
  .string()
  .check(z.regex(/^r_[A-Za-z0-9_-]{22}$/, "round id: r_ + 22 base64url characters"));
export type RoundId = z.infer<typeof RoundId>;

/**
 * Per-round participant ids are random and unlinkable across rounds: a device carries no
 * stable identifier over the wire (DESIGN.md, privacy model).
 */
export const ParticipantId = z
  .string()
  .check(z.regex(/^p_[A-Za-z0-9_-]{22}$/, "participant id: p_ + 22 base64url characters"));
export type ParticipantId = z.infer<typeof ParticipantId>;

/** A bearer secret issued with a participant id: 32 base64url characters (192 bits). */
export const ParticipantToken = z
  .string()
  .check(z.regex(/^[A-Za-z0-9_-]{32}$/, "participant token: 32 base64url characters"));

const BASE64_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  BASE64_CHAR[c.charCodeAt(0)] = 1;

/**
 * Standard padded base64 (RFC 4648 §4), by a linear scan. The equivalent regex,
 * `^(?:[A-Za-z0-9+/]{4})*(?:…==|…=)?$`, throws "Maximum call stack size exceeded" on a model's
 * 4.8 MB of weights (100,000 items at rank 32), and costs milliseconds on a masked vector.
 */
export function isPaddedBase64(text: string): boolean {
  const n = text.length;
  if (n % 4 !== 0) return false;
  const pad = n > 0 && text.charCodeAt(n - 1) === 61 ? (text.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  const end = n - pad;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || BASE64_CHAR[c] === 0) return false;
  }
  return true;
}

/** Standard base64 (RFC 4648 §4) with padding, bounded so a body cannot balloon memory. */
export const Base64 = z
  .string()
  .check(z.maxLength(16 * 1024 * 1024), z.refine(isPaddedBase64, "standard padded base64"));

/** Milliseconds since the Unix epoch. */
export const EpochMillis = z.int().check(z.nonnegative());

/** The one error shape every route returns: `{ error: { code, message } }`. */
export const ErrorEnvelope = z.object({
  error: z.object({
    code: z.string().check(z.describe("Stable machine-readable code, e.g. `invalid_request`")),
    message: z.string().check(z.describe("Human-readable explanation naming the offending field")),
  }),
});
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;
