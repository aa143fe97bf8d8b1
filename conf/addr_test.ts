import assert from "node:assert/strict";
import {
  formatIp,
  formatIp4,
  formatIp6,
  formatMac,
  ip4IsBroadcast,
  ip4IsLoopback,
  ip4IsMulticast,
  ip4IsUnspecified,
  ip6IsLinkLocal,
  ip6IsLoopback,
  ip6IsMulticast,
  ip6IsUnspecified,
  ip6IsV4Compat,
  ip6IsV4Mapped,
  ipUnmap,
  parseIp,
  parseIp4,
  parseIp6,
  parseMac,
} from "./addr.ts";

/** Bytes of an IPv6 address from eight 16-bit words. */
function words(...w: number[]): Uint8Array {
  const b = new Uint8Array(16);
  w.forEach((x, i) => {
    b[2 * i] = x >> 8;
    b[2 * i + 1] = x & 0xff;
  });
  return b;
}

Deno.test("parseIp4() parses a dotted quad", () => {
  assert.deepEqual(parseIp4("192.0.2.255"), new Uint8Array([192, 0, 2, 255]));
  assert.deepEqual(parseIp4("0.0.0.0"), new Uint8Array(4));
});

Deno.test("parseIp4() rejects anything inet_pton() rejects", () => {
  for (
    const s of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "1.2.3.256",
      "01.2.3.4",
      "1..3.4",
      "1.2.3.4 ",
      " 1.2.3.4",
      "a.b.c.d",
      "1.2.3.-4",
      "1.2.3.4/24",
      "0x1.2.3.4",
    ]
  ) assert.equal(parseIp4(s), null, s);
});

