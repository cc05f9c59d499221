import {
  bytesToBase64,
  createRoundState,
  decodeClientFrame,
  ERROR_CODES,
  encodeClientFrame,
  frameMessageFromJson,
  handleAdvertiseKeys,
  handleMessage,
  handleShareKeys,
  onDeadline,
  ProtocolError,
  type SecAggClientMessage,
  type ServerRoundState,
  STAGES,
  type Stage,
  viewFor,
} from "@fedprofile/coordinator/secagg";
import { beforeAll, describe, expect, it } from "vitest";
import { seededRandomBytes } from "../../../test/secagg/driver";
import { advertiseKeys, type ClientState, consistencyCheck, maskedInput, shareKeys, unmask } from "./client";

const N = 5;
const D = 4;
const ROUND = "r_matrixmatrixmatrixmatr";

interface Recording {
  /** Server state when each stage opened, before any message of it. */
  opened: Partial<Record<Stage, ServerRoundState>>;
  /** Each slot's message per stage. */
  sent: Partial<Record<Stage, SecAggClientMessage[]>>;
  final: ServerRoundState;
}

/** Runs a round by hand with real clients, recording every opening state and message. */
async function record(drop: Map<number, Stage> = new Map()): Promise<Recording> {
  const random = seededRandomBytes("matrix");
  let state = createRoundState(
    {
      roundId: ROUND,
      cohortSize: N,
      k: 4,
      t: 2,
      dimension: D,
      valueBits: 4,
      modulusBits: 8,
      randomBytes: random,
    },
    0,
  );
  const clients: Array<ClientState | null> = new Array(N).fill(null);
  const rec: Recording = { opened: {}, sent: {}, final: state };
  for (const stage of STAGES) {
    rec.opened[stage] = state;
    rec.sent[stage] = [];
    for (let slot = 0; slot < N; slot++) {
      const d = drop.get(slot);
      if (d !== undefined && STAGES.indexOf(d) <= STAGES.indexOf(stage)) continue;
      const view = viewFor(state, slot);
      const client = clients[slot] as ClientState;
      const step =
        stage === "advertise-keys"
          ? advertiseKeys(view, { randomBytes: random })
          : stage === "share-keys"
            ? await shareKeys(client, view, { randomBytes: random })
            : stage === "masked-input"
              ? await maskedInput(
                  client,
                  view,
                  Uint32Array.from({ length: D }, (_, i) => (slot + i) % 16),
                )
              : stage === "consistency-check"
                ? consistencyCheck(client, view)
                : unmask(client, view);
      clients[slot] = step.state;
      rec.sent[stage]![slot] = step.message;
      state = (await handleMessage(state, step.message, 1)).state;
    }
    if (state.phase === stage) state = (await onDeadline(state, state.deadline ?? 0)).state;
  }
  rec.final = state;
  return rec;
}

/** A schema-valid message that differs from `m` (same stage, same sender). */
function altered(m: SecAggClientMessage): SecAggClientMessage {
  switch (m.stage) {
    case "advertise-keys":
      return { ...m, cPk: m.sPk, sPk: m.cPk };
    case "share-keys":
      return { ...m, shares: [...m.shares].reverse() };
    case "masked-input":
      return { ...m, masked: (m.masked[0] === "A" ? "B" : "A") + m.masked.slice(1) };
    case "consistency-check":
      return { ...m, tags: [...m.tags].reverse() };
    case "unmask":
      return { ...m, bShares: [...m.bShares].reverse() };
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "accepted";
  } catch (error) {
    if (error instanceof ProtocolError) return error.code;
    throw error;
  }
}

let full: Recording;
let dropped: Recording;
beforeAll(async () => {
  full = await record();
  // Slot 4 shares keys and then drops: slot 0 reveals its s-share at unmask.
  dropped = await record(new Map([[4, "masked-input"]]));
});

