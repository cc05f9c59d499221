/**
 * One error base class with a stable `code` and an HTTP `status`. The app's error handler
 * turns any `FedprofileError` into the JSON envelope `{error:{code,message}}`; anything else
 * is logged and becomes a generic 500.
 */
export class FedprofileError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** The request is malformed or names something invalid (400). */
export class InvalidRequestError extends FedprofileError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "invalid_request", message, 400, options);
  }
}

/** Missing, malformed or unknown API key or tenant (401). */
export class UnauthorizedError extends FedprofileError {
  constructor(code: "missing_api_key" | "malformed_api_key" | "invalid_api_key", message: string) {
    super(code, message, 401);
  }
}

/** A valid key of the wrong kind for this route (403). */
export class ForbiddenError extends FedprofileError {
  constructor(message: string) {
    super("forbidden", message, 403);
  }
}

/** The named resource does not exist for this tenant (404). */
export class NotFoundError extends FedprofileError {
  constructor(message: string) {
    super("not_found", message, 404);
  }
}

/** The request is valid but conflicts with the resource's state, e.g. a closed round (409). */
export class ConflictError extends FedprofileError {
  constructor(code: string, message: string) {
    super(code, message, 409);
  }
}
