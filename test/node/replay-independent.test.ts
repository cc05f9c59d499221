/**
 * The replay (`fedprofile replay`, which runs every invoice through the SDK's validation,
 * accumulators, store and profile) against an independent recomputation of the rules
 * by plain aggregation over the file: its own gunzip, its own CSV split, its own keyword
 * matcher (regular expressions over the shared keyword table, which is data, not code), and
 * direct sums instead of incremental accumulators. Every figure of all 4,338 customers must
 * agree within a relative error of 1e-9.
 *
 * The rules recomputed (issues 3 and 14): an order's value is Σ Quantity × UnitPrice of its
 * lines; each cancellation line (`C` invoice) refunds the customer's latest invoice at or before
 * it with the same StockCode (ties: the later InvoiceNo), or nothing if there is none; the lines
 * of one `C` invoice refunding one order are one refund, and an identical refund of the same
 * order counts once; an order's refunds are capped at its value. The price level is per unit.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../sdk/cli/replay";
import { TAXONOMY } from "../../sdk/cli/taxonomy";

const DATA = join(import.meta.dirname, "../../examples/data/online_retail.csv.gz");
const AS_OF = "2011-12-10T00:00:00Z";
const asOf = Date.parse(AS_OF);
const DAY = 86_400_000;
const HALF_LIFE_DAYS = 30;
const ACTIVITY_HALF_LIFE_DAYS = 7;
const PURCHASE_WEIGHT = 5;

/** Splits RFC 4180 text with one regular expression (LF line ends, as the data set has). */
function splitCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  const token = /("((?:[^"]|"")*)"|[^,\n"]*)(,|\n|$)/gy;
  while (token.lastIndex < text.length) {
    const m = token.exec(text);
    if (!m) throw new Error(`unparsable CSV at offset ${token.lastIndex}`);
    row.push(m[2] !== undefined ? m[2].replace(/""/g, '"') : (m[1] ?? ""));
    if (m[3] !== ",") {
      rows.push(row);
      row = [];
      if (m[3] === "") break;
    }
  }
  return rows;
}

const matchers = TAXONOMY.map(
  ([category, words]) =>
    [category, new RegExp(`(?:^|[^A-Z0-9])(?:${words.join("|")})(?:[^A-Z0-9]|$)`)] as const,
);
const categoryOf = (description: string) =>
  matchers.find(([, re]) => re.test(description.toUpperCase()))?.[0] ?? "other";

interface Line {
  stock: string;
  category: string;
  price: number;
  quantity: number;
}

interface Expected {
  orders: Map<string, { t: number; revenue: number; lines: Line[] }>;
  credits: Map<string, { t: number; lines: Line[] }>;
}

function recompute(): Map<string, Expected> {
  const [header, ...rows] = splitCsv(gunzipSync(readFileSync(DATA)).toString("utf8"));
  const col = (name: string) => {
    const i = header?.indexOf(name) ?? -1;
    if (i < 0) throw new Error(`no column ${name}`);
    return i;
  };
  const [INV, STOCK, DESC, QTY, DATE, PRICE, CUST] = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
  ].map(col);
  const customers = new Map<string, Expected>();
  for (const row of rows) {
    const customer = row[CUST!] ?? "";
    const price = Number.parseFloat(row[PRICE!] ?? "");
    if (customer === "" || !(price > 0)) continue;
    const t = new Date(`${(row[DATE!] ?? "").replace(" ", "T")}Z`).getTime();
    const quantity = Number.parseInt(row[QTY!] ?? "", 10);
    const invoice = row[INV!] ?? "";
    const c = customers.get(customer) ?? { orders: new Map(), credits: new Map() };
    customers.set(customer, c);
    const line = { stock: row[STOCK!] ?? "", category: categoryOf(row[DESC!] ?? ""), price, quantity };
    if (invoice.startsWith("C")) {
      const credit = c.credits.get(invoice) ?? { t, lines: [] };
      credit.t = Math.min(credit.t, t);
      credit.lines.push({ ...line, quantity: Math.abs(quantity) });
      c.credits.set(invoice, credit);
    } else {
      const order = c.orders.get(invoice) ?? { t, revenue: 0, lines: [] };
      order.t = Math.min(order.t, t);
      order.revenue += quantity * price;
      order.lines.push(line);
      c.orders.set(invoice, order);
    }
  }
  return customers;
}

