/**
 * RDP to (epsilon, delta) conversion. It lives in `@fedprofile/protocol/dp` since devices check a
 * round's epsilon against their privacy policy with the same rule the ledger uses.
 */
export { type DeltaResult, type EpsilonResult, rdpToDelta, rdpToEpsilon } from "@fedprofile/protocol/dp";
