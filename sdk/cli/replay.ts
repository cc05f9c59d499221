/**
 * `fedprofile replay`: feeds UCI Online Retail through the SDK's own code path (validation,
 * accumulators, store, profile), one simulated device per customer, and writes the features.
 *
 *   npx fedprofile replay --data examples/data/online_retail.csv.gz \
 *     --as-of 2011-12-10T00:00:00Z --out features.csv [--store memory|fake-indexeddb] [--reference]
 *
 * Mapping rules (issue 3):
 * - rows without CustomerID are skipped, and so are rows with UnitPrice ≤ 0;
 * - a non-`C` invoice is one Order Completed: `order_id` = InvoiceNo, one product per line
 *   (`product_id` = StockCode, `price` = UnitPrice, `quantity` = Quantity, `category` from the
 *   Description by `taxonomy.ts`), at InvoiceDate read as UTC (the earliest of its lines: 31
 *   invoices span two minutes);
 * - a `C` invoice's lines are refunds (issue 14: refunds are netted per order). The data set does
 *   not say which invoice a cancellation line undoes, so each line goes to the customer's latest
 *   invoice at or before it that has the same StockCode (ties: the later InvoiceNo). The lines of
 *   one `C` invoice matched to one order make one Order Refunded of that `order_id`, with
 *   `total` = Σ |Quantity| × UnitPrice and its lines as products with |Quantity|. Lines with no
 *   such invoice (their purchase predates the data) are tracked with the `C` invoice as
 *   `order_id`, and the SDK ignores them as refunds of an unknown order (`ignored` below).
 * A customer's events are tracked in time order (ties by InvoiceNo, then matched order). The
 * storefront's currency is GBP, the data set's. One CSV row is written per customer with at
 * least one Order Completed.
 */
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createGunzip } from "node:zlib";
import {
  createProfiler,
  type Product,
  type Profile,
  type ProfilerOptions,
  VECTOR_FIELDS,
  type VectorField,
  type VectorReference,
} from "../src/core";
import { transformedFields } from "../src/features/vector";
import { type HistoryEvent, type HistoryImport, importHistory } from "../src/history";
import { CsvParser, csvField } from "./csv";
import { CATEGORIES, categorise } from "./taxonomy";

const HEADER = [
  "InvoiceNo",
  "StockCode",
  "Description",
  "Quantity",
  "InvoiceDate",
  "UnitPrice",
  "CustomerID",
];
const DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** One invoice of one customer, as read from the file. */
interface Invoice {
  invoiceNo: string;
  refund: boolean;
  t: number;
  products: Product[];
}

/** Counts from reading the file. */
export interface ReadStats {
  rows: number;
  skippedNoCustomer: number;
  skippedPrice: number;
  keptLines: number;
}

/** Options of `replay`. */
export interface ReplayOptions {
  data: string;
  asOf: number;
  store: "memory" | "fake-indexeddb";
  onProgress?: (done: number, total: number, events: number) => void;
}

/** One event to track for a customer: `timestamp` (for `importHistory`) and `t` are the invoice time. */
interface ReplayEvent extends HistoryEvent {
  name: "Order Completed" | "Order Refunded";
  sortKey: string;
  t: number;
  timestamp: number;
  properties: { order_id: string; total?: number; products: Product[] };
}

/**
 * A customer's events: one Order Completed per invoice, and the refund lines of each `C`
 * invoice grouped by the order they are matched to (see the module comment).
 */
export function customerEvents(invoices: Iterable<Invoice>): ReplayEvent[] {
  const byTime = [...invoices].sort((a, b) => a.t - b.t || (a.invoiceNo < b.invoiceNo ? -1 : 1));
  const orders = byTime.filter((invoice) => !invoice.refund);
  const events: ReplayEvent[] = orders.map((order) => ({
    name: "Order Completed",
    sortKey: order.invoiceNo,
    t: order.t,
    timestamp: order.t,
    properties: { order_id: order.invoiceNo, products: order.products },
  }));
  const credits = byTime.filter((invoice) => invoice.refund);
  // Each product's orders in time order, so a credit line looks only at the orders that have it.
  const ordersOf = new Map<string | undefined, Invoice[]>();
  if (credits.length > 0) {
    for (const order of orders) {
      for (const product of order.products) {
        const list = ordersOf.get(product.product_id);
        if (!list) ordersOf.set(product.product_id, [order]);
        else if (list.at(-1) !== order) list.push(order);
      }
    }
  }
  for (const credit of credits) {
    const groups = new Map<string, { products: Product[]; total: number }>();
    for (const line of credit.products) {
      let match: Invoice | undefined;
      for (const order of ordersOf.get(line.product_id) ?? []) {
        if (order.t > credit.t) break;
        match = order;
      }
      const orderId = match?.invoiceNo ?? credit.invoiceNo;
      const group = groups.get(orderId) ?? { products: [], total: 0 };
      groups.set(orderId, group);
      group.products.push(line);
      group.total += (line.quantity ?? 0) * (line.price ?? 0);
    }
    for (const [orderId, group] of groups) {
      events.push({
        name: "Order Refunded",
        sortKey: `${credit.invoiceNo}/${orderId}`,
        t: credit.t,
        timestamp: credit.t,
        properties: { order_id: orderId, total: group.total, products: group.products },
      });
    }
  }
  return events.sort((a, b) => a.t - b.t || (a.sortKey < b.sortKey ? -1 : 1));
}

