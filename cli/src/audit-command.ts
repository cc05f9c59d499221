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
  isReleaseEntry,
  keyIdOf,
  LEDGER_KEYS_PATH,
  type LedgerCheckpoint,
  LedgerEntry,
  type LedgerVerification,
  LedgerWitness,
  parseStrictJson,
  publicKeyFromHex,
  splitChains,
  type TrustedKey,
  trustFromKeysDocument,
  verifyLedgerFast,
} from "@fedprofile/coordinator/ledger";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type CliIo, CliUsageError } from "./io.ts";
import { fileLedgerSource, httpLedgerSource, type LedgerSource } from "./ledger-source.ts";
import { type ParsedArgs, parseArgs, stringFlag, urlFlag, wantsHelp } from "./options.ts";

/** Help text of the command. */
export const AUDIT_HELP = `Usage:
  fedprofile audit verify (--url URL [--auditor-key KEY] | --file PATH)
                         (--public-key HEX | --keys-url URL | --keys-file PATH | --trust-advertised-key)
                         [--model M] [--expected-head SEQ:HASH] [--witness FILE] [--json]
  fedprofile audit export (--url URL [--auditor-key KEY] | --file PATH) --format json|csv [--model M] [--out PATH]

verify checks every (tenant, model) chain: hash links, SHA-256 hashes over canonical JSON,
Ed25519 signatures, sampling claims, and recomputes every cumulative epsilon from the recorded
privacy events. It names the first entry that does not hold and exits 1.
The auditor key may also come from FEDPROFILE_AUDITOR_KEY.
Trust is pinned, not assumed: pin the coordinator's key with --public-key, or with the key file
the operator publishes on the shop's own origin (--keys-url https://shop.example${LEDGER_KEYS_PATH},
or a saved copy with --keys-file). Without a pinned key verify fails, unless
--trust-advertised-key accepts the key the coordinator itself advertises (it proves nothing
against the coordinator).
A hash chain cannot show that entries were cut off its end: keep the head a previous verify
printed and pass it back with --expected-head (with --model), or keep a witness file
(--witness FILE): verify checks every signed checkpoint stored there against the chain, then
stores the coordinator's current checkpoints. A rewrite of any history a witness saw fails.
Specification: coordinator/src/ledger/SPEC.md.
`;

const VALUE_FLAGS = [
  "url",
  "auditor-key",
  "file",
  "public-key",
  "keys-url",
  "keys-file",
  "witness",
  "model",
  "format",
  "out",
  "expected-head",
];

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
  const count = (kind: LedgerEntry["kind"]) => entries.filter((e) => e.kind === kind).length;
  const last = entries[entries.length - 1];
  const trust = [...new Set(entries.filter(isReleaseEntry).map((e) => e.trustModel))].join(", ");
  const lines = [
    `${rep.chain}: OK`,
    `  entries       ${r.entries} (${count("round")} rounds, ${count("clip_quantile")} clipping-quantile releases, ${count("policy")} policy, ${count("publication")} publications, ${count("key_rotation")} key rotations)`,
    `  chain         intact from genesis, head ${r.headHash ? `${r.entries - 1}:${r.headHash}` : "(empty)"}`,
    `  signatures    ${r.entries}/${r.entries} valid (Ed25519, key${r.keyIds.length > 1 ? "s" : ""} ${r.keyIds.join(" -> ") || keyId}, pinned)`,
    `  trust models  ${trust || "-"}`,
    `  epsilon       ${r.epsilon.toFixed(4)} at delta ${r.delta ?? "-"}, recomputed from the events of every entry`,
  ];
  if (last)
    lines.push(
      `  budget        cap ${last.budget.epsilonCap}, remaining ${last.budget.remaining.toFixed(4)}`,
    );
  if (r.capHistory.length === 0)
    lines.push("  cap history   (no policy entry: the chain predates recorded caps)");
  for (const c of r.capHistory)
    lines.push(
      `  cap history   seq ${c.seq} ${c.timestamp}: cap ${c.epsilonCap} at delta ${c.delta} (${c.source})`,
    );
  if (r.checkpoints > 0)
    lines.push(`  checkpoints   ${r.checkpoints} signed checkpoint(s) of the witness agree`);
  for (const w of r.warnings) lines.push(`  warning       ${w}`);
  return `${lines.join("\n")}\n`;
}

/** Thrown when nothing is pinned: verify must not pass on a key only the coordinator vouches for. */
class UnpinnedError extends Error {}

