/**
 * Classic-zod views of `zod/mini` schemas. `@fedprofile/protocol` defines every wire schema once,
 * in `zod/mini`, so the SDK stays small; `@hono/zod-openapi` (through
 * `@asteasolutions/zod-to-openapi`) validates requests and generates `/openapi.json`, but it
 * calls classic zod's `.meta()` on every schema it documents, which Zod Mini schemas lack
 * (zod-to-openapi PR 315, zod-openapi issue 519).
 *
 * Zod Mini and classic zod are two front-ends over the same `zod/v4/core` classes: a schema is a
 * constructor applied to a `def`. {@link toClassic} therefore rebuilds a Mini schema, node by
 * node, with the classic constructor of the same kind over the same `def` (the same checks,
 * refinements, defaults and messages) and copies its registry metadata. Nothing is defined twice:
 * validation is exactly the protocol's, and the OpenAPI document is generated from it.
 */
import * as z from "zod";
import type * as core from "zod/v4/core";

const converted = new WeakMap<core.$ZodType, z.ZodType>();

function isSchema(value: unknown): value is core.$ZodType {
  return typeof value === "object" && value !== null && "_zod" in value;
}

/** The classic constructor of a core schema's kind: `ZodMiniObject` → `ZodObject`, `ZodObject` → itself. */
function classicConstructor(schema: core.$ZodType): new (def: core.$ZodTypeDef) => z.ZodType {
  const name = schema._zod.constr.name.replace(/^ZodMini/, "Zod");
  const classic: unknown = Reflect.get(z, name);
  if (typeof classic !== "function") throw new TypeError(`toClassic: no classic zod schema for ${name}`);
  return classic as new (
    def: core.$ZodTypeDef,
  ) => z.ZodType;
}

function convertValue(value: unknown): unknown {
  if (isSchema(value)) return convert(value);
  if (Array.isArray(value) && value.length > 0 && value.every(isSchema)) return value.map(convert);
  return value;
}

function convert(schema: core.$ZodType): z.ZodType {
  const done = converted.get(schema);
  if (done) return done;
  const def: Record<string, unknown> = { ...schema._zod.def };
  for (const [key, value] of Object.entries(def)) {
    if (key === "checks") continue; // checks are core objects, shared by both front-ends
    if (key === "shape" && typeof value === "object" && value !== null) {
      def.shape = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convertValue(v)]));
    } else {
      def[key] = convertValue(value);
    }
  }
  const Classic = classicConstructor(schema);
  const out = new Classic(def as unknown as core.$ZodTypeDef);
  const meta = z.globalRegistry.get(schema);
  if (meta) z.globalRegistry.add(out, meta);
  converted.set(schema, out);
  return out;
}

/**
 * A classic-zod view of a `zod/mini` (or mixed) schema, for `@hono/zod-openapi`: same parsing,
 * same output type, documented from the same definition.
 */
export function toClassic<T extends core.$ZodType>(schema: T): z.ZodType<core.output<T>, core.input<T>> {
  return convert(schema) as z.ZodType<core.output<T>, core.input<T>>;
}
