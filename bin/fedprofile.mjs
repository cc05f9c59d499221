#!/usr/bin/env node
// `npx fedprofile <command>`: dispatches to the TypeScript command modules through tsx, so the
// CLI runs the same source the tests run, with no build step.
import { register } from "tsx/esm/api";

register();

const COMMANDS = {
  replay: "../sdk/cli/replay.ts",
  accountant: "../coordinator/src/cli/main.ts",
  audit: "../coordinator/src/cli/main.ts",
  simulate: "../examples/simulate.ts",
};

const [command, ...args] = process.argv.slice(2);
const target = command ? COMMANDS[command] : undefined;
if (!target) {
  console.error(`usage: fedprofile <${Object.keys(COMMANDS).join("|")}> [options]`);
  process.exit(command ? 2 : 0);
}
const module = await import(new URL(target, import.meta.url).href);
// Each command module exports `main(argv)` resolving to an exit code.
process.exitCode = await module.main(
  command === "accountant" || command === "audit" ? [command, ...args] : args,
);
