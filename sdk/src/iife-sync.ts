/**
 * The lazy half of the script-tag build (`dist/fedprofile-sync.min.js`, ESM): the sync modules
 * the profiler loads with `import()`, bundled with their dependencies for a browser with no
 * bundler. `fedprofile.min.js` imports it from its own URL on the first `sync()`/`pullModel()`.
 */
export * as coordinatorClient from "./sync/coordinator-client";
export * as modelTasks from "./sync/model-tasks";
export * as plainRound from "./sync/plain-round";
export * as sessionStore from "./sync/session-store";
