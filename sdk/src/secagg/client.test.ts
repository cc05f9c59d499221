import {
  base64ToBytes,
  bytesToBase64,
  createRoundState,
  ERROR_CODES,
  encodeSlotSet,
  handleMessage,
  ProtocolAbortError,
  ProtocolError,
  packWords,
  type Stage,
  toStorageEntries,
  viewFor,
  wordsToBytes,
} from "@fedprofile/coordinator/secagg";
import { describe, expect, it } from "vitest";
import { runSimulatedRound, seededRandomBytes } from "../../../test/secagg/driver";
import { advertiseKeys, type ClientState, consistencyCheck, maskedInput, shareKeys, unmask } from "./client";

const ROUND = "r_clientclientclientclie";

async function twoStages() {
  const random = seededRandomBytes("client");
  let server = createRoundState(
    {
      roundId: ROUND,
      cohortSize: 3,
      k: 2,
      t: 1,
      dimension: 3,
      valueBits: 4,
      modulusBits: 6,
      randomBytes: random,
    },
    0,
  );
  const clients: ClientState[] = [];
  for (let s = 0; s < 3; s++) {
    const step = advertiseKeys(viewFor(server, s), { randomBytes: random });
    clients.push(step.state);
    server = (await handleMessage(server, step.message, 0)).state;
  }
  for (let s = 0; s < 3; s++) {
    const step = await shareKeys(clients[s]!, viewFor(server, s), { randomBytes: random });
    clients[s] = step.state;
    server = (await handleMessage(server, step.message, 0)).state;
  }
  return { server, clients, random };
}

const codeOf = async (f: () => unknown) => {
  try {
    await f();
    return "ok";
  } catch (error) {
    return error instanceof ProtocolError
      ? `${error instanceof ProtocolAbortError ? "abort:" : ""}${error.code}`
      : String(error);
  }
};

describe("client stages", () => {
  it("replay the stored message on retry, even from a reloaded (JSON) state", async () => {
    const { server, clients } = await twoStages();
    const view = viewFor(server, 0);
    const first = await maskedInput(clients[0]!, view, new Uint32Array([1, 2, 3]));
    const reloaded = JSON.parse(JSON.stringify(first.state)) as ClientState;
    // A retry with a different input must not produce a second, differently masked vector.
    const again = await maskedInput(reloaded, view, new Uint32Array([9, 9, 9]));
    expect(again.message).toEqual(first.message);
  });

  it("refuse stages out of order and after they have passed", async () => {
    const { server, clients } = await twoStages();
    const view = viewFor(server, 0);
    const head = { v: 1, roundId: ROUND, slot: 0 };
    expect(
      await codeOf(() =>
        consistencyCheck(clients[0]!, { ...head, stage: "consistency-check", survivors: "Bw==" }),
      ),
    ).toBe(ERROR_CODES.outOfOrder);
    const masked = await maskedInput(clients[0]!, view, new Uint32Array(3));
    expect(
      await codeOf(() =>
        shareKeys(masked.state, { ...head, stage: "share-keys", members: "Bw==", neighbours: [] }),
      ),
    ).toBe(ERROR_CODES.staleStage);
    expect(
      await codeOf(() =>
        maskedInput(clients[0]!, { ...view, roundId: "r_otherotherotherotherot" }, new Uint32Array(3)),
      ),
    ).toBe(ERROR_CODES.wrongRound);
  });

  it("reject inputs that could overflow and of the wrong length", async () => {
    const { server, clients } = await twoStages();
    const view = viewFor(server, 1);
    expect(await codeOf(() => maskedInput(clients[1]!, view, new Uint32Array([16, 0, 0])))).toBe(
      ERROR_CODES.outOfRange,
    );
    expect(await codeOf(() => maskedInput(clients[1]!, view, new Uint32Array(2)))).toBe(
      ERROR_CODES.wrongLength,
    );
  });

  it("detect a forged share box and a neighbour list that contradicts the public graph", async () => {
    const { server, clients } = await twoStages();
    const view = viewFor(server, 2);
    if (view.stage !== "masked-input") throw new Error("unreachable");
    const forged = view.shares.map((s, i) =>
      i ? s : { ...s, ct: bytesToBase64(base64ToBytes(s.ct).map((b, j) => (j ? b : b ^ 1))) },
    );
    expect(
      await codeOf(() => maskedInput(clients[2]!, { ...view, shares: forged }, new Uint32Array(3))),
    ).toBe(ERROR_CODES.authentication);
    const keysView = {
      v: 1,
      roundId: ROUND,
      slot: 2,
      stage: "share-keys",
      members: bytesToBase64(encodeSlotSet([0, 1, 2], 3)),
      neighbours: [],
    };
    const fresh = { ...clients[2]!, step: "advertised" as const, outbox: null };
    expect(await codeOf(() => shareKeys(fresh, keysView))).toBe(`abort:${ERROR_CODES.inconsistent}`);
  });

  it("catch a server that shows different survivor sets, and a forged tag", async () => {
    const random = seededRandomBytes("views");
    const inputs = Array.from({ length: 4 }, () => new Uint32Array(2));
    const states: Array<ClientState | null> = [];
    const out = await runSimulatedRound({
      cohortSize: 4,
      k: 2,
      t: 1,
      dimension: 2,
      valueBits: 2,
      modulusBits: 4,
      inputs,
      randomBytes: random,
    });
    expect(out.abort).toBeNull();
    states.push(...out.clients);
    // Rewind client 0 to just after its consistency check and show it a different U3.
    const checked = { ...states[0]!, step: "checked" as const, outbox: null };
    const other = bytesToBase64(encodeSlotSet([0, 1, 2], 4));
    const view = {
      v: 1,
      roundId: checked.config.roundId,
      slot: 0,
      stage: "unmask",
      survivors: other,
      tags: [],
    };
    expect(
      await codeOf(() =>
        unmask({ ...checked, survivors: bytesToBase64(encodeSlotSet([0, 1, 2, 3], 4)) }, view),
      ),
    ).toBe(`abort:${ERROR_CODES.inconsistent}`);
  });

  it("wipe secrets after revealing shares", async () => {
    const inputs = Array.from({ length: 4 }, () => new Uint32Array(2));
    const out = await runSimulatedRound({
      cohortSize: 4,
      k: 2,
      t: 1,
      dimension: 2,
      valueBits: 2,
      modulusBits: 4,
      inputs,
    });
    for (const client of out.clients) {
      expect(client?.step).toBe("unmasked");
      expect(client?.secrets).toBeNull();
      expect(client?.held).toBeNull();
      expect(client?.neighbours?.every((n) => n.boxSecret === "")).toBe(true);
    }
  });
});

