/**
 * fuzz_test.ts - the tap fuzzer in CI: 1,000,000 frames from a fixed seed
 * (printed), after the fixtures in tests/fuzz/fixtures/; see fuzz_main.ts for
 * what is checked. `deno task fuzz` runs longer, from a random seed.
 */

import assert from "node:assert/strict";
import { fuzzRun } from "./launch.ts";

/** The CI run's seed. */
const CI_SEED = 20240909;
/** The CI run's frames. */
const CI_FRAMES = 1_000_000;

Deno.test("fuzz: 1,000,000 random and mutated frames through the tap reader, nothing escapes", async () => {
  const r = await fuzzRun(CI_FRAMES, CI_SEED, 170_000);
  console.log(r.stdout.trimEnd());
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`seed ${CI_SEED}, ${CI_FRAMES} frames`));
  assert.match(r.stdout, /handler failures 0, tap EOFs 0/);
  assert.match(r.stdout, /fuzz: ok/);
  /* the run got deep: connections made, DHCP and NDP answered */
  const learnt = /connections learnt (\d+)/.exec(r.stdout);
  assert.ok(learnt !== null && Number(learnt[1]) > 100, r.stdout);
  assert.match(r.stdout, /DHCP [1-9]\d*, DHCPv6 [1-9]/);
});
