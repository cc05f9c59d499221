/**
 * The recommendation protocol of the design (so figures compare across systems), on Online Retail:
 * - items are the StockCodes of purchase lines; the weight of (customer, item) is the number of
 *   distinct invoices containing it; cancellations are not used;
 * - the held-out item is the one on the customer's last purchase line after a stable sort by
 *   InvoiceDate (a tie at the latest time goes to the later line in the file), and all of that
 *   customer's interactions with it leave training;
 * - customers with fewer than 2 distinct items are excluded;
 * - sampled metrics: the held-out item against 99 items the customer never bought, drawn
 *   uniformly with a fixed seed; a tie in score counts against the held-out item (Krichene &
 *   Rendle 2020 for why the full-catalogue ranking is reported too).
 */
import { seededUniform } from "@fedprofile/coordinator/models";

/** One invoice as `readInvoices` groups it (file order kept within and across invoices). */
export interface RetailInvoice {
  refund: boolean;
  t: number;
  products: ReadonlyArray<{ product_id?: string; category?: string }>;
}

/** One user's training interactions (item row → distinct invoices) and held-out item. */
export interface RecsUser {
  items: Map<number, number>;
  heldOut: number;
}

export interface RecsData {
  items: string[];
  categories: Array<string | null>;
  users: RecsUser[];
}

/** Builds the split from invoice histories (one array per customer). */
export function leaveLastOut(customers: ReadonlyArray<readonly RetailInvoice[]>): RecsData {
  const rowOf = new Map<string, number>();
  const items: string[] = [];
  const categories: Array<string | null> = [];
  const row = (id: string, category: string | undefined) => {
    let r = rowOf.get(id);
    if (r === undefined) {
      r = items.length;
      rowOf.set(id, r);
      items.push(id);
      categories.push(category ?? null);
    }
    return r;
  };
  const users: RecsUser[] = [];
  for (const invoices of customers) {
    const bought = invoices.filter((i) => !i.refund);
    // Stable sort by time: equal times keep file order, so the last line is the later one in the file.
    const sorted = bought.map((inv, k) => ({ inv, k })).sort((a, b) => a.inv.t - b.inv.t || a.k - b.k);
    const counts = new Map<number, number>();
    let last: number | null = null;
    for (const { inv } of sorted) {
      const seen = new Set<number>();
      for (const p of inv.products) {
        if (!p.product_id) continue;
        const r = row(p.product_id, p.category);
        last = r;
        if (!seen.has(r)) {
          seen.add(r);
          counts.set(r, (counts.get(r) ?? 0) + 1);
        }
      }
    }
    if (last === null || counts.size < 2) continue;
    counts.delete(last);
    users.push({ items: counts, heldOut: last });
  }
  return { items, categories, users };
}

/** A validation split carved from training: each user's heaviest-row item... the last kept one. */
export function validationSplit(data: RecsData, seed: number): RecsData {
  const random = seededUniform(seed);
  const users: RecsUser[] = [];
  for (const u of data.users) {
    if (u.items.size < 2) continue;
    const rows = [...u.items.keys()];
    const held = rows[Math.floor(random() * rows.length)] as number;
    const items = new Map(u.items);
    items.delete(held);
    users.push({ items, heldOut: held });
  }
  return { ...data, users };
}

/** A scorer: scores of every catalogue row for user `u` (higher is better). */
export type Scorer = (u: RecsUser, index: number) => Float32Array | Float64Array;

export interface RankingMetrics {
  hr10Sampled: number;
  ndcg10Sampled: number;
  hr10Full: number;
  ndcg10Full: number;
  users: number;
}

/** Per-user hits (1: the held-out item in the top 10), for paired comparisons of two scorers. */
export interface RankingHits {
  sampled: Uint8Array;
  full: Uint8Array;
}

/**
 * HR@10 and NDCG@10 against 99 sampled negatives and against the full catalogue (training items
 * excluded). With `hits`, each user's two hits are written there too.
 */
