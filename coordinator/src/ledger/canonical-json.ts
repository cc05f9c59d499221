/**
 * Canonical JSON for hashing and signing ledger entries, following the JSON Canonicalization
 * Scheme (RFC 8785): object keys sorted by UTF-16 code units, no insignificant whitespace,
 * strings escaped as `JSON.stringify` does, and numbers in ECMAScript's shortest round-trip form
 * (RFC 8785 Section 3.2.2.3 adopts exactly `Number.prototype.toString`). Two parties that agree on
 * the value agree on the bytes, whatever order their JSON library kept the keys in.
 */

import { hasLoneSurrogate } from "./strict-json.ts";

function str(s: string, path: string): string {
  // RFC 8785 §3.2.2.2 serialises strings as UTF-8, which has no encoding for a lone surrogate.
  if (hasLoneSurrogate(s)) throw new TypeError(`canonical JSON cannot encode a lone surrogate at ${path}`);
  return JSON.stringify(s);
}

function canon(value: unknown, path: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot encode ${value} at ${path}`);
      // JSON.stringify gives the shortest round-trip form, and "-0" becomes "0" as RFC 8785 asks.
      return JSON.stringify(value);
    case "string":
      return str(value, path);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v, i) => canon(v, `${path}[${i}]`)).join(",")}]`;
      const keys = Object.keys(value).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const v: unknown = Reflect.get(value, k);
        if (v === undefined) continue;
        parts.push(`${str(k, path)}:${canon(v, `${path}.${k}`)}`);
      }
      return `{${parts.join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value} at ${path}`);
  }
}

/** The canonical JSON text of a JSON-compatible value (RFC 8785). Throws on non-finite numbers and lone surrogates. */
export function canonicalJson(value: unknown): string {
  return canon(value, "$");
}
