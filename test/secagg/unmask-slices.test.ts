/**
 * Unmasking split across alarms (issue 16): with `maxMaskWordsPerSlice` the server strips a
 * bounded number of masks per invocation, stores how far it got with the partial sum, and is due
 * again at once. A round with 30% dropout (every dropped device's pairwise masks to rebuild) ends
 * with exactly the unsliced sum, through many slices, a storage round trip between each, and a
 * kill (a slice computed but never stored) in the middle: a resumed slice never strips twice.
 */
import {
  fromStorageEntries,
  onDeadline,
  type ServerRoundState,
  type Stage,
  toStorageEntries,
} from "@fedprofile/coordinator/secagg";
import { describe, expect, it } from "vitest";
import { plainSum, runSimulatedRound, seededRandomBytes } from "./driver";

const N = 10;
const D = 16;
const BITS = 12;
const MODULUS = 20;
const inputs = Array.from({ length: N }, (_, slot) =>
  Uint32Array.from({ length: D }, (_, i) => (slot * 37 + i * 11) % 2 ** BITS),
);
// 30%: three devices shared keys and then sent no masked input.
const dropouts = new Map<number, Stage>([
  [1, "masked-input"],
  [4, "masked-input"],
  [7, "masked-input"],
]);
const survivors = [0, 2, 3, 5, 6, 8, 9];

const round = (maxMaskWordsPerSlice?: number) =>
  runSimulatedRound({
    cohortSize: N,
    k: 6,
    t: 3,
    dimension: D,
    valueBits: BITS,
    modulusBits: MODULUS,
    inputs,
    dropouts,
    randomBytes: seededRandomBytes("unmask-slices"),
    persist: true,
    ...(maxMaskWordsPerSlice ? { maxMaskWordsPerSlice } : {}),
  });

/** What Durable Object storage would hand back after a restart. */
const stored = (state: ServerRoundState) => fromStorageEntries(structuredClone(toStorageEntries(state)));

describe("unmask split across alarms", () => {
  it("30% dropout: two masks per slice, a kill between slices, the exact sum", async () => {
    const whole = await round();
    expect(whole.state.phase).toBe("done");
    expect(Array.from(whole.sum ?? [])).toEqual(Array.from(plainSum(inputs, survivors, MODULUS)));

    const sliced = await round(2 * D);
    // The stage closed and the first slice ran; the rest is due at once, by alarm.
    let state = sliced.state;
    expect(state.phase).toBe("unmask");
    // Two slices ran in the driver: one as the last reveal closed the stage, one at its deadline.
    expect(state.unmasking).toEqual({ applied: 4 });
    expect(state.deadline).not.toBeNull();
    let slices = 2;
    let killed = false;
    while (state.phase === "unmask") {
      const now = state.deadline ?? 0;
      const next = (await onDeadline(state, now, { maxMaskWordsPerSlice: 2 * D })).state;
      if (!killed && slices === 3) {
        // Killed after computing a slice, before its write: storage still holds the last one.
        killed = true;
        state = stored(state);
        continue;
      }
      state = stored(next);
      slices++;
    }
    expect(killed).toBe(true);
    // 7 self masks and 3 dropped devices' pairwise masks with their surviving neighbours.
    expect(slices).toBeGreaterThanOrEqual(5);
    expect(state.phase).toBe("done");
    expect(state.unmasking).toBeUndefined();
    expect(state.result?.contributors).toEqual(survivors);
    expect(state.result?.sum).toBe(whole.state.result?.sum);
  });
});
