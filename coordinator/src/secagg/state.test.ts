import { describe, expect, it } from "vitest";
import { createRoundState, fromStorageEntries, toStorageEntries } from "./state";

const options = {
  roundId: "r_statestatestatestatest",
  cohortSize: 10,
  k: 4,
  t: 2,
  dimension: 8,
  valueBits: 8,
  modulusBits: 12,
};
const seed = new Uint8Array(32).fill(1);

describe("round state", () => {
  it("opens in advertise-keys with a deadline and round-trips through storage entries", () => {
    const state = createRoundState({ ...options, graphSeed: seed }, 1000);
    expect(state.phase).toBe("advertise-keys");
    expect(state.deadline).toBe(1000 + state.config.stageTimeoutsMs["advertise-keys"]);
    const entries = JSON.parse(JSON.stringify(toStorageEntries(state))) as Record<string, unknown>;
    expect(Object.keys(entries).sort()).toEqual(["core", "sum"]);
    expect(fromStorageEntries(entries)).toEqual(state);
  });

  it("refuses parameters that could wrap the sum or make recovery impossible", () => {
    expect(() => createRoundState({ ...options, modulusBits: 11 }, 0)).toThrow(/cannot wrap/);
    expect(() => createRoundState({ ...options, t: 5 }, 0)).toThrow(RangeError);
    expect(() => createRoundState({ ...options, k: 3 }, 0)).toThrow(RangeError);
    expect(() => createRoundState({ ...options, roundId: "round-1" }, 0)).toThrow(RangeError);
  });

  it("rejects invalid or foreign storage instead of casting it", () => {
    const entries = toStorageEntries(createRoundState({ ...options, graphSeed: seed }, 0));
    expect(() => fromStorageEntries({ ...entries, core: { ...(entries.core as object), v: 2 } })).toThrow(
      RangeError,
    );
    expect(() => fromStorageEntries({ ...entries, "device:3": { digests: {}, boxes: "nope" } })).toThrow(
      RangeError,
    );
    expect(() => fromStorageEntries({})).toThrow(RangeError);
  });
});
