/**
 * Measures what one device pays in a SecAgg+ round of a given shape, without simulating the
 * other n - 1 devices in full: the probe device runs the real stage functions, and its k
 * neighbours are stood in for by exactly the material the coordinator would forward (real keys,
 * real sealed share boxes, real consistency tags). Everything the probe device computes is
 * therefore what it would compute in a real round. Runs in node and in browsers (the benchmark
 * bundles it for Chromium).
 */

import {
  bytesToBase64,
  encodeSlotSet,
  type RandomBytes,
  systemRandomBytes,
} from "@fedprofile/protocol/bytes";
import {
  buildNeighbourGraph,
  consistencyKey,
  consistencyTag,
  encodeBoxPlaintext,
  generateKeyPair,
  type KeyAgreement,
  type KeyPair,
  type Prg,
  SIZES,
  type Stage,
  sealShares,
  shareBoxKey,
  sharePoint,
  splitSecret,
  tweetnaclKeyAgreement,
} from "@fedprofile/protocol/secagg";
import { encodeClientFrame, type SecAggClientMessage, type SecAggConfig } from "@fedprofile/protocol/wire";
import {
  advertiseKeys,
  type ClientOptions,
  consistencyCheck,
  maskedInput,
  shareKeys,
  unmask,
} from "./client";

/** Shape of the probed round. */
export interface ProbeOptions {
  n: number;
  k: number;
  t: number;
  dimension: number;
  valueBits: number;
  modulusBits: number;
  /** Fraction of the cohort that drops after sharing keys (the costliest place to drop). */
  dropout: number;
  consistencyCheck?: boolean;
  randomBytes?: RandomBytes;
  keyAgreement?: KeyAgreement;
  prg?: Prg;
}

/** What the probe device spent. */
export interface ProbeResult {
  /** Wall-clock ms per stage function. */
  stageMs: Record<Stage, number>;
  totalMs: number;
  /** Bytes sent as binary frames (`encodeClientFrame`). */
  bytesSent: number;
  /** Bytes sent if every message travelled as JSON with base64 fields instead. */
  bytesSentJson: number;
  /** Bytes of the stage views the device fetched (JSON). */
  bytesReceived: number;
  /** Neighbours of the probe device. */
  neighbours: number;
}

const ROUND_ID = "r_probeprobeprobeprobepr";

