/**
 * Consent: what the device may store, sync and publish. The README's "Consent" section is the
 * manual; in short:
 *
 * - Global Privacy Control (`navigator.globalPrivacyControl === true`,
 *   https://privacycg.github.io/gpc-spec/) turns sync and publish off unless the user opts in
 *   through `consent()`.
 * - An IAB TCF v2.2 CMP, found as `window.__tcfapi` or, in a frame, through a
 *   `__tcfapiLocator` frame and postMessage (CMP API v2.2, "How can vendors that use iframes
 *   call the CMP API from an iframe?"), gates each use by purposes: storage by purpose 1, sync
 *   by purpose 1, publish by purposes 1, 3 and 4 (configurable). Until the CMP decides, nothing
 *   is stored and nothing is sent.
 * - A refusal from any source wins. An explicit grant lifts GPC but not a CMP's refusal.
 */

/** Effective consent. */
export interface ConsentState {
  /** May the profile be kept in device storage (IndexedDB)? Otherwise memory only. */
  storage: boolean;
  /** May the device take part in federated rounds (network)? */
  sync: boolean;
  /** May the device publish its (locally randomised) profile? */
  publish: boolean;
}

/** A use consent is asked for. */
export type ConsentUse = keyof ConsentState;

/** A choice the user made; unset fields fall back to GPC, TCF and the defaults. */
export type ConsentChoice = Partial<ConsentState>;

/** The IAB TCF v2 API function a CMP installs as `window.__tcfapi`. */
export type TcfApi = (
  command: string,
  version: number,
  callback: (tcData: unknown, success: boolean) => void,
  parameter?: unknown,
) => void;

/** TCF purpose ids each use needs (TCF Policy v2.2, Appendix A). */
export type TcfPurposes = Record<ConsentUse, readonly number[]>;

/**
 * Purpose 1 (store and/or access information on a device) for storage and for sync, whose
 * vector is read from the device profile; publish also needs 3 (create profiles for
 * personalised advertising) and 4 (use them to select it), because a published profile is
 * handed to the storefront's backend. Purpose 7 (measure advertising performance) applies
 * only where a model measures ads: add it to `sync` then.
 */
export const DEFAULT_TCF_PURPOSES: TcfPurposes = { storage: [1], sync: [1], publish: [1, 3, 4] };

/** What a CMP has said. */
export type TcfSignal =
  /** Loading, a first banner with no decision yet, or no answer. */
  | { status: "pending" }
  /** `gdprApplies: false`: TCF does not gate anything. */
  | { status: "not-applicable" }
  /** A decision: the purposes consented to, or under legitimate interest. */
  | { status: "decided"; consents: readonly number[]; legitimateInterests: readonly number[] };

