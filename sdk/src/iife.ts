/**
 * The script-tag build (`dist/fedprofile.min.js`, an IIFE). The copy-paste snippet in the
 * README defines `window.fedprofile` as a stub array that queues `track`, `consent` and `ready`
 * calls (Segment's analytics.js snippet does the same) and loads this script with the options
 * it was given. Here the stub's queue is replayed in order, one call after the other, and
 * `window.fedprofile` becomes the live API. The network code behind `sync()` loads on first use
 * from `fedprofile-sync.min.js`, next to this script.
 */
import type { ConsentChoice, ConsentState } from "./consent";
import { createProfiler, type Profiler, type ProfilerOptions } from "./profiler";
import type { TrackResult } from "./track";

/** One queued call: the method name, then its arguments. */
type QueuedCall = [string, ...unknown[]];

/** What the snippet leaves on `window.fedprofile` before this script runs. */
interface Stub extends Array<QueuedCall> {
  options?: ProfilerOptions;
  initialized?: boolean;
}

/** `window.fedprofile` once loaded. */
export interface FedprofileGlobal {
  readonly initialized: true;
  readonly profiler: Profiler;
  track(name: string, properties?: Record<string, unknown>): Promise<TrackResult>;
  consent(choice: ConsentChoice): Promise<ConsentState>;
  /** Calls `callback(profiler)` once every queued call has been replayed. */
  ready(callback?: (profiler: Profiler) => void): Promise<Profiler>;
}

function isStub(value: unknown): value is Stub {
  return Array.isArray(value);
}

const current: unknown = Reflect.get(globalThis, "fedprofile");
if (current === undefined || isStub(current)) {
  const stub: Stub = current ?? [];
  const profiler = createProfiler(stub.options ?? {});
  let replayed: Promise<void> = Promise.resolve();
  const api: FedprofileGlobal = {
    initialized: true,
    profiler,
    track: (name, properties) => profiler.track(name, properties),
    consent: (choice) => profiler.consent(choice),
    ready: async (callback) => {
      await replayed;
      callback?.(profiler);
      return profiler;
    },
  };
  const methods: Record<string, (...args: never[]) => unknown> = {
    track: api.track,
    consent: api.consent,
    // During the replay every earlier call has already been awaited: run the callback now.
    ready: (callback?: (p: Profiler) => void) => callback?.(profiler),
  };
  // Replay strictly in order: each call waits for the one queued before it. A call that fails
  // is reported on the profiler's error channel by the profiler itself; the replay goes on.
  replayed = (async () => {
    for (const [method, ...args] of stub.splice(0)) {
      const fn = methods[method];
      if (!fn) {
        console.warn(`fedprofile: unknown queued call ${method}`);
        continue;
      }
      try {
        await fn(...(args as never[]));
      } catch (error) {
        console.warn(`fedprofile: queued ${method} failed`, error);
      }
    }
  })();
  Reflect.set(globalThis, "fedprofile", api);
}
