/**
 * A streaming CSV parser for RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180): fields are
 * separated by commas, records by CRLF or LF; a field may be enclosed in double quotes, and
 * then may contain commas, line breaks and doubled quotes (`""` is one `"`).
 *
 * Chunks may split anywhere (inside a quoted field, between a quote pair, between CR and LF).
 * Blank lines are skipped. A quoted field followed by anything but a separator, or a file
 * ending inside quotes, is malformed and raises `CsvError` with its 1-based record number.
 */

/** Malformed CSV input. */
export class CsvError extends Error {
  readonly code = "csv_malformed";
  /** 1-based record number (header = 1) where the problem is. */
  readonly record: number;

  constructor(message: string, record: number) {
    super(`CSV record ${record}: ${message}`);
    this.name = "CsvError";
    this.record = record;
  }
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

enum State {
  FieldStart,
  Unquoted,
  Quoted,
  QuoteInQuoted,
}

/** Incremental parser: `push` chunks, then `end`; every complete record goes to `onRecord`. */
export class CsvParser {
  private state = State.FieldStart;
  private field = "";
  private record: string[] = [];
  private afterCr = false;
  private records = 0;

  constructor(private readonly onRecord: (record: string[]) => void) {}

  /** Parses the next chunk of text. */
  push(chunk: string): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.afterCr) {
        this.afterCr = false;
        if (chunk.charCodeAt(i) === LF) {
          i += 1;
          continue;
        }
      }
      switch (this.state) {
        case State.FieldStart: {
          const c = chunk.charCodeAt(i);
          if (c === QUOTE) {
            this.state = State.Quoted;
            i += 1;
          } else if ((c === LF || c === CR) && this.record.length === 0) {
            this.afterCr = c === CR; // a blank line
            i += 1;
          } else {
            this.state = State.Unquoted;
          }
          break;
        }
        case State.Unquoted: {
          let j = i;
          let c = 0;
          while (j < n) {
            c = chunk.charCodeAt(j);
            if (c === COMMA || c === LF || c === CR) break;
            j += 1;
          }
          this.field += chunk.slice(i, j);
          if (j === n) return;
          this.delimiter(c);
          i = j + 1;
          break;
        }
        case State.Quoted: {
          const j = chunk.indexOf('"', i);
          if (j === -1) {
            this.field += chunk.slice(i);
            return;
          }
          this.field += chunk.slice(i, j);
          this.state = State.QuoteInQuoted;
          i = j + 1;
          break;
        }
        case State.QuoteInQuoted: {
          const c = chunk.charCodeAt(i);
          if (c === QUOTE) {
            this.field += '"';
            this.state = State.Quoted;
          } else if (c === COMMA || c === LF || c === CR) {
            this.delimiter(c);
          } else {
            throw new CsvError(
              `unexpected ${JSON.stringify(chunk[i])} after a closing quote`,
              this.records + 1,
            );
          }
          i += 1;
          break;
        }
      }
    }
  }

  /** Signals the end of input and emits the last record if it had no line break. */
  end(): void {
    if (this.state === State.Quoted) throw new CsvError("input ends inside a quoted field", this.records + 1);
    if (this.state !== State.FieldStart || this.record.length > 0) this.endRecord();
  }

  private delimiter(c: number) {
    if (c === COMMA) {
      this.record.push(this.field);
      this.field = "";
      this.state = State.FieldStart;
      return;
    }
    this.endRecord();
    this.afterCr = c === CR;
  }

  private endRecord() {
    this.record.push(this.field);
    const record = this.record;
    this.field = "";
    this.record = [];
    this.state = State.FieldStart;
    this.records += 1;
    this.onRecord(record);
  }
}

/** Parses a whole string (convenience for tests and small files). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  const parser = new CsvParser((record) => records.push(record));
  parser.push(text);
  parser.end();
  return records;
}

/** Quotes a field for output when RFC 4180 requires it. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
