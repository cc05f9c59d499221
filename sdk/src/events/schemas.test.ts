import { describe, expect, it } from "vitest";
import { EVENT_NAMES, resolveEventName, SPEC_EVENT_NAMES, UNUSED_EVENT_NAMES, V1_ALIASES } from "./catalogue";
import { parseNumeric } from "./coerce";
import { MAX_LINES, type ParseOutcome, parseEvent, restoreEvent } from "./schemas";

function kept(outcome: ParseOutcome) {
  if (outcome.status !== "kept") throw new Error(`expected kept, got ${outcome.status}`);
  return outcome;
}

describe("event names", () => {
  it("knows all 28 V2 events: 13 read by the profile, 15 counted and dropped", () => {
    expect(SPEC_EVENT_NAMES).toHaveLength(28);
    expect(new Set(SPEC_EVENT_NAMES).size).toBe(28);
    expect(EVENT_NAMES).toHaveLength(13);
    expect(UNUSED_EVENT_NAMES).toHaveLength(15);
  });

  it("resolves V1 aliases and other spellings to the V2 name", () => {
    expect(resolveEventName("Viewed Product")).toBe("Product Viewed");
    expect(resolveEventName("Completed Order")).toBe("Order Completed");
    expect(resolveEventName("order_completed")).toBe("Order Completed");
    expect(resolveEventName("  PRODUCT   viewed ")).toBe("Product Viewed");
    for (const [alias, name] of Object.entries(V1_ALIASES)) expect(resolveEventName(alias)).toBe(name);
    expect(resolveEventName("Checkout Begun")).toBeNull();
    expect(resolveEventName(42)).toBeNull();
  });
});

describe("numeric strings", () => {
  it("parse with a currency symbol or code and thousands separators under the stated rule", () => {
    expect(parseNumeric("19.99", ".")).toBe(19.99);
    expect(parseNumeric(" $1,234.50 ", ".")).toBe(1234.5);
    expect(parseNumeric("US$5", ".")).toBe(5);
    expect(parseNumeric("EUR 12", ".")).toBe(12);
    expect(parseNumeric("£0.85", ".")).toBe(0.85);
    expect(parseNumeric("1.234,50 €", ",")).toBe(1234.5);
    expect(parseNumeric("1 234,50", ",")).toBe(1234.5);
    expect(parseNumeric("19,99", ",")).toBe(19.99);
  });

  it("reject what does not parse cleanly rather than guess", () => {
    for (const text of ["1,5", "12,34.5", "1.234,50", "abc", "", "1e3", "0x10", "12.", "--1"]) {
      expect(parseNumeric(text, "."), text).toBeUndefined();
    }
    expect(parseNumeric("1,234.50", ","), "the other rule").toBeUndefined();
  });
});

