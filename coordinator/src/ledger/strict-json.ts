/**
 * A strict JSON reader for ledger documents: I-JSON (RFC 7493) on top of RFC 8259.
 *
 * `JSON.parse` keeps the last of two duplicate members and passes lone surrogates through, so an
 * entry could carry `"epsilon": 0.01` in front of its real value, or a string no other
 * implementation decodes the same way. RFC 8785 (JCS) is defined over I-JSON, so the ledger
 * refuses both (RFC 7493 §2.3, §2.1), and numbers that do not fit an IEEE 754 double (§2.2).
 * Syntax errors throw; I-JSON violations are collected with their path, so a verifier can name
 * the row that carries them and still read the rest.
 */

/** A path into the document: member names and array indices. */
export type JsonPath = readonly (string | number)[];

/** One I-JSON violation. */
export interface IJsonViolation {
  readonly path: JsonPath;
  readonly message: string;
}

/** The strictly parsed document and every I-JSON violation found in it. */
export interface StrictJsonResult {
  readonly value: unknown;
  readonly violations: readonly IJsonViolation[];
}

/** Thrown for text that is not JSON at all (RFC 8259 syntax). */
export class JsonSyntaxError extends SyntaxError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

const LONE_SURROGATE = /\p{Cs}/u;
/** RFC 8259 §6 number grammar. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const MAX_DEPTH = 64;

/** True when `s` holds a lone (unpaired) UTF-16 surrogate. */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** Renders a path as `$.entries[3].cumulative.epsilon`. */
export function formatJsonPath(path: JsonPath): string {
  return `$${path.map((p) => (typeof p === "number" ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join("")}`;
}

/** Parses `text` as RFC 8259 JSON and reports every I-JSON violation (duplicates, lone surrogates, numbers outside a double). */
export function parseStrictJson(text: string): StrictJsonResult {
  let i = 0;
  const violations: IJsonViolation[] = [];
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, i);
  };
  const str = (path: JsonPath): string => {
    if (text[i] !== '"') fail("expected a string");
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail("control character in a string");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("bad \\u escape");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail("bad escape");
      } else i++;
    }
    i++;
    // The grammar has been checked, so JSON.parse decodes exactly this literal.
    const value: string = JSON.parse(text.slice(start, i));
    if (hasLoneSurrogate(value))
      violations.push({ path, message: "a string holds a lone surrogate (RFC 7493 §2.1)" });
    return value;
  };
  const val = (path: JsonPath, depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, unknown> = Object.create(null);
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") {
        i++;
        return { ...out };
      }
      for (;;) {
        ws();
        const key = str(path);
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        const v = val([...path, key], depth + 1);
        if (seen.has(key))
          violations.push({ path: [...path, key], message: `duplicate member "${key}" (RFC 7493 §2.3)` });
        else {
          seen.add(key);
          out[key] = v;
        }
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          // A plain object again, so "__proto__" stays an ordinary member.
          return Object.defineProperties({}, Object.getOwnPropertyDescriptors(out));
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return out;
      }
      for (;;) {
        out.push(val([...path, out.length], depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return out;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str(path);
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail("unexpected character");
    i += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n))
      violations.push({ path, message: `number ${m[0]} does not fit an IEEE 754 double (RFC 7493 §2.2)` });
    return n;
  };
  // RFC 8259 allows a BOM to be ignored; I-JSON (§2.1) forbids it.
  if (text.charCodeAt(0) === 0xfeff)
    violations.push({ path: [], message: "byte order mark (RFC 7493 §2.1)" });
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  const value = val([], 0);
  ws();
  if (i !== text.length) fail("trailing characters");
  return { value, violations };
}
