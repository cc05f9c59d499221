/**
 * The README's copy-paste snippet, exactly as written there, on a page in Chromium: calls made
 * before `fedprofile.min.js` has loaded are queued by the stub and replayed in order, the
 * queued events arrive in the IndexedDB store, and the network code loads lazily from
 * `fedprofile-sync.min.js` on the first `pullModel()`.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FedprofileGlobal } from "../../sdk/src/iife";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const DIST = join(ROOT, "sdk/dist");

/** The snippet between the README's `snippet:start` and `snippet:end` markers, without the fence. */
function readmeSnippet(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const block = /<!-- snippet:start -->\n```html\n([\s\S]*?)```\n<!-- snippet:end -->/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no snippet between the snippet:start/end markers");
  return block;
}

let server: Server;
let browser: Browser;
let origin = "";
let apiKey = "";
const requests: string[] = [];

beforeAll(async () => {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys("shop");
  memory.tenants.addTenant({ id: "shop", name: "Shop", createdAt: 0 }, keys);
  apiKey = keys.publishable.key;
  const app = createCoordinatorApp(memory);
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(url.pathname);
    if (url.pathname.startsWith("/v1/")) {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === "string") headers.set(name, value);
      const response = await app.fetch(new Request(url, { method: req.method ?? "GET", headers }));
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
      return;
    }
    if (url.pathname === "/static/fedprofile.min.js" || url.pathname === "/static/fedprofile-sync.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(readFileSync(join(DIST, url.pathname.slice("/static/".length))));
      return;
    }
    if (url.pathname === "/") {
      const snippet = readmeSnippet()
        .replace("https://cdn.example/@fedprofile/sdk/dist/fedprofile.min.js", "/static/fedprofile.min.js")
        .replace("https://coordinator.example", origin)
        .replace("fp_pub_<tenant>.<secret>", apiKey)
        .replace(
          "</script>",
          `fedprofile.consent({ storage: true, sync: true });
fedprofile.track("Product Added", { product_id: "22423", category: "kitchen", price: 12.75, quantity: 2 });
fedprofile.ready(async function (profiler) {
  window.readyAt = (await profiler.getProfile()).eventCount;
});
window.queuedBeforeLoad = window.fedprofile.length;
</script>`,
        );
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><html><head><meta charset="utf-8">${snippet}</head><body></body></html>`);
      return;
    }
    res.writeHead(404).end();
  }
  server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server has no TCP address");
  origin = `http://127.0.0.1:${address.port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe("the README's script-tag snippet in Chromium", () => {
  it("queues track, consent and ready before the script loads and replays them in order", {
    timeout: 60_000,
  }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${origin}/`);
    await page
      .waitForFunction(() => typeof Reflect.get(window, "readyAt") === "number", undefined, {
        timeout: 20_000,
      })
      .catch((error: unknown) => {
        throw new Error(`ready() never ran: ${errors.join("; ")}`, { cause: error });
      });
    const result = await page.evaluate(async () => {
      const api: FedprofileGlobal = Reflect.get(window as object, "fedprofile");
      const profile = await api.profiler.getProfile();
      return {
        queued: Reflect.get(window, "queuedBeforeLoad"),
        readyAt: Reflect.get(window, "readyAt"),
        initialized: api.initialized,
        eventCount: profile.eventCount,
        storage: profile.storage,
        consent: api.profiler.consentState(),
      };
    });
    // Four calls were queued by the stub: track, consent, track, ready.
    expect(result.queued).toBe(4);
    expect(result.initialized).toBe(true);
    // ready() was queued last, so when its callback ran both events were already stored.
    expect(result.readyAt).toBe(2);
    expect(result.eventCount).toBe(2);
    expect(result.storage).toBe("indexeddb");
    expect(result.consent.storage).toBe(true);
    // The events are in IndexedDB itself: a fresh page on the same origin reads them back.
    const stored = await page.evaluate(async () => {
      const names = (await indexedDB.databases()).map((d) => d.name ?? "");
      return names.length;
    });
    expect(stored).toBeGreaterThan(0);
    expect(requests).toContain("/static/fedprofile.min.js");
    expect(requests).not.toContain("/static/fedprofile-sync.min.js");
    expect(errors).toEqual([]);

    // The first network call loads the sync bundle from beside the script, then reaches the coordinator.
    const model = await page.evaluate(async () => {
      const api: FedprofileGlobal = Reflect.get(window as object, "fedprofile");
      return api.profiler.pullModel();
    });
    expect(model).toBeNull();
    expect(requests).toContain("/static/fedprofile-sync.min.js");
    expect(requests.some((r) => r.startsWith("/v1/models/"))).toBe(true);
    await context.close();
  });
});
