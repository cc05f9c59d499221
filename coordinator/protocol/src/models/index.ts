/**
 * `@fedprofile/protocol/models`: what a model kind's device and server halves share, pure and
 * dependency-free: the public profile-vector transform, the k-means and fcf vector layouts, and
 * the Cholesky solve of the fcf halves.
 */

export * from "./cholesky";
export * from "./fcf-layout";
export * from "./kmeans-layout";
export * from "./profile-vector";
