import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CsvError, CsvParser, csvField, parseCsv } from "./csv";

describe("RFC 4180 CSV parser", () => {
  it("parses quoted fields with commas, doubled quotes and line breaks", () => {
    const text = 'a,b,c\n1,"x, y","say ""hi"""\r\n2,"multi\nline",\n';
    expect(parseCsv(text)).toEqual([
      ["a", "b", "c"],
      ["1", "x, y", 'say "hi"'],
      ["2", "multi\nline", ""],
    ]);
  });

  it("handles a last record without a line break, CRLF, and skips blank lines", () => {
    expect(parseCsv("a,b\r\n\r\n\nc,d")).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
    expect(parseCsv('"",x')).toEqual([["", "x"]]);
  });

  it("matches the data set's tricky descriptions", () => {
    expect(parseCsv('536477,22041,"RECORD FRAME 7"" SINGLE SIZE ",48\n')).toEqual([
      ["536477", "22041", 'RECORD FRAME 7" SINGLE SIZE ', "48"],
    ]);
  });

  it("rejects malformed input with the record number", () => {
    expect(() => parseCsv('a\n"b"x,c\n')).toThrow(CsvError);
    expect(() => parseCsv('a\n"b"x,c\n')).toThrow("CSV record 2");
    expect(() => parseCsv('a,"open')).toThrow("inside a quoted field");
  });

  it("round-trips any table split into chunks at any positions", () => {
    const cell = fc.string({ unit: fc.constantFrom("a", "b", ",", '"', "\n", "\r", " ", "é", "1") });
    const table = fc.array(fc.array(cell, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(table, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (rows, cuts, crlf) => {
        const text = rows.map((row) => row.map(csvField).join(",")).join(crlf ? "\r\n" : "\n");
        const positions = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const records: string[][] = [];
        const parser = new CsvParser((record) => records.push(record));
        let from = 0;
        for (const at of [...positions, text.length]) {
          parser.push(text.slice(from, at));
          from = at;
        }
        parser.end();
        expect(records).toEqual(rows);
      }),
      { numRuns: 500 },
    );
  });
});
