import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { FedprofileError } from "../errors";

/** Formats zod issues as `field.path: message; …` so a client can see what to fix. */
export function describeZodError(error: ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
): Response {
  return c.json({ error: { code, message } }, status);
}

const HTTP_CODES: Record<number, string> = {
  413: "body_too_large",
  415: "unsupported_media_type",
};

/**
 * Known errors become the JSON envelope with their status; Hono's own 4xx (malformed JSON,
 * body limit) keep theirs; anything else is logged and becomes a generic 500.
 */
export function handleError(error: Error, c: Context): Response {
  if (error instanceof FedprofileError) {
    return errorResponse(c, error.status as ContentfulStatusCode, error.code, error.message);
  }
  if (error instanceof HTTPException && error.status < 500) {
    if (/malformed json/i.test(error.message)) {
      return errorResponse(c, 400, "malformed_json", "request body is not valid JSON");
    }
    const code = HTTP_CODES[error.status] ?? "bad_request";
    return errorResponse(c, error.status as ContentfulStatusCode, code, error.message || code);
  }
  console.error("unhandled error", error);
  return errorResponse(c, 500, "internal", "internal error");
}
