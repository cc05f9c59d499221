/** Global models: the kinds' server halves and the trainer that runs them (plus the shared layout). */
export * from "@fedprofile/protocol/models";
export * from "./fcf";
export * from "./fcf-storage";
export * from "./kmeans";
export * from "./lloyd";
export * from "./trainer";
