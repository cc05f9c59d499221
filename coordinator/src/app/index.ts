export { type AppEnv, type AuthContext, requireKey } from "./auth";
export { type CoordinatorAppOptions, createCoordinatorApp } from "./create-app";
