import assert from "node:assert/strict";
import { ViewCache } from "./view_cache.ts";

Deno.test("ViewCache.use() returns the byte offset and reuses views for the same buffer", () => {
  const v = new ViewCache();
  const buf = new Uint8Array(64);
  const sub = buf.subarray(10);
  assert.equal(v.use(sub), 10);
  const dv = v.dv;
  assert.equal(v.use(buf), 0);
  assert.equal(v.dv, dv, "same buffer: same view");
  assert.equal(v.dv.byteLength, 64);
  v.dv.setUint8(12, 7);
  assert.equal(sub[2], 7);
});

Deno.test("ViewCache.use() rebuilds the views for another buffer", () => {
  const v = new ViewCache();
  v.use(new Uint8Array(8));
  const dv = v.dv;
  const other = new Uint8Array(16);
  v.use(other);
  assert.notEqual(v.dv, dv);
  assert.equal(v.u8.length, 16);
});
