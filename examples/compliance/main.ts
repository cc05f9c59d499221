/**
 * The compliance dashboard: a static page a compliance team opens to audit a coordinator's
 * privacy budgets without trusting it. It reads the signed ledger through the auditor API
 * (`GET /v1/audit/ledger`, every page), splits it into (tenant, model) chains in the order the
 * coordinator returned them, and verifies each chain in this browser with the ledger package's
 * verifier: hash links, SHA-256 over canonical JSON, Ed25519 signatures (WebCrypto) and every
 * cumulative epsilon recomputed from the recorded events. It then sets each chain beside what the
 * budget route (`GET /v1/privacy/budgets/{model}`) claims.
 *
 * The auditor key lives in memory and this tab's sessionStorage, and leaves the page only as a
 * bearer token; every value from the network is written with `textContent`.
 * `window.fedprofileCompliance` lets tests drive it.
 */
import {
  exportLedgerCsv,
  isReleaseEntry,
  keyIdOf,
  LEDGER_KEYS_PATH,
  LedgerEntry,
  type LedgerVerification,
  parseStrictJson,
  publicKeyFromHex,
  readLedgerPageBody,
  splitChains,
  trustFromKeysDocument,
  verifyLedgerFast,
} from "@fedprofile/coordinator/ledger";
import { type AuditorClient, createAuditorClient } from "@fedprofile/protocol/client";
import { bytesToHex } from "@noble/hashes/utils.js";
import * as z from "zod";

/** The examples server's `config.json`: only the coordinator URL is used here. */
const ServedConfig = z.object({ endpoint: z.string() });

/** The budget route's answer for a chain's model. */
export interface BudgetSummary {
  epsilonCap: number;
  delta: number;
  epsilonSpent: number;
  remaining: number;
  entries: number;
  headHash: string | null;
}

/** One (tenant, model) chain's verdict, as plain JSON. */
export interface ChainSummary {
  /** `tenant/model`. */
  chain: string;
  tenant: string;
  model: string;
  ok: boolean;
  /** Rows in the chain. */
  entries: number;
  /** Positions of the chain's rows in the ledger as the coordinator returned it. */
  rows: number[];
  /** Cumulative epsilon recomputed from the chain's events (null when the chain fails). */
  epsilon: number | null;
  delta: number | null;
  headHash: string | null;
  /** The failure's reason code (`key`, `hash`, `signature`, ...), or null. */
  reason: string | null;
  /** The verifier's sentence naming the entry, or null. */
  message: string | null;
  /** Position of the failing entry in its chain, or null. */
  index: number | null;
  /** Position of the failing entry in the ledger as returned, or null. */
  row: number | null;
  seq: number | null;
  warnings: string[];
  /** What `GET /v1/privacy/budgets/{model}` answered, or null (see `budgetError`). */
  budget: BudgetSummary | null;
  budgetError: string | null;
  /** The budget route agrees with the verified chain: epsilon (1e-9 relative), entries and head. */
  budgetConsistent: boolean | null;
}

/** The outcome of {@link verify}, as plain JSON. */
export interface ComplianceSummary {
  /** Every chain verifies. */
  ok: boolean;
  endpoint: string;
  /** The key entries were verified with (hex) and its id. */
  publicKey: string;
  keyId: string;
  /** The key was pinned by the auditor, not taken from the coordinator. */
  pinned: boolean;
  /** Where the pin came from: typed in, or the shop origin's well-known key file. */
  pinSource: "typed" | "well-known" | null;
  /** The auditor chose to trust the coordinator's advertised key (not a verdict against it). */
  trustAdvertised: boolean;
  /** What `GET /v1/audit/public-key` answered, or null. */
  advertisedPublicKey: string | null;
  /** Ledger rows fetched, over every chain. */
  entries: number;
  /** Ledger pages fetched. */
  pages: number;
  chains: ChainSummary[];
  verifiedAt: string;
}

export interface VerifyOptions {
  /** Entries per ledger page (1 to 500, default 200). */
  pageSize?: number;
}

const STORE = {
  endpoint: "fedprofile-compliance.endpoint",
  auditorKey: "fedprofile-compliance.auditorKey",
  publicKey: "fedprofile-compliance.publicKey",
} as const;
const DEFAULT_PAGE_SIZE = 200;
const MAX_PAGES = 100_000;
const TOLERANCE = 1e-9;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const endpointInput = byId<HTMLInputElement>("endpoint");
const auditorKeyInput = byId<HTMLInputElement>("auditor-key");
const publicKeyInput = byId<HTMLInputElement>("public-key");
const verifyButton = byId<HTMLButtonElement>("verify");
const exportButton = byId<HTMLButtonElement>("export");
const statusText = byId("status");

