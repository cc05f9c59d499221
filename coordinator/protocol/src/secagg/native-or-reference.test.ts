import { describe, expect, it } from "vitest";
import { nativeOrReference } from "./native-or-reference";

describe("nativeOrReference", () => {
  it("takes the native backend when it passes the known answer, and probes once", async () => {
    let probes = 0;
    const pick = nativeOrReference("native", "reference", async () => {
      probes++;
      return true;
    });
    expect(await pick()).toBe("native");
    expect(await pick()).toBe("native");
    expect(probes).toBe(1);
  });

  it("falls back to the reference backend when the native one answers wrongly or throws", async () => {
    expect(await nativeOrReference("native", "reference", async () => false)()).toBe("reference");
    const throwing = nativeOrReference("native", "reference", async () => {
      throw new DOMException("Unrecognized name", "NotSupportedError");
    });
    expect(await throwing()).toBe("reference");
  });
});
