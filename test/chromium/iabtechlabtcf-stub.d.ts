/** `@iabtechlabtcf/stub` ships no types: bundled as CommonJS it exports the installer. */
declare module "@iabtechlabtcf/stub" {
  /** Installs `window.__tcfapi` (a queueing stub) and the `__tcfapiLocator` frame. */
  export default function installStub(): void;
}
