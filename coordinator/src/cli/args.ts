/**
 * A small argv parser: `--name value`, `--name=value` and boolean `--flag`, plus positionals.
 * Unknown flags are errors, so a typo never silently changes an epsilon.
 */

import { CliUsageError } from "./io.ts";

/** Parsed arguments. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: ReadonlyMap<string, string | true>;
}

/** Parses `argv` allowing the given value flags and boolean flags. */
export function parseArgs(
  argv: readonly string[],
  valueFlags: readonly string[],
  booleanFlags: readonly string[],
): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
    if (booleanFlags.includes(name)) {
      if (eq !== -1) throw new CliUsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (valueFlags.includes(name)) {
      const value = eq === -1 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined || (eq === -1 && value.startsWith("--")))
        throw new CliUsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new CliUsageError(`unknown option --${name}`);
    }
  }
  return { positionals, flags };
}

/** A numeric flag, validated: finite and within `[min, max]`. */
export function numberFlag(
  args: ParsedArgs,
  name: string,
  opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
): number | undefined {
  const raw = args.flags.get(name);
  if (raw === undefined) return undefined;
  if (raw === true) throw new CliUsageError(`--${name} needs a value`);
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v))
    throw new CliUsageError(`--${name} must be a number, got "${raw}"`);
  if (opts.integer && !Number.isSafeInteger(v))
    throw new CliUsageError(`--${name} must be an integer, got ${raw}`);
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) {
    throw new CliUsageError(`--${name} must be ${opts.exclusiveMin ? ">" : ">="} ${opts.min}, got ${raw}`);
  }
  if (opts.max !== undefined && v > opts.max)
    throw new CliUsageError(`--${name} must be <= ${opts.max}, got ${raw}`);
  return v;
}

/** A string flag. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const raw = args.flags.get(name);
  if (raw === true) throw new CliUsageError(`--${name} needs a value`);
  return raw;
}
