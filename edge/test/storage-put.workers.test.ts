/**
 * The shard adds each masked input into its cached running sum in place (`consumeSum`,
 * coordinator/src/secagg/server.ts) and writes that same array on every input. That is only
 * sound if Durable Object storage serialises a value when `put()` is called, not when the write
 * is flushed: this pins it on real workerd.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("Durable Object storage put()", () => {
  it("stores the value as it was at the call: later in-place changes are not written", async () => {
    const stub = env.SHARD.get(env.SHARD.idFromName("storage-put/serialises-at-call"));
    await runInDurableObject(stub, async (_instance, state) => {
      const sum = new Uint32Array(65_536).fill(7);
      const written = state.storage.put({ sum });
      sum.fill(9); // the next input, added before the write has settled
      const second = state.storage.put({ other: 1 });
      sum[0] = 11;
      await Promise.all([written, second]);
      const stored = (await state.storage.get("sum")) as Uint32Array;
      expect(stored).toBeInstanceOf(Uint32Array);
      expect(stored.length).toBe(65_536);
      expect(stored.every((word) => word === 7)).toBe(true);
    });
  });
});
