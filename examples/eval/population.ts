/**
 * Device populations for the evaluation harness: the 4,338 real customers of UCI Online Retail,
 * and synthetic scale-ups calibrated on them. Every profile vector comes from the SDK's own code
 * (event validation, the feature fold, the read-out and the public standardising transform), the
 * same path `track()` and `getProfile()` take on a device, minus the store.
 */
import { seededUniform } from "@fedprofile/coordinator/models";
import { customerEvents, readInvoices } from "../../sdk/cli/replay";
import { computeFeatures } from "../../sdk/src/features/features";
import { applyEvent, emptyFeatureState } from "../../sdk/src/features/state";
import { profileVector } from "../../sdk/src/features/vector";
import { DEFAULT_PROFILE_CONFIG } from "../../sdk/src/profiler";
import { intake } from "../../sdk/src/track";

/** The day after the data set's last invoice: every profile is read as of then. */
export const RETAIL_AS_OF = Date.UTC(2011, 11, 10);
const DAY = 86_400_000;

type Customers = Awaited<ReturnType<typeof readInvoices>>["customers"];
type Invoice = Customers extends Map<string, Map<string, infer I>> ? I : never;

export interface Population {
  name: string;
  /** Standardised profile vectors, one per device. */
  vectors: number[][];
}

/**
 * The standardised vector of one customer's invoice history: the replay's events (orders, and
 * refunds matched to them), each through `track()`'s intake and the feature fold.
 */
export function vectorOf(invoices: readonly Invoice[], asOf = RETAIL_AS_OF): number[] | null {
  const state = emptyFeatureState();
  let orders = 0;
  let seq = 0;
  const ctx = {
    currency: "GBP",
    rates: undefined,
    decimal: "." as const,
    now: () => asOf,
    nextId: () => `e.${seq++}`,
    view: () => state,
  };
  for (const event of customerEvents(invoices)) {
    const { stored } = intake(event.name, event.properties, event.t, ctx);
    if (!stored) continue;
    applyEvent(state, stored, DEFAULT_PROFILE_CONFIG);
    if (event.name === "Order Completed") orders++;
  }
  if (orders === 0) return null;
  return profileVector(computeFeatures(state, asOf, DEFAULT_PROFILE_CONFIG));
}

/** The data set's customers as invoice histories (read once, shared by every population). */
export async function loadCustomers(path: string): Promise<Invoice[][]> {
  const { customers } = await readInvoices(path);
  const ids = [...customers.keys()].sort((a, b) => Number(a) - Number(b));
  return ids.map((id) => [...(customers.get(id)?.values() ?? [])]);
}

/** The real population: every customer with at least one order (4,338 with the full file). */
export function retailPopulation(customers: readonly Invoice[][]): Population {
  const vectors = customers.map((c) => vectorOf(c)).filter((v): v is number[] => v !== null);
  return { name: `retail-${vectors.length}`, vectors };
}

/**
 * A synthetic population of `n` devices calibrated on the real one: each device resamples a real
 * customer's invoice history, shifted back in time by up to 60 days as a whole (so recency and
 * tenure move together), each invoice jittered by ±2 days, and every quantity scaled by one
 * log-normal factor per device (σ = 0.25, so spend varies while the basket mix stays).
 */
export function syntheticPopulation(customers: readonly Invoice[][], n: number, seed = 1): Population {
  const random = seededUniform(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const buyers = customers.filter((c) => c.some((invoice) => !invoice.refund));
  const vectors: number[][] = [];
  while (vectors.length < n) {
    const source = buyers[Math.floor(random() * buyers.length)] as Invoice[];
    const shift = random() * 60 * DAY;
    const scale = Math.exp(0.25 * normal());
    const jittered = source.map((invoice) => ({
      ...invoice,
      t: Math.min(RETAIL_AS_OF - 1, invoice.t - shift + (random() * 4 - 2) * DAY),
      products: invoice.products.map((p) => ({
        ...p,
        quantity: Math.max(1, Math.round((p.quantity ?? 1) * scale)),
      })),
    }));
    const v = vectorOf(jittered);
    if (v) vectors.push(v);
  }
  return { name: `synthetic-${n}`, vectors };
}
