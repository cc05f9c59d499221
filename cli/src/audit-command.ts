/**
 * `fedprofile audit verify` and `fedprofile audit export`: the compliance team's tools.
 *
 * `verify` splits the rows into (tenant, model) chains, keeping the order the source returned
 * (sorting would hide a reordering), and runs {@link verifyLedger} on each: chain links,
 * hashes, signatures, and every cumulative epsilon recomputed from the recorded events.
 */

import {
  exportLedgerCsv,
  exportLedgerJson,
  keyIdOf,
  LedgerEntry,
  type LedgerVerification,
  publicKeyFromHex,
  splitChains,
  verifyLedgerFast,
} from "@fedprofile/coordinator/ledger";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type CliIo, CliUsageError } from "./io.ts";
import { fileLedgerSource, httpLedgerSource, type LedgerSource } from "./ledger-source.ts";
import { type ParsedArgs, parseArgs, stringFlag, urlFlag, wantsHelp } from "./options.ts";

/** Help text of the command. */
export const AUDIT_HELP = `Usage:
  fedprofile audit verify (--url URL [--auditor-key KEY] | --file PATH) [--public-key HEX] [--model M]
                         [--expected-head SEQ:HASH] [--json]
  fedprofile audit export (--url URL [--auditor-key KEY] | --file PATH) --format json|csv [--model M] [--out PATH]

verify checks every (tenant, model) chain: hash links, SHA-256 hashes over canonical JSON,
Ed25519 signatures, sampling claims, and recomputes every cumulative epsilon from the recorded
privacy events. It names the first entry that does not hold and exits 1.
The auditor key may also come from FEDPROFILE_AUDITOR_KEY. Pin the coordinator's public key
with --public-key; otherwise the key the source advertises is used, with a warning.
A hash chain cannot show that entries were cut off its end: keep the head a previous verify
printed and pass it back with --expected-head (with --model) to detect that.
`;

const VALUE_FLAGS = ["url", "auditor-key", "file", "public-key", "model", "format", "out", "expected-head"];

function expectedHeadOf(args: ParsedArgs): { seq: number; hash: string } | undefined {
  const text = stringFlag(args, "expected-head");
  if (text === undefined) return undefined;
  const match = /^([0-9]{1,15}):([0-9a-f]{64})$/.exec(text);
  if (!match) throw new CliUsageError("--expected-head must be SEQ:HASH (a seq and 64 hex digits)");
  if (stringFlag(args, "model") === undefined)
    throw new CliUsageError("--expected-head needs --model (one chain)");
  return { seq: Number(match[1]), hash: match[2] as string };
}

function sourceFrom(args: ParsedArgs, io: CliIo, filterModel = true): LedgerSource {
  const url = urlFlag(args);
  const file = stringFlag(args, "file");
  if ((url === undefined) === (file === undefined))
    throw new CliUsageError("give exactly one of --url and --file");
  if (file !== undefined) return fileLedgerSource(file, (p) => io.readFile(p));
  const key = stringFlag(args, "auditor-key") ?? io.env["FEDPROFILE_AUDITOR_KEY"];
  if (!key) throw new CliUsageError("--auditor-key (or FEDPROFILE_AUDITOR_KEY) is required with --url");
  const model = filterModel ? stringFlag(args, "model") : undefined;
  return httpLedgerSource({ baseUrl: url!, auditorKey: key, fetch: io.fetch, ...(model ? { model } : {}) });
}

/** One chain's verification, as printed and as `--json`. */
export interface ChainReport {
  readonly chain: string;
  readonly positions: readonly number[];
  readonly result: LedgerVerification;
}

function describe(rep: ChainReport, rows: readonly unknown[], keyId: string): string {
  const r = rep.result;
  if (!r.ok) {
    const f = r.failure;
    const at = rep.positions[f.index] ?? f.index;
    return `${rep.chain}: FAILED at row ${at} of the source (chain entry #${f.index}${f.seq === null ? "" : `, seq ${f.seq}`})\n  ${f.reason}: ${f.message}\n`;
  }
  const entries = rep.positions
    .map((p) => LedgerEntry.safeParse(rows[p]))
    .flatMap((p) => (p.success ? [p.data] : []));
  const rounds = entries.filter((e) => e.kind === "round").length;
  const last = entries[entries.length - 1];
  const trust = [...new Set(entries.map((e) => e.trustModel))].join(", ");
  const lines = [
    `${rep.chain}: OK`,
    `  entries       ${r.entries} (${rounds} rounds, ${r.entries - rounds} clipping-quantile releases)`,
    `  chain         intact from genesis, head ${r.headHash ? `${r.entries - 1}:${r.headHash}` : "(empty)"}`,
    `  signatures    ${r.entries}/${r.entries} valid (Ed25519, key ${keyId})`,
    `  trust models  ${trust || "-"}`,
    `  epsilon       ${r.epsilon.toFixed(4)} at delta ${r.delta ?? "-"}, recomputed from the events of every entry`,
  ];
  if (last)
    lines.push(
      `  budget        cap ${last.budget.epsilonCap}, remaining ${last.budget.remaining.toFixed(4)}`,
    );
  for (const w of r.warnings) lines.push(`  warning       ${w}`);
  return `${lines.join("\n")}\n`;
}

