/**
 * `@fedprofile/sdk`: on-device profiling. This main entry is the tracking core (events, store,
 * features, profile, consent); taking part in rounds is `@fedprofile/sdk/sync`, which `sync()`
 * and `pullModel()` load on first use, so a page that imports this entry downloads no network
 * code up front (`bench/bundle-size.ts` measures it).
 */
export * from "./core";
