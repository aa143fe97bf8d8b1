import assert from "node:assert/strict";
import { dnsNameLen, dnsNameWrite, dnsNameWriteCompressed } from "./dns_name.ts";

const enc = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("dnsNameLen() measures names and refuses what cannot be encoded", () => {
  assert.equal(dnsNameLen("a.example"), 11);
  assert.equal(dnsNameLen("a.example."), 11);
  for (const bad of ["", ".", "a..b", ".a", "a b", "é.example", `${"x".repeat(64)}.example`]) {
    assert.equal(dnsNameLen(bad), 0, bad);
  }
  assert.equal(dnsNameLen(`${"x".repeat(63)}.y`), 67);
  const long = Array.from({ length: 127 }, () => "a").join("."); /* 253 characters: 255 bytes */
  assert.equal(dnsNameLen(long), 255);
  assert.equal(dnsNameLen(long + "b"), 0);
});

Deno.test("dnsNameWrite() writes labels and the root label, within the room given", () => {
  const b = new Uint8Array(20).fill(0xee);
  assert.equal(dnsNameWrite(b, 2, "a.example", 11), 11);
  assert.deepEqual([...b.subarray(2, 13)], [1, ...enc("a"), 7, ...enc("example"), 0]);
  assert.equal(b[13], 0xee);
  assert.equal(dnsNameWrite(b, 2, "a.example", 10), 0);
});

Deno.test("dnsNameWriteCompressed() points at the longest suffix already in the list", () => {
  const b = new Uint8Array(64);
  let n = 0;
  for (const name of ["eng.example.com", "example.com", "www.example.com", "example.org"]) {
    n += dnsNameWriteCompressed(b, 4, 4 + n, name, 60 - n);
  }
  assert.deepEqual([...b.subarray(4, 4 + n)], [
    ...[3, ...enc("eng"), 7, ...enc("example"), 3, ...enc("com"), 0], /* at 0 */
    0xc0,
    4, /* example.com: at 4 */
    3,
    ...enc("www"),
    0xc0,
    4,
    7,
    ...enc("example"),
    3,
    ...enc("org"),
    0, /* no common suffix ending at the root */
  ]);
  assert.equal(dnsNameWriteCompressed(b, 4, 4 + n, "x.example.com", 3), 0, "does not fit");
});
