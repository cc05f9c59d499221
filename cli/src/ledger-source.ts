/**
 * Where `audit verify` and `audit export` read the ledger from: the auditor HTTP API
 * (`GET /v1/audit/ledger?cursor=&limit=`, bearer auditor key) or a JSON file (an export, or a
 * plain array of entries). Rows are returned raw, so the verifier can name a malformed one.
 */

import { LedgerPage } from "@fedprofile/coordinator/ledger";
import * as z from "zod";
import { CliUsageError, type FetchLike } from "./io.ts";

/** A source of raw ledger rows. */
export interface LedgerSource {
  /** A description for messages ("https://.../v1/audit/ledger", "ledger.json"). */
  readonly label: string;
  /** Every row, in the order the source holds them. */
  rows(onProgress?: (fetched: number) => void): Promise<unknown[]>;
  /** The coordinator public key the source advertises, if any (hex). */
  advertisedPublicKey(): Promise<string | null>;
}

const PublicKeyDoc = z.object({ v: z.literal(1), publicKey: z.string() }).loose();
const ExportDoc = z
  .object({ v: z.literal(1), publicKey: z.string().optional(), entries: z.array(z.unknown()) })
  .loose();

async function getJson(fetch: FetchLike, url: string, headers: Record<string, string>): Promise<unknown> {
  let res: Awaited<ReturnType<FetchLike>>;
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
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`GET ${url} did not return JSON`, { cause: err });
  }
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
  readonly fetch: FetchLike;
}

/** Reads every page of `GET /v1/audit/ledger` following `nextCursor`. */
export function httpLedgerSource(o: HttpSourceOptions): LedgerSource {
  const base = o.baseUrl.replace(/\/+$/, "");
  const headers = { authorization: `Bearer ${o.auditorKey}`, accept: "application/json" };
  return {
    label: `${base}/v1/audit/ledger`,
    async rows(onProgress) {
      const out: unknown[] = [];
      let cursor = "";
      for (let page = 0; page < 1_000_000; page++) {
        let query = `cursor=${encodeURIComponent(cursor)}&limit=${o.limit ?? 200}`;
        if (o.model) query += `&model=${encodeURIComponent(o.model)}`;
        const doc = LedgerPage.safeParse(await getJson(o.fetch, `${base}/v1/audit/ledger?${query}`, headers));
        if (!doc.success)
          throw new Error(`the auditor API returned an unexpected page: ${doc.error.issues[0]?.message}`);
        out.push(...doc.data.entries);
        onProgress?.(out.length);
        if (!doc.data.nextCursor) return out;
        if (doc.data.nextCursor === cursor) throw new Error("the auditor API returned the same cursor twice");
        cursor = doc.data.nextCursor;
      }
      throw new Error("too many pages");
    },
    async advertisedPublicKey() {
      const doc = PublicKeyDoc.safeParse(await getJson(o.fetch, `${base}/v1/audit/public-key`, headers));
      return doc.success ? doc.data.publicKey : null;
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
