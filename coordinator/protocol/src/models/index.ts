/**
 * `@fedprofile/protocol/models`: what a model kind's device and server halves share, pure and
 * dependency-free: the public profile-vector transform and the k-means vector layout.
 */

export * from "./fcf-layout";
export * from "./kmeans-layout";
export * from "./profile-vector";
