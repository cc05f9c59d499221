import { describe, expect, it } from "vitest";
import { InvalidEventError } from "../errors";
import { EVENT_NAMES, parseEvent } from "./schemas";

const product = { product_id: "p1", sku: "S-1", category: "bags", name: "Tote", price: 12.5, quantity: 2 };

/** Representative properties for each of the twelve events (Segment e-commerce spec v2). */
const examples: Record<(typeof EVENT_NAMES)[number], Record<string, unknown>> = {
  "Products Searched": { query: "blue hotpants" },
  "Product List Viewed": { list_id: "hot_deals_1", category: "Deals", products: [product] },
  "Product Viewed": product,
  "Product Clicked": { ...product, position: 3 },
  "Product Added": { cart_id: "c1", ...product },
  "Product Removed": { cart_id: "c1", ...product },
  "Cart Viewed": { cart_id: "c1", products: [product] },
  "Checkout Started": { order_id: "o1", value: 30, revenue: 25, currency: "EUR", products: [product] },
  "Order Completed": { checkout_id: "k1", order_id: "o1", total: 30, revenue: 25, products: [product] },
  "Order Refunded": { order_id: "o1", total: 30 },
  "Order Cancelled": { order_id: "o1" },
  "Product Reviewed": { product_id: "p1", review_id: "r1", review_body: "Great", rating: 5 },
};

function invalid(name: unknown, properties: unknown): InvalidEventError {
  try {
    parseEvent(name, properties);
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  throw new Error("expected an InvalidEventError");
}

describe("Segment e-commerce v2 event schemas", () => {
  it("accepts all twelve events with their spec properties", () => {
    expect(EVENT_NAMES).toHaveLength(12);
    for (const name of EVENT_NAMES) {
      const event = parseEvent(name, examples[name]);
      expect(event.name).toBe(name);
    }
  });

  it("strips properties outside the spec (data minimisation)", () => {
    const event = parseEvent("Product Viewed", { product_id: "p1", email: "a@b.c", ssn: "x" });
    expect(event.properties).toEqual({ product_id: "p1" });
  });

  it("normalises numeric ids to strings", () => {
    expect(parseEvent("Order Completed", { order_id: 536365 }).properties.order_id).toBe("536365");
  });

  it("rejects an unknown event name, naming the field `event`", () => {
    const error = invalid("Page Viewed", {});
    expect(error.code).toBe("invalid_event");
    expect(error.field).toBe("event");
    expect(error.message).toContain("unknown event name");
  });

  it("names the invalid field, including nested product paths", () => {
    expect(invalid("Order Completed", { revenue: 3 }).field).toBe("order_id");
    expect(invalid("Product Viewed", { price: "12" }).field).toBe("price");
    expect(invalid("Product Added", { quantity: -1 }).field).toBe("quantity");
    const nested = invalid("Order Completed", {
      order_id: "o",
      products: [product, { ...product, price: -3 }],
    });
    expect(nested.field).toBe("products[1].price");
    expect(nested.message).toContain("products[1].price");
    expect(invalid("Products Searched", {}).field).toBe("query");
    expect(invalid("Product Reviewed", { rating: Number.NaN }).field).toBe("rating");
  });

  it("rejects non-object properties", () => {
    expect(invalid("Cart Viewed", "oops").field).toBe("properties");
    expect(invalid("Cart Viewed", [1, 2]).field).toBe("properties");
  });

  it("treats missing properties as an empty object", () => {
    expect(parseEvent("Product Added", undefined).properties).toEqual({});
  });
});
