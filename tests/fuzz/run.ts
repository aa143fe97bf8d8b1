/**
 * run.ts - `deno task fuzz`: a longer fuzzer run, random unless FUZZ_SEED
 * is set; FUZZ_FRAMES frames (default 20,000,000). The seed is printed
 * first: a failure is reproduced with FUZZ_SEED and the same FUZZ_FRAMES.
 *
 * @module
 */

import { fuzzRun } from "./launch.ts";

const frames = Number(Deno.env.get("FUZZ_FRAMES") ?? 20_000_000);
const seedText = Deno.env.get("FUZZ_SEED");
const r = await fuzzRun(frames, seedText === undefined ? null : Number(seedText), 4 * 3600_000);
console.log(r.stdout.trimEnd());
if (r.stderr.trim() !== "") console.error(r.stderr.trimEnd());
Deno.exit(r.code);
