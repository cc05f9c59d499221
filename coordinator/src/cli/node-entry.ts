/**
 * The Node.js entry of the privacy CLI: real files, stdout/stderr, `fetch`, environment, exit
 * code. Importing this module runs the CLI with `process.argv.slice(2)`; the root `bin/`
 * launcher (`npx fedprofile`) imports it through tsx.
 *
 * Node's modules are loaded dynamically and checked at run time so that `coordinator/` keeps
 * compiling without Node's type definitions (it must run on Workers too); only this file needs
 * Node at all.
 */

import type { CliIo, FetchLike, FetchResponseLike } from "./io.ts";
import { main } from "./main.ts";

interface NodeStream {
  write(s: string): boolean;
}

function fn(obj: unknown, name: string): (...args: unknown[]) => unknown {
  const f: unknown = obj !== null && typeof obj === "object" ? Reflect.get(obj, name) : undefined;
  if (typeof f !== "function")
    throw new TypeError(`the runtime lacks ${name}(); run the CLI under Node.js 20+`);
  return (...args: unknown[]) => Reflect.apply(f, obj, args);
}

function stream(proc: unknown, name: "stdout" | "stderr"): NodeStream {
  const s: unknown = Reflect.get(proc as object, name);
  const write = fn(s, "write");
  return { write: (text: string) => write(text) === true };
}

/** Builds the Node I/O port. */
export async function nodeIo(): Promise<{ io: CliIo; argv: string[]; setExitCode(code: number): void }> {
  const proc: unknown = Reflect.get(globalThis, "process");
  if (proc === undefined || proc === null || typeof proc !== "object")
    throw new TypeError("not running under Node.js");
  const specifier: string = "node:fs/promises";
  const fs: unknown = await import(specifier);
  const readFile = fn(fs, "readFile");
  const writeFile = fn(fs, "writeFile");
  const fetchFn = fn(globalThis, "fetch");
  const argvRaw: unknown = Reflect.get(proc, "argv");
  const envRaw: unknown = Reflect.get(proc, "env");
  const argv = Array.isArray(argvRaw)
    ? argvRaw.filter((a): a is string => typeof a === "string").slice(2)
    : [];
  const env: Record<string, string | undefined> = {};
  if (envRaw && typeof envRaw === "object") {
    for (const [k, v] of Object.entries(envRaw)) if (typeof v === "string") env[k] = v;
  }
  const out = stream(proc, "stdout");
  const err = stream(proc, "stderr");
  const fetch: FetchLike = async (url, init) => {
    const res: unknown = await fetchFn(url, init);
    const text = fn(res, "text");
    const response: FetchResponseLike = {
      ok: Reflect.get(res as object, "ok") === true,
      status: Number(Reflect.get(res as object, "status")),
      text: async () => String(await text()),
    };
    return response;
  };
  const io: CliIo = {
    stdout: (t) => void out.write(t),
    stderr: (t) => void err.write(t),
    readFile: async (p) => String(await readFile(p, "utf8")),
    writeFile: async (p, t) => {
      await writeFile(p, t, "utf8");
    },
    fetch,
    env,
  };
  return { io, argv, setExitCode: (code) => void Reflect.set(proc, "exitCode", code) };
}

const { io, argv, setExitCode } = await nodeIo();
setExitCode(await main(argv, io));