describe("parseEvent", () => {
  it("keeps only the fields a feature reads (data minimisation)", () => {
    const review = kept(
      parseEvent("Product Reviewed", { product_id: "p", review_body: "secret", rating: "5", email: "a@b.c" }),
    );
    expect(review.event.properties).toEqual({});
    expect(kept(parseEvent("Products Searched", { query: "red shoes" })).event.properties).toEqual({});
    const view = kept(parseEvent("Product Viewed", { product_id: "p1", name: "Tote", url: "u", ssn: "x" }));
    expect(view.event.properties).toEqual({ product_id: "p1" });
  });

  it("treats null and empty strings as absent and numbers as ids", () => {
    const out = kept(
      parseEvent("Order Completed", {
        order_id: 536365,
        coupon: null,
        revenue: null,
        total: "27.50",
        currency: "",
      }),
    );
    expect(out.event.properties).toEqual({ order_id: "536365", total: 27.5 });
    expect(out.problems).toEqual([]);
  });

  it("drops an unreadable field with a problem naming the field, what was expected and what came", () => {
    const out = kept(
      parseEvent("Order Completed", {
        order_id: "o",
        revenue: -3,
        products: [{ price: 2 }, { price: "twelve", category: "x".repeat(2000) }, "junk"],
      }),
    );
    expect(out.event.properties).toEqual({ order_id: "o", products: [{ price: 2 }, {}] });
    expect(out.problems.map((p) => p.field)).toEqual([
      "revenue",
      "products[1].category",
      "products[1].price",
      "products[2]",
    ]);
    expect(out.problems[0]?.expected).toContain("number ≥ 0");
    expect(out.problems[0]?.received).toBe("-3");
    expect(out.problems[2]?.received).toBe('"twelve" (6 characters)');
  });

  it("takes the first element of a category array, and a single product object as a list", () => {
    const out = kept(
      parseEvent("Order Refunded", { order_id: "o", products: { category: ["Games", "Board"] } }),
    );
    expect(out.event.properties.products).toEqual([{ category: "Games" }]);
  });

  it("keeps 1,000 lines of a longer list and the money of all of them", () => {
    const products = Array.from({ length: MAX_LINES + 5 }, () => ({ price: 2, quantity: 3 }));
    const out = kept(parseEvent("Order Completed", { order_id: "big", products }));
    expect(out.event.properties.products).toHaveLength(MAX_LINES);
    expect(out.event.properties.lines_total).toBe(6 * (MAX_LINES + 5));
    expect(out.truncated).toBe(5);
  });

  it("says why nothing is kept: unused spec event, unknown name, or an event that cannot count", () => {
    expect(parseEvent("Coupon Applied", { coupon_id: "x" })).toEqual({
      status: "unused",
      name: "Coupon Applied",
    });
    expect(parseEvent("Page Viewed", {})).toEqual({ status: "unknown" });
    const notObject = parseEvent("Cart Viewed", "oops");
    expect(notObject).toMatchObject({
      status: "invalid",
      problem: { field: "properties", expected: "an object" },
    });
    expect(parseEvent("Cart Viewed", [1, 2])).toMatchObject({ status: "invalid" });
    expect(parseEvent("Order Refunded", { total: 3 })).toMatchObject({
      status: "invalid",
      problem: { field: "order_id" },
    });
    expect(parseEvent("Order Cancelled", { order_id: { nested: true } })).toMatchObject({
      status: "invalid",
      problem: { field: "order_id", received: "an object" },
    });
  });

  it("keeps an Order Completed without order_id (the profiler gives it an id of its own)", () => {
    expect(kept(parseEvent("Order Completed", { revenue: 5 })).event.properties).toEqual({ revenue: 5 });
  });

  it("treats missing properties as an empty object", () => {
    expect(kept(parseEvent("Product Added", undefined)).event.properties).toEqual({});
  });
});

describe("restoreEvent", () => {
  it("accepts what the device stored and rejects anything the reader would have to drop", () => {
    const event = {
      id: "a.1",
      name: "Order Completed",
      t: 5,
      p: { order_id: "o", lines_total: 3, products: [{}] },
    };
    expect(restoreEvent(event)).toEqual(event);
    expect(restoreEvent({ ...event, name: "Coupon Applied" })).toBeNull();
    expect(restoreEvent({ ...event, name: "Completed Order" }), "stored names are V2 names").toBeNull();
    expect(restoreEvent({ ...event, t: Number.NaN })).toBeNull();
    expect(restoreEvent({ ...event, p: { order_id: "o", revenue: -1 } })).toBeNull();
    expect(restoreEvent({ ...event, p: { order_id: "o", currency: "dollars" } })).toBeNull();
    expect(restoreEvent({ ...event, p: "x" })).toBeNull();
    expect(restoreEvent(null)).toBeNull();
    // Unread fields are left behind, as on the way in.
    expect(restoreEvent({ ...event, p: { order_id: "o", review_body: "x" } })?.p).toEqual({ order_id: "o" });
  });
});
