/**
 * Serves the examples on 127.0.0.1: the storefront page, its esbuild bundle of the SDK, and a
 * `config.json` naming the coordinator and the publishable key; and the compliance dashboard at
 * `/compliance/` (its bundle verifies the privacy ledger in the browser), and tfjs' WASM backend
 * binaries at `/wasm/` for the storefront's on-device recommendations.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import {
  createIssuerHandler,
  ISSUER_DIRECTORY_PATH,
  type TokenIssuer,
  type TokenRequester,
} from "@fedprofile/coordinator/admission";
import { LEDGER_KEYS_PATH, publicKeyFromHex, publishedKey } from "@fedprofile/coordinator/ledger";
import { build } from "esbuild";
import { REPO_ROOT } from "../edge/scripts/local-dev";

// From the repository root, not this module's URL: the built CLI (`fedprofile simulate`) runs a
// bundled copy of this file from cli/dist/.
const EXAMPLES = join(REPO_ROOT, "examples");
/** tfjs-backend-wasm's binaries (plain and SIMD; the threaded one needs cross-origin isolation). */
const WASM_DIR = join(REPO_ROOT, "node_modules/@tensorflow/tfjs-backend-wasm/dist");
const WASM_FILES = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"];

export interface ExampleServer {
  url: string;
  /** Bytes of the storefront bundle a page loads up front (minified; tfjs is a lazy chunk). */
  bundleBytes: number;
  /** Bytes of the compliance dashboard bundle (minified). */
  complianceBundleBytes: number;
  close(): Promise<void>;
}

/**
 * Bundles the storefront for browsers (the same way a storefront would ship the SDK): `app.js`
 * and, split off, the chunks the SDK imports lazily (sync, and tfjs for recommendations), each
 * served at `/<name>`.
 */
export async function bundleStorefront(): Promise<{ app: string; chunks: Map<string, string> }> {
  const files = await bundleExample("storefront/main.ts", true);
  const app = files.get("app.js");
  if (app === undefined) throw new Error("esbuild produced no app.js");
  files.delete("app.js");
  return { app, chunks: files };
}

/** Bundles the compliance dashboard for browsers (the ledger verifier, wire schemas and its page code). */
export async function bundleCompliance(): Promise<string> {
  const app = (await bundleExample("compliance/main.ts", false)).get("app.js");
  if (app === undefined) throw new Error("esbuild produced no app.js");
  return app;
}

/** Output file name → text; the entry is `app.js`. */
async function bundleExample(entry: string, splitting: boolean): Promise<Map<string, string>> {
  const result = await build({
    entryPoints: { app: join(EXAMPLES, entry) },
    outdir: "/out",
    splitting,
    chunkNames: "chunk-[hash]",
    // The storefront bundles the workspace packages from src/ (their `source` export condition).
    conditions: ["source"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    logLevel: "silent",
  });
  return new Map(result.outputFiles.map((f) => [f.path.replace(/^\/out\//, ""), f.text]));
}

export async function startExampleServer(options: {
  config: { endpoint: string; apiKey: string; modelId?: string };
  port?: number;
  /**
   * The coordinator's ledger key (hex), published with its fingerprint at
   * `/.well-known/fedprofile-ledger-keys.json` on the shop's origin (SPEC.md §6): auditors pin
   * it from here, not from the coordinator's own API.
   */
  ledgerPublicKey?: string;
  /**
   * The shop's Privacy Pass issuer (its backend holds the secret key): served at
   * `/.well-known/private-token-issuer-directory` and `/token-request`, and named in `config.json`
   * so the storefront fetches a token before each join. A request with `x-demo-customer: <id>`
   * stands for a logged-in customer (a real shop reads its session cookie); any other is an
   * anonymous visitor, rate-limited by its address.
   */
  issuer?: TokenIssuer;
}): Promise<ExampleServer> {
  const [storefront, html, complianceApp, complianceHtml, ...wasm] = await Promise.all([
    bundleStorefront(),
    readFile(join(EXAMPLES, "storefront/index.html"), "utf8"),
    bundleCompliance(),
    readFile(join(EXAMPLES, "compliance/index.html"), "utf8"),
    ...WASM_FILES.map((f) => readFile(join(WASM_DIR, f))),
  ]);
  const binaries = new Map(WASM_FILES.map((f, i) => [`/wasm/${f}`, wasm[i] as Buffer]));
  const app = storefront.app;
  const config = JSON.stringify({
    modelId: "*",
    ...options.config,
    ...(options.issuer ? { admission: { directoryUrl: ISSUER_DIRECTORY_PATH } } : {}),
  });
  const issue = options.issuer
    ? createIssuerHandler(options.issuer, (request): TokenRequester => {
        const customer = request.headers.get("x-demo-customer");
        return customer
          ? { customerId: customer }
          : { anonymous: request.headers.get("x-client-address") ?? "" };
      })
    : null;
  const routes: Record<string, [string, string]> = {
    "/": ["text/html; charset=utf-8", html],
    "/index.html": ["text/html; charset=utf-8", html],
    "/app.js": ["text/javascript; charset=utf-8", app],
    "/config.json": ["application/json", config],
    "/compliance/": ["text/html; charset=utf-8", complianceHtml],
    "/compliance/index.html": ["text/html; charset=utf-8", complianceHtml],
    "/compliance/app.js": ["text/javascript; charset=utf-8", complianceApp],
  };
  for (const [name, text] of storefront.chunks) routes[`/${name}`] = ["text/javascript; charset=utf-8", text];
  if (options.ledgerPublicKey) {
    const doc = {
      v: 1,
      type: "fedprofile-ledger-keys",
      keys: [publishedKey(publicKeyFromHex(options.ledgerPublicKey))],
    };
    routes[LEDGER_KEYS_PATH] = ["application/json", `${JSON.stringify(doc, null, 2)}\n`];
  }
  const server: Server = createServer(async (request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (issue && (path === ISSUER_DIRECTORY_PATH || path === "/token-request")) {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(Buffer.from(chunk));
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers))
        if (typeof value === "string" && name !== "x-client-address") headers.set(name, value);
      headers.set("x-client-address", request.socket.remoteAddress ?? "");
      const body = chunks.length > 0 ? Buffer.concat(chunks) : null;
      const answer = await issue(
        new Request(`http://127.0.0.1${request.url ?? "/"}`, {
          method: request.method ?? "GET",
          headers,
          ...(body ? { body } : {}),
        }),
      );
      if (!answer) return void response.writeHead(404).end();
      response.writeHead(answer.status, Object.fromEntries(answer.headers));
      response.end(Buffer.from(await answer.arrayBuffer()));
      return;
    }
    // The dashboard loads `./app.js`: without the slash that would be the storefront's bundle.
    if (path === "/compliance") {
      response.writeHead(308, { location: "/compliance/" }).end();
      return;
    }
    const binary = binaries.get(path);
    if (binary) {
      response
        .writeHead(200, { "content-type": "application/wasm", "cache-control": "no-store" })
        .end(binary);
      return;
    }
    const route = routes[path];
    if (!route) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    response.writeHead(200, { "content-type": route[0], "cache-control": "no-store" }).end(route[1]);
  });
  await new Promise<void>((done) => server.listen(options.port ?? 0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    bundleBytes: Buffer.byteLength(app),
    complianceBundleBytes: Buffer.byteLength(complianceApp),
    close: () => new Promise((done) => server.close(() => done())),
  };
}