export function evaluateRanking(
  data: RecsData,
  score: Scorer,
  seed: number,
  hits?: RankingHits,
): RankingMetrics {
  const random = seededUniform(seed);
  const itemCount = data.items.length;
  let hrS = 0;
  let ndS = 0;
  let hrF = 0;
  let ndF = 0;
  data.users.forEach((u, index) => {
    const s = score(u, index);
    const target = s[u.heldOut] as number;
    // Full catalogue: items scored at least as high as the held-out one, never counting training items.
    let rankFull = 0;
    for (let i = 0; i < itemCount; i++) {
      if (i === u.heldOut || u.items.has(i)) continue;
      if ((s[i] as number) >= target) rankFull++;
    }
    // 99 uniform negatives the user never bought (neither in training nor held out).
    let rankSampled = 0;
    let drawn = 0;
    while (drawn < 99) {
      const i = Math.floor(random() * itemCount);
      if (i === u.heldOut || u.items.has(i)) continue;
      drawn++;
      if ((s[i] as number) >= target) rankSampled++;
    }
    if (hits) {
      hits.sampled[index] = rankSampled < 10 ? 1 : 0;
      hits.full[index] = rankFull < 10 ? 1 : 0;
    }
    if (rankSampled < 10) {
      hrS++;
      ndS += 1 / Math.log2(rankSampled + 2);
    }
    if (rankFull < 10) {
      hrF++;
      ndF += 1 / Math.log2(rankFull + 2);
    }
  });
  const n = Math.max(1, data.users.length);
  return { hr10Sampled: hrS / n, ndcg10Sampled: ndS / n, hr10Full: hrF / n, ndcg10Full: ndF / n, users: n };
}

/** Popularity: training purchase counts (distinct users). */
export function popularityScorer(data: RecsData): Scorer {
  const pop = new Float64Array(data.items.length);
  for (const u of data.users) for (const r of u.items.keys()) pop[r] = (pop[r] as number) + 1;
  return () => pop;
}

/** Item-kNN: cosine similarity of item columns of the binary user × item matrix, summed over the user's items. */
export function itemKnnScorer(data: RecsData): Scorer {
  const n = data.items.length;
  const sim = new Float32Array(n * n);
  const degree = new Float64Array(n);
  for (const u of data.users) {
    const rows = [...u.items.keys()];
    for (const a of rows) {
      degree[a] = (degree[a] as number) + 1;
      for (const b of rows) if (a !== b) sim[a * n + b] = (sim[a * n + b] as number) + 1;
    }
  }
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      const d = Math.sqrt((degree[a] as number) * (degree[b] as number));
      if (d > 0) sim[a * n + b] = (sim[a * n + b] as number) / d;
    }
  }
  return (u) => {
    const s = new Float32Array(n);
    for (const j of u.items.keys()) {
      const o = j * n;
      for (let i = 0; i < n; i++) s[i] = (s[i] as number) + (sim[o + i] as number);
    }
    return s;
  };
}

/** Scores Y x_u for every user, from row-major item factors and user factors. */
export function factorScorer(
  itemFactors: ArrayLike<number>,
  userFactors: Float64Array[],
  rank: number,
): Scorer {
  const n = itemFactors.length / rank;
  return (_u, index) => {
    const x = userFactors[index] as Float64Array;
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let a = 0; a < rank; a++) dot += (itemFactors[i * rank + a] as number) * (x[a] as number);
      s[i] = dot;
    }
    return s;
  };
}

/** A difference of two HR@10 and its paired bootstrap 95% interval (percentile, over users). */
export interface PairedDifference {
  difference: number;
  low: number;
  high: number;
  resamples: number;
}

/**
 * HR@10(a) − HR@10(b) over the same users, with a paired bootstrap 95% percentile interval
 * (Efron & Tibshirani 1993, ch. 13): users are resampled with replacement, each keeping its own
 * pair of hits, so the two methods' per-user correlation stays in the interval.
 */
export function pairedBootstrap(
  a: Uint8Array,
  b: Uint8Array,
  seed: number,
  resamples = 1000,
): PairedDifference {
  if (a.length !== b.length || a.length === 0)
    throw new RangeError("pairedBootstrap: the hits are not paired");
  const n = a.length;
  const d = new Int8Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    d[i] = (a[i] as number) - (b[i] as number);
    total += d[i] as number;
  }
  const random = seededUniform(seed);
  const means = new Float64Array(resamples);
  for (let s = 0; s < resamples; s++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[Math.floor(random() * n)] as number;
    means[s] = sum / n;
  }
  means.sort();
  return {
    difference: total / n,
    low: means[Math.floor(0.025 * (resamples - 1))] as number,
    high: means[Math.ceil(0.975 * (resamples - 1))] as number,
    resamples,
  };
}
