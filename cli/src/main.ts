/**
 * `fedprofile`: one command line for the whole project. `main` takes argv and an I/O port and
 * returns the exit code; `node-entry.ts` wires real I/O. Every command parses its options with
 * node's `util.parseArgs` (strict) and answers `--help`/`-h`.
 */

import { ACCOUNTANT_HELP, accountantCommand } from "./accountant-command.ts";
import { AUDIT_HELP, auditExport, auditVerify } from "./audit-command.ts";
import { type CliIo, CliUsageError } from "./io.ts";

/** A command that runs in this process with Node's own argv handling (replay, simulate, eval). */
export type NodeCommand = (argv: string[]) => Promise<number>;

/** Where the Node-only commands come from (the Node entry loads them lazily; tests may stub them). */
export interface NodeCommands {
  replay?: () => Promise<NodeCommand>;
  simulate?: () => Promise<NodeCommand>;
  eval?: () => Promise<NodeCommand>;
}

/** Top-level help. */
export const MAIN_HELP = `fedprofile: privacy-preserving federated user profiling

Usage: fedprofile <command> [options]

Commands:
  replay          replay the UCI Online Retail CSV through the SDK and write per-customer features
  simulate        run the demo: local coordinator (wrangler dev), storefront and simulated devices
                  through real SecAgg+ rounds with distributed DP
  eval            evaluate the global models against centralised baselines (eval.json, report, plots)
  accountant      epsilon for given noise, sampling rate, steps and delta (or calibrate noise)
  audit verify    verify the privacy ledger: chain, signatures, recomputed epsilon
  audit export    export the ledger as JSON or CSV

Run "fedprofile <command> --help" (or -h) for a command's options.
`;

const HELP_OF: Record<string, string> = { accountant: ACCOUNTANT_HELP, audit: AUDIT_HELP };

/** Runs the CLI. Returns 0 on success, 1 on a failed check or error, 2 on a usage error. */
export async function main(argv: readonly string[], io: CliIo, commands: NodeCommands = {}): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "accountant":
        return await accountantCommand(rest, io);
      case "audit": {
        const [sub, ...more] = rest;
        if (sub === "verify") return await auditVerify(more, io);
        if (sub === "export") return await auditExport(more, io);
        if (sub === undefined || sub === "--help" || sub === "-h") {
          io.stdout(AUDIT_HELP);
          return sub === undefined ? 2 : 0;
        }
        throw new CliUsageError(`unknown audit command "${sub}" (verify or export)`);
      }
      case "replay":
      case "simulate":
      case "eval": {
        const load = commands[cmd];
        if (!load) throw new Error(`${cmd} is not available in this runtime`);
        return await (await load())(rest);
      }
      case undefined:
      case "--help":
      case "-h":
      case "help":
        io.stdout(MAIN_HELP);
        return cmd === undefined ? 2 : 0;
      default:
        throw new CliUsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.stderr(`error: ${err.message}\n\n${HELP_OF[cmd ?? ""] ?? MAIN_HELP}`);
      return 2;
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