describe("stage-transition matrix (every message stage × every round stage)", () => {
  it("the recorded round itself completes", () => {
    expect(full.final.phase).toBe("done");
    expect(dropped.final.phase).toBe("done");
    expect(dropped.final.result?.contributors).toEqual([0, 1, 2, 3]);
  });

  for (const roundStage of STAGES) {
    for (const messageStage of STAGES) {
      const order = Math.sign(STAGES.indexOf(messageStage) - STAGES.indexOf(roundStage));
      const expected = order === 0 ? "accepted" : order > 0 ? ERROR_CODES.outOfOrder : ERROR_CODES.duplicate;
      it(`round in ${roundStage}, ${messageStage} message → ${expected}`, async () => {
        const state = full.opened[roundStage]!;
        const message = full.sent[messageStage]![0]!;
        expect(await codeOf(handleMessage(state, message, 1))).toBe(expected);
        if (order < 0) {
          // Not the accepted message: a late or replayed one for a closed stage.
          expect(await codeOf(handleMessage(state, altered(message), 1))).toBe(ERROR_CODES.staleStage);
        }
      });
    }
    it(`round in ${roundStage}: the same message twice → duplicate; a different second one → conflict`, async () => {
      const message = full.sent[roundStage]![0]!;
      const { state } = await handleMessage(full.opened[roundStage]!, message, 1);
      expect(await codeOf(handleMessage(state, message, 1))).toBe(ERROR_CODES.duplicate);
      expect(await codeOf(handleMessage(state, altered(message), 1))).toBe(ERROR_CODES.conflict);
    });
    it(`round in ${roundStage}: wrong round, foreign slot, malformed`, async () => {
      const state = full.opened[roundStage]!;
      const message = full.sent[roundStage]![0]!;
      expect(await codeOf(handleMessage(state, { ...message, roundId: "r_someotherroundsomeothe" }, 1))).toBe(
        ERROR_CODES.wrongRound,
      );
      expect(await codeOf(handleMessage(state, { ...message, slot: N + 3 }, 1))).toBe(ERROR_CODES.foreign);
      expect(await codeOf(handleMessage(state, { ...message, v: 2 }, 1))).toBe(ERROR_CODES.malformed);
      expect(await codeOf(handleMessage(state, { ...message, extra: 1 }, 1))).toBe(ERROR_CODES.malformed);
      expect(await codeOf(handleMessage(state, "not json", 1))).toBe(ERROR_CODES.malformed);
    });
    it(`round finished or aborted: ${roundStage} message → round closed`, async () => {
      const message = full.sent[roundStage]![1]!;
      const { state: aborted } = await onDeadline(full.opened["advertise-keys"]!, Number.MAX_SAFE_INTEGER);
      expect(aborted.phase).toBe("aborted");
      expect(await codeOf(handleMessage(full.final, altered(message), 1))).toBe(ERROR_CODES.roundClosed);
      expect(await codeOf(handleMessage(aborted, message, 1))).toBe(ERROR_CODES.roundClosed);
    });
  }
});

describe("wrong-length, foreign and dropped-device messages", () => {
  const short = (text: string) =>
    bytesToBase64(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).subarray(1));

  it("rejects truncated keys, boxes, vectors, tags and shares", async () => {
    const s = full.sent;
    const cases: Array<[Stage, SecAggClientMessage]> = [];
    const a = s["advertise-keys"]![0]!;
    if (a.stage === "advertise-keys") cases.push(["advertise-keys", { ...a, cPk: short(a.cPk) }]);
    const sk = s["share-keys"]![0]!;
    if (sk.stage === "share-keys")
      cases.push([
        "share-keys",
        { ...sk, shares: sk.shares.map((x, i) => (i ? x : { ...x, ct: short(x.ct) })) },
      ]);
    const mi = s["masked-input"]![0]!;
    if (mi.stage === "masked-input") cases.push(["masked-input", { ...mi, masked: short(mi.masked) }]);
    const cc = s["consistency-check"]![0]!;
    if (cc.stage === "consistency-check")
      cases.push([
        "consistency-check",
        { ...cc, tags: cc.tags.map((x, i) => (i ? x : { ...x, tag: short(x.tag) })) },
      ]);
    const um = s.unmask![0]!;
    if (um.stage === "unmask")
      cases.push([
        "unmask",
        { ...um, bShares: um.bShares.map((x, i) => (i ? x : { ...x, share: short(x.share) })) },
      ]);
    for (const [stage, message] of cases) {
      expect(await codeOf(handleMessage(full.opened[stage]!, message, 1)), stage).toBe(
        ERROR_CODES.wrongLength,
      );
    }
  });

  it("rejects missing shares and shares addressed outside the neighbourhood", async () => {
    const sk = full.sent["share-keys"]![0]!;
    if (sk.stage !== "share-keys") throw new Error("unreachable");
    const state = full.opened["share-keys"]!;
    expect(await codeOf(handleShareKeys(state, { ...sk, shares: sk.shares.slice(1) }, 1))).toBe(
      ERROR_CODES.wrongLength,
    );
    expect(
      await codeOf(
        handleShareKeys(
          state,
          { ...sk, shares: [...sk.shares.slice(1), { to: 77, ct: sk.shares[0]!.ct }] },
          1,
        ),
      ),
    ).toBe(ERROR_CODES.foreign);
    expect(
      await codeOf(handleShareKeys(state, { ...sk, shares: [...sk.shares.slice(1), sk.shares[1]!] }, 1)),
    ).toBe(ERROR_CODES.malformed);
  });

  it("rejects a device dropped earlier (not a participant) and its stale view", async () => {
    const mi = full.sent["masked-input"]![0]!;
    const state = dropped.opened.unmask!;
    expect(
      await codeOf(
        handleMessage(
          dropped.opened["consistency-check"]!,
          { ...full.sent["consistency-check"]![0]!, slot: 4 },
          1,
        ),
      ),
    ).toBe(ERROR_CODES.notParticipant);
    expect(() => viewFor(state, 4)).toThrow(expect.objectContaining({ code: ERROR_CODES.notParticipant }));
    expect(mi.stage).toBe("masked-input");
  });

  it("rejects revealing a b-share for a dropped neighbour (that would expose its input)", async () => {
    const um = dropped.sent.unmask![0]!;
    if (um.stage !== "unmask") throw new Error("unreachable");
    expect(um.sShares.map((x) => x.of)).toEqual([4]);
    const both = { ...um, bShares: [...um.bShares, ...um.sShares] };
    expect(await codeOf(handleMessage(dropped.opened.unmask!, both, 1))).toBe(ERROR_CODES.foreign);
  });

  it("rejects small-order and reused public keys", async () => {
    const a = full.sent["advertise-keys"]![0]!;
    if (a.stage !== "advertise-keys") throw new Error("unreachable");
    const zero = bytesToBase64(new Uint8Array(32));
    const state = full.opened["advertise-keys"]!;
    expect(await codeOf(handleAdvertiseKeys(state, { ...a, cPk: zero }, 1))).toBe(ERROR_CODES.badKey);
    const { state: after } = await handleAdvertiseKeys(state, a, 1);
    expect(await codeOf(handleAdvertiseKeys(after, { ...a, slot: 1 }, 1))).toBe(ERROR_CODES.badKey);
  });
});

