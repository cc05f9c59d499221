/**
 * Debian's Chromium, never a downloaded browser. The flags keep it off the network: this
 * machine's sandbox refuses every outbound connection, and Chromium's background services
 * would otherwise retry them on every start.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
