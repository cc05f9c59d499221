/**
 * Which browser origins may call which routes (issue 11). Device routes (publishable key) are
 * called from storefront pages, so they answer the configured storefront origins, `*` by
 * default. Routes for secret and auditor keys are called by backends (no CORS needed) and by
 * the compliance dashboard: they answer only the configured operator origins, never `*`, so a
 * page elsewhere cannot read an operator's answers with a key it was handed (Fetch §3.2.5).
 */

/** Routes a storefront page calls with the publishable key (plus the public health and key routes). */
const DEVICE_ROUTES: ReadonlyArray<{ method: string; path: RegExp }> = [
  { method: "GET", path: /^\/v1\/health$/ },
  { method: "POST", path: /^\/v1\/checkin$/ },
  { method: "GET", path: /^\/v1\/tasks$/ },
  { method: "GET", path: /^\/v1\/rounds\/[^/]+$/ },
  { method: "POST", path: /^\/v1\/rounds\/[^/]+\/(join|contributions)$/ },
  { method: "GET", path: /^\/v1\/rounds\/[^/]+\/shards\/[^/]+\/view$/ },
  { method: "POST", path: /^\/v1\/rounds\/[^/]+\/shards\/[^/]+\/messages$/ },
  { method: "GET", path: /^\/v1\/models\/[^/]+\/(latest|versions\/[^/]+)$/ },
  { method: "GET", path: /^\/v1\/audit\/public-key$/ },
];

/** Whether `method path` is a device route (for a preflight, `method` is the one requested). */
export function isDeviceRoute(method: string, path: string): boolean {
  const m = method.toUpperCase();
  return DEVICE_ROUTES.some((route) => route.method === m && route.path.test(path));
}

/**
 * Whether `origin` is in `allowed`: exact origins, `*` (any), or `http://127.0.0.1:*` /
 * `http://localhost:*` (any port on loopback, for local development where ports are chosen free).
 */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  for (const entry of allowed) {
    if (entry === "*" || entry === origin) return true;
    if (entry.endsWith(":*")) {
      const host = entry.slice(0, -2);
      if (host !== "http://127.0.0.1" && host !== "http://localhost") continue;
      if (origin.startsWith(`${host}:`) && /^[0-9]{1,5}$/.test(origin.slice(host.length + 1))) return true;
    }
  }
  return false;
}

/**
 * The `Access-Control-Allow-Origin` value for a request, or null for none: `*` only for device
 * routes whose origins are `*`; an operator route echoes an allowed origin and never says `*`.
 */
export function allowOriginFor(
  origin: string,
  route: { method: string; path: string },
  policy: { deviceOrigins: readonly string[]; operatorOrigins: readonly string[] },
): string | null {
  if (isDeviceRoute(route.method, route.path)) {
    if (policy.deviceOrigins.includes("*")) return "*";
    return originAllowed(origin, policy.deviceOrigins) ? origin : null;
  }
  const exact = policy.operatorOrigins.filter((o) => o !== "*");
  return origin !== "" && originAllowed(origin, exact) ? origin : null;
}