function readKeysDocument(text: string, where: string): TrustedKey[] {
  const { value, violations } = parseStrictJson(text);
  if (violations.length) throw new CliUsageError(`${where}: not I-JSON (${violations[0]?.message})`);
  try {
    return trustFromKeysDocument(value);
  } catch (err) {
    throw new CliUsageError(
      `${where}: not a ledger key file (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

async function resolveTrust(args: ParsedArgs, source: LedgerSource, io: CliIo): Promise<TrustedKey[]> {
  const pinned = stringFlag(args, "public-key");
  if (pinned !== undefined) return [{ publicKey: publicKeyFromHex(pinned) }];
  const keysFile = stringFlag(args, "keys-file");
  if (keysFile !== undefined) return readKeysDocument(await io.readFile(keysFile), keysFile);
  const keysUrl = urlFlag(args, "keys-url");
  if (keysUrl !== undefined) {
    const res = await io.fetch(keysUrl, { headers: { accept: "application/json" } });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${keysUrl} failed with HTTP ${res.status}`);
    return readKeysDocument(text, keysUrl);
  }
  const advertised = await source.advertisedPublicKey();
  if (!args.flags.has("trust-advertised-key")) {
    throw new UnpinnedError(
      `no pinned key: pin the operator's published key with --keys-url https://<shop origin>${LEDGER_KEYS_PATH} or --public-key HEX${advertised ? ` (the source advertises ${advertised.toLowerCase()}, keyId ${keyIdOf(publicKeyFromHex(advertised))}; compare it with the operator's published fingerprint)` : ""}, or accept the advertised key with --trust-advertised-key`,
    );
  }
  if (!advertised) throw new CliUsageError("--trust-advertised-key given, but the source advertises no key");
  io.stderr(
    `warning: trusting the key advertised by ${source.label} (--trust-advertised-key): a coordinator that rewrote its ledger would advertise its new key too\n`,
  );
  return [{ publicKey: publicKeyFromHex(advertised) }];
}

async function readWitness(io: CliIo, path: string): Promise<LedgerCheckpoint[]> {
  let text: string;
  try {
    text = await io.readFile(path);
  } catch (err) {
    // A witness starts empty; any other read error is the user's to see.
    if (err instanceof Error && "code" in err && err.code === "ENOENT") return [];
    throw err;
  }
  const { value, violations } = parseStrictJson(text);
  const doc = LedgerWitness.safeParse(value);
  if (violations.length || !doc.success)
    throw new CliUsageError(`${path} is not a witness file (SPEC.md §8)`);
  return doc.data.checkpoints;
}

/** `audit verify`: exit 0 when every chain verifies, 1 otherwise. */
export async function auditVerify(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, VALUE_FLAGS, ["json", "help", "trust-advertised-key"]);
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
  let trust: TrustedKey[];
  try {
    trust = await resolveTrust(args, source, io);
  } catch (err) {
    if (!(err instanceof UnpinnedError)) throw err;
    io.stderr(`error: ${err.message}\n`);
    if (args.flags.has("json"))
      io.stdout(
        `${JSON.stringify({ ok: false, source: source.label, publicKey: null, error: "no pinned key", chains: [] })}\n`,
      );
    else io.stdout("verdict: NOT VERIFIED (no pinned key)\n");
    return 1;
  }
  const publicKey = trust[0]!.publicKey;
  const witnessPath = stringFlag(args, "witness");
  const witnessed = witnessPath === undefined ? [] : await readWitness(io, witnessPath);
  const rows = await source.rows((n) => io.stderr(`\rfetched ${n} entries`));
  io.stderr("\n");
  const model = stringFlag(args, "model");
  const reports: ChainReport[] = [];
  const fresh: LedgerCheckpoint[] = [];
  for (const [chain, c] of splitChains(rows)) {
    if (model !== undefined && !chain.endsWith(`/${model}`)) continue;
    // The coordinator's current checkpoint is checked with the stored ones, and kept if it agrees.
    const current = witnessPath !== undefined && source.checkpoint ? await source.checkpoint(c.model) : null;
    // And every checkpoint it published on schedule: a rewrite after any of them fails here.
    const published = witnessPath !== undefined && source.published ? await source.published(c.model) : [];
    const heads = c.rows.length;
    // The chain may have grown since its rows were read: later heads are checked next time.
    const now = [...published, ...(current ? [current] : [])].filter(
      (k) => k.tenant === c.tenant && k.model === c.model && k.seq < heads,
    );
    const checkpoints = [...witnessed.filter((w) => w.tenant === c.tenant && w.model === c.model), ...now];
    const opts = { ...(expectedHead ? { expectedHead } : {}), checkpoints };
    const result = await verifyLedgerFast(c.rows, trust, opts);
    reports.push({ chain, positions: c.positions, result });
    if (result.ok) fresh.push(...now);
  }
  // A chain cut down to no rows at all yields no chain above; the expected head still names the cut.
  if (expectedHead && reports.length === 0) {
    const result = await verifyLedgerFast([], trust, { expectedHead });
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
  if (witnessPath !== undefined && ok) {
    const seen = new Set(witnessed.map((w) => `${w.tenant}/${w.model}/${w.seq}/${w.hash}`));
    const added = fresh.filter((f) => {
      const key = `${f.tenant}/${f.model}/${f.seq}/${f.hash}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const doc = { v: 1, type: "fedprofile-ledger-witness", checkpoints: [...witnessed, ...added] };
    await io.writeFile(witnessPath, `${JSON.stringify(doc, null, 2)}\n`);
    io.stderr(`witness ${witnessPath}: ${witnessed.length} checkpoint(s) checked, ${added.length} added\n`);
  }
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