describe("deadlines", () => {
  it("do nothing early, then drop the silent devices", async () => {
    const open = full.opened["masked-input"]!;
    const { state: one } = await handleMessage(open, full.sent["masked-input"]![0]!, 1);
    const { state: two } = await handleMessage(one, full.sent["masked-input"]![1]!, 1);
    const { state: three } = await handleMessage(two, full.sent["masked-input"]![2]!, 1);
    const early = await onDeadline(three, (three.deadline ?? 0) - 1);
    expect(early.state).toBe(three);
    expect(early.changed).toEqual([]);
    // Slots 3 and 4 stay silent and are dropped; every sharer still has t = 2 surviving neighbours.
    const late = await onDeadline(three, three.deadline ?? 0);
    expect(late.state.phase).toBe("consistency-check");
    expect(late.state.survivors).toEqual([0, 1, 2]);
    expect(late.state.deadline).toBe(
      (three.deadline ?? 0) + three.config.stageTimeoutsMs["consistency-check"],
    );
    // With only two inputs, slot 0 would keep one surviving neighbour (< t): the round aborts.
    const aborted = await onDeadline(two, two.deadline ?? 0);
    expect(aborted.state.phase).toBe("aborted");
    expect(aborted.state.abort?.reason).toMatch(/fewer than t = 2/);
    expect(late.changed).toContain("core");
  });
});

describe("binary frames", () => {
  it("round-trip every recorded message exactly and reject damaged frames", async () => {
    for (const stage of STAGES) {
      for (const message of full.sent[stage] ?? []) {
        if (!message) continue;
        const frame = encodeClientFrame(message);
        const decoded = decodeClientFrame(frame);
        // Typed bytes, the same content as the JSON form, and canonical: re-encoding gives the frame.
        expect(decoded).toEqual(frameMessageFromJson(message));
        expect(encodeClientFrame(decoded)).toEqual(frame);
        expect(frame.length).toBeLessThan(JSON.stringify(message).length);
        // The masked vector runs to the end of its frame; the guard checks its exact length.
        if (stage !== "masked-input") {
          expect(() => decodeClientFrame(frame.subarray(0, frame.length - 1))).toThrow();
          expect(() => decodeClientFrame(Uint8Array.from([...frame, 0]))).toThrow();
        }
        expect(() => decodeClientFrame(Uint8Array.from(frame, (x, i) => (i === 0 ? 0 : x)))).toThrow(
          RangeError,
        );
      }
    }
  });
});
