/**
 * The recommendation module `recommend()` and fcf rounds load with `import()`: the FCF device half
 * and `@tensorflow/tfjs` with its WASM backend (the .wasm comes from the package, no network
 * beyond the page's own host), falling back to tfjs' CPU backend where WASM cannot start.
 */
import { base64ToBytes } from "@fedprofile/protocol/bytes";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { decodeFcfModel, type FcfModel, type FcfVersion } from "../models/fcf";

export {
  contributeFcf,
  decodeFcfModel,
  itemSignals,
  type Recommendation,
  type RecommendOptions,
  recommendItems,
  solveUserFactor,
  touchedItems,
} from "../models/fcf";

/** The tfjs backend the math runs on. */
export type TfBackend = "wasm" | "cpu" | "webgl";

let backend: Promise<TfBackend> | null = null;

/**
 * Starts tfjs once on `preferred` (default `wasm`, its binaries under `wasmPath` when given), else
 * on the CPU backend; resolves to the one in use.
 */
export function ensureTfBackend(preferred: TfBackend = "wasm", wasmPath?: string): Promise<TfBackend> {
  backend ??= (async () => {
    if (wasmPath) setWasmPaths(wasmPath);
    for (const name of [preferred, "cpu"] as const) {
      try {
        if (await tf.setBackend(name)) {
          await tf.ready();
          return name;
        }
      } catch {
        // the next backend
      }
    }
    throw new Error("tfjs: no backend could start");
  })();
  return backend;
}

const decoded = new Map<string, FcfModel>();

/** Decodes (once per version) a published fcf version whose weights are base64. */
export function fcfModelOf(version: Omit<FcfVersion, "weights"> & { weights: string }): FcfModel {
  const key = `${version.modelId}@${version.version}`;
  let model = decoded.get(key);
  if (!model) {
    model = decodeFcfModel({ ...version, weights: base64ToBytes(version.weights) });
    for (const k of decoded.keys()) if (k.startsWith(`${version.modelId}@`)) decoded.delete(k);
    decoded.set(key, model);
  }
  return model;
}
