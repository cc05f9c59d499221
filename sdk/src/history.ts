/**
 * History import: a device's past events, known all at once (a replay, a migration), folded into
 * its profile in one pass. It is `track()` without the per-call machinery, not a second
 * implementation: each event goes through the same `intake` (validated once, at the boundary,
 * with the same ids, currency and order checks against the accumulators built so far), is folded
 * once with the same `applyEvent`, drops are counted with the same `countDrop`, and the profile is
 * read off with the same `readProfile` as `getProfile()`. What it leaves out is what a batch does
 * not need: a profiler per device (consent, CMP watch, store manager, timers, channels), one
 * promise per event, and the store's second fold of the journal (the memory store folds every
 * flushed event again into its own record, and clones it back).
 *
 * The folded record is handed to the store once (`ProfileStore.adopt`: one transaction), with
 * the raw events the store's retention would keep. `test/node/history-import.test.ts` checks, on
 * real customers of the UCI data, that the profile equals `track()` + `getProfile()`'s exactly.
 *
 * Not in the SDK's main entry (its 20 KB budget): the node CLI (`fedprofile replay`) imports it.
 */
import { DEFAULT_TAG_THRESHOLDS } from "./features/features";
import { applyEvent, emptyFeatureState } from "./features/state";
import { type Profile, type ProfilerOptions, profilerSettings, readProfile } from "./profiler";
import { DEFAULT_RETENTION, type ProfileStore } from "./store/types";
import { countDrop, type DroppedCounts, intake, strictError, type TrackResult } from "./track";

/** One past event, as `track(name, properties, { timestamp })` would get it. */
export interface HistoryEvent {
  name: string;
  properties?: Record<string, unknown>;
  timestamp?: number | string | Date;
}

/** Options of `importHistory`: the device's profiler options, and when to read the profile. */
export interface HistoryOptions extends ProfilerOptions {
  /** The time the profile is read at (`getProfile({ asOf })`; default `now()`). */
  asOf?: number;
  /**
   * Where the folded profile goes (`adopt`: one transaction); default none (a throwaway
   * device, as `storage: "memory"`). The store must hold no profile yet.
   */
  store?: ProfileStore;
}

/** What `importHistory` produced. */
export interface HistoryImport {
  /** The profile, as `getProfile({ asOf })` on a profiler that tracked the events would give it. */
  profile: Profile;
  /** Each event's result, in order, as `track()` would have resolved it. */
  results: TrackResult[];
}

const DAY_MS = 86_400_000;

/**
 * Folds `events` (in the order given, as `track()` calls would be) into a fresh device profile.
 * With `strict`, throws the `InvalidEventError` the first bad event's `track()` would reject
 * with. Throws if `store` already holds a profile.
 */
export async function importHistory(
  events: Iterable<HistoryEvent>,
  options: HistoryOptions = {},
): Promise<HistoryImport> {
  const state = emptyFeatureState();
  const { config, intakeContext } = profilerSettings(options, () => state);
  const dropped: DroppedCounts = { total: 0, byReason: {}, unusedEvents: {} };
  const results: TrackResult[] = [];
  const store = options.store;
  const stored = [];
  for (const event of events) {
    const out = intake(event.name, event.properties, event.timestamp, intakeContext);
    if (out.stored) {
      applyEvent(state, out.stored, config);
      if (store) stored.push(out.stored);
    }
    countDrop(dropped, out.result, out.unused);
    const error = options.strict ? strictError(out.result) : undefined;
    if (error) throw error;
    results.push(out.result);
  }
  if (store && state.eventCount > 0) {
    // The raw events the store's retention keeps (the newest, by age and count), as after a fold.
    const maxEvents = options.retention?.maxEvents ?? DEFAULT_RETENTION.maxEvents;
    const maxAgeDays = options.retention?.maxAgeDays ?? DEFAULT_RETENTION.maxAgeDays;
    const cutoff = intakeContext.now() - maxAgeDays * DAY_MS;
    const kept = stored.filter((event) => event.t >= cutoff).sort((a, b) => a.t - b.t);
    if (!(await store.adopt(state, kept.slice(Math.max(0, kept.length - maxEvents))))) {
      throw new Error("importHistory: the store already holds a profile");
    }
  }
  const thresholds = { ...DEFAULT_TAG_THRESHOLDS, ...options.tagThresholds };
  const profile = readProfile(
    state,
    options.asOf ?? intakeContext.now(),
    config,
    thresholds,
    () => null,
    store?.kind ?? "memory",
    dropped,
  );
  return { profile, results };
}
