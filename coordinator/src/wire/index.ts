/**
 * Wire schemas: the device protocol's, from `@fedprofile/protocol/wire` (zod/mini, the single
 * source of truth), and the operator and auditor routes' privacy schemas. Types are derived
 * with `z.infer`; parsed JSON is never cast.
 */
export * from "@fedprofile/protocol/wire";
export * from "./privacy";