/** The refunds each order receives (distinct ones only) and the times of the refunds counted. */
function matchRefunds(c: Expected): { refunded: Map<string, number>; times: number[] } {
  const refunded = new Map<string, number>();
  const seen = new Set<string>();
  const times: number[] = [];
  for (const credit of c.credits.values()) {
    const groups = new Map<string, Line[]>();
    for (const line of credit.lines) {
      let best: [string, number] | undefined;
      for (const [orderNo, order] of c.orders) {
        if (order.t > credit.t || !order.lines.some((l) => l.stock === line.stock)) continue;
        if (!best || order.t > best[1] || (order.t === best[1] && orderNo > best[0]))
          best = [orderNo, order.t];
      }
      if (!best) continue; // its purchase predates the data: a refund of an unknown order
      groups.set(best[0], [...(groups.get(best[0]) ?? []), line]);
    }
    for (const [orderNo, lines] of groups) {
      const total = lines.reduce((s, l) => s + l.quantity * l.price, 0);
      const key = JSON.stringify([orderNo, total, lines.map((l) => [l.stock, l.price, l.quantity])]);
      if (seen.has(key)) continue;
      seen.add(key);
      refunded.set(orderNo, (refunded.get(orderNo) ?? 0) + total);
      times.push(credit.t);
    }
  }
  return { refunded, times };
}

function expectedFigures(c: Expected): Record<string, number> {
  const orders = [...c.orders.values()];
  const { refunded, times: refundTimes } = matchRefunds(c);
  let revenue = 0;
  let refunds = 0;
  let monetary = 0;
  for (const [orderNo, order] of c.orders) {
    const back = Math.min(order.revenue, refunded.get(orderNo) ?? 0);
    revenue += order.revenue;
    refunds += back;
    monetary += order.revenue - back;
  }
  const last = Math.max(...orders.map((o) => o.t));
  const affinity = new Map<string, number>();
  let spend = 0;
  let units = 0;
  for (const o of orders) {
    for (const line of o.lines) {
      const w = PURCHASE_WEIGHT * 2 ** (-(asOf - o.t) / (HALF_LIFE_DAYS * DAY));
      affinity.set(line.category, (affinity.get(line.category) ?? 0) + w);
      spend += line.price * line.quantity;
      units += line.quantity;
    }
  }
  const total = [...affinity.values()].reduce((s, v) => s + v, 0);
  const times = [...orders.map((o) => o.t), ...refundTimes];
  const figures: Record<string, number> = {
    recency_days: (asOf - last) / DAY,
    frequency: orders.length,
    monetary,
    tenure_days: (asOf - Math.min(...times)) / DAY,
    avg_order_value: revenue / orders.length,
    revenue,
    refunds,
    event_count: times.length,
    avg_unit_price: spend / units,
    activity: times.reduce((s, t) => s + 2 ** (-(asOf - t) / (ACTIVITY_HALF_LIFE_DAYS * DAY)), 0),
  };
  for (const [category] of [...TAXONOMY, ["other"]]) {
    figures[`affinity_${category}`] = (affinity.get(category ?? "") ?? 0) / total;
  }
  return figures;
}

const relativeError = (a: number, b: number) =>
  a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

describe("replay of UCI Online Retail vs an independent recomputation", () => {
  const dir = mkdtempSync(join(tmpdir(), "fedprofile-replay-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("matches every figure of all 4,338 customers within 1e-9", { timeout: 120_000 }, async () => {
    const out = join(dir, "features.csv");
    expect(await main(["--data", DATA, "--as-of", AS_OF, "--out", out, "--quiet"])).toBe(0);
    const [columns, ...rows] = readFileSync(out, "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => line.split(","));
    expect(columns?.slice(0, 5)).toEqual([
      "customer_id",
      "recency_days",
      "frequency",
      "monetary",
      "tenure_days",
    ]);

    const expected = new Map(
      [...recompute()].filter(([, c]) => c.orders.size > 0).map(([id, c]) => [id, expectedFigures(c)]),
    );
    expect(expected.size).toBe(4338);
    expect(rows).toHaveLength(4338);

    let worst = { error: 0, where: "" };
    let compared = 0;
    for (const row of rows) {
      const id = row[0] ?? "";
      const want = expected.get(id);
      expect(want, `unexpected customer ${id}`).toBeDefined();
      for (const [name, value] of Object.entries(want ?? {})) {
        const index = columns?.indexOf(name) ?? -1;
        expect(index, name).toBeGreaterThan(0);
        const got = Number(row[index]);
        const error = relativeError(got, value);
        compared += 1;
        if (!(error <= worst.error))
          worst = { error, where: `${id} ${name}: replay ${got}, expected ${value}` };
      }
    }
    console.log(
      `compared ${compared} figures; max relative error ${worst.error} (${worst.where || "all exact"})`,
    );
    expect(worst.error, worst.where).toBeLessThanOrEqual(1e-9);
  });
});
