/** A small catalogue in the spirit of the UCI Online Retail data (gifts and homewares). */
export interface CatalogueItem {
  product_id: string;
  sku: string;
  name: string;
  category: string;
  price: number;
}

export const CATALOGUE: readonly CatalogueItem[] = [
  {
    product_id: "85123A",
    sku: "85123A",
    name: "White hanging heart T-light holder",
    category: "candles & lights",
    price: 2.55,
  },
  {
    product_id: "22423",
    sku: "22423",
    name: "Regency cakestand 3 tier",
    category: "kitchen & dining",
    price: 12.75,
  },
  { product_id: "47566", sku: "47566", name: "Party bunting", category: "party & seasonal", price: 4.95 },
  {
    product_id: "84879",
    sku: "84879",
    name: "Assorted colour bird ornament",
    category: "home decor",
    price: 1.69,
  },
  {
    product_id: "20725",
    sku: "20725",
    name: "Lunch bag red retrospot",
    category: "bags & storage",
    price: 1.65,
  },
  {
    product_id: "22720",
    sku: "22720",
    name: "Set of 3 cake tins pantry design",
    category: "kitchen & dining",
    price: 4.95,
  },
];
