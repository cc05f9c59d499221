import { describe, expect, it } from "vitest";
import {
  type ConsentSignals,
  decideUse,
  resolveConsent,
  type TcfSignal,
  tcfPurposes,
  tcfSignal,
} from "./consent";

const decided = (consents: number[], legitimateInterests: number[] = []): TcfSignal => ({
  status: "decided",
  consents,
  legitimateInterests,
});
const signals = (over: Partial<ConsentSignals>): ConsentSignals => ({
  explicit: {},
  gpc: false,
  tcf: null,
  ...over,
});
// The shape @iabtechlabtcf/cmpapi's TCData has (vectors are id -> boolean maps).
const tcData = (eventStatus: string, tcString: string, consents: Record<string, boolean>) => ({
  gdprApplies: true,
  eventStatus,
  tcString,
  listenerId: 0,
  purpose: { consents, legitimateInterests: { "7": true } },
});

describe("tcfSignal", () => {
  it("reads a decision from tcloaded and useractioncomplete", () => {
    expect(tcfSignal(tcData("tcloaded", "CQ", { "1": true, "2": false }), true)).toEqual(decided([1], [7]));
    expect(tcfSignal(tcData("useractioncomplete", "CQ", { "1": false }), true)).toEqual(decided([], [7]));
  });

  it("a banner shown over a TC string carries the standing decision; a first banner is pending", () => {
    expect(tcfSignal(tcData("cmpuishown", "CQ", { "1": true }), true)).toEqual(decided([1], [7]));
    expect(tcfSignal(tcData("cmpuishown", "", {}), true)).toEqual({ status: "pending" });
  });

  it("gdprApplies false gates nothing; a failed or malformed answer is ignored", () => {
    expect(tcfSignal({ gdprApplies: false, eventStatus: "tcloaded" }, true)).toEqual({
      status: "not-applicable",
    });
    expect(tcfSignal(tcData("tcloaded", "CQ", { "1": true }), false)).toBeNull();
    expect(tcfSignal({ purpose: { consents: { "1": "yes" } } }, true)).toBeNull();
    expect(tcfSignal(null, true)).toBeNull();
  });
});

describe("decideUse", () => {
  it("with no CMP and no GPC everything is granted; GPC refuses sync and publish only", () => {
    expect(resolveConsent(signals({}))).toEqual({ storage: true, sync: true, publish: true });
    expect(resolveConsent(signals({ gpc: true }))).toEqual({ storage: true, sync: false, publish: false });
  });

  it("purpose 1 gates storage and sync; publish needs 1, 3 and 4", () => {
    expect(resolveConsent(signals({ tcf: decided([]) }))).toEqual({
      storage: false,
      sync: false,
      publish: false,
    });
    expect(resolveConsent(signals({ tcf: decided([1]) }))).toEqual({
      storage: true,
      sync: true,
      publish: false,
    });
    expect(resolveConsent(signals({ tcf: decided([1, 3, 4]) })).publish).toBe(true);
  });

  it("a pending CMP leaves storage undecided (not refused), and allows nothing", () => {
    const pending = signals({ tcf: { status: "pending" } });
    expect(decideUse(pending, "storage")).toBe("undecided");
    expect(resolveConsent(pending)).toEqual({ storage: false, sync: false, publish: false });
    expect(decideUse(signals({ tcf: { status: "not-applicable" } }), "storage")).toBe("granted");
  });

  it("a refusal from any source wins; an explicit grant lifts GPC but never a CMP's refusal", () => {
    expect(decideUse(signals({ tcf: decided([1]), explicit: { storage: false } }), "storage")).toBe(
      "refused",
    );
    expect(decideUse(signals({ gpc: true, explicit: { sync: true } }), "sync")).toBe("granted");
    expect(decideUse(signals({ tcf: decided([]), explicit: { sync: true } }), "sync")).toBe("refused");
    expect(decideUse(signals({ tcf: decided([]), explicit: { storage: true } }), "storage")).toBe("refused");
    expect(decideUse(signals({ tcf: { status: "pending" }, explicit: { storage: true } }), "storage")).toBe(
      "undecided",
    );
  });

  it("legitimate interest counts only where TCF allows it (not for purposes 1, 3 to 6)", () => {
    const purposes = tcfPurposes({ sync: [7], storage: [1] });
    expect(decideUse(signals({ tcf: decided([], [1, 7]), purposes }), "sync")).toBe("granted");
    expect(decideUse(signals({ tcf: decided([], [1, 7]), purposes }), "storage")).toBe("refused");
  });

  it("tcfPurposes: sync: [] lets sync ignore TCF; a bad purpose id is a RangeError naming the use", () => {
    expect(decideUse(signals({ tcf: decided([]), purposes: tcfPurposes({ sync: [] }) }), "sync")).toBe(
      "granted",
    );
    expect(() => tcfPurposes({ publish: [1, 12] })).toThrow(/tcfPurposes\.publish: 12/);
    expect(() => tcfPurposes({ storage: [0.5] })).toThrow(RangeError);
  });
});
