/**
 * The Node.js entry of `fedprofile` (`bin/fedprofile.mjs` runs its built form, `cli/dist/`):
 * real files, stdout/stderr, `fetch`, the environment and the exit code. Only this package
 * needs Node; the coordinator stays runtime-neutral.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { CliIo } from "./io.ts";
import { main, type NodeCommand } from "./main.ts";

const io: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  readFile: (path) => readFile(path, "utf8"),
  writeFile: (path, text) => writeFile(path, text, "utf8"),
  fetch: async (url, init) => {
    const res = await fetch(url, init);
    return { ok: res.ok, status: res.status, text: () => res.text() };
  },
  env: process.env,
};

/** The eval command of the global-models issues; until they land it says so and exits 2. */
const evalCommand: NodeCommand = async (argv) => {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(
      "Usage: fedprofile eval [options]\n\nRuns the real device and server halves of every global model on the Online Retail\npopulation and synthetic scale-ups, against centralised baselines; writes eval.json, a\nreport and SVG plots. Not implemented yet: it lands with the global models.\n",
    );
    return 0;
  }
  process.stderr.write("error: fedprofile eval is not implemented yet: it lands with the global models\n");
  return 2;
};

process.exitCode = await main(process.argv.slice(2), io, {
  replay: async () => (await import("../../sdk/cli/replay.ts")).main,
  simulate: async () => (await import("../../examples/run-demo.ts")).main,
  eval: async () => evalCommand,
});
