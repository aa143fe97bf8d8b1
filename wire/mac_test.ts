import assert from "node:assert/strict";
import { macCopy, macIsMulticast, macWrite } from "./mac.ts";

Deno.test("mac writes and copies in place", () => {
  const buf = new Uint8Array(20);
  const dv = new DataView(buf.buffer);
  const m = new Uint8Array([2, 0, 0, 0, 0, 1]);
  macWrite(dv, 3, m);
  assert.deepEqual(buf.subarray(3, 9), m);
  macCopy(dv, 3, dv, 11);
  assert.deepEqual(buf.subarray(11, 17), m);
  assert.equal(buf[10], 0);
  assert.equal(buf[17], 0);
});

Deno.test("mac classification", () => {
  const dv = new DataView(
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x33, 0x33, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
      .buffer,
  );
  assert.ok(macIsMulticast(dv, 0));
  assert.ok(macIsMulticast(dv, 6));
  assert.ok(!macIsMulticast(dv, 12));
});
