/**
 * `npx fedprofile simulate [--devices N] [--rounds R] [--serve]`: the population simulator,
 * the same job as `npm start`.
 */
export { main } from "./run-demo";
