/**
 * The Node.js entry of `fedprofile` (`bin/fedprofile.mjs` runs its built form, `cli/dist/`):
 * real files, stdout/stderr, `fetch`, the environment and the exit code. Only this package
 * needs Node; the coordinator stays runtime-neutral.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { CliIo } from "./io.ts";
import { main } from "./main.ts";

const io: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  readFile: (path) => readFile(path, "utf8"),
  writeFile: (path, text) => writeFile(path, text, "utf8"),
  fetch: (input, init) => fetch(input, init),
  env: process.env,
};

process.exitCode = await main(process.argv.slice(2), io, {
  replay: async () => (await import("../../sdk/cli/replay.ts")).main,
  simulate: async () => (await import("../../examples/run-demo.ts")).main,
  eval: async () => (await import("../../examples/eval/main.ts")).main,
});