async function resolveKey(args: ParsedArgs, source: LedgerSource, io: CliIo): Promise<Uint8Array> {
  const pinned = stringFlag(args, "public-key");
  if (pinned !== undefined) return publicKeyFromHex(pinned);
  const advertised = await source.advertisedPublicKey();
  if (!advertised) throw new CliUsageError("no --public-key given and the source advertises none");
  io.stderr(
    `warning: using the public key advertised by ${source.label}; pin it with --public-key ${advertised.toLowerCase()}\n`,
  );
  return publicKeyFromHex(advertised);
}

/** `audit verify`: exit 0 when every chain verifies, 1 otherwise. */
export async function auditVerify(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, VALUE_FLAGS, ["json", "help"]);
  if (wantsHelp(args)) {
    io.stdout(AUDIT_HELP);
    return 0;
  }
  return auditVerifyParsed(args, io);
}

/**
 * `audit verify` on already-parsed options: everything but `util.parseArgs`, so it also runs in
 * workerd (the workers tests verify a Worker's ledger through it).
 */
export async function auditVerifyParsed(args: ParsedArgs, io: CliIo): Promise<number> {
  const expectedHead = expectedHeadOf(args);
  const source = sourceFrom(args, io);
  const publicKey = await resolveKey(args, source, io);
  const rows = await source.rows((n) => io.stderr(`\rfetched ${n} entries`));
  io.stderr("\n");
  const model = stringFlag(args, "model");
  const reports: ChainReport[] = [];
  for (const [chain, c] of splitChains(rows)) {
    if (model !== undefined && !chain.endsWith(`/${model}`)) continue;
    const opts = expectedHead ? { expectedHead } : {};
    reports.push({ chain, positions: c.positions, result: await verifyLedgerFast(c.rows, publicKey, opts) });
  }
  // A chain cut down to no rows at all yields no chain above; the expected head still names the cut.
  if (expectedHead && reports.length === 0) {
    const result = await verifyLedgerFast([], publicKey, { expectedHead });
    reports.push({ chain: `?/${model}`, positions: [], result });
  }
  // A mistyped --model must not read as "the ledger verifies": no chain of that model is a failure.
  if (model !== undefined && reports.length === 0) {
    const all = stringFlag(args, "url") !== undefined ? await sourceFrom(args, io, false).rows() : rows;
    const models = [...new Set([...splitChains(all).values()].map((chain) => chain.model))];
    io.stderr(
      `error: the ledger has no entries for model "${model}"; ${models.length ? `models with entries: ${models.sort().join(", ")}` : "it has no entries at all"}\n`,
    );
    return 1;
  }
  const ok = reports.every((r) => r.result.ok);
  if (args.flags.has("json")) {
    io.stdout(
      `${JSON.stringify({ ok, source: source.label, publicKey: bytesToHex(publicKey), chains: reports })}\n`,
    );
  } else {
    const keyId = keyIdOf(publicKey);
    io.stdout(
      `fedprofile audit verify: ${source.label}, ${rows.length} entries in ${reports.length} chain(s)\n`,
    );
    for (const r of reports) io.stdout(describe(r, rows, keyId));
    io.stdout(ok ? "verdict: the ledger verifies\n" : "verdict: the ledger does NOT verify\n");
  }
  return ok ? 0 : 1;
}

/** `audit export --format json|csv`: writes to `--out` or stdout. Rows that do not parse abort the export. */
export async function auditExport(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, VALUE_FLAGS, ["help"]);
  if (wantsHelp(args)) {
    io.stdout(AUDIT_HELP);
    return 0;
  }
  const format = stringFlag(args, "format");
  if (format !== "json" && format !== "csv") throw new CliUsageError("--format must be json or csv");
  const source = sourceFrom(args, io);
  const rows = await source.rows((n) => io.stderr(`\rfetched ${n} entries`));
  io.stderr("\n");
  const model = stringFlag(args, "model");
  const entries: LedgerEntry[] = [];
  for (const [i, row] of rows.entries()) {
    const p = LedgerEntry.safeParse(row);
    if (!p.success) throw new CliUsageError(`row ${i} is not a valid ledger entry; run audit verify`);
    if (model === undefined || p.data.model === model) entries.push(p.data);
  }
  let text: string;
  if (format === "csv") text = exportLedgerCsv(entries);
  else {
    const key = stringFlag(args, "public-key") ?? (await source.advertisedPublicKey());
    text = exportLedgerJson(entries, key ? publicKeyFromHex(key) : new Uint8Array(32));
  }
  const out = stringFlag(args, "out");
  if (out) {
    await io.writeFile(out, text);
    io.stderr(`wrote ${entries.length} entries to ${out}\n`);
  } else io.stdout(text);
  return 0;
}
