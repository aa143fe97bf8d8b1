import assert from "node:assert/strict";
import { ConfError } from "../conf/errors.ts";
import { inInitUserns, runasIds, targetIds } from "./users.ts";

Deno.test("--runas: numbers, and a number alone is also the group", () => {
  assert.deepEqual(runasIds({ user: 1000 }), { uid: 1000, gid: 1000 });
  assert.deepEqual(runasIds({ user: 1000, group: 100 }), { uid: 1000, gid: 100 });
});

Deno.test("--runas: names through the user database", () => {
  /* Debian's nobody: 65534, primary group nogroup (65534) */
  assert.deepEqual(runasIds({ user: "nobody" }), { uid: 65534, gid: 65534 });
  assert.deepEqual(runasIds({ user: 1000, group: "root" }), { uid: 1000, gid: 0 });
  assert.throws(() => runasIds({ user: "orzo-no-such-user" }), ConfError);
  assert.throws(() => runasIds({ user: "nobody", group: "orzo-no-such-group" }), ConfError);
  assert.throws(() => runasIds({ user: "root" }), /is root/);
});

Deno.test("the user to become: nobody for root in the initial user namespace", () => {
  if (Deno.uid() !== 0 || !inInitUserns()) {
    assert.equal(targetIds(undefined), null);
    return;
  }
  assert.deepEqual(targetIds(undefined), { uid: 65534, gid: 65534 });
  assert.deepEqual(targetIds({ user: 1000, group: 1000 }), { uid: 1000, gid: 1000 });
});
