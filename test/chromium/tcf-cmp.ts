/**
 * A consent-management platform built only from the IAB Tech Lab's TCF libraries, for the
 * Chromium consent tests: `@iabtechlabtcf/stub` (the standard `__tcfapi` stub and its
 * `__tcfapiLocator` frame), `@iabtechlabtcf/cmpapi` (the CMP API that replaces the stub) and
 * `@iabtechlabtcf/core` (TC strings, encoded against the local vendor list in
 * `fixtures/vendor-list.json`, so nothing is fetched). Bundled as a page script by
 * `tcf-harness.ts`; the page gets `globalThis.testCmp`.
 */
import { CmpApi, CmpApiModel } from "@iabtechlabtcf/cmpapi";
import { GVL, TCModel, TCString } from "@iabtechlabtcf/core";
import installStub from "@iabtechlabtcf/stub";
import vendorList from "./fixtures/vendor-list.json";

/** Any id of 2 or more passes the CmpApi's check; 10 is not a registered CMP that matters here. */
const CMP_ID = 10;
const gvl = new GVL(vendorList);
let api: CmpApi | undefined;
const REMEMBERED = "test-cmp-purposes";

/** A TC string recording consent to `purposes` (and nothing else). */
function tcString(purposes: readonly number[]): string {
  const model = new TCModel(gvl);
  model.cmpId = CMP_ID;
  model.cmpVersion = 1;
  model.consentScreen = 1;
  model.isServiceSpecific = true;
  for (const id of purposes) model.purposeConsents.set(id);
  return TCString.encode(model);
}

/** What the page script exposes. */
const cmp = {
  /** Installs the standard stub (queues calls until the CMP loads). */
  stub(): void {
    installStub();
  },
  /** Loads the CMP API, which replaces the stub's `__tcfapi` and answers its queued calls. */
  load(): void {
    api ??= new CmpApi(CMP_ID, 1, true);
  },
  tcString,
  /**
   * What the CMP does on a decision or a banner: `purposes` consented (a TC string), `""` for a
   * first banner with no decision yet, `null` when GDPR does not apply.
   */
  update(purposes: readonly number[] | "" | null, uiVisible = false): void {
    if (!api) throw new Error("testCmp.load() first");
    api.update(purposes === null || purposes === "" ? purposes : tcString(purposes), uiVisible);
  },
  /**
   * The user decides in the banner: like a real CMP, which keeps the TC string in a cookie, the
   * decision outlives the page (see `remembered`).
   */
  decide(purposes: readonly number[]): void {
    localStorage.setItem(REMEMBERED, JSON.stringify(purposes));
    cmp.update(purposes);
  },
  /** The purposes decided on an earlier page load, if any. */
  remembered(): number[] | undefined {
    const raw = localStorage.getItem(REMEMBERED);
    const parsed: unknown = raw === null ? undefined : JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((id): id is number => typeof id === "number") : undefined;
  },
  /** How many addEventListener listeners the CMP holds. */
  listeners(): number {
    return CmpApiModel.eventQueue.size;
  },
};

declare global {
  var testCmp: typeof cmp;
}
Object.assign(globalThis, { testCmp: cmp });