/** Runs the probe (slot 0) through all stages of a round shaped by `options`. */
export async function probeClient(options: ProbeOptions): Promise<ProbeResult> {
  const { n, k, t, dimension, valueBits, modulusBits } = options;
  const random = options.randomBytes ?? systemRandomBytes;
  const clientOptions: ClientOptions = { randomBytes: random };
  if (options.keyAgreement) clientOptions.keyAgreement = options.keyAgreement;
  if (options.prg) clientOptions.prg = options.prg;
  const withCheck = options.consistencyCheck ?? true;
  const seed = random(32);
  const config: SecAggConfig = {
    v: 1,
    roundId: ROUND_ID,
    cohortSize: n,
    k,
    t,
    dimension,
    valueBits,
    modulusBits,
    graphSeed: bytesToBase64(seed),
    consistencyCheck: withCheck,
  };
  const all = Array.from({ length: n }, (_, i) => i);
  const graph = buildNeighbourGraph(seed, all, k);
  const neighbours = graph.neighbours(0);
  // Dropped devices: a uniform subset of the others, of size round(dropout · n).
  const others = all.slice(1);
  for (let i = others.length - 1; i > 0; i--) {
    const j = (random(4).reduce((a, b) => a * 256 + b, 0) >>> 0) % (i + 1);
    [others[i], others[j]] = [others[j] as number, others[i] as number];
  }
  const dropped = new Set(others.slice(0, Math.round(options.dropout * n)));
  const keys = new Map<number, { c: KeyPair; s: KeyPair }>();
  for (const v of neighbours) keys.set(v, { c: generateKeyPair(random), s: generateKeyPair(random) });

  const stageMs: Record<Stage, number> = {
    "advertise-keys": 0,
    "share-keys": 0,
    "masked-input": 0,
    "consistency-check": 0,
    unmask: 0,
  };
  let bytesSent = 0;
  let bytesSentJson = 0;
  let bytesReceived = 0;
  const head = { v: 1 as const, roundId: ROUND_ID, slot: 0 };
  const timed = async <T>(
    stage: Stage,
    view: unknown,
    run: (view: unknown) => T | Promise<T>,
  ): Promise<T> => {
    const text = JSON.stringify(view);
    bytesReceived += text.length;
    const parsed: unknown = JSON.parse(text);
    const t0 = performance.now();
    const out = await run(parsed);
    stageMs[stage] += performance.now() - t0;
    return out;
  };
  const count = (message: SecAggClientMessage) => {
    bytesSentJson += JSON.stringify(message).length;
    bytesSent += encodeClientFrame(message).length;
  };

  const a = await timed("advertise-keys", { ...head, stage: "advertise-keys", config }, (v) =>
    advertiseKeys(v, clientOptions),
  );
  count(a.message);
  const probeC = a.message.cPk;
  const shareView = {
    ...head,
    stage: "share-keys",
    members: bytesToBase64(encodeSlotSet(all, n)),
    neighbours: neighbours.map((v) => {
      const kp = keys.get(v) as { c: KeyPair; s: KeyPair };
      return { slot: v, cPk: bytesToBase64(kp.c.publicKey), sPk: bytesToBase64(kp.s.publicKey) };
    }),
  };
  const s = await timed("share-keys", shareView, (v) => shareKeys(a.state, v, clientOptions));
  count(s.message);

  // What each neighbour v would have sealed for the probe: its shares of b_v and s_v^SK at the
  // probe's point, under X25519(c_v, c_probe). The reference backend keeps this setup honest.
  const probeCPk = Uint8Array.from(atob(probeC), (ch) => ch.charCodeAt(0));
  const boxSecrets = new Map<number, Uint8Array>();
  for (const v of neighbours) {
    const kp = keys.get(v) as { c: KeyPair; s: KeyPair };
    const [secret] = await tweetnaclKeyAgreement.agreeMany(kp.c, [probeCPk]);
    boxSecrets.set(v, secret as Uint8Array);
  }
  const points = [sharePoint(0), ...Array.from({ length: Math.max(0, t - 1) }, (_, i) => n + 1 + i)];
  const boxes = neighbours.map((v) => {
    const kp = keys.get(v) as { c: KeyPair; s: KeyPair };
    const [bShare] = splitSecret(random(SIZES.selfSeed), t, points, random);
    const [sShare] = splitSecret(kp.s.secretKey, t, points, random);
    const box = sealShares(
      shareBoxKey(boxSecrets.get(v) as Uint8Array, ROUND_ID, v, 0),
      encodeBoxPlaintext(bShare as NonNullable<typeof bShare>, sShare as NonNullable<typeof sShare>),
    );
    return { from: v, ct: bytesToBase64(box) };
  });
  const input = new Uint32Array(dimension);
  const top = 2 ** valueBits;
  const noise = random(dimension * 2);
  for (let i = 0; i < dimension; i++)
    input[i] = ((noise[2 * i] as number) * 256 + (noise[2 * i + 1] as number)) % top;
  const m = await timed("masked-input", { ...head, stage: "masked-input", shares: boxes }, (v) =>
    maskedInput(s.state, v, input, clientOptions),
  );
  count(m.message);

  const survivors = bytesToBase64(
    encodeSlotSet(
      all.filter((u) => !dropped.has(u)),
      n,
    ),
  );
  let state = m.state;
  if (withCheck) {
    const c = await timed("consistency-check", { ...head, stage: "consistency-check", survivors }, (v) =>
      consistencyCheck(state, v),
    );
    count(c.message);
    state = c.state;
  }
  const bitmap = Uint8Array.from(atob(survivors), (ch) => ch.charCodeAt(0));
  const tags = withCheck
    ? neighbours
        .filter((v) => !dropped.has(v))
        .map((v) => {
          const key = consistencyKey(boxSecrets.get(v) as Uint8Array, ROUND_ID, v, 0);
          return { from: v, tag: bytesToBase64(consistencyTag(key, ROUND_ID, bitmap)) };
        })
    : [];
  const u = await timed("unmask", { ...head, stage: "unmask", survivors, tags }, (v) => unmask(state, v));
  count(u.message);
  const totalMs = Object.values(stageMs).reduce((x, y) => x + y, 0);
  return { stageMs, totalMs, bytesSent, bytesSentJson, bytesReceived, neighbours: neighbours.length };
}
