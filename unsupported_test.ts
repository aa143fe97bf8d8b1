/**
 * Unit tests of unsupported.ts: which options pass to their features and
 * which still stop orzo with one line.
 */

import assert from "node:assert/strict";
import { confParse } from "./conf/conf.ts";
import { ConfError } from "./conf/errors.ts";
import { NOT_BUILT, unsupported } from "./unsupported.ts";

const pasta = (...argv: string[]) => confParse(argv, { argv0Pasta: true });

Deno.test("unsupported() lets built options through: splice, stats, capabilities", () => {
  for (
    const argv of [
      ["--host-lo-to-ns-lo", "-t", "8080"],
      ["--splice-only", "-T", "9000"],
      ["-f", "--stats", "1"],
      ["--print-capabilities"],
    ]
  ) {
    const c = pasta(...argv);
    assert.doesNotThrow(() => unsupported(c), argv.join(" "));
  }
  for (const name of ["stats", "host-lo-to-ns-lo", "splice-only", "print-capabilities"]) {
    assert.ok(!NOT_BUILT.has(name), name);
  }
});

Deno.test("unsupported() accepts the obsolete options pasta still takes, with a warning", () => {
  for (
    const [argv, warning] of [
      [["--stderr"], /--stderr has no effect/],
      [["-e"], /--stderr has no effect/],
      [["--config-net", "--no-copy-routes"], /--no-copy-routes is deprecated/],
      [["--config-net", "--no-copy-addrs"], /--no-copy-addrs is deprecated/],
    ] as const
  ) {
    const c = pasta(...argv);
    assert.doesNotThrow(() => unsupported(c));
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0]!, warning);
  }
});

Deno.test("unsupported() still stops at an option whose feature is missing", () => {
  const c = pasta("--freebind");
  assert.throws(
    () => unsupported(c),
    (e) => e instanceof ConfError && e.message === 'Option "--freebind" is not supported yet',
  );
});
