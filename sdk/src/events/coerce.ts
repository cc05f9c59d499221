/**
 * Lenient, typed coercion of the property values storefronts really send. A value that cannot
 * be read is dropped with a warning naming the field, what was expected and what came; it
 * never costs the rest of the event.
 *
 * Rules:
 * - `null` and `""` are absent (server-rendered templates print them for an empty field).
 * - Amounts and quantities are finite numbers ≥ 0, or strings that parse cleanly as one: an
 *   optional currency symbol or ISO code before or after (`$19.99`, `US$5`, `19,99 €`,
 *   `EUR 12`), and thousands separators under the stated rule. With the default decimal point
 *   `.`, the group separator is `,` (`1,234.50`); with the decimal comma `,` it is `.` or a
 *   (no-break) space (`1.234,50`). Groups must have three digits, so `1,5` under the `.` rule
 *   is rejected rather than guessed.
 * - Ids are non-empty strings of at most 1,024 characters, or finite numbers (made strings).
 * - Labels (`category`) are strings of at most 1,024 characters; an array (some platforms
 *   send the category path) gives its first usable element, the top-level category.
 * - Currency codes are three letters (ISO 4217), upper-cased (`usd` is the spec's own example).
 */

/** Longest id or label kept (longer ones are dropped, with a warning). */
export const MAX_TEXT = 1024;

/** The decimal separator of numeric strings; the thousands separator follows from it. */
export type DecimalSeparator = "." | ",";

/** One problem with one field. */
export interface FieldProblem {
  /** Property path, e.g. `products[2].price`. */
  field: string;
  /** What the field must be. */
  expected: string;
  /** A short rendering of what came. */
  received: string;
}

/** Where readers report fields they had to drop. */
export interface Coercer {
  readonly decimal: DecimalSeparator;
  problem(field: string, expected: string, value: unknown): void;
}

/** A short, safe rendering of a value for a message (strings cut at 40 characters). */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const cut = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `${JSON.stringify(cut)} (${value.length} characters)`;
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object" && value !== null) return "an object";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value;
}

const LEADING = /^[A-Za-z]{0,3}\p{Sc}\s*|^[A-Za-z]{3}\s+/u;
const TRAILING = /\s*\p{Sc}$|\s+[A-Za-z]{2,3}$/u;
const POINT = /^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$/;
const COMMA = /^[+-]?(?:\d{1,3}(?:[. \u00a0\u202f]\d{3})+|\d+)(?:,\d+)?$/;

/** Parses a numeric string under the decimal rule, or returns `undefined`. */
export function parseNumeric(text: string, decimal: DecimalSeparator): number | undefined {
  const bare = text.trim().replace(LEADING, "").replace(TRAILING, "");
  if (decimal === ".") {
    if (!POINT.test(bare)) return undefined;
    return Number(bare.replace(/,/g, ""));
  }
  if (!COMMA.test(bare)) return undefined;
  return Number(bare.replace(/[. \u00a0\u202f]/g, "").replace(",", "."));
}

const EXAMPLE = { ".": '"1,234.50" or "$19.99"', ",": '"1.234,50" or "19,99 €"' } as const;

/** A non-negative amount or quantity, or `undefined` (absent or dropped). */
export function readAmount(c: Coercer, value: unknown, field: string): number | undefined {
  if (empty(value)) return undefined;
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string"
        ? parseNumeric(value, c.decimal)
        : undefined;
  if (n !== undefined && Number.isFinite(n) && n >= 0) return n;
  c.problem(field, `a number ≥ 0 or a numeric string such as ${EXAMPLE[c.decimal]}`, value);
  return undefined;
}

/** True for what templates print for an empty field: `null`, `undefined`, `""`. */
const empty = (value: unknown) => value === undefined || value === null || value === "";

/**
 * An id (`label` false: a non-empty string of at most 1,024 characters, or a finite number made
 * a string) or a label such as a category (`label` true: a string, or the first usable string
 * of an array).
 */
function readText(c: Coercer, value: unknown, field: string, label: boolean): string | undefined {
  if (empty(value) || (Array.isArray(value) && value.length === 0)) return undefined;
  if (!label && typeof value === "number" && Number.isFinite(value)) return String(value);
  const first =
    label && Array.isArray(value) ? value.find((v) => typeof v === "string" && v.trim() !== "") : value;
  if (typeof first === "string") {
    const text = first.trim();
    if (text.length > 0 && text.length <= MAX_TEXT) return text;
  }
  c.problem(
    field,
    `a non-empty string of at most ${MAX_TEXT} characters${label ? " (or an array of them)" : ", or a number"}`,
    value,
  );
  return undefined;
}

/** An id: a non-empty string (≤ 1,024 characters) or a finite number, as a string. */
export const readId = (c: Coercer, value: unknown, field: string) => readText(c, value, field, false);

/** A label such as a category: a string, or the first usable string of an array. */
export const readLabel = (c: Coercer, value: unknown, field: string) => readText(c, value, field, true);

/** An ISO 4217 code, upper-cased. */
export function readCurrency(c: Coercer, value: unknown, field: string): string | undefined {
  if (empty(value)) return undefined;
  if (typeof value === "string" && /^\s*[A-Za-z]{3}\s*$/.test(value)) return value.trim().toUpperCase();
  c.problem(field, "a three-letter ISO 4217 currency code", value);
  return undefined;
}

/** True for a plain property bag (an object that is not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The first of `keys` present (not `undefined`/`null`) in `bag`, with its key. */
export function pick(bag: Record<string, unknown>, keys: readonly string[]): [string, unknown] {
  for (const key of keys) {
    const value = bag[key];
    if (value !== undefined && value !== null) return [key, value];
  }
  return [keys[0] ?? "", undefined];
}
