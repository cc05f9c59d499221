#!/usr/bin/env node
// `npx fedprofile <command>`: the built CLI (`npm run build` writes cli/dist/), run with plain node.
import { existsSync } from "node:fs";

const entry = new URL("../cli/dist/node-entry.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("fedprofile: cli/dist/ is missing; run `npm run build` (npm ci runs it) first");
  process.exit(1);
}
await import(entry.href);