/** What `replay` produced. */
export interface ReplayReport {
  read: ReadStats;
  customers: number;
  /** Events kept by the SDK. */
  events: number;
  /** Refunds the SDK ignored, by reason (unknown order, duplicate). */
  ignored: Record<string, number>;
  /** Devices per storage backend they ended on (a fallback to memory would show here). */
  backends: Record<"indexeddb" | "memory", number>;
  /** One entry per customer with at least one order, by customer id. */
  profiles: Array<{ customerId: string; profile: Profile }>;
  readMs: number;
  replayMs: number;
  /** CPU time of the process (all its threads: GC helpers and the zlib pool too) in each phase, ms. */
  readCpuMs: number;
  replayCpuMs: number;
}

function parseUtc(value: string): number {
  const m = DATE.exec(value);
  if (!m) throw new Error(`bad InvoiceDate ${JSON.stringify(value)}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Streams the gzip'd CSV and groups the kept lines into invoices per customer. */
export async function readInvoices(
  path: string,
): Promise<{ customers: Map<string, Map<string, Invoice>>; stats: ReadStats }> {
  const customers = new Map<string, Map<string, Invoice>>();
  const stats: ReadStats = { rows: 0, skippedNoCustomer: 0, skippedPrice: 0, keptLines: 0 };
  let header = true;
  // Column positions (InvoiceNo, StockCode, ... as in HEADER), read off the header once.
  const at = new Int32Array(HEADER.length).fill(-1);
  const times = new Map<string, number>();
  const categories = new Map<string, string>();
  const parser = new CsvParser((record) => {
    if (header) {
      header = false;
      const columns = HEADER.map((name) => record.indexOf(name));
      const missing = HEADER.filter((_, i) => columns[i] === -1);
      if (missing.length > 0) throw new Error(`${path}: missing columns ${missing.join(", ")}`);
      at.set(columns);
      return;
    }
    stats.rows += 1;
    const customerId = (record[at[6] ?? -1] ?? "").trim();
    if (!customerId) {
      stats.skippedNoCustomer += 1;
      return;
    }
    const price = Number(record[at[5] ?? -1] ?? "");
    if (!(price > 0)) {
      stats.skippedPrice += 1;
      return;
    }
    stats.keptLines += 1;
    const quantity = Number(record[at[3] ?? -1] ?? "");
    const no = record[at[0] ?? -1] ?? "";
    const refund = no.startsWith("C");
    // 23,000 distinct times and 4,000 descriptions over 400,000 lines: each is read once.
    const date = record[at[4] ?? -1] ?? "";
    let t = times.get(date);
    if (t === undefined) {
      t = parseUtc(date);
      times.set(date, t);
    }
    const description = record[at[2] ?? -1] ?? "";
    let category = categories.get(description);
    if (category === undefined) {
      category = categorise(description);
      categories.set(description, category);
    }
    let invoices = customers.get(customerId);
    if (!invoices) {
      invoices = new Map<string, Invoice>();
      customers.set(customerId, invoices);
    }
    let invoice = invoices.get(no);
    if (!invoice) {
      invoice = { invoiceNo: no, refund, t, products: [] };
      invoices.set(no, invoice);
    }
    if (t < invoice.t) invoice.t = t;
    const units = refund ? Math.abs(quantity) : quantity;
    invoice.products.push({ product_id: record[at[1] ?? -1] ?? "", category, price, quantity: units });
  });
  // 1 MB chunks rather than 64 KB: a sixteenth of the chunks to decode and hand to the parser.
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  const stream = createGunzip({ chunkSize: 1 << 20 });
  source.on("error", (error) => stream.destroy(error)); // pipe() alone would not forward it
  source.pipe(stream);
  stream.setEncoding("utf8");
  for await (const chunk of stream) {
    if (typeof chunk !== "string") throw new TypeError("expected text chunks");
    parser.push(chunk);
  }
  parser.end();
  return { customers, stats };
}

function deviceBytes(customerId: string): (length: number) => Uint8Array {
  // Deterministic tab ids make the replay reproducible run to run.
  return (length) => Uint8Array.from({ length }, (_, i) => customerId.charCodeAt(i % customerId.length) ^ i);
}

/** The profiler options of one simulated device. */
export function deviceOptions(customerId: string, asOf: number): ProfilerOptions {
  return {
    dbName: `replay-${customerId}`,
    now: () => asOf,
    randomBytes: deviceBytes(customerId),
    // Every category's share goes to the CSV, not only the default top 5.
    features: { topK: CATEGORIES.length },
    flushIntervalMs: 3_600_000,
    maxBatch: 100_000,
    currency: "GBP",
    strict: true,
  };
}

/** One profiler on IndexedDB, one `track()` per event, then its profile; the database is erased. */
async function trackAll(
  device: ProfilerOptions,
  events: readonly HistoryEvent[],
  asOf: number,
): Promise<HistoryImport> {
  const profiler = createProfiler({ ...device, storage: "indexeddb" });
  const results = [];
  for (const event of events) {
    results.push(await profiler.track(event.name, event.properties, { timestamp: event.timestamp }));
  }
  await profiler.flush();
  const profile = await profiler.getProfile({ asOf });
  await profiler.forget();
  await profiler.close();
  return { profile, results };
}

/** Replays every customer: one simulated device each, through the SDK's history import (memory) or a profiler (IndexedDB). */
export async function replay(options: ReplayOptions): Promise<ReplayReport> {
  const cpuMs = (since?: NodeJS.CpuUsage) => {
    const { user, system } = process.cpuUsage(since);
    return (user + system) / 1000;
  };
  const readCpu = process.cpuUsage();
  const readStart = performance.now();
  const { customers, stats } = await readInvoices(options.data);
  const readMs = performance.now() - readStart;
  const readCpuMs = cpuMs(readCpu);
  if (options.store === "fake-indexeddb") {
    // Node has no IndexedDB: install fake-indexeddb's (an in-memory implementation of the spec).
    // (what `fake-indexeddb/auto` does; idb needs the classes too, for its instanceof checks).
    const { forceCloseDatabase: _, default: __, ...globals } = await import("fake-indexeddb");
    Object.assign(globalThis, globals);
  }

  const ids = [...customers.keys()].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1));
  const profiles: ReplayReport["profiles"] = [];
  let kept = 0;
  const ignored: Record<string, number> = {};
  const backends = { indexeddb: 0, memory: 0 };
  const replayCpu = process.cpuUsage();
  const replayStart = performance.now();
  for (const [index, customerId] of ids.entries()) {
    const events = customerEvents(customers.get(customerId)?.values() ?? []);
    // Done with its invoices: a smaller live heap is less for every later GC to mark.
    customers.delete(customerId);
    const device = deviceOptions(customerId, options.asOf);
    // Memory: the SDK's history import (one fold per event, no profiler per device). IndexedDB:
    // a profiler per device and one `track()` per event, through a real store, so the two paths
    // are compared on every run of the CLI test.
    const { profile, results } =
      options.store === "memory"
        ? await importHistory(events, { ...device, asOf: options.asOf })
        : await trackAll(device, events, options.asOf);
    let orders = 0;
    for (const [i, result] of results.entries()) {
      if (!result.kept) {
        ignored[result.reason] = (ignored[result.reason] ?? 0) + 1;
        continue;
      }
      if (events[i]?.name === "Order Completed") orders += 1;
      kept += 1;
    }
    backends[profile.storage] += 1;
    if (orders > 0) profiles.push({ customerId, profile });
    options.onProgress?.(index + 1, ids.length, kept);
  }
  return {
    read: stats,
    customers: ids.length,
    events: kept,
    ignored,
    backends,
    profiles,
    readMs,
    replayMs: performance.now() - replayStart,
    readCpuMs,
    replayCpuMs: cpuMs(replayCpu),
  };
}

/** CSV columns, in order (affinity shares per taxonomy category, then the vector). */
export function csvColumns(): string[] {
  return [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "revenue",
    "refunds",
    "event_count",
    "avg_unit_price",
    "price_band",
    "activity",
    "top_category",
    "tags",
    ...CATEGORIES.map((category) => `affinity_${category}`),
    ...VECTOR_FIELDS.map((field) => `z_${field}`),
  ];
}

const num = (value: number | null) => (value === null ? "" : String(value));

function csvRow(customerId: string, profile: Profile): string {
  const f = profile.features;
  const shares = new Map(f.affinities.map((a) => [a.category, a.share]));
  const cells = [
    customerId,
    num(f.recencyDays),
    num(f.frequency),
    num(f.monetary),
    num(f.tenureDays),
    num(f.avgOrderValue),
    num(f.revenue),
    num(f.refunds),
    num(f.eventCount),
    num(f.avgUnitPrice),
    f.priceBand ?? "",
    num(f.activity),
    f.affinities[0]?.category ?? "",
    profile.tags.join("|"),
    ...CATEGORIES.map((category) => num(shares.get(category) ?? 0)),
    ...profile.vector.map(num),
  ];
  return cells.map(csvField).join(",");
}

/** Mean and (population) standard deviation of each transformed vector field. */
export function referenceStats(profiles: ReplayReport["profiles"]): VectorReference {
  const stat = (field: VectorField) => {
    const values = profiles.flatMap(({ profile }) => {
      const value = transformedFields(profile.features)[field];
      return value === null ? [] : [value];
    });
    const n = Math.max(values.length, 1);
    const mean = values.reduce((s, v) => s + v, 0) / n;
    return { mean, sd: Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n) };
  };
  return {
    recency: stat("recency"),
    frequency: stat("frequency"),
    monetary: stat("monetary"),
    avg_order_value: stat("avg_order_value"),
    tenure: stat("tenure"),
    activity: stat("activity"),
    avg_unit_price: stat("avg_unit_price"),
    refund_share: stat("refund_share"),
    view_to_purchase: stat("view_to_purchase"),
  };
}

const USAGE = `usage: fedprofile replay --data <online_retail.csv.gz> --as-of <ISO time> --out <features.csv>
                         [--store memory|fake-indexeddb] [--reference] [--quiet]`;

/** CLI entry: resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  function parse(args: string[]) {
    return parseArgs({
      args,
      options: {
        data: { type: "string" },
        "as-of": { type: "string" },
        out: { type: "string" },
        store: { type: "string", default: "memory" },
        reference: { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    });
  }
  try {
    values = parse(argv).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const asOf = Date.parse(values["as-of"] ?? "");
  const store = values.store;
  if (
    !values.data ||
    !values.out ||
    !Number.isFinite(asOf) ||
    (store !== "memory" && store !== "fake-indexeddb")
  ) {
    console.error(USAGE);
    return 2;
  }
  const quiet = values.quiet;
  const tty = process.stderr.isTTY;
  let lastShown = -1;
  const onProgress = (done: number, total: number, events: number) => {
    if (quiet) return;
    const percent = Math.floor((done / total) * 100);
    if (tty) {
      if (percent !== lastShown || done === total) {
        process.stderr.write(`\rreplay: ${done}/${total} customers, ${events} events (${percent}%)`);
        if (done === total) process.stderr.write("\n");
      }
    } else if (percent >= lastShown + 10 || done === total) {
      process.stderr.write(`replay: ${done}/${total} customers, ${events} events (${percent}%)\n`);
    } else return;
    lastShown = percent;
  };
  try {
    if (!quiet) process.stderr.write(`replay: reading ${values.data}\n`);
    const report = await replay({ data: values.data, asOf, store, onProgress });
    const lines = [
      csvColumns().join(","),
      ...report.profiles.map(({ customerId, profile }) => csvRow(customerId, profile)),
    ];
    await writeFile(values.out, `${lines.join("\n")}\n`);
    const eventsPerSecond = report.events / (report.replayMs / 1000);
    const { read } = report;
    console.log(
      [
        `read ${read.rows} rows in ${(report.readMs / 1000).toFixed(2)} s: kept ${read.keptLines} lines ` +
          `(skipped ${read.skippedNoCustomer} without CustomerID, ${read.skippedPrice} with UnitPrice ≤ 0)`,
        `replayed ${report.events} events for ${report.customers} customers (${store} store) in ` +
          `${(report.replayMs / 1000).toFixed(2)} s: ${Math.round(eventsPerSecond).toLocaleString("en")} events/s, ` +
          `${Math.round(read.keptLines / (report.replayMs / 1000)).toLocaleString("en")} product lines/s`,
        `refunds ignored: ${report.ignored.unknown_order ?? 0} of orders before the data starts, ` +
          `${report.ignored.duplicate_refund ?? 0} duplicates`,
        `devices by storage backend: ${report.backends.indexeddb} IndexedDB, ${report.backends.memory} memory`,
        `wrote ${report.profiles.length} customers with at least one order to ${values.out}`,
      ].join("\n"),
    );
    if (values.reference) console.log(JSON.stringify(referenceStats(report.profiles), null, 2));
    return 0;
  } catch (error) {
    console.error(`replay failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
