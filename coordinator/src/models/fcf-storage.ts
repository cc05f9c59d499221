/**
 * The trainer's state as a small value plus byte blobs, for storage whose values are bounded (a
 * Durable Object value is at most 2 MB). An fcf model's arrays grow with the catalogue: at rank 32
 * the factors alone are 128 B per item, and with Adam's two moments the state passed 2 MB at about
 * 5,000 items. They, and the declaration's catalogue, leave the value as blobs, which the edge
 * chunks beside it (`chunkEntries`, the pattern of the aggregation tree's node state) and writes in
 * the same atomic put. A k-means state has nothing large and stays whole.
 */
import { Catalogue } from "@fedprofile/protocol/wire";
import type { FcfState } from "./fcf";
import type { TrainerState } from "./trainer";

/** The typed arrays of an fcf state, each stored as its own blob. */
const FCF_ARRAYS = ["factors", "moment1", "moment2", "popularity"] as const;

/**
 * The storage key of a blob of a packed state. A save writes a new generation's keys before the
 * value that names them, so a crash part-way leaves the previous value with its own blobs.
 */
export const blobKey = (generation: number, name: string) => `trainer-blob:${generation}:${name}`;

/** A trainer state as stored: the small part, its generation, and the names of its blobs. */
export interface PackedTrainerState {
  kind: "trainer-packed";
  generation: number;
  state: TrainerState;
  blobs: string[];
}

const bytesOfArray = (a: Float32Array | Float64Array) =>
  new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/**
 * Splits `state` into a small value and blobs (`name` → bytes). The small value keeps every field
 * but the fcf arrays (emptied) and the fcf catalogue (an empty list); {@link unpackTrainerState}
 * puts them back.
 */
export function packTrainerState(
  state: TrainerState,
  generation: number,
): {
  packed: PackedTrainerState;
  blobs: Record<string, Uint8Array>;
} {
  const model = state.model;
  const declaration = state.declaration;
  if (!("kind" in model) || model.kind !== "fcf" || declaration.kind !== "fcf") {
    return { packed: { kind: "trainer-packed", generation, state, blobs: [] }, blobs: {} };
  }
  const blobs: Record<string, Uint8Array> = {};
  for (const name of FCF_ARRAYS) blobs[name] = bytesOfArray(model[name]);
  const empty = new Float32Array(0);
  const small: FcfState = {
    ...model,
    factors: empty,
    moment1: empty,
    moment2: empty,
    popularity: new Float64Array(0),
  };
  blobs.catalogue = new TextEncoder().encode(JSON.stringify(declaration.catalogue));
  return {
    packed: {
      kind: "trainer-packed",
      generation,
      state: {
        ...state,
        model: small,
        declaration: { ...declaration, catalogue: { items: [] } },
      },
      blobs: Object.keys(blobs),
    },
    blobs,
  };
}

const bufferOf = (bytes: Uint8Array) =>
  bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);

/**
 * The state {@link packTrainerState} split, from its small value and a reader of its blobs. A
 * value stored whole (a `TrainerState`, as before chunking) is returned as it is. Throws when a
 * blob is missing: the put that wrote the value wrote its blobs, so that is corruption.
 */
export async function unpackTrainerState(
  stored: PackedTrainerState | TrainerState,
  blob: (generation: number, name: string) => Promise<Uint8Array | null>,
): Promise<TrainerState> {
  if (stored.kind === "trainer") return stored;
  const state = stored.state;
  if (stored.blobs.length === 0) return state;
  const bytes: Record<string, Uint8Array> = {};
  for (const name of stored.blobs) {
    const b = await blob(stored.generation, name);
    if (!b) throw new Error(`trainer state: blob "${name}" is missing`);
    bytes[name] = b;
  }
  const model = state.model;
  const declaration = state.declaration;
  if (!("kind" in model) || model.kind !== "fcf" || declaration.kind !== "fcf" || !bytes.catalogue) {
    throw new Error("trainer state: blobs stored for a state that is not fcf");
  }
  const full: FcfState = { ...model };
  for (const name of FCF_ARRAYS) {
    const b = bytes[name];
    if (!b) throw new Error(`trainer state: blob "${name}" is missing`);
    if (name === "popularity") full.popularity = new Float64Array(bufferOf(b));
    else full[name] = new Float32Array(bufferOf(b));
  }
  const catalogue = Catalogue.parse(JSON.parse(new TextDecoder().decode(bytes.catalogue)));
  return { ...state, model: full, declaration: { ...declaration, catalogue } };
}