Deno.test("parseIp6() parses full, compressed and IPv4-tailed forms", () => {
  assert.deepEqual(parseIp6("2001:db8:0:0:0:0:0:1"), words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(parseIp6("2001:DB8::1"), words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(parseIp6("::"), new Uint8Array(16));
  assert.deepEqual(parseIp6("::1"), words(0, 0, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(parseIp6("fe80::"), words(0xfe80, 0, 0, 0, 0, 0, 0, 0));
  assert.deepEqual(parseIp6("1:2:3:4:5:6:7::"), words(1, 2, 3, 4, 5, 6, 7, 0));
  assert.deepEqual(parseIp6("::ffff:192.0.2.1"), words(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201));
  assert.deepEqual(parseIp6("1:2:3:4:5:6:1.2.3.4"), words(1, 2, 3, 4, 5, 6, 0x0102, 0x0304));
  assert.deepEqual(parseIp6("0001:0002::000a"), words(1, 2, 0, 0, 0, 0, 0, 10));
});

Deno.test("parseIp6() rejects zone ids, brackets and malformed text", () => {
  for (
    const s of [
      "",
      ":",
      ":::",
      "1:::2",
      "1::2::3",
      ":1::",
      "1::2:",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7::8",
      "12345::",
      "g::1",
      "fe80::1%eth0",
      "[::1]",
      "1.2.3.4",
      "1.2.3.4::",
      "::1.2.3",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
      " ::1",
    ]
  ) assert.equal(parseIp6(s), null, s);
});

Deno.test("parseIp() tries IPv6 first and keeps the written family", () => {
  assert.equal(parseIp("10.0.0.1")?.family, 4);
  assert.equal(parseIp("::ffff:10.0.0.1")?.family, 6);
  assert.equal(parseIp("2001:db8::1")?.family, 6);
  assert.equal(parseIp("nope"), null);
});

Deno.test("ipUnmap() turns an IPv4-mapped address into IPv4", () => {
  const a = ipUnmap(parseIp("::ffff:10.0.0.1")!);
  assert.equal(a.family, 4);
  assert.deepEqual(a.bytes, new Uint8Array([10, 0, 0, 1]));
  assert.equal(ipUnmap(parseIp("::1")!).family, 6);
});

Deno.test("formatIp4() writes a dotted quad", () => {
  assert.equal(formatIp4(new Uint8Array([255, 0, 10, 1])), "255.0.10.1");
});

Deno.test("formatIp6() compresses the longest zero run, the first one on a tie", () => {
  assert.equal(formatIp6(words(1, 0, 0, 2, 0, 0, 0, 3)), "1:0:0:2::3");
  assert.equal(formatIp6(words(1, 0, 0, 2, 3, 0, 0, 4)), "1::2:3:0:0:4");
  assert.equal(formatIp6(words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)), "2001:db8::");
});

Deno.test("formatIp6() does not compress a single zero group", () => {
  assert.equal(formatIp6(words(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1)), "2001:db8:0:1:1:1:1:1");
});

Deno.test("formatIp6() writes lower case without leading zeros", () => {
  assert.equal(
    formatIp6(words(0x2001, 0x0db8, 0xabcd, 0x000f, 1, 2, 3, 4)),
    "2001:db8:abcd:f:1:2:3:4",
  );
});

Deno.test("formatIp6() writes ::, ::1 and IPv4-mapped addresses canonically", () => {
  assert.equal(formatIp6(new Uint8Array(16)), "::");
  assert.equal(formatIp6(words(0, 0, 0, 0, 0, 0, 0, 1)), "::1");
  assert.equal(formatIp6(words(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201)), "::ffff:192.0.2.1");
  assert.equal(formatIp6(words(0, 0, 0, 0, 0, 0, 0x0102, 0x0304)), "::102:304");
});

Deno.test("formatIp6() output parses back to the same bytes", () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let n = 0; n < 2000; n++) {
    const w = Array.from({ length: 8 }, () => (rnd() & 3) === 0 ? rnd() : 0);
    const b = words(...w);
    assert.deepEqual(parseIp6(formatIp6(b)), b, formatIp6(b));
  }
});

Deno.test("formatIp() formats by family", () => {
  assert.equal(formatIp({ family: 4, bytes: new Uint8Array([1, 2, 3, 4]) }), "1.2.3.4");
  assert.equal(formatIp({ family: 6, bytes: words(0xfe80, 0, 0, 0, 0, 0, 0, 1) }), "fe80::1");
});

Deno.test("parseMac() parses six colon-separated hex bytes", () => {
  assert.deepEqual(
    parseMac("9a:55:9A:55:9a:5f"),
    new Uint8Array([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x5f]),
  );
});

Deno.test("parseMac() rejects other spellings", () => {
  for (
    const s of [
      "",
      "9a:55:9a:55:9a",
      "9a:55:9a:55:9a:55:00",
      "9a-55-9a-55-9a-55",
      "9:55:9a:55:9a:55",
      "9a:55:9a:55:9a:5g",
      " a:55:9a:55:9a:55",
    ]
  ) assert.equal(parseMac(s), null, s);
});

Deno.test("formatMac() writes lower-case padded hex", () => {
  assert.equal(formatMac(new Uint8Array([0x9a, 5, 0xff, 0, 1, 2])), "9a:05:ff:00:01:02");
});

Deno.test("ip4Is*() classify IPv4 addresses", () => {
  assert.ok(ip4IsUnspecified(parseIp4("0.0.0.0")!));
  assert.ok(!ip4IsUnspecified(parseIp4("0.0.0.1")!));
  assert.ok(ip4IsLoopback(parseIp4("127.1.2.3")!));
  assert.ok(ip4IsMulticast(parseIp4("239.1.1.1")!));
  assert.ok(!ip4IsMulticast(parseIp4("240.1.1.1")!));
  assert.ok(ip4IsBroadcast(parseIp4("255.255.255.255")!));
  assert.ok(!ip4IsBroadcast(parseIp4("255.255.255.254")!));
});

Deno.test("ip6Is*() classify IPv6 addresses", () => {
  assert.ok(ip6IsUnspecified(parseIp6("::")!));
  assert.ok(ip6IsLoopback(parseIp6("::1")!));
  assert.ok(!ip6IsLoopback(parseIp6("::2")!));
  assert.ok(ip6IsMulticast(parseIp6("ff02::1")!));
  assert.ok(ip6IsLinkLocal(parseIp6("fe80::1")!));
  assert.ok(!ip6IsLinkLocal(parseIp6("fec0::1")!));
  assert.ok(ip6IsV4Mapped(parseIp6("::ffff:1.2.3.4")!));
  assert.ok(ip6IsV4Compat(parseIp6("::1.2.3.4")!));
  assert.ok(!ip6IsV4Compat(parseIp6("::1")!));
  assert.ok(!ip6IsV4Compat(parseIp6("::")!));
});
