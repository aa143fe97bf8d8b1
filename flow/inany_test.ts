/**
 * inany_test.ts - tests for the IPv4-mapped address helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  INANY_LEN,
  inanyCopy,
  inanyEq,
  inanyFormat,
  inanyFrom4,
  inanyFrom4Num,
  inanyFrom6,
  inanyIs4,
  inanyIsLinkLocal6,
  inanyIsLoopback,
  inanyIsMulticast,
  inanyIsUnspecified,
  inanyParse,
} from "./inany.ts";

/** Parses an address into a fresh inany at offset 3 of a 0xa5-filled buffer. */
function at3(s: string): Uint8Array {
  const b = new Uint8Array(3 + INANY_LEN + 3).fill(0xa5);
  assert.equal(inanyParse(s, b, 3), true, s);
  return b;
}

Deno.test("inanyFrom4() writes ::ffff:a.b.c.d at the offset only", () => {
  const b = new Uint8Array(20).fill(0xa5);
  inanyFrom4(b, 2, new Uint8Array([9, 192, 0, 2, 33]), 1);
  assert.deepEqual(
    [...b],
    [0xa5, 0xa5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 33, 0xa5, 0xa5],
  );
});

Deno.test("inanyFrom4() works in place from the last four bytes", () => {
  const b = new Uint8Array(16).fill(0xa5);
  b.set([10, 1, 2, 3], 12);
  inanyFrom4(b, 0, b, 12);
  assert.equal(inanyFormat(b, 0), "10.1.2.3");
  assert.equal(inanyIs4(b, 0), true);
});

Deno.test("inanyFrom4Num() takes a big-endian 32-bit number", () => {
  const b = new Uint8Array(16).fill(0xa5);
  inanyFrom4Num(b, 0, 0xc0000201);
  assert.equal(inanyFormat(b, 0), "192.0.2.1");
  inanyFrom4Num(b, 0, 0xffffffff | 0);
  assert.equal(inanyFormat(b, 0), "255.255.255.255");
});

Deno.test("inanyFrom6() copies 16 bytes, overlapping or not", () => {
  const src = at3("2001:db8::42");
  const dst = new Uint8Array(18).fill(0xa5);
  inanyFrom6(dst, 1, src, 3);
  assert.equal(inanyFormat(dst, 1), "2001:db8::42");
  assert.equal(dst[0], 0xa5);
  assert.equal(dst[17], 0xa5);
  const b = new Uint8Array(24);
  inanyParse("1:2:3:4:5:6:7:8", b, 0);
  inanyFrom6(b, 5, b, 0); // forward overlap
  assert.equal(inanyFormat(b, 5), "1:2:3:4:5:6:7:8");
  inanyFrom6(b, 2, b, 5); // backward overlap
  assert.equal(inanyFormat(b, 2), "1:2:3:4:5:6:7:8");
  const c = new Uint8Array(16);
  inanyCopy(c, 0, b, 2);
  assert.equal(inanyEq(c, 0, b, 2), true);
});

Deno.test("inanyIs4() is true only for IPv4-mapped addresses", () => {
  assert.equal(inanyIs4(at3("203.0.113.10"), 3), true);
  assert.equal(inanyIs4(at3("::ffff:1.2.3.4"), 3), true);
  assert.equal(inanyIs4(at3("::1.2.3.4"), 3), false);
  assert.equal(inanyIs4(at3("::fffe:1.2.3.4"), 3), false);
  assert.equal(inanyIs4(at3("1::ffff:1.2.3.4"), 3), false);
  assert.equal(inanyIs4(at3("::"), 3), false);
});

Deno.test("inanyEq() compares all 16 bytes at their offsets", () => {
  const a = at3("2001:db8::1");
  const b = new Uint8Array(INANY_LEN);
  inanyCopy(b, 0, a, 3);
  assert.equal(inanyEq(a, 3, b, 0), true);
  for (let i = 0; i < INANY_LEN; i++) {
    b[i]! ^= 1;
    assert.equal(inanyEq(a, 3, b, 0), false, "byte " + i);
    b[i]! ^= 1;
  }
  assert.equal(inanyEq(at3("1.2.3.4"), 3, at3("::1.2.3.4"), 3), false);
});

Deno.test("inanyIsLoopback() matches 127.0.0.0/8 and ::1", () => {
  for (const s of ["127.0.0.1", "127.255.1.2", "::1", "::ffff:127.0.0.2"]) {
    assert.equal(inanyIsLoopback(at3(s), 3), true, s);
  }
  for (const s of ["128.0.0.1", "126.0.0.1", "::2", "::", "0.0.0.0", "1::1", "::127.0.0.1"]) {
    assert.equal(inanyIsLoopback(at3(s), 3), false, s);
  }
});

Deno.test("inanyIsUnspecified() matches 0.0.0.0 and ::", () => {
  assert.equal(inanyIsUnspecified(at3("0.0.0.0"), 3), true);
  assert.equal(inanyIsUnspecified(at3("::"), 3), true);
  for (const s of ["0.0.0.1", "::1", "::ff:0:0", "1::", "::fffe:0:0", "::ffff:0:1"]) {
    assert.equal(inanyIsUnspecified(at3(s), 3), false, s);
  }
});

Deno.test("inanyIsMulticast() and inanyIsLinkLocal6() classify addresses", () => {
  for (const s of ["224.0.0.1", "239.255.255.255", "255.255.255.255", "ff02::1"]) {
    assert.equal(inanyIsMulticast(at3(s), 3), true, s);
  }
  for (const s of ["223.255.255.255", "240.0.0.1", "255.255.255.254", "fe80::1", "::"]) {
    assert.equal(inanyIsMulticast(at3(s), 3), false, s);
  }
  assert.equal(inanyIsLinkLocal6(at3("fe80::1"), 3), true);
  assert.equal(inanyIsLinkLocal6(at3("febf::1"), 3), true);
  assert.equal(inanyIsLinkLocal6(at3("fec0::1"), 3), false);
  assert.equal(inanyIsLinkLocal6(at3("169.254.0.1"), 3), false);
});

Deno.test("inanyFormat() follows RFC 5952", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["FE80::ABCD", "fe80::abcd"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["::ffff:10.0.0.1", "10.0.0.1"],
    ["::10.0.0.1", "::a00:1"],
    ["192.168.100.200", "192.168.100.200"],
  ];
  for (const [input, want] of cases) assert.equal(inanyFormat(at3(input), 3), want, input);
});

Deno.test("inanyParse() rejects malformed text", () => {
  const b = new Uint8Array(16);
  for (
    const s of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.-4",
      "a.b.c.d",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":::",
      "1:::2",
      ":1::2",
      "12345::",
      "g::1",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3",
      "1.2.3.4::",
      "fe80::1%eth0",
    ]
  ) {
    assert.equal(inanyParse(s, b, 0), false, JSON.stringify(s));
  }
});

Deno.test("inanyParse() and inanyFormat() round-trip random addresses", () => {
  const b = new Uint8Array(INANY_LEN);
  const c = new Uint8Array(INANY_LEN);
  for (let n = 0; n < 2000; n++) {
    crypto.getRandomValues(b);
    // Zero some groups to exercise "::" placement.
    for (let g = 0; g < 8; g++) {
      if (Math.random() < 0.4) b[2 * g] = b[2 * g + 1] = 0;
    }
    if (n % 4 === 0) inanyFrom4(b, 0, b, 12);
    const s = inanyFormat(b, 0);
    assert.equal(inanyParse(s, c, 0), true, s);
    assert.equal(inanyEq(b, 0, c, 0), true, s);
  }
});