/** The rows and summary of the last verification (the CSV export writes these rows). */
let last: { rows: unknown[]; summary: ComplianceSummary } | null = null;
let queue: Promise<unknown> = Promise.resolve();

// ---------------------------------------------------------------------------------------------
// DOM helpers: text only, never markup from data.

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; title?: string } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  for (const child of children) node.append(child);
  return node;
}

function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "–";
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 10 ** -digits ? x.toFixed(digits) : x.toExponential(2);
}

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function setStatus(text: string) {
  statusText.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// The auditor API.

/** The typed auditor client; the key leaves the page only as its bearer token. */
function auditorClient(endpoint: string, auditorKey: string): AuditorClient {
  return createAuditorClient({
    endpoint,
    apiKey: auditorKey,
    fetch: (input, init) =>
      fetch(input, { ...init, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" }),
  });
}

/** The first key of this origin's `/.well-known/fedprofile-ledger-keys.json`, if it serves one. */
async function wellKnownKey(): Promise<string | null> {
  try {
    const res = await fetch(new URL(LEDGER_KEYS_PATH, location.origin));
    if (!res.ok) return null;
    const trust = trustFromKeysDocument(parseStrictJson(await res.text()).value);
    const first = trust[0];
    return first ? bytesToHex(first.publicKey) : null;
  } catch {
    return null;
  }
}

async function budgetOf(
  client: AuditorClient,
  model: string,
): Promise<{ budget: BudgetSummary | null; error: string | null }> {
  try {
    const { epsilonCap, delta, epsilonSpent, remaining, entries, headHash } = await client.budget(model);
    return { budget: { epsilonCap, delta, epsilonSpent, remaining, entries, headHash }, error: null };
  } catch (error) {
    return { budget: null, error: error instanceof Error ? error.message : String(error) };
  }
}

const relative = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), 1e-300));

function chainSummary(
  key: string,
  chain: { tenant: string; model: string; rows: unknown[]; positions: number[] },
  result: LedgerVerification,
  budget: { budget: BudgetSummary | null; error: string | null },
): ChainSummary {
  const base = {
    chain: key,
    tenant: chain.tenant,
    model: chain.model,
    entries: chain.rows.length,
    rows: chain.positions,
    warnings: [...result.warnings],
    budget: budget.budget,
    budgetError: budget.error,
  };
  if (!result.ok) {
    const f = result.failure;
    return {
      ...base,
      ok: false,
      epsilon: null,
      delta: null,
      headHash: null,
      reason: f.reason,
      message: f.message,
      index: f.index,
      row: chain.positions[f.index] ?? null,
      seq: f.seq,
      budgetConsistent: null,
    };
  }
  const b = budget.budget;
  return {
    ...base,
    ok: true,
    epsilon: result.epsilon,
    delta: result.delta,
    headHash: result.headHash,
    reason: null,
    message: null,
    index: null,
    row: null,
    seq: null,
    budgetConsistent:
      b === null
        ? null
        : relative(b.epsilonSpent, result.epsilon) <= TOLERANCE &&
          b.entries === result.entries &&
          b.headHash === result.headHash,
  };
}

