/**
 * PRG throughput for SecAgg masks, side by side, in node and in Chromium:
 * WebCrypto AES-CTR (128 and 256), BLAKE3 XOF (@noble/hashes) and the XSalsa20 keystream
 * (tweetnacl). Each run expands seeds into d = 65,536-word masks (256 KiB each, the size the
 * server regenerates per survivor and per dropped neighbour) until `BYTES_PER_RUN` bytes; the
 * table reports the median MB/s (10^6 bytes/s) of `RUNS` runs.
 *
 * Run: `npx tsx bench/prg.ts [--quick]`. Writes `bench/results/prg.json`.
 *
 * This file also exports `runInChromium`, the harness `bench/secagg.ts` reuses: esbuild bundles
 * an entry, a throwaway HTTP server on 127.0.0.1 serves it (WebCrypto needs a secure context,
 * which loopback is), and playwright-core drives Debian's Chromium with the project's flags.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { measurePrgThroughput, type PrgThroughput } from "@fedprofile/protocol/secagg";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Bundles `source` (TypeScript, resolved from the repository root) with esbuild, serves it on
 * 127.0.0.1, opens it in Chromium and returns `await window.__bench()`. The server and the
 * browser are always stopped, by handle, before returning.
 */
export async function runInChromium<T>(source: string, timeoutMs = 600_000): Promise<T> {
  const bundle = await build({
    stdin: { contents: source, resolveDir: join(ROOT, "bench"), loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    minify: true,
  });
  const js = bundle.outputFiles[0]?.text ?? "";
  const html = `<!doctype html><meta charset="utf-8"><title>bench</title><script type="module" src="/bench.js"></script>`;
  const server = createServer((req, res) => {
    if (req.url === "/bench.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(js);
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(html);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    headless: true,
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => console.error("[chromium]", error));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => "__bench" in window, undefined, { timeout: 30_000 });
    page.setDefaultTimeout(timeoutMs);
    return (await page.evaluate("window.__bench()")) as T;
  } finally {
    await browser.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function table(node: PrgThroughput[], browser: PrgThroughput[]): string {
  const lines = ["| PRG | node MB/s | Chromium MB/s |", "|---|---:|---:|"];
  for (const row of node) {
    const b = browser.find((r) => r.prg === row.prg);
    lines.push(`| ${row.prg} | ${row.mbPerSecond.toFixed(0)} | ${b ? b.mbPerSecond.toFixed(0) : "n/a"} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const runs = quick ? 3 : 7;
  const bytesPerRun = quick ? 8e6 : 64e6;
  console.log(`PRG throughput: ${runs} runs of ${bytesPerRun / 1e6} MB in 256 KiB masks, median`);
  const node = await measurePrgThroughput(runs, bytesPerRun);
  const browser = await runInChromium<PrgThroughput[]>(
    `import { measurePrgThroughput } from "@fedprofile/protocol/secagg";
     (window as unknown as { __bench: () => Promise<unknown> }).__bench = () => measurePrgThroughput(${runs}, ${bytesPerRun});`,
  );
  console.log(table(node, browser));
  const best = (rows: PrgThroughput[]) => rows.reduce((a, b) => (b.mbPerSecond > a.mbPerSecond ? b : a)).prg;
  console.log(`fastest: node ${best(node)}, Chromium ${best(browser)}`);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  const out = {
    bench: "prg",
    date: new Date().toISOString(),
    node: process.version,
    chromium: CHROMIUM_PATH,
    runs,
    bytesPerRun,
    maskBytes: 65536 * 4,
    results: { node, chromium: browser },
  };
  writeFileSync(join(ROOT, "bench/results/prg.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/prg.json");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
