/**
 * End-to-end test: a short run of the soak (tests/soak/soak.ts, whose full
 * run is `deno task soak`): 3,000 held connections through the tap, 500 new
 * ones a second for 10 s beside a bulk transfer, every byte checked, then the
 * held ones closed at once. That close burst loses FINs on the way to the
 * guest (its input backlog overflows), so the test also proves they are sent
 * again: orzo's descriptors must be back at their baseline within 20 s, and
 * orzo idle.
 */

import assert from "node:assert/strict";
import { denoIn, REPO, run } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const haveGcc = await new Deno.Command("sh", { args: ["-c", "command -v gcc"] }).output()
  .then((o) => o.success, () => false);

Deno.test({
  name: "soak, short: 3,000 held, 500 new a second for 10 s, bulk; descriptors back to baseline",
  ignore: !isRoot || !haveGcc,
  async fn() {
    const r = await run(denoIn(null, `${REPO}/tests/soak/soak.ts`, [], { perms: ["-A"] }), {
      env: {
        SOAK_POOL: "3000",
        SOAK_RATE: "500",
        SOAK_SECONDS: "10",
        SOAK_BULK_MIB_S: "20",
      },
      timeoutMs: 180_000,
    });
    const out = r.stdout + r.stderr.slice(-2000);
    assert.equal(r.code, 0, out);
    assert.match(r.stdout, /^soak: PASS$/m, out);
    const result = /^result (\{.*\})$/m.exec(r.stdout);
    assert.ok(result, out);
    const res = JSON.parse(result[1]!);
    assert.equal(res.pool, 3000, out);
    assert.equal(res.held_at_end, 3000, out);
    assert.equal(res.churnFail, 0, out);
    assert.equal(res.mismatches, 0, out);
    assert.ok(res.churnOk >= 4900, out);
    console.log(
      r.stdout.split("\n").filter((l) => /^(before|after)/.test(l)).join("\n"),
    );
  },
});
