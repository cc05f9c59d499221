/**
 * The `fedprofile` command line for privacy: `accountant`, `audit verify`, `audit export`.
 * `main` takes argv and an I/O port and returns the exit code; the Node entry wires real I/O.
 */

import { ACCOUNTANT_HELP, accountantCommand } from "./accountant-command.ts";
import { AUDIT_HELP, auditExport, auditVerify } from "./audit-command.ts";
import { type CliIo, CliUsageError } from "./io.ts";

/** Top-level help. */
export const MAIN_HELP = `fedprofile: privacy-preserving federated user profiling

Commands:
  accountant      epsilon for given noise, sampling rate, steps and delta (or calibrate noise)
  audit verify    verify the privacy ledger: chain, signatures, recomputed epsilon
  audit export    export the ledger as JSON or CSV

Run "fedprofile <command> --help" for details.
`;

/** Runs the CLI. Returns 0 on success, 1 on a failed check or error, 2 on a usage error. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "accountant":
        return await accountantCommand(rest, io);
      case "audit": {
        const [sub, ...more] = rest;
        if (sub === "verify") return await auditVerify(more, io);
        if (sub === "export") return await auditExport(more, io);
        if (sub === undefined || sub === "--help") {
          io.stdout(AUDIT_HELP);
          return sub === undefined ? 2 : 0;
        }
        throw new CliUsageError(`unknown audit command "${sub}"`);
      }
      case undefined:
      case "--help":
      case "help":
        io.stdout(MAIN_HELP);
        return cmd === undefined ? 2 : 0;
      default:
        throw new CliUsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.stderr(
        `error: ${err.message}\n\n${cmd === "accountant" ? ACCOUNTANT_HELP : cmd === "audit" ? AUDIT_HELP : MAIN_HELP}`,
      );
      return 2;
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
