/**
 * The secure-aggregation math both sides run (Bonawitz et al. CCS 2017 with the SecAgg+ neighbour
 * graph of Bell et al. CCS 2020): constants, the fixed-point and bit-packing encodings, the
 * neighbour graph, X25519 keys and the KDF, masking, the PRG and Shamir sharing. The server's
 * state machine lives in `@fedprofile/coordinator/secagg`, the device's stages in `@fedprofile/sdk`.
 *
 * @packageDocumentation
 */

export * from "./constants";
export * from "./encoding";
export * from "./errors";
export * from "./graph";
export * from "./identity";
export * from "./keys";
export * from "./masking";
export * from "./prg";
export * from "./shamir";
export * from "./threat";
