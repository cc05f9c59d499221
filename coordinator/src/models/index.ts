/** Global models: the kinds' server halves and the trainer that runs them. */
export * from "./kmeans";
export * from "./kmeans-layout";
export * from "./lloyd";
export * from "./profile-vector";
export * from "./trainer";
