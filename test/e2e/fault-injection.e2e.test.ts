/**
 * The fault suite's CI configuration (issue 11): `wrangler dev` SIGKILLed at two points (40 ms
 * after a shard's last unmask message, the crash that lost a release, and mid masked-input), one
 * seed each, restarted on the same state. The full matrix is `npm run bench:fault`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultTemplate, prepareFaultTemplate, runFaultTrial } from "../fault/harness";

let template: FaultTemplate;
beforeAll(async () => {
  template = await prepareFaultTemplate();
});
afterAll(() => template?.dispose());

describe("SIGKILL of wrangler dev mid-round (fault injection, CI configuration)", () => {
  for (const point of ["unmask-end+40ms", "masked-input-mid"] as const) {
    it(`${point}: the round publishes with one ledger entry, or aborts having revealed nothing`, {
      timeout: 240_000,
    }, async () => {
      const trial = await runFaultTrial(point, 1, template);
      expect(trial.killed).toBe(true);
      expect(trial.violation).toBeNull();
      expect(trial.auditVerified).toBe(true);
      expect(["closed", "aborted"]).toContain(trial.roundStage);
    });
  }
});
