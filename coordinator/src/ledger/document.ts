/**
 * Reading ledger documents as text, strictly (SPEC.md §3): a page of `GET /v1/audit/ledger`, an
 * `audit export --format json` document, or a plain array of entries. A row that breaks I-JSON
 * becomes a {@link MalformedJsonRow} in its place, so the verifier names that row; an I-JSON
 * violation outside the rows makes the whole document unreadable.
 */

import { formatJsonPath, type IJsonViolation, parseStrictJson } from "./strict-json.ts";
import { MalformedJsonRow } from "./verify.ts";

/** A strictly read ledger document. */
export interface LedgerDocument {
  /** The rows, raw, in document order (malformed ones wrapped). */
  readonly rows: unknown[];
  /** The document's other members (`publicKey`, `nextCursor`, ...); null for a plain array. */
  readonly members: Readonly<Record<string, unknown>> | null;
}

/** Thrown when the text is not JSON, or breaks I-JSON outside any row. */
export class LedgerDocumentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LedgerDocumentError";
  }
}

/** Reads a ledger document's text strictly. */
export function readLedgerDocument(text: string): LedgerDocument {
  let parsed: ReturnType<typeof parseStrictJson>;
  try {
    parsed = parseStrictJson(text);
  } catch (cause) {
    throw new LedgerDocumentError(`not JSON: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  const { value, violations } = parsed;
  const isArray = Array.isArray(value);
  const doc = !isArray && value !== null && typeof value === "object" ? value : null;
  const rowsValue: unknown = isArray ? value : doc ? Reflect.get(doc, "entries") : undefined;
  if (!Array.isArray(rowsValue))
    throw new LedgerDocumentError("neither an array of entries nor a document with `entries`");
  const prefix = isArray ? 0 : 1;
  const byRow = new Map<number, IJsonViolation>();
  for (const v of violations) {
    const index = v.path[prefix];
    if ((isArray || v.path[0] === "entries") && typeof index === "number") {
      if (!byRow.has(index)) byRow.set(index, v);
    } else throw new LedgerDocumentError(`not I-JSON at ${formatJsonPath(v.path)}: ${v.message}`);
  }
  const rows = rowsValue.map((row, i) => {
    const v = byRow.get(i);
    return v ? new MalformedJsonRow(row, `${formatJsonPath(v.path.slice(prefix + 1))}: ${v.message}`) : row;
  });
  if (!doc) return { rows, members: null };
  const members: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (k !== "entries") members[k] = v;
  return { rows, members };
}

/**
 * Reads one `GET /v1/audit/ledger` page's text strictly, for the typed auditor client's
 * `readBody` option: the page's members with its rows as {@link readLedgerDocument} gives them.
 */
export function readLedgerPageBody(text: string): unknown {
  const { rows, members } = readLedgerDocument(text);
  if (members === null) throw new LedgerDocumentError("a ledger page is an object with `entries`");
  return { ...members, entries: rows };
}
