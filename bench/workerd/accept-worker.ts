/**
 * Worker for `bench/secagg-workerd.ts`: the shard's accept path (`handleFrame` with the sum added
 * in place, plus a structured clone of the changed entries as the store write does) over every
 * survivor of one bench shard, run inside workerd, the runtime the coordinator ships on.
 * `?inputs=0` does the same set-up and accepts nothing, so the bench can subtract it from the
 * workerd process's CPU time. workerd's clock advances only across I/O, so each batch of inputs
 * is also timed (wall) between two `setTimeout(0)` ticks, the tick's own cost subtracted.
 */
import {
  encodeClientFrame,
  generateKeyPair,
  handleFrame,
  storageEntry,
} from "../../coordinator/src/secagg/index";
import { benchShard, maskedInputStage } from "../secagg-round";

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function timeTicks(count: number): Promise<number> {
  await tick();
  const start = Date.now();
  for (let i = 0; i < count; i++) await tick();
  return (Date.now() - start) / count;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? 1000);
    const d = Number(url.searchParams.get("d") ?? 65536);
    const k = Number(url.searchParams.get("k") ?? 6);
    const t = Number(url.searchParams.get("t") ?? 4);
    const batch = Number(url.searchParams.get("batch") ?? 50);
    const seed = url.searchParams.get("seed") ?? "workerd";
    const inputs = Number(url.searchParams.get("inputs") ?? Math.round(n * 0.9));
    const { random, base, all } = benchShard(n, d, k, t, seed);
    const keys = all.map(() => generateKeyPair(random));
    const survivors = all.slice(0, inputs);
    const stage = maskedInputStage(base, all, keys, random);
    let state = stage.state;
    const pool = stage.pool;
    const tickMs = await timeTicks(20);
    const batches: number[] = [];
    for (let from = 0; from < survivors.length; from += batch) {
      const frames = survivors.slice(from, from + batch).map((u, i) =>
        encodeClientFrame({
          v: 1,
          roundId: base.config.roundId,
          slot: u,
          stage: "masked-input",
          masked: pool[(from + i) % pool.length] as Uint8Array,
        }),
      );
      await tick();
      const start = Date.now();
      for (const frame of frames) {
        const step = await handleFrame(state, frame, 1, { consumeSum: true });
        for (const key of step.changed) structuredClone(storageEntry(step.state, key));
        state = step.state;
      }
      await tick();
      batches.push((Date.now() - start - tickMs) / frames.length);
    }
    if (state.phase !== "masked-input")
      throw new Error("the stage closed before every survivor was accepted");
    return Response.json({ n, d, k, t, batch, survivors: survivors.length, tickMs, perInputMs: batches });
  },
};
