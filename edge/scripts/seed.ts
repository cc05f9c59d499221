/**
 * `npm run seed -- [--tenant demo] [--persist-to .wrangler/state]`: applies the D1 migrations
 * locally, creates a tenant and prints its three API keys (shown once; only digests are kept).
 */
import { parseArgs } from "node:util";
import { applyLocalMigrations, seedLocalTenant } from "./local-dev";

const { values } = parseArgs({
  options: {
    tenant: { type: "string", default: "demo" },
    "persist-to": { type: "string", default: ".wrangler/state" },
  },
});
const persistTo = values["persist-to"];
await applyLocalMigrations(persistTo);
const keys = await seedLocalTenant(persistTo, values.tenant);
console.log(JSON.stringify({ tenant: values.tenant, keys }, null, 2));
