/**
 * The in-memory coordinator served over real HTTP on 127.0.0.1, for tests of what a device sees
 * on the wire: a connection refused while it is stopped, the same port when it comes back.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createCoordinatorApp, createMemoryCoordinator, generateTenantKeys } from "@fedprofile/coordinator";

/** A plain-sum round of the walking skeleton's `activity` model (`[1, events]`), open 60 s. */
export const plainActivityRound = (maxContributions: number) =>
  ({
    v: 1,
    modelId: "activity",
    dimension: 2,
    minContributions: 1,
    maxContributions,
    deadlineSeconds: 60,
    aggregation: "plain-sum",
  }) as const;

/** A coordinator a test can stop and restart on the same port, keeping its state. */
export interface HttpCoordinator {
  readonly url: string;
  readonly memory: ReturnType<typeof createMemoryCoordinator>;
  readonly keys: ReturnType<typeof generateTenantKeys>;
  readonly tenantId: string;
  /** Requests answered so far. */
  readonly answered: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Starts the memory coordinator with one tenant on a free port. */
export async function startHttpCoordinator(tenantId = "shop"): Promise<HttpCoordinator> {
  const memory = createMemoryCoordinator();
  const keys = generateTenantKeys(tenantId);
  memory.tenants.addTenant({ id: tenantId, name: tenantId, createdAt: 0 }, keys);
  const app = createCoordinatorApp({ tenants: memory.tenants, models: memory.models, rounds: memory.rounds });
  let answered = 0;
  let port = 0;
  let server: Server | null = null;

  const listen = async () => {
    const next = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(Buffer.from(chunk));
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
        headers.append(req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? "");
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      const response = await app.fetch(
        new Request(`http://127.0.0.1:${port}${req.url ?? "/"}`, {
          method: req.method ?? "GET",
          headers,
          ...(body ? { body } : {}),
        }),
      );
      answered++;
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    });
    next.listen(port, "127.0.0.1");
    await once(next, "listening");
    port = (next.address() as AddressInfo).port;
    server = next;
  };
  await listen();

  return {
    url: `http://127.0.0.1:${port}`,
    memory,
    keys,
    tenantId,
    get answered() {
      return answered;
    },
    async stop() {
      const running = server;
      server = null;
      if (!running) return;
      running.closeAllConnections();
      await new Promise<void>((done, fail) => running.close((error) => (error ? fail(error) : done())));
    },
    start: listen,
  };
}
