/**
 * Drives real Chromium tabs (playwright-core, Debian's chromium) against a page that embeds
 * the SDK core, bundled by esbuild and served from 127.0.0.1 by node:http, next to a real
 * coordinator app (memory ports) for the sync routes. Used by the `*.chromium.test.ts` files,
 * which need page lifecycles (reload, close, two tabs) that in-page tests cannot have.
 *
 * Every server and browser started here is stopped by `close()`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { build } from "esbuild";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type * as Core from "../../sdk/src/core";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";

declare global {
  /** What the test page exposes (see `page-entry.ts`). */
  var fedprofile: typeof Core;
}

/** A running harness. */
export interface Harness {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  browser: Browser;
  /** The publishable key of the coordinator's one tenant. */
  apiKey: string;
  /** Its secret key (operator routes: open rounds). */
  secretKey: string;
  /** Paths of coordinator (`/v1/...`) requests received, in order. */
  coordinatorRequests: string[];
  /** Uncaught errors of any page opened through `open` (tests assert it stays empty). */
  pageErrors: string[];
  /** Opens a tab on `path` (default `/`) in `context`, recording its uncaught errors. */
  open(context: BrowserContext, path?: string): Promise<Page>;
  close(): Promise<void>;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>fedprofile test page</title>
<script type="module">import "/sdk.js"; document.body.dataset.ready = "true";</script><body></body>`;

/** Bundles the SDK core for the page: ESM with code splitting, as a storefront would ship it. */
async function bundle(): Promise<Map<string, string>> {
  const result = await build({
    entryPoints: { sdk: join(import.meta.dirname, "page-entry.ts") },
    bundle: true,
    format: "esm",
    splitting: true,
    minify: true,
    target: "es2022",
    outdir: "/virtual",
    write: false,
    logLevel: "silent",
  });
  return new Map(result.outputFiles.map((file) => [`/${file.path.split("/").pop()}`, file.text]));
}

/** Starts the server and Chromium. */
export async function startHarness(): Promise<Harness> {
  const files = await bundle();
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("shop");
  memory.tenants.addTenant({ id: "shop", name: "Shop", createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  const coordinatorRequests: string[] = [];
  const pageErrors: string[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/v1/")) {
      coordinatorRequests.push(url.pathname);
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === "string") headers.set(name, value);
      const response = await app.fetch(
        new Request(url, {
          method: req.method ?? "GET",
          headers,
          ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: Buffer.concat(chunks) }),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
      return;
    }
    const script = files.get(url.pathname);
    if (script !== undefined) {
      // Sandboxed pages have an opaque origin, so their module scripts are cross-origin loads.
      res.writeHead(200, { "content-type": "text/javascript", "access-control-allow-origin": "*" });
      res.end(script);
      return;
    }
    if (url.pathname === "/" || url.pathname === "/other" || url.pathname === "/sandboxed") {
      res.writeHead(200, {
        "content-type": "text/html",
        // Cross-origin isolation gives performance.now() 5 µs resolution (the track() benchmark).
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
        ...(url.pathname === "/sandboxed" ? { "content-security-policy": "sandbox allow-scripts" } : {}),
      });
      res.end(PAGE);
      return;
    }
    res.writeHead(404).end();
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server has no TCP address");
  const origin = `http://127.0.0.1:${address.port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    headless: true,
  });

  return {
    origin,
    browser,
    apiKey: keys.publishable.key,
    secretKey: keys.secret.key,
    coordinatorRequests,
    pageErrors,
    async open(context, path = "/") {
      const page = await context.newPage();
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(`${origin}${path}`);
      await page.waitForSelector("body[data-ready=true]", { state: "attached" });
      return page;
    },
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
