/**
 * Ledger export for compliance teams: the full signed entries as JSON (verifiable offline), or a
 * flat CSV (RFC 4180) with one row per entry for spreadsheets.
 */

import { bytesToHex } from "@noble/hashes/utils.js";
import { isReleaseEntry, type LedgerEntry } from "./schema.ts";

/** The JSON export document. */
export interface LedgerExport {
  readonly v: 1;
  readonly exportedAt: string;
  /** Hex Ed25519 public key that should verify every entry. */
  readonly publicKey: string;
  readonly entries: readonly LedgerEntry[];
}

/** The JSON export: entries verbatim plus the key that verifies them. */
export function exportLedgerJson(
  entries: readonly LedgerEntry[],
  publicKey: Uint8Array,
  now = new Date(),
): string {
  const doc: LedgerExport = {
    v: 1,
    exportedAt: now.toISOString(),
    publicKey: bytesToHex(publicKey),
    entries,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** CSV columns, in order. */
export const CSV_COLUMNS = [
  "seq",
  "tenant",
  "model",
  "kind",
  "round",
  "timestamp",
  "mechanism",
  "trust_model",
  "noise_multiplier",
  "sigma",
  "local_stddev",
  "noise_shares",
  "noise_variance_actual",
  "clip_norm",
  "modulus_bits",
  "cohort_size",
  "survivors",
  "threshold",
  "colluders",
  "sampling_uniform",
  "sampling_rate",
  "population",
  "events",
  "epsilon",
  "delta",
  "optimal_order",
  "epsilon_cap",
  "remaining",
  "next_clip",
  "policy_source",
  "aggregate_sha256",
  "model_version",
  "model_version_sha256",
  "new_key_id",
  "key_id",
  "prev_hash",
  "hash",
  "signature",
] as const;

function cell(v: unknown): string {
  if (v === undefined || v === null) return "";
  const s =
    typeof v === "string"
      ? v
      : typeof v === "number" || typeof v === "boolean"
        ? String(v)
        : JSON.stringify(v);
  // RFC 4180: quote fields containing separators, quotes or line breaks; double the quotes.
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV row per entry, CRLF line endings (RFC 4180), header first. */
export function exportLedgerCsv(entries: readonly LedgerEntry[]): string {
  const rows = [CSV_COLUMNS.join(",")];
  for (const e of entries) {
    const r = isReleaseEntry(e) ? e : null;
    const values: unknown[] = [
      e.seq,
      e.tenant,
      e.model,
      e.kind,
      e.round,
      e.timestamp,
      r?.mechanism,
      r?.trustModel,
      r?.noise.noiseMultiplier,
      r?.noise.sigma,
      r?.noise.localStddev,
      r?.noise.noiseShares,
      r?.noise.varianceActual,
      r?.clipNorm,
      r?.modulusBits,
      r?.cohort.size,
      r?.cohort.survivors,
      r?.cohort.threshold,
      r?.cohort.colluders,
      r?.sampling.uniform,
      r?.sampling.rate,
      r?.sampling.population,
      r?.events,
      e.cumulative.epsilon,
      e.cumulative.delta,
      e.cumulative.optimalOrder,
      e.budget.epsilonCap,
      e.budget.remaining,
      e.kind === "clip_quantile" ? e.clipRelease.nextClip : undefined,
      e.kind === "policy" ? e.policy.source : undefined,
      e.kind === "round"
        ? e.release?.aggregateSha256
        : e.kind === "publication"
          ? e.publication.aggregateSha256
          : undefined,
      e.kind === "publication" ? e.publication.modelVersion : undefined,
      e.kind === "publication" ? e.publication.modelVersionSha256 : undefined,
      e.kind === "key_rotation" ? e.rotation.keyId : undefined,
      e.keyId,
      e.prevHash,
      e.hash,
      e.signature,
    ];
    rows.push(values.map(cell).join(","));
  }
  return `${rows.join("\r\n")}\r\n`;
}
