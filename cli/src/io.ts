/**
 * The CLI's I/O port. Commands never touch the runtime directly: the Node entry
 * (`node-entry.ts`) supplies real files, stdout and `fetch`; tests supply memory.
 */

/** Everything a command may do to the outside world. */
export interface CliIo {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error (progress, warnings). */
  stderr(text: string): void;
  /** Reads a UTF-8 text file. */
  readFile(path: string): Promise<string>;
  /** Writes a UTF-8 text file. */
  writeFile(path: string, text: string): Promise<void>;
  /** The `fetch` the auditor client uses. */
  fetch: typeof fetch;
  /** Environment variables (e.g. FEDPROFILE_AUDITOR_KEY). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** A usage error: bad flags or values. The message is shown with the command's help. */
export class CliUsageError extends Error {
  readonly code = "CLI_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}
