import assert from "node:assert/strict";
import {
  macCopy,
  macEqual,
  macFormat,
  macIsBroadcast,
  macIsMulticast,
  macIsZero,
  macParse,
  macRead,
  macWrite,
} from "./mac.ts";

Deno.test("macParse() and macFormat() round-trip", () => {
  const m = macParse("9A:55:9a:55:9a:0F")!;
  assert.deepEqual(m, new Uint8Array([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x0f]));
  assert.equal(macFormat(m), "9a:55:9a:55:9a:0f");
  assert.equal(macFormat(new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]), 2), "02:03:04:05:06:07");
});

Deno.test("macParse() rejects malformed text", () => {
  for (
    const s of [
      "",
      "9a:55:9a:55:9a",
      "9a:55:9a:55:9a:5g",
      "9a-55-9a-55-9a-55",
      "9a:55:9a:55:9a:555",
    ]
  ) {
    assert.equal(macParse(s), null, s);
  }
});

Deno.test("mac reads, writes, copies and compares in place", () => {
  const buf = new Uint8Array(20);
  const dv = new DataView(buf.buffer);
  const m = new Uint8Array([2, 0, 0, 0, 0, 1]);
  macWrite(dv, 3, m);
  assert.ok(macEqual(dv, 3, m));
  assert.equal(macEqual(dv, 4, m), false);
  macCopy(dv, 3, dv, 11);
  const out = new Uint8Array(6);
  macRead(dv, 11, out);
  assert.deepEqual(out, m);
});

Deno.test("mac classification", () => {
  const dv = new DataView(
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x33, 0x33, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
      .buffer,
  );
  assert.ok(macIsBroadcast(dv, 0) && macIsMulticast(dv, 0));
  assert.ok(macIsMulticast(dv, 6) && !macIsBroadcast(dv, 6));
  assert.ok(macIsZero(dv, 12) && !macIsMulticast(dv, 12));
});
