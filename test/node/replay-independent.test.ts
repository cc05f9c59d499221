/**
 * The replay (`fedprofile replay`, which runs every invoice through the SDK's validation,
 * accumulators, store and profile) against an independent recomputation of the rules
 * by plain aggregation over the file: its own gunzip, its own CSV split, its own keyword
 * matcher (regular expressions over the shared keyword table, which is data, not code), and
 * direct sums instead of incremental accumulators. Every figure of all 4,338 customers must
 * agree within a relative error of 1e-9.
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

interface Expected {
  orders: Map<string, { t: number; revenue: number; lines: Array<{ category: string; price: number }> }>;
  refundInvoices: Map<string, number>;
  refunds: number;
  first: number;
}

function recompute(): Map<string, Expected> {
  const [header, ...rows] = splitCsv(gunzipSync(readFileSync(DATA)).toString("utf8"));
  const col = (name: string) => {
    const i = header?.indexOf(name) ?? -1;
    if (i < 0) throw new Error(`no column ${name}`);
    return i;
  };
  const [INV, DESC, QTY, DATE, PRICE, CUST] = [
    "InvoiceNo",
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
    const c = customers.get(customer) ?? {
      orders: new Map(),
      refundInvoices: new Map(),
      refunds: 0,
      first: t,
    };
    customers.set(customer, c);
    c.first = Math.min(c.first, t);
    if (invoice.startsWith("C")) {
      c.refunds += Math.abs(quantity) * price;
      c.refundInvoices.set(invoice, Math.min(c.refundInvoices.get(invoice) ?? t, t));
    } else {
      const order = c.orders.get(invoice) ?? { t, revenue: 0, lines: [] };
      order.t = Math.min(order.t, t);
      order.revenue += quantity * price;
      order.lines.push({ category: categoryOf(row[DESC!] ?? ""), price });
      c.orders.set(invoice, order);
    }
  }
  return customers;
}

function expectedFigures(c: Expected): Record<string, number> {
  const orders = [...c.orders.values()];
  const revenue = orders.reduce((s, o) => s + o.revenue, 0);
  const last = Math.max(...orders.map((o) => o.t));
  const affinity = new Map<string, number>();
  let prices = 0;
  let lines = 0;
  for (const o of orders) {
    for (const line of o.lines) {
      const w = PURCHASE_WEIGHT * 2 ** (-(asOf - o.t) / (HALF_LIFE_DAYS * DAY));
      affinity.set(line.category, (affinity.get(line.category) ?? 0) + w);
      prices += line.price;
      lines += 1;
    }
  }
  const total = [...affinity.values()].reduce((s, v) => s + v, 0);
  const times = [...orders.map((o) => o.t), ...c.refundInvoices.values()];
  const figures: Record<string, number> = {
    recency_days: (asOf - last) / DAY,
    frequency: orders.length,
    monetary: revenue - c.refunds,
    tenure_days: (asOf - c.first) / DAY,
    avg_order_value: revenue / orders.length,
    revenue,
    refunds: c.refunds,
    event_count: times.length,
    avg_unit_price: prices / lines,
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
