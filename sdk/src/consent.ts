/**
 * Consent: what the device may store, sync and publish.
 *
 * - Global Privacy Control (`navigator.globalPrivacyControl === true`, https://privacycg.github.io/gpc-spec/)
 *   turns sync and publish off unless the user opts in through `consent()`.
 * - When an IAB TCF v2 CMP is present (`window.__tcfapi`), purpose 1 ("store and/or access
 *   information on a device") gates device storage. Until the CMP reports a decision, and
 *   whenever purpose 1 is refused, the profiler keeps everything in memory only.
 * - An explicit `consent()` choice always wins over both signals.
 */
import * as z from "zod/mini";

/** Effective consent. */
export interface ConsentState {
  /** May the profile be kept in device storage (IndexedDB)? Otherwise memory only. */
  storage: boolean;
  /** May the device take part in federated rounds (network)? */
  sync: boolean;
  /** May the device publish its (locally randomised) profile? */
  publish: boolean;
}

/** A choice the user made; unset fields fall back to GPC, TCF and the defaults. */
export type ConsentChoice = Partial<ConsentState>;

/** The IAB TCF v2 API function a CMP installs as `window.__tcfapi`. */
export type TcfApi = (
  command: string,
  version: number,
  callback: (tcData: unknown, success: boolean) => void,
  parameter?: unknown,
) => void;

// Only the fields consent needs; a CMP's answer is untrusted input, so it is parsed, not cast.
const TcData = z.object({
  gdprApplies: z.optional(z.boolean()),
  eventStatus: z.optional(z.string()),
  listenerId: z.optional(z.number()),
  purpose: z.optional(z.object({ consents: z.optional(z.record(z.string(), z.boolean())) })),
});

/** What the CMP has said about purpose 1: allowed, refused, or not yet decided. */
export type TcfStorageDecision = "allowed" | "refused" | "pending";

/** Reads `navigator.globalPrivacyControl`. */
export function detectGpc(): boolean {
  return typeof navigator !== "undefined" && "globalPrivacyControl" in navigator
    ? navigator.globalPrivacyControl === true
    : false;
}

/** The page's TCF API, if a CMP has installed one. */
export function detectTcfApi(): TcfApi | null {
  const api: unknown = Reflect.get(globalThis, "__tcfapi");
  if (typeof api !== "function") return null;
  return (command, version, callback, parameter) => {
    api(command, version, callback, parameter);
  };
}

/** Interprets one TCF `addEventListener` callback. */
export function tcfDecision(tcData: unknown, success: boolean): TcfStorageDecision {
  const parsed = TcData.safeParse(tcData);
  if (!success || !parsed.success) return "pending";
  const data = parsed.data;
  if (data.gdprApplies === false) return "allowed";
  if (data.eventStatus !== "tcloaded" && data.eventStatus !== "useractioncomplete") return "pending";
  return data.purpose?.consents?.["1"] === true ? "allowed" : "refused";
}

/**
 * Listens to the CMP (TCF v2 `addEventListener`) and reports every decision about purpose 1.
 * Returns a function that removes the listener.
 */
export function watchTcf(api: TcfApi, onDecision: (decision: TcfStorageDecision) => void): () => void {
  let listenerId: number | undefined;
  let stopped = false;
  try {
    api("addEventListener", 2, (tcData, success) => {
      if (stopped) return;
      const parsed = TcData.safeParse(tcData);
      if (parsed.success && parsed.data.listenerId !== undefined) listenerId = parsed.data.listenerId;
      onDecision(tcfDecision(tcData, success));
    });
  } catch {
    // A broken CMP must not break the page; without a decision storage stays in memory.
  }
  return () => {
    stopped = true;
    if (listenerId === undefined) return;
    try {
      api("removeEventListener", 2, () => {}, listenerId);
    } catch {
      // ignored: the listener is already inert
    }
  };
}

/** Signals consent is derived from. */
export interface ConsentSignals {
  /** Explicit choices (from `consent()`, or remembered from an earlier visit). */
  explicit: ConsentChoice;
  gpc: boolean;
  /** `null` when no CMP is present. */
  tcf: TcfStorageDecision | null;
}

/** Effective consent from the signals (explicit choice > GPC/TCF > default on). */
export function resolveConsent(signals: ConsentSignals): ConsentState {
  const { explicit, gpc, tcf } = signals;
  return {
    storage: explicit.storage ?? (tcf === null ? true : tcf === "allowed"),
    sync: explicit.sync ?? !gpc,
    publish: explicit.publish ?? !gpc,
  };
}