describe("what the coordinator stores", () => {
  it("never holds a device's plaintext vector, in any entry, after any message", async () => {
    const n = 6;
    const d = 64;
    const m = 20;
    const random = seededRandomBytes("plaintext");
    // High-entropy inputs, so an accidental match of a 12-byte window is impossible.
    const inputs = Array.from({ length: n }, () =>
      Uint32Array.from(random(d * 2).subarray(0, d), (b, i) => (b * 257 + i) % 65536),
    );
    const needles = inputs.flatMap((x) => [
      wordsToBytes(x).subarray(0, 12),
      packWords(x, m).subarray(0, 12),
      packWords(x, 16).subarray(0, 12),
    ]);
    let snapshots = 0;
    const onServerState = (state: Parameters<typeof toStorageEntries>[0]) => {
      snapshots++;
      const entries = toStorageEntries(state);
      // Binary entries (the running sum is kept as words) are searched as they are stored.
      const binary = Object.values(entries).flatMap((v) =>
        v instanceof Uint32Array ? [new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] : [],
      );
      expect(state.phase !== "masked-input" || state.maskedSum === null || binary.length === 1).toBe(true);
      const text = JSON.stringify(entries, (_, v) => (v instanceof Uint32Array ? null : v));
      const blobs = [...binary, ...(text.match(/[A-Za-z0-9+/]{16,}={0,2}/g) ?? [])].map((b) => {
        if (b instanceof Uint8Array) return b;
        try {
          return base64ToBytes(b.length % 4 ? b.slice(0, b.length - (b.length % 4)) : b);
        } catch {
          return new Uint8Array(0);
        }
      });
      for (const blob of blobs) for (const needle of needles) expect(indexOf(blob, needle)).toBe(-1);
    };
    const dropouts = new Map<number, Stage>([[5, "unmask"]]);
    const out = await runSimulatedRound({
      cohortSize: n,
      k: 4,
      t: 2,
      dimension: d,
      valueBits: 16,
      modulusBits: m,
      inputs,
      dropouts,
      randomBytes: random,
      onServerState,
    });
    expect(out.abort).toBeNull();
    expect(snapshots).toBeGreaterThan(5 * n - 2);
  });
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