/** The fields consent needs of a CMP's TC data. */
interface TcData {
  gdprApplies?: boolean | null;
  eventStatus?: string;
  tcString?: string | null;
  listenerId?: number | null;
  purpose?: { consents?: Record<string, boolean>; legitimateInterests?: Record<string, boolean> };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
/** `undefined` when `v` is absent or of `type`, else `false` (malformed). */
const optionalOf = (v: unknown, type: "boolean" | "string" | "number", nullable = false) =>
  v === undefined || (nullable && v === null) || typeof v === type;
function booleanVector(v: unknown): Record<string, boolean> | undefined | false {
  if (v === undefined) return undefined;
  if (!isRecord(v)) return false;
  return Object.values(v).every((on) => typeof on === "boolean") ? (v as Record<string, boolean>) : false;
}

/**
 * A CMP's answer is untrusted input, so it is read field by field, not cast. Hand-written rather
 * than a zod/mini schema: this is the tracking core's only parse of foreign data, and a schema
 * library here would cost the core more than the rest of consent.
 */
function readTcData(value: unknown): TcData | null {
  if (!isRecord(value)) return null;
  const { gdprApplies, eventStatus, tcString, listenerId, purpose } = value;
  if (
    !optionalOf(gdprApplies, "boolean", true) ||
    !optionalOf(eventStatus, "string") ||
    !optionalOf(tcString, "string", true) ||
    !optionalOf(listenerId, "number", true)
  ) {
    return null;
  }
  const data: TcData = {};
  if (gdprApplies !== undefined) data.gdprApplies = gdprApplies as boolean | null;
  if (eventStatus !== undefined) data.eventStatus = eventStatus as string;
  if (tcString !== undefined) data.tcString = tcString as string | null;
  if (listenerId !== undefined) data.listenerId = listenerId as number | null;
  if (purpose !== undefined) {
    if (!isRecord(purpose)) return null;
    const consents = booleanVector(purpose.consents);
    const legitimateInterests = booleanVector(purpose.legitimateInterests);
    if (consents === false || legitimateInterests === false) return null;
    data.purpose = {
      ...(consents ? { consents } : {}),
      ...(legitimateInterests ? { legitimateInterests } : {}),
    };
  }
  return data;
}

/** Purposes a vendor may not claim under legitimate interest (TCF Policy v2.2, C(j)). */
const CONSENT_ONLY = new Set([1, 3, 4, 5, 6]);

const granted = (vector: Record<string, boolean> | undefined): number[] =>
  Object.entries(vector ?? {}).flatMap(([id, on]) => (on ? [Number(id)] : []));

/**
 * Interprets one TCF `addEventListener` callback; `null` for a failed or malformed one.
 * `cmpuishown` with a TC string carries the standing decision (the banner was reopened, which
 * withdraws nothing); without one, it is a first banner: pending.
 */
export function tcfSignal(tcData: unknown, success: boolean): TcfSignal | null {
  const data = readTcData(tcData);
  if (!success || !data) return null;
  if (data.gdprApplies === false) return { status: "not-applicable" };
  const decided =
    data.eventStatus === "tcloaded" ||
    data.eventStatus === "useractioncomplete" ||
    (data.eventStatus === "cmpuishown" && !!data.tcString);
  if (!decided) return { status: "pending" };
  return {
    status: "decided",
    consents: granted(data.purpose?.consents),
    legitimateInterests: granted(data.purpose?.legitimateInterests),
  };
}

/** Reads `navigator.globalPrivacyControl`. */
export function detectGpc(): boolean {
  return typeof navigator !== "undefined" && "globalPrivacyControl" in navigator
    ? navigator.globalPrivacyControl === true
    : false;
}

/** A CMP found on the page: its API, and a `dispose` that releases what finding it set up. */
export interface FoundCmp {
  api: TcfApi;
  dispose(): void;
  /**
   * Ask `getTCData` this often too (ms): a CMP reached through a frame may answer
   * `addEventListener` only once (see `postMessageApi`).
   */
  pollMs?: number;
}

/** How often a framed page asks its CMP for the current TC data. */
const FRAMED_POLL_MS = 1000;

let callCounter = 0;

/** The nearest window (this one or an ancestor) holding a `__tcfapiLocator` frame. */
function locatorWindow(): Window | null {
  if (typeof window === "undefined") return null;
  let frame: Window = window;
  for (;;) {
    try {
      if (Reflect.get(frame.frames, "__tcfapiLocator")) return frame;
    } catch {
      // a cross-origin ancestor may refuse the lookup; keep climbing
    }
    if (frame === window.top || frame.parent === frame) return null;
    frame = frame.parent;
  }
}

/**
 * Talks to a CMP in `target` through postMessage (CMP API v2.2, `__tcfapiCall`/`__tcfapiReturn`).
 * The IAB's own stub (@iabtechlabtcf/stub 1.5.21) forwards only the answers given while it
 * handles the message, so a later `addEventListener` event never crosses the frame; the watcher
 * therefore also polls `getTCData`, which a loaded CMP answers at once.
 */
function postMessageApi(target: Window): FoundCmp {
  const pending = new Map<string, (tcData: unknown, success: boolean) => void>();
  const onMessage = (event: MessageEvent) => {
    if (event.source !== target) return;
    let data: unknown = event.data;
    if (typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch {
        return;
      }
    }
    // The locator's reply (TCF v2.2 §"How can vendors that use iframes call the CMP API?").
    const reply = isRecord(data) ? data.__tcfapiReturn : undefined;
    if (!isRecord(reply) || typeof reply.success !== "boolean" || typeof reply.callId !== "string") return;
    pending.get(reply.callId)?.(reply.returnValue, reply.success);
  };
  addEventListener("message", onMessage);
  let lastPoll: string | undefined;
  return {
    pollMs: FRAMED_POLL_MS,
    api(command, version, callback, parameter) {
      const callId = `fedprofile.${++callCounter}`;
      // A poll the CMP never answered (it was not loaded yet) is superseded, not kept forever.
      if (command === "getTCData") {
        if (lastPoll) pending.delete(lastPoll);
        lastPoll = callId;
      }
      // addEventListener answers many times under one callId; the others answer once.
      pending.set(callId, (value, success) => {
        if (command !== "addEventListener") pending.delete(callId);
        callback(value, success);
      });
      target.postMessage({ __tcfapiCall: { command, version, callId, parameter } }, "*");
    },
    dispose() {
      removeEventListener("message", onMessage);
      pending.clear();
    },
  };
}

/**
 * Finds the CMP now: `window.__tcfapi` (always the current one, looked up at every call, since a
 * CMP replaces the stub it loaded), else a `__tcfapiLocator` frame above. `null` if neither.
 */
export function findCmp(): FoundCmp | null {
  if (typeof window === "undefined") return null;
  const direct = (): unknown => Reflect.get(window, "__tcfapi");
  if (typeof direct() === "function") {
    return {
      api(command, version, callback, parameter) {
        const api = direct();
        if (typeof api === "function") api(command, version, callback, parameter);
      },
      dispose() {},
    };
  }
  const frame = locatorWindow();
  return frame ? postMessageApi(frame) : null;
}

/** Options of `watchCmp`. */
export interface WatchCmpOptions {
  /** Finds the CMP (default `findCmp`). */
  find?: () => FoundCmp | null;
  /** Look for a CMP every 50 ms this long (the caller decides there is none after it). */
  timeoutMs: number;
  /** Keep looking, every 250 ms, this long in all, for a CMP that loads even later. */
  discoveryMs: number;
  /** A CMP was found. */
  onFound?(): void;
  /** Every signal of the CMP (`addEventListener` events, and polled `getTCData` in frames). */
  onSignal(signal: TcfSignal): void;
}

/**
 * Polls for a CMP until the timeout (a CMP may load after the SDK), then listens to it. Returns a
 * function that stops polling and removes the listener from the CMP itself.
 */
export function watchCmp(options: WatchCmpOptions): () => void {
  const find = options.find ?? findCmp;
  let cmp: FoundCmp | null = null;
  let listenerId: number | undefined;
  let stopped = false;
  let poll: ReturnType<typeof setTimeout> | undefined;
  let tcPoll: ReturnType<typeof setInterval> | undefined;

  const remove = (found: FoundCmp, id: number) => {
    try {
      found.api("removeEventListener", 2, () => found.dispose(), id);
    } catch {
      found.dispose(); // a broken CMP cannot hold the listener any longer than the page
    }
  };
  const listen = (found: FoundCmp) => {
    cmp = found;
    try {
      found.api("addEventListener", 2, (tcData, success) => {
        const id = readTcData(tcData)?.listenerId;
        if (typeof id === "number") listenerId = id;
        // A listener that answers after stop() (a stub's queued call) is removed then.
        if (stopped) {
          if (typeof id === "number") remove(found, id);
          return;
        }
        const signal = tcfSignal(tcData, success);
        if (signal) options.onSignal(signal);
      });
    } catch {
      // A broken CMP must not break the page; without a decision nothing is stored.
    }
    if (found.pollMs !== undefined) {
      tcPoll = setInterval(() => {
        found.api("getTCData", 2, (tcData, success) => {
          const signal = stopped ? null : tcfSignal(tcData, success);
          if (signal) options.onSignal(signal);
        });
      }, found.pollMs);
    }
    options.onFound?.();
  };

  // Polling, as Segment's consent wrapper waits for its CMP's global (consent-tools, resolveWhen).
  const started = Date.now();
  const look = () => {
    const found = find();
    if (found) return listen(found);
    const elapsed = Date.now() - started;
    if (elapsed < Math.max(options.timeoutMs, options.discoveryMs)) {
      poll = setTimeout(look, elapsed < options.timeoutMs ? 50 : 250);
    }
  };
  look();

  return () => {
    stopped = true;
    clearTimeout(poll);
    clearInterval(tcPoll);
    // Without an answer yet, the listener is removed when (if) the CMP answers.
    if (cmp && listenerId !== undefined) remove(cmp, listenerId);
  };
}

/** The purposes per use: the defaults with `overrides`; a RangeError names a bad purpose id. */
export function tcfPurposes(overrides: Partial<TcfPurposes> = {}): TcfPurposes {
  const purposes = { ...DEFAULT_TCF_PURPOSES, ...overrides };
  for (const use of ["storage", "sync", "publish"] as const) {
    for (const id of purposes[use]) {
      if (!Number.isInteger(id) || id < 1 || id > 11) {
        throw new RangeError(`tcfPurposes.${use}: ${id} is not a TCF v2.2 purpose id (1 to 11)`);
      }
    }
  }
  return purposes;
}

/** Signals consent is derived from. */
export interface ConsentSignals {
  /** Explicit choices (from `consent()`, or remembered from an earlier visit). */
  explicit: ConsentChoice;
  gpc: boolean;
  /** `null` when no CMP is present. */
  tcf: TcfSignal | null;
  /** Purposes per use (default `DEFAULT_TCF_PURPOSES`). */
  purposes?: TcfPurposes;
}

/** One use: allowed, refused, or waiting for the CMP. */
export type ConsentDecision = "granted" | "refused" | "undecided";

/**
 * The decision for one use. A refusal from any source wins (TCF, GPC, explicit); an explicit
 * grant lifts GPC (CCPA regulations § 7025(c)(3) let the user consent despite the signal) but
 * not a CMP that refused or has not decided: where a CMP asks, its record is the consent.
 */
export function decideUse(signals: ConsentSignals, use: ConsentUse): ConsentDecision {
  const { explicit, gpc, tcf } = signals;
  if (explicit[use] === false) return "refused";
  if (tcf?.status === "pending") return "undecided";
  if (tcf?.status === "decided") {
    const needed = (signals.purposes ?? DEFAULT_TCF_PURPOSES)[use];
    const ok = needed.every(
      (id) => tcf.consents.includes(id) || (!CONSENT_ONLY.has(id) && tcf.legitimateInterests.includes(id)),
    );
    if (!ok) return "refused";
  }
  if (use !== "storage" && gpc && explicit[use] !== true) return "refused";
  return "granted";
}

/** Effective consent from the signals (see `decideUse`). */
export function resolveConsent(signals: ConsentSignals): ConsentState {
  return {
    storage: decideUse(signals, "storage") === "granted",
    sync: decideUse(signals, "sync") === "granted",
    publish: decideUse(signals, "publish") === "granted",
  };
}
