/**
 * Argument parsing for every command: node's `util.parseArgs`, strict (an unknown option or a
 * missing value is an error, so a typo never silently changes an epsilon), with `--help`/`-h`
 * on every command, and typed checks of numeric values that name the option and the value.
 */
import { parseArgs as nodeParseArgs } from "node:util";
import { CliUsageError } from "./io.ts";

/** Parsed arguments. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: ReadonlyMap<string, string | true>;
}

/** Parses `argv` strictly, allowing the given value options and boolean options (plus `--help`/`-h`). */
export function parseArgs(
  argv: readonly string[],
  valueFlags: readonly string[],
  booleanFlags: readonly string[],
): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const name of valueFlags) options[name] = { type: "string" };
  for (const name of booleanFlags) if (name !== "help") options[name] = { type: "boolean" };
  let parsed: ReturnType<typeof nodeParseArgs>;
  try {
    parsed = nodeParseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (error) {
    // util.parseArgs names the option ("Unknown option '--x'", "Option '--y <value>' argument missing").
    throw new CliUsageError(
      error instanceof Error ? error.message.replace(/\. To specify .*$/s, "") : String(error),
    );
  }
  const flags = new Map<string, string | true>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === "string") flags.set(name, value);
    else if (value === true) flags.set(name, true);
  }
  return { positionals: parsed.positionals, flags };
}

/** True when `--help` or `-h` was given. */
export function wantsHelp(args: ParsedArgs): boolean {
  return args.flags.get("help") === true;
}

/** A numeric option, validated: finite and within `[min, max]`; the error names it and the value. */
export function numberFlag(
  args: ParsedArgs,
  name: string,
  opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
): number | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v)) throw new CliUsageError(`--${name}: ${raw} is not a number`);
  if (opts.integer && !Number.isSafeInteger(v))
    throw new CliUsageError(`--${name} must be an integer, got ${raw}`);
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) {
    throw new CliUsageError(`--${name} must be ${opts.exclusiveMin ? ">" : ">="} ${opts.min}, got ${raw}`);
  }
  if (opts.max !== undefined && v > opts.max)
    throw new CliUsageError(`--${name} must be <= ${opts.max}, got ${raw}`);
  return v;
}

/** A string option. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const raw = args.flags.get(name);
  if (raw === true) throw new CliUsageError(`--${name} needs a value`);
  return raw;
}

/**
 * A coordinator base URL: it must parse and use http or https, so `127.0.0.1:8787` (no scheme)
 * is refused with a hint instead of failing later inside fetch.
 */
export function urlFlag(args: ParsedArgs, name = "url"): string | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliUsageError(`--${name} ${raw} is not a URL; give the scheme too, e.g. http://${raw}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliUsageError(`--${name} ${raw} has no http:// or https:// scheme, e.g. http://${raw}`);
  }
  return raw.replace(/\/+$/, "");
}
