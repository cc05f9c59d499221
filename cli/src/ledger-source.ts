/**
 * Where `audit verify` and `audit export` read the ledger from: the auditor HTTP API
 * (`GET /v1/audit/ledger?cursor=&limit=`, bearer auditor key) or a JSON file (an export, or a
 * plain array of entries). Rows are returned raw, so the verifier can name a malformed one.
 */

import {
  LedgerCheckpoint,
  LedgerWitness,
  readLedgerDocument,
  readLedgerPageBody,
} from "@fedprofile/coordinator/ledger";
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
  /** A signed checkpoint of one chain's head, from the coordinator (null: the source has none). */
  checkpoint?(model: string): Promise<LedgerCheckpoint | null>;
  /** The checkpoints the coordinator published for one chain on its schedule (SPEC.md §8.2). */
  published?(model: string): Promise<LedgerCheckpoint[]>;
}

const ExportMembers = z.object({ v: z.literal(1), publicKey: z.string().optional() }).loose();
const CheckpointDoc = z.object({ v: z.literal(1), checkpoint: LedgerCheckpoint.nullable() }).strict();

async function getJson(
  fetch: typeof globalThis.fetch,
  url: string,
  headers: Record<string, string>,
): Promise<unknown> {
  const text = await getText(fetch, url, headers);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`GET ${url} did not return JSON`, { cause: err });
  }
}

/** A raw GET (the checkpoint route's schema lives with the ledger, outside the typed client). */
async function getText(
  fetch: typeof globalThis.fetch,
  url: string,
  headers: Record<string, string>,
): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { headers });
  } catch (err) {
    // fetch only says "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND, ...).
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
    throw new Error(
      `cannot reach ${new URL(url).origin}${cause}; is the coordinator running there? Pass its address with --url`,
    );
  }
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`GET ${url} failed with HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return text;
}

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
  const base = client.endpoint;
  const headers = { authorization: `Bearer ${o.auditorKey}`, accept: "application/json" };
  const doFetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  return {
    label: `${client.endpoint}/v1/audit/ledger`,
    async rows(onProgress) {
      // Read strictly (SPEC.md §3): a row that breaks I-JSON reaches the verifier, which names it.
      const { rows } = await client
        .ledger(
          { limit: o.limit ?? 200, ...(o.model ? { model: o.model } : {}) },
          { readBody: readLedgerPageBody, onPage: (fetched) => onProgress?.(fetched) },
        )
        .catch((error: unknown) => Promise.reject(explained(error)));
      return rows;
    },
    async advertisedPublicKey() {
      return (await client.publicKey().catch((error: unknown) => Promise.reject(explained(error)))).publicKey;
    },
    async checkpoint(model) {
      const url = `${base}/v1/audit/checkpoint?model=${encodeURIComponent(model)}`;
      const doc = CheckpointDoc.safeParse(await getJson(doFetch, url, headers));
      if (!doc.success) throw new Error(`GET ${url}: not a checkpoint (${doc.error.issues[0]?.message})`);
      return doc.data.checkpoint;
    },
    async published(model) {
      const url = `${base}/v1/audit/checkpoints?model=${encodeURIComponent(model)}&limit=1000`;
      const doc = LedgerWitness.safeParse(await getJson(doFetch, url, headers));
      if (!doc.success)
        throw new Error(`GET ${url}: not a witness document (${doc.error.issues[0]?.message})`);
      return doc.data.checkpoints;
    },
  };
}

/** Reads a JSON file: an `audit export --format json` document, or a plain array of entries. */
export function fileLedgerSource(path: string, readFile: (p: string) => Promise<string>): LedgerSource {
  let cache: { rows: unknown[]; key: string | null } | null = null;
  const load = async () => {
    if (cache) return cache;
    let doc: ReturnType<typeof readLedgerDocument>;
    try {
      doc = readLedgerDocument(await readFile(path));
    } catch (err) {
      throw new CliUsageError(
        `cannot read ledger file ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (doc.members === null) cache = { rows: doc.rows, key: null };
    else {
      const members = ExportMembers.safeParse(doc.members);
      if (!members.success)
        throw new CliUsageError(`${path} is neither an export document nor an array of entries`);
      cache = { rows: doc.rows, key: members.data.publicKey ?? null };
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
