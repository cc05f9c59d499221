/**
 * `fedprofile eval recs` from the source tree (no build): `npx tsx --conditions=source
 * bench/recs-eval-source.ts --preset full ...`, the same options as the CLI.
 */
import { recsMain } from "../examples/eval/recs-main";

process.exitCode = await recsMain(process.argv.slice(2));
