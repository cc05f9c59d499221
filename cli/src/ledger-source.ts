/**
 * Where `audit verify` and `audit export` read the ledger from: the auditor HTTP API
 * (`GET /v1/audit/ledger?cursor=&limit=`, bearer auditor key) or a JSON file (an export, or a
 * plain array of entries). Rows are returned raw, so the verifier can name a malformed one.
 */

import { CoordinatorError, createAuditorClient } from "@fedprofile/protocol/client";
import * as z from "zod";
import { CliUsageError } from "./io.ts";

/** A source of raw ledger rows. */
export interface LedgerSource {
  /** A description for messages ("https://.../v1/audit/ledger", "ledger.json"). */
  readonly label: string;
  /** Every row, in the order the source holds them. */
  rows(onProgress?: (fetched: number) => void): Promise<unknown[]>;
  /** The coordinator public key the source advertises, if any (hex). */
  advertisedPublicKey(): Promise<string | null>;
}

const ExportDoc = z
  .object({ v: z.literal(1), publicKey: z.string().optional(), entries: z.array(z.unknown()) })
  .loose();

/** Options of {@link httpLedgerSource}. */
export interface HttpSourceOptions {
  /** Base URL of the coordinator, e.g. http://127.0.0.1:8787. */
  readonly baseUrl: string;
  /** The auditor key (read-only). */
  readonly auditorKey: string;
  /** Restrict to one model (sent as `model=`). */
  readonly model?: string;
  /** Page size (default 200). */
  readonly limit?: number;
  readonly fetch?: typeof fetch;
}

/** A client failure as the CLI says it: an unreachable coordinator suggests `--url`. */
function explained(error: unknown): unknown {
  if (!(error instanceof CoordinatorError)) return error;
  if (error.code === "unreachable")
    return new Error(`${error.message}; is the coordinator running there? Pass its address with --url`);
  return new Error(`the auditor API refused: ${error.message} (HTTP ${error.status}, ${error.code})`, {
    cause: error,
  });
}

/** Reads every page of `GET /v1/audit/ledger` through the typed auditor client. */
export function httpLedgerSource(o: HttpSourceOptions): LedgerSource {
  let client: ReturnType<typeof createAuditorClient>;
  try {
    client = createAuditorClient({
      endpoint: o.baseUrl,
      apiKey: o.auditorKey,
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
  } catch (error) {
    throw new CliUsageError(error instanceof Error ? error.message : String(error));
  }
  return {
    label: `${client.endpoint}/v1/audit/ledger`,
    async rows(onProgress) {
      const request = { limit: o.limit ?? 200, ...(o.model ? { model: o.model } : {}) };
      const { rows } = await client
        .ledger(request, { onPage: (n) => onProgress?.(n) })
        .catch((error: unknown) => Promise.reject(explained(error)));
      return rows;
    },
    async advertisedPublicKey() {
      return (await client.publicKey().catch((error: unknown) => Promise.reject(explained(error)))).publicKey;
    },
  };
}

/** Reads a JSON file: an `audit export --format json` document, or a plain array of entries. */
export function fileLedgerSource(path: string, readFile: (p: string) => Promise<string>): LedgerSource {
  let cache: { rows: unknown[]; key: string | null } | null = null;
  const load = async () => {
    if (cache) return cache;
    let data: unknown;
    try {
      data = JSON.parse(await readFile(path));
    } catch (err) {
      throw new CliUsageError(
        `cannot read ledger file ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (Array.isArray(data)) cache = { rows: data, key: null };
    else {
      const doc = ExportDoc.safeParse(data);
      if (!doc.success)
        throw new CliUsageError(`${path} is neither an export document nor an array of entries`);
      cache = { rows: doc.data.entries, key: doc.data.publicKey ?? null };
    }
    return cache;
  };
  return {
    label: path,
    async rows(onProgress) {
      const c = await load();
      onProgress?.(c.rows.length);
      return c.rows;
    },
    async advertisedPublicKey() {
      return (await load()).key;
    },
  };
}
