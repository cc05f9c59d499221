/**
 * Injected into the IIFE build (esbuild `inject`): where the lazy sync bundle lives. The
 * script's own URL is read while the IIFE first runs, the only time `document.currentScript`
 * points at it; the sync bundle sits next to it.
 */
const base =
  (typeof document !== "undefined" && (document.currentScript as HTMLScriptElement | null)?.src) ||
  location.href;

/** Loads `fedprofile-sync.min.js` (ESM) from beside this script, once. */
let loading: Promise<typeof import("../src/iife-sync")> | undefined;
export function __fedprofileSync(): Promise<typeof import("../src/iife-sync")> {
  loading ??= import(/* @vite-ignore */ new URL("fedprofile-sync.min.js", base).href);
  return loading;
}

/** Loads `fedprofile-recs.min.js` (ESM: the recommendation math and tfjs) from beside this script, once. */
let loadingRecs: Promise<typeof import("../src/sync/recs")> | undefined;
export function __fedprofileRecs(): Promise<typeof import("../src/sync/recs")> {
  loadingRecs ??= import(/* @vite-ignore */ new URL("fedprofile-recs.min.js", base).href);
  return loadingRecs;
}
