/**
 * Populations of the recommendation eval: the real Online Retail customers, a seeded sample of
 * them, or a synthetic scale-up calibrated on them. The synthetic generator is the segments eval's
 * (`population.ts`, `syntheticPopulation`: each device resamples a real customer's history, shifted
 * back by up to 60 days as a whole and each invoice jittered by ±2 days), extended for baskets:
 * resampled baskets alone would give each real customer about N/4,338 identical twins, and a
 * twin's held-out item would sit in its siblings' training. So each invoice is kept with
 * probability 0.8 (at least one always), and each product line is swapped, with probability 0.25,
 * for a co-purchase of it: a line drawn from a random real invoice that holds the same product.
 * The swap walks the real item–item co-occurrence graph, so item popularity and co-purchase
 * structure stay those of the data set while each synthetic basket is new.
 */
import { seededUniform } from "@fedprofile/coordinator/models";
import type { RetailInvoice } from "./recs-data";

const DAY = 86_400_000;
const KEEP_INVOICE = 0.8;
const SWAP_LINE = 0.25;

/** `--populations` names: retail, sample-N, synthetic-N. */
export const POPULATION_NAME = /^(retail|(sample|synthetic)-[1-9][0-9]*)$/;

/** The customers (invoice histories) of population `name`, seeded. */
export function recsCustomers<I extends RetailInvoice>(
  customers: readonly I[][],
  name: string,
  seed: number,
): RetailInvoice[][] {
  if (!POPULATION_NAME.test(name))
    throw new RangeError(`population "${name}" is not retail, sample-N or synthetic-N`);
  if (name === "retail") return [...customers];
  const n = Number(name.slice(name.indexOf("-") + 1));
  if (name.startsWith("sample-")) {
    if (n >= customers.length) return [...customers];
    const random = seededUniform(seed);
    const picked = customers.map((c) => ({ c, k: random() })).sort((a, b) => a.k - b.k);
    return picked.slice(0, n).map((p) => p.c);
  }
  return syntheticCustomers(customers, n, seed);
}

/** `n` synthetic customers calibrated on `customers` (module comment). */
export function syntheticCustomers(
  customers: readonly RetailInvoice[][],
  n: number,
  seed = 1,
): RetailInvoice[][] {
  const random = seededUniform(seed);
  const buyers = customers.filter((c) => c.some((invoice) => !invoice.refund));
  // Product → the real purchase invoices holding it (the co-purchase graph the swap walks).
  const holders = new Map<string, Array<RetailInvoice["products"]>>();
  for (const c of buyers) {
    for (const invoice of c) {
      if (invoice.refund) continue;
      for (const p of invoice.products) {
        if (!p.product_id) continue;
        const list = holders.get(p.product_id) ?? [];
        if (list.at(-1) !== invoice.products) list.push(invoice.products);
        holders.set(p.product_id, list);
      }
    }
  }
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const out: RetailInvoice[][] = [];
  while (out.length < n) {
    const source = pick(buyers);
    const shift = random() * 60 * DAY;
    const kept = source.filter(() => random() < KEEP_INVOICE);
    const invoices = (kept.some((i) => !i.refund) ? kept : source).map((invoice) => ({
      refund: invoice.refund,
      t: invoice.t - shift + (random() * 4 - 2) * DAY,
      products: invoice.products.map((p) => {
        if (invoice.refund || !p.product_id || random() >= SWAP_LINE) return p;
        return pick(pick(holders.get(p.product_id) ?? [[p]]));
      }),
    }));
    out.push(invoices);
  }
  return out;
}
