import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "./replay";
import { categorise } from "./taxonomy";

const dir = mkdtempSync(join(tmpdir(), "replay-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SAMPLE = [
  "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
  "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2011-12-01 08:26:00,2.55,17850,United Kingdom",
  '536365,22041,"RECORD FRAME 7"" SINGLE, SIZE ",2,2011-12-01 08:27:00,10,17850,United Kingdom',
  "536366,22633,HAND WARMER UNION JACK,6,2011-12-05 00:00:00,1.85,17850,United Kingdom",
  "C536367,22633,HAND WARMER UNION JACK,-2,2011-12-06 00:00:00,1.85,17850,United Kingdom",
  "536368,22960,JAM MAKING SET WITH JARS,1,2011-12-02 00:00:00,4.25,,United Kingdom",
  "536369,22961,FREE GIFT,5,2011-12-02 00:00:00,0,13047,United Kingdom",
  "C536370,22962,JAM JAR,-1,2011-11-30 00:00:00,3,13047,United Kingdom",
].join("\n");

describe("fedprofile replay", () => {
  it("applies the mapping rules end to end on a small file", async () => {
    const data = join(dir, "sample.csv.gz");
    writeFileSync(data, gzipSync(`${SAMPLE}\n`));
    const out = join(dir, "out.csv");
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    expect(await main(["--data", data, "--as-of", "2011-12-10T00:00:00Z", "--out", out, "--quiet"])).toBe(0);
    expect(log.mock.calls.flat().join("\n")).toMatch(
      /kept 5 lines \(skipped 1 without CustomerID, 1 with UnitPrice ≤ 0\)/,
    );
    log.mockRestore();
    const [header, ...rows] = readFileSync(out, "utf8").trimEnd().split("\n");
    // 13047 has only a refund (its order line had UnitPrice 0): no row.
    expect(rows).toHaveLength(1);
    const cells = Object.fromEntries(
      header?.split(",").map((name, i) => [name, rows[0]?.split(",")[i]]) ?? [],
    );
    expect(cells).toMatchObject({
      customer_id: "17850",
      recency_days: "5",
      frequency: "2",
      monetary: String(6 * 2.55 + 2 * 10 + 6 * 1.85 - 2 * 1.85),
      tenure_days: String(8 + (15 * 60 + 34) / 1440),
      event_count: "3",
    });
  });

  it("gives the same features through the IndexedDB store (fake-indexeddb) as through memory", async () => {
    const data = join(dir, "sample2.csv.gz");
    writeFileSync(data, gzipSync(`${SAMPLE}\n`));
    const [memory, indexeddb] = [join(dir, "memory.csv"), join(dir, "indexeddb.csv")];
    const args = ["--data", data, "--as-of", "2011-12-10T00:00:00Z", "--quiet"];
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    expect(await main([...args, "--out", memory])).toBe(0);
    expect(await main([...args, "--out", indexeddb, "--store", "fake-indexeddb"])).toBe(0);
    expect(log.mock.calls.flat().join("\n")).toContain("devices by storage backend: 2 IndexedDB, 0 memory");
    log.mockRestore();
    expect(readFileSync(indexeddb, "utf8")).toBe(readFileSync(memory, "utf8"));
    // Each simulated device erased its database afterwards.
    expect((await indexedDB.databases()).map((db) => db.name)).toEqual([]);
  });

  it("reports usage errors with exit code 2", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await main(["--data", "x.csv.gz", "--out", "y.csv"])).toBe(2);
    expect(await main(["--bogus"])).toBe(2);
    expect(await main(["--data", "x", "--as-of", "2011-12-10", "--out", "y", "--store", "sqlite"])).toBe(2);
    error.mockRestore();
  });

  it("fails cleanly (exit 1) on a missing file", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(
      await main([
        "--data",
        join(dir, "nope.gz"),
        "--as-of",
        "2011-12-10",
        "--out",
        join(dir, "o.csv"),
        "--quiet",
      ]),
    ).toBe(1);
    error.mockRestore();
  });
});

describe("keyword taxonomy", () => {
  it("takes the first category in table order whose keyword is a whole word", () => {
    expect(categorise("WHITE HANGING HEART T-LIGHT HOLDER")).toBe("lighting");
    expect(categorise("JUMBO BAG RED RETROSPOT")).toBe("bags");
    expect(categorise("SET OF 3 CAKE TINS PANTRY DESIGN")).toBe("kitchen");
    expect(categorise("CHRISTMAS LIGHTS 10 REINDEER")).toBe("christmas");
    expect(categorise("POSTAGE")).toBe("service");
    expect(categorise("BAGATELLE")).toBe("other");
    expect(categorise("")).toBe("other");
  });
});
