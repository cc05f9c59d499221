#!/usr/bin/env node
// `npx fedprofile <command>`: dispatches to the TypeScript command modules through tsx, so the
// CLI runs the same source the tests run, with no build step.
import { register } from "tsx/esm/api";

register();

const COMMANDS = {
  replay: "../sdk/cli/replay.ts",
  accountant: "../coordinator/src/cli/node-entry.ts",
  audit: "../coordinator/src/cli/node-entry.ts",
  simulate: "../examples/simulate.ts",
  eval: "../examples/eval/main.ts",
};

const [command, ...args] = process.argv.slice(2);
const target = command ? COMMANDS[command] : undefined;
if (!target) {
  console.error(`usage: fedprofile <${Object.keys(COMMANDS).join("|")}> [options]`);
  process.exit(command ? 2 : 0);
}
const module = await import(new URL(target, import.meta.url).href);
// The privacy CLI's Node entry runs itself on import (reading process.argv); the other command
// modules export `main(argv)` resolving to an exit code.
if (command !== "accountant" && command !== "audit") process.exitCode = await module.main(args);
