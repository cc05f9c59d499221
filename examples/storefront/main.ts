/**
 * The demo storefront: embeds the SDK, tracks Segment e-commerce events as the visitor
 * browses, and takes part in rounds. `window.fedprofileDemo` lets tests drive it.
 */
import { createProfiler, type Profiler } from "@fedprofile/sdk";
import type { RoundOutcome } from "@fedprofile/sdk/sync";
import { CATALOGUE, type CatalogueItem } from "./catalogue";

interface DemoConfig {
  endpoint: string;
  apiKey: string;
  /** The model "Sync now" takes part in; `*` (the default) is every declared model. */
  modelId: string;
  /** The shop's Privacy Pass issuer directory, when its rounds admit by token. */
  admission?: { directoryUrl: string };
}

async function loadConfig(): Promise<DemoConfig> {
  const params = new URLSearchParams(location.search);
  const fromServer = (await fetch("./config.json").then((r) =>
    r.ok ? r.json() : {},
  )) as Partial<DemoConfig>;
  return {
    endpoint: params.get("endpoint") ?? fromServer.endpoint ?? "http://127.0.0.1:8787",
    apiKey: params.get("key") ?? fromServer.apiKey ?? "",
    modelId: params.get("model") ?? fromServer.modelId ?? "*",
    ...(fromServer.admission
      ? { admission: { directoryUrl: new URL(fromServer.admission.directoryUrl, location.href).toString() } }
      : {}),
  };
}

const byId = (id: string) => document.getElementById(id) as HTMLElement;
const cart: CatalogueItem[] = [];
let orders = 0;

function log(text: string) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  byId("log").prepend(li);
}

const nameOf = (productId: string) =>
  CATALOGUE.find((item) => item.product_id === productId)?.name ?? `item ${productId}`;

/**
 * The "Recommended for you" panel: `recommend(3)` scores on this device (tfjs), each pick with
 * its reason behind "Why am I seeing this?" (the nearest of the visitor's own items in factor
 * space, or the shop's DP popularity for a new visitor).
 */
async function renderRecommendations(profiler: Profiler) {
  const picks = await profiler.recommend(3);
  const list = byId("recommendations");
  if (picks.length === 0) return;
  byId("recommendations-empty").hidden = true;
  list.replaceChildren(
    ...picks.map((pick) => {
      const li = document.createElement("li");
      li.dataset.product = pick.productId;
      li.dataset.reason = pick.reason.kind;
      const name = document.createElement("strong");
      name.textContent = nameOf(pick.productId);
      const why = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Why am I seeing this?";
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent =
        pick.reason.kind === "similar"
          ? `Because you ${pick.reason.text.includes("bought") ? "bought" : "looked at"} ${nameOf(pick.reason.productId)}: the nearest of your own items to it in the shop's factor space.`
          : "Popular in this shop (from its differentially private purchase counts): you have no history here yet.";
      why.append(summary, reason);
      li.append(name, ` ${pick.category ?? ""}`, why);
      return li;
    }),
  );
  list.dataset.count = String(picks.length);
}

async function render(profiler: Profiler) {
  const profile = await profiler.getProfile();
  byId("profile").textContent = JSON.stringify(profile, null, 2);
  const segment = profile.segment;
  if (segment) {
    byId("segment").textContent =
      `${segment.label} (segment ${segment.id} of ${segment.modelId} v${segment.version}, distance ${segment.distance.toFixed(2)})`;
    byId("segment").dataset.segment = String(segment.id);
  }
  await renderRecommendations(profiler).catch((e: Error) => log(`recommendations failed: ${e.message}`));
}

async function main() {
  const config = await loadConfig();
  const profiler = createProfiler({
    endpoint: config.endpoint,
    // The local demo's rounds have a handful of devices: development floors, never in production.
    privacyPolicy: "development",
    // One token per round from the shop's own issuer; the cookie identifies a logged-in customer.
    ...(config.admission ? { admission: { ...config.admission, credentials: "include" as const } } : {}),
    apiKey: config.apiKey,
    dbName: "fedprofile-demo",
    currency: "GBP",
    // recommend() and fcf rounds load tfjs (a lazy chunk) on its WASM backend; the shop serves the binaries.
    tfWasmPath: "/wasm/",
  });
  profiler.on((event) => {
    if (event.type === "error") log(`error: ${event.error.message}`);
    if (event.type === "warning") log(`warning: ${event.warning.message}`);
    if (event.type === "storage") log(`storage: ${event.kind} (${event.reason})`);
    if (event.type === "model") {
      log(`model ${event.modelId} v${event.version} arrived`);
      void render(profiler);
    }
  });

  const view = (item: CatalogueItem) =>
    profiler.track("Product Viewed", {
      product_id: item.product_id,
      sku: item.sku,
      name: item.name,
      category: item.category,
      price: item.price,
    });
  const add = (item: CatalogueItem) => {
    cart.push(item);
    return profiler.track("Product Added", {
      product_id: item.product_id,
      sku: item.sku,
      name: item.name,
      category: item.category,
      price: item.price,
      quantity: 1,
    });
  };
  const checkout = () => {
    if (cart.length === 0) return Promise.resolve();
    orders += 1;
    const products = cart.splice(0).map((item) => ({
      product_id: item.product_id,
      sku: item.sku,
      name: item.name,
      category: item.category,
      price: item.price,
      quantity: 1,
    }));
    const revenue = products.reduce((sum, p) => sum + p.price, 0);
    return profiler.track("Order Completed", {
      order_id: `demo-${Date.now()}-${orders}`,
      revenue,
      currency: "GBP",
      products,
    });
  };
  const describe = (outcome: RoundOutcome | { status: string }): string =>
    "roundId" in outcome && outcome.status === "contributed"
      ? `contributed to ${outcome.roundId} (${outcome.contributions} so far, ${outcome.stage})`
      : outcome.status;
  /** Takes part in `modelId`'s open round, or (`*`) in every declared model's. */
  const sync = async (modelId = config.modelId) => {
    const outcome = await profiler.sync(modelId === "*" ? undefined : modelId);
    if (outcome.status === "synced") {
      for (const { modelId: id, outcome: o } of outcome.outcomes) log(`${id}: ${describe(o)}`);
      if (outcome.outcomes.length === 0) log("no open round for any model");
    } else log(describe(outcome));
    await render(profiler);
    return outcome;
  };

  const grid = byId("products");
  for (const item of CATALOGUE) {
    const card = document.createElement("div");
    card.className = "product";
    card.innerHTML = `<h3></h3><div class="meta"></div>`;
    (card.querySelector("h3") as HTMLElement).textContent = item.name;
    (card.querySelector(".meta") as HTMLElement).textContent = `${item.category} · £${item.price.toFixed(2)}`;
    for (const [label, action] of [
      ["View", view],
      ["Add to cart", add],
    ] as const) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.product = item.product_id;
      button.dataset.action = label === "View" ? "view" : "add";
      button.addEventListener("click", () => void action(item).then(() => render(profiler)));
      card.append(button, " ");
    }
    grid.append(card);
  }
  byId("checkout").addEventListener("click", () => void checkout().then(() => render(profiler)));
  byId("sync").addEventListener(
    "click",
    () => void sync().catch((e: Error) => log(`sync failed: ${e.message}`)),
  );
  byId("forget").addEventListener("click", () => void profiler.forget().then(() => render(profiler)));

  await profiler.ready;
  await render(profiler);
  Object.assign(window, {
    fedprofileDemo: { profiler, view, add, checkout, sync, catalogue: CATALOGUE, ready: true },
  });
  document.body.dataset.ready = "true";
}

void main();