/** Reads the form, fetches the key, the ledger and the budgets, verifies every chain and renders it. */
async function runVerification(options: VerifyOptions = {}): Promise<ComplianceSummary> {
  const auditorKey = auditorKeyInput.value.trim();
  if (!auditorKey) throw new Error("give the auditor key (fp_aud_…)");
  const client = auditorClient(endpointInput.value, auditorKey);
  const endpoint = client.endpoint;
  let pinnedText = publicKeyInput.value.trim().toLowerCase();
  let pinSource: ComplianceSummary["pinSource"] = pinnedText === "" ? null : "typed";
  if (pinnedText === "") {
    // The shop's origin publishes the key it pins (SPEC.md §6); this page is served from there.
    const found = await wellKnownKey();
    if (found) {
      pinnedText = found;
      pinSource = "well-known";
    }
  }
  const pinned = pinnedText === "" ? null : publicKeyFromHex(pinnedText);
  const trustAdvertised = byId<HTMLInputElement>("trust-advertised").checked;
  const pageSize = Math.min(500, Math.max(1, Math.floor(options.pageSize ?? DEFAULT_PAGE_SIZE)));
  const store = storage();
  store?.setItem(STORE.endpoint, endpoint);
  store?.setItem(STORE.auditorKey, auditorKey);
  if (pinSource === "typed") store?.setItem(STORE.publicKey, pinnedText);
  else store?.removeItem(STORE.publicKey);

  setStatus("fetching the ledger key…");
  let advertised: string | null = null;
  try {
    advertised = (await client.publicKey()).publicKey;
  } catch (error) {
    // With a pinned key the advertised one is only informative.
    if (!pinned) throw error;
  }
  if (!pinned && !advertised) throw new Error("no pinned key given and the coordinator advertises none");
  const publicKey = pinned ?? publicKeyFromHex(advertised as string);
  const publicKeyHex = pinned ? pinnedText : (advertised as string);

  // Read strictly (ledger SPEC.md §3), as `audit verify` does: a duplicate member or a lone
  // surrogate fails the row that holds it instead of being read past by JSON.parse.
  const { rows, pages } = await client.ledger(
    { limit: pageSize },
    { onPage: (n) => setStatus(`fetched ${n} entries…`), maxPages: MAX_PAGES, readBody: readLedgerPageBody },
  );
  setStatus(`verifying ${rows.length} entries…`);
  const chains = [...splitChains(rows)];
  const results = await Promise.all(
    chains.map(async ([key, chain]) => {
      const [result, budget] = await Promise.all([
        verifyLedgerFast(chain.rows, publicKey),
        chain.model === "?"
          ? Promise.resolve({ budget: null, error: "no readable model" })
          : budgetOf(client, chain.model),
      ]);
      return chainSummary(key, chain, result, budget);
    }),
  );
  const summary: ComplianceSummary = {
    // As `audit verify`: no verdict without a pinned key, unless the advertised one is trusted on purpose.
    ok: results.every((c) => c.ok) && (pinned !== null || trustAdvertised),
    pinSource,
    trustAdvertised,
    endpoint,
    publicKey: publicKeyHex,
    keyId: keyIdOf(publicKey),
    pinned: pinned !== null,
    advertisedPublicKey: advertised,
    entries: rows.length,
    pages,
    chains: results,
    verifiedAt: new Date().toISOString(),
  };
  last = { rows, summary };
  render(summary, rows);
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Rendering.

function renderKey(s: ComplianceSummary) {
  const box = byId("key");
  box.replaceChildren(
    el("div", { className: "mono", text: s.publicKey }),
    el("div", {
      className: "hint",
      text: `Ed25519, key id ${s.keyId} — ${s.pinned ? "pinned by you" : "as advertised by the coordinator"}`,
    }),
  );
  if (!s.pinned)
    box.append(
      el("div", {
        className: "warning",
        text: `Not pinned: using the public key the coordinator advertises (${s.endpoint}/v1/audit/public-key). A coordinator that rewrote its ledger could advertise a new key too; pin the key you hold from a trusted channel.`,
      }),
    );
  else if (s.advertisedPublicKey !== null && s.advertisedPublicKey !== s.publicKey)
    box.append(
      el("div", {
        className: "warning",
        text: `The coordinator advertises a different key: ${s.advertisedPublicKey}`,
      }),
    );
  byId("key-section").hidden = false;
}

function figure(label: string, value: string, title?: string): HTMLElement {
  return el(
    "div",
    title === undefined ? {} : { title },
    el("b", { text: value }),
    document.createTextNode(label),
  );
}

const COLUMNS = [
  ["row", "position in the ledger as returned"],
  ["seq", ""],
  ["round", ""],
  ["kind", ""],
  ["mechanism", ""],
  ["trust model", ""],
  ["cohort", "size / survivors"],
  ["noise mult.", "noise multiplier"],
  ["clip", "L2 clip norm"],
  ["cum. ε", "cumulative epsilon after the entry"],
  ["remaining", "cap minus cumulative epsilon"],
  ["hash", "SHA-256 of the entry"],
] as const;

function entriesTable(chain: ChainSummary, rows: readonly unknown[]): HTMLElement {
  const head = el("tr");
  for (const [name, title] of COLUMNS) head.append(el("th", title ? { text: name, title } : { text: name }));
  const body = el("tbody");
  chain.rows.forEach((position, i) => {
    const tr = el("tr");
    tr.dataset["row"] = String(position);
    if (!chain.ok && chain.index !== null) {
      if (i === chain.index) {
        tr.className = "failed";
        tr.title = `${chain.reason}: ${chain.message}`;
      } else if (i > chain.index) {
        tr.className = "unchecked";
        tr.title = `not checked: verification stopped at row ${chain.row}`;
      }
    }
    const parsed = LedgerEntry.safeParse(rows[position]);
    if (!parsed.success) {
      tr.append(el("td", { text: String(position) }));
      const cell = el("td", { text: "not a valid ledger entry" });
      cell.colSpan = COLUMNS.length - 1;
      tr.append(cell);
    } else {
      const e = parsed.data;
      const r = isReleaseEntry(e) ? e : null;
      const what =
        e.kind === "policy"
          ? `cap ${e.policy.epsilonCap} at δ ${e.policy.delta.toExponential(2)}`
          : e.kind === "key_rotation"
            ? `new key ${e.rotation.keyId}`
            : e.kind === "publication"
              ? `model v${e.publication.modelVersion}`
              : "";
      const cells: Array<[string, string?]> = [
        [String(position)],
        [String(e.seq)],
        [String(e.round), r?.roundId],
        [e.kind],
        [r?.mechanism ?? what],
        [r?.trustModel ?? "-"],
        [r ? `${r.cohort.size}/${r.cohort.survivors}` : "-"],
        [r ? num(r.noise.noiseMultiplier) : "-", r ? String(r.noise.noiseMultiplier) : undefined],
        [r ? num(r.clipNorm) : "-", r ? String(r.clipNorm) : undefined],
        [num(e.cumulative.epsilon), String(e.cumulative.epsilon)],
        [num(e.budget.remaining), String(e.budget.remaining)],
        [`${e.hash.slice(0, 12)}…`, e.hash],
      ];
      for (const [text, title] of cells)
        tr.append(el("td", title === undefined ? { text } : { text, title }));
    }
    body.append(tr);
  });
  const table = el("table", { className: "entries" }, el("thead", {}, head), body);
  table.dataset["chain"] = chain.chain;
  return el("div", { className: "table-wrap" }, table);
}

function renderChain(chain: ChainSummary, rows: readonly unknown[]): HTMLElement {
  const box = el("div", { className: "chain" });
  box.dataset["chain"] = chain.chain;
  box.dataset["ok"] = String(chain.ok);
  box.append(
    el(
      "h4",
      {},
      document.createTextNode(`${chain.chain} `),
      el("span", { className: `verdict ${chain.ok ? "ok" : "failed"}`, text: chain.ok ? "OK" : "FAILED" }),
    ),
  );
  if (!chain.ok) {
    const seq = chain.seq === null ? "" : `, seq ${chain.seq}`;
    box.append(
      el("div", {
        className: "error failure",
        text: `FAILED at row ${chain.row} of the ledger (chain entry #${chain.index}${seq})\n${chain.reason}: ${chain.message}`,
      }),
    );
  }
  const b = chain.budget;
  const head = LedgerEntry.safeParse(rows[chain.rows[chain.rows.length - 1] ?? -1]);
  const cap = b?.epsilonCap ?? (head.success ? head.data.budget.epsilonCap : null);
  const figures = el("div", { className: "figures" });
  if (chain.ok && chain.epsilon !== null) {
    figures.append(
      figure("ε spent (recomputed here)", num(chain.epsilon), String(chain.epsilon)),
      figure("ε cap", num(cap)),
      figure("remaining", cap === null ? "–" : num(cap - chain.epsilon)),
      figure("at δ", chain.delta === null ? "–" : chain.delta.toExponential(2), String(chain.delta)),
      figure("entries", String(chain.entries)),
    );
  } else figures.append(figure("entries", String(chain.entries)), figure("ε cap", num(cap)));
  if (b)
    figures.append(
      figure("ε spent (budget route)", num(b.epsilonSpent), String(b.epsilonSpent)),
      figure("remaining (budget route)", num(b.remaining), String(b.remaining)),
    );
  box.append(figures);
  if (chain.ok && chain.epsilon !== null && cap !== null) {
    const share = Math.min(1, chain.epsilon / cap);
    const bar = el("span", chain.epsilon > cap ? { className: "over" } : {});
    bar.style.width = `${(share * 100).toFixed(1)}%`;
    box.append(
      el("div", { className: "meter", title: `${(share * 100).toFixed(1)}% of the cap spent` }, bar),
    );
  }
  if (chain.budgetError)
    box.append(el("div", { className: "warning", text: `budget route: ${chain.budgetError}` }));
  if (chain.budgetConsistent === false)
    box.append(
      el("div", {
        className: "warning",
        text: "The budget route disagrees with the verified ledger (epsilon spent, entry count or head hash).",
      }),
    );
  for (const w of chain.warnings) box.append(el("div", { className: "warning", text: w }));
  box.append(entriesTable(chain, rows));
  return box;
}

function render(s: ComplianceSummary, rows: readonly unknown[]) {
  renderKey(s);
  const results = byId("results");
  const failed = s.chains.filter((c) => !c.ok).length;
  results.replaceChildren(
    el("p", {
      className: `verdict ${s.ok ? "ok" : "failed"}`,
      text: s.ok
        ? `The ledger verifies: ${s.entries} entries in ${s.chains.length} chain(s).`
        : failed === 0 && !s.pinned
          ? "NOT VERIFIED: no pinned key. Pin the key the operator publishes, or tick “trust the advertised key”."
          : `The ledger does NOT verify: ${failed} of ${s.chains.length} chain(s) failed.`,
    }),
    el("p", {
      className: "hint",
      text: `Source ${s.endpoint}/v1/audit/ledger, ${s.pages} page(s), verified ${s.verifiedAt}. Hash links, SHA-256 hashes, Ed25519 signatures, sampling claims and every cumulative ε were checked in this browser.`,
    }),
    ...s.chains.map((c) => renderChain(c, rows)),
  );
  const section = byId("results-section");
  section.hidden = false;
  section.dataset["state"] = s.ok ? "ok" : "failed";
}

function renderError(error: unknown) {
  const results = byId("results");
  results.replaceChildren(
    el("div", { className: "error", text: error instanceof Error ? error.message : String(error) }),
  );
  const section = byId("results-section");
  section.hidden = false;
  section.dataset["state"] = "error";
}

// ---------------------------------------------------------------------------------------------
// Actions.

/** Verifies with the form's values; one at a time. Rejects (and shows the error) when it cannot run. */
function verify(options: VerifyOptions = {}): Promise<ComplianceSummary> {
  const run = async () => {
    verifyButton.disabled = true;
    exportButton.disabled = true;
    byId("results-section").dataset["state"] = "running";
    try {
      const summary = await runVerification(options);
      setStatus(summary.ok ? "verified" : "verification failed");
      return summary;
    } catch (error) {
      last = null;
      setStatus("could not verify");
      renderError(error);
      throw error;
    } finally {
      verifyButton.disabled = false;
      exportButton.disabled = last === null;
    }
  };
  const next = queue.then(run, run);
  queue = next.catch(() => undefined);
  return next;
}

function exportCsv(): void {
  if (!last) return;
  const entries: LedgerEntry[] = [];
  for (const [i, row] of last.rows.entries()) {
    const parsed = LedgerEntry.safeParse(row);
    if (!parsed.success) {
      setStatus(`row ${i} is not a valid ledger entry: nothing exported`);
      return;
    }
    entries.push(parsed.data);
  }
  const blob = new Blob([exportLedgerCsv(entries)], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const tenants = [...new Set(last.summary.chains.map((c) => c.tenant))];
  const stamp = last.summary.verifiedAt.replace(/[:.]/g, "-");
  const a = el("a");
  a.href = url;
  a.download = `fedprofile-ledger-${tenants.length === 1 ? tenants[0] : "all"}-${stamp}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  setStatus(`exported ${entries.length} entries`);
}

async function init() {
  const store = storage();
  const params = new URLSearchParams(location.search);
  // The coordinator the examples server points the storefront at, when there is one.
  let served: string | undefined;
  try {
    const response = await fetch("../config.json", { cache: "no-store" });
    const config = response.ok ? ServedConfig.safeParse(await response.json()) : null;
    if (config?.success) served = config.data.endpoint;
  } catch {}
  endpointInput.value =
    params.get("endpoint") ?? store?.getItem(STORE.endpoint) ?? served ?? "http://127.0.0.1:8787";
  auditorKeyInput.value = store?.getItem(STORE.auditorKey) ?? "";
  publicKeyInput.value = params.get("publicKey") ?? store?.getItem(STORE.publicKey) ?? "";

  byId<HTMLFormElement>("audit-form").addEventListener("submit", (event) => {
    // Never a real submission: the key must not reach a URL.
    event.preventDefault();
    verify().catch(() => undefined);
  });
  exportButton.addEventListener("click", exportCsv);
  byId("forget").addEventListener("click", () => {
    auditorKeyInput.value = "";
    store?.removeItem(STORE.auditorKey);
    setStatus("auditor key forgotten");
  });
  document.body.dataset["ready"] = "true";
}

declare global {
  interface Window {
    fedprofileCompliance: {
      verify(options?: VerifyOptions): Promise<ComplianceSummary>;
      lastSummary(): ComplianceSummary | null;
    };
  }
}

window.fedprofileCompliance = {
  verify,
  lastSummary: () => (last ? structuredClone(last.summary) : null),
};
void init();
