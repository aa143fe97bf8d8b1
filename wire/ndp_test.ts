import assert from "node:assert/strict";
import {
  NDP_INFINITE,
  NDP_NA_LEN,
  NDP_NA_O,
  NDP_NA_R,
  NDP_NA_S,
  NDP_NS_OPTS,
  NDP_OPT_SLLA,
  NDP_OPT_TLLA,
  NDP_PI_A,
  NDP_PI_L,
  NDP_RA_LEN,
  NDP_RA_M,
  NDP_RS_OPTS,
  NDP_TARGET,
  ndpNaSetFlags,
  ndpNsCheckLen,
  ndpOptFind,
  ndpOptsCheck,
  ndpOptWriteDnssl,
  ndpOptWriteLla,
  ndpOptWriteMtu,
  ndpOptWritePrefix,
  ndpOptWriteRdnss,
  ndpRaSetBody,
  ndpRsCheckLen,
} from "./ndp.ts";
import {
  ICMPV6_NEIGH_ADV,
  ICMPV6_ROUTER_ADV,
  icmpv6ChecksumOk,
  icmpv6FillChecksum,
  icmpv6SetTypeCode,
} from "./icmpv6.ts";
import { addrWrite } from "./addr.ts";
import { parseIp6 } from "../conf/addr.ts";
import { assertTruncation, hex, prng } from "./_hex.ts";

/* Neighbour solicitation captured on a veth, with its IPv6 header. */
const NS = hex(`
  60 00 00 00  00 20  3a  ff                        // IPv6: payload 32, ICMPv6, hop limit 255
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // 2001:db8::1
  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02   // solicited-node ff02::1:ff00:2
  87 00 1c 1e         // NS, code 0, checksum
  00 00 00 00         // reserved
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // target 2001:db8::2
  01 01 02 00 00 00 00 0a                           // source link-layer address
`);

/* The kernel's answer: neighbour advertisement (solicited, override). */
const NA = hex(`
  60 00 00 00  00 20  3a  ff
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // 2001:db8::2 (the target)
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // 2001:db8::1
  88 00 8a 68         // NA, code 0, checksum
  60 00 00 00         // flags: S, O
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // target
  02 01 02 00 00 00 00 0b                           // target link-layer address
`);

/* Router solicitation captured on a veth. */
const RS = hex(`
  60 00 00 00  00 10  3a  ff
  fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 0a   // fe80::ff:fe00:a
  ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02   // all-routers
  85 00 7b 1a         // RS, code 0, checksum
  00 00 00 00         // reserved
  01 01 02 00 00 00 00 0a                           // source link-layer address
`);

/* A router advertisement as orzo builds it (checksum computed independently). */
const RA = hex(`
  60 00 00 00  00 70  3a  ff                        // payload 112
  fe 80 00 00 00 00 00 00 98 55 9a ff fe 55 9a 55   // fe80::9855:9aff:fe55:9a55
  ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01   // all-nodes
  86 00 d6 79         // RA, code 0, checksum
  ff 80 ff ff         // current hop limit 255, M, router lifetime 65535
  00 00 00 00         // reachable time: unspecified
  00 00 00 00         // retransmission timer: unspecified
  03 04 40 c0         // prefix information: /64, L, A
  ff ff ff ff ff ff ff ff 00 00 00 00               // lifetimes infinite, reserved
  20 01 0d b8 00 00 00 01 00 00 00 00 00 00 00 00   // 2001:db8:0:1::
  01 01 9a 55 9a 55 9a 55                           // source link-layer address
  05 01 00 00 00 00 ff f0                           // MTU 65520
  19 03 00 00 ff ff ff ff                           // RDNSS, 1 server, lifetime infinite
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 35   // 2001:db8::35
  1f 03 00 00 ff ff ff ff                           // DNSSL, 24 bytes, lifetime infinite
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00            // example.com
  01 61 00                                          // a
`);
const OUR_MAC = new Uint8Array([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);

/** The names of a DNSSL option (RFC 8106), read back for the writer's tests. */
function dnsslDomains(dv: DataView, opt: number): string[] {
  const end = opt + dv.getUint8(opt + 1) * 8;
  const out: string[] = [];
  let p = opt + 8;
  while (p < end) {
    let l = dv.getUint8(p);
    if (l === 0) {
      p++;
      continue; /* padding */
    }
    let name = "";
    while (l !== 0) {
      if (l > 63 || p + 1 + l >= end) return out;
      let label = "";
      for (let i = 0; i < l; i++) label += String.fromCharCode(dv.getUint8(p + 1 + i));
      name += name === "" ? label : "." + label;
      p += 1 + l;
      l = dv.getUint8(p);
    }
    p++;
    out.push(name);
  }
  return out;
}

Deno.test("ndp NS accessors deconstruct the fixture", () => {
  const dv = new DataView(NS.buffer);
  assert.ok(ndpNsCheckLen(dv, 40, 32));
  assert.deepEqual(NS.slice(40 + NDP_TARGET, 40 + NDP_TARGET + 16), parseIp6("2001:db8::2"));
  assert.equal(ndpOptsCheck(dv, 40 + NDP_NS_OPTS, 72), 1);
  const o = ndpOptFind(dv, 40 + NDP_NS_OPTS, 72, NDP_OPT_SLLA);
  assert.equal(o, 64);
  assert.deepEqual(NS.slice(o + 2, o + 8), new Uint8Array([2, 0, 0, 0, 0, 0x0a]));
  assert.ok(icmpv6ChecksumOk(NS, 0, 40, 32));
});

Deno.test("ndpOptFind() finds the kernel's advertisement's option", () => {
  const dv = new DataView(NA.buffer);
  assert.equal(ndpOptFind(dv, 40 + NDP_NS_OPTS, 72, NDP_OPT_TLLA), 64);
  assert.equal(ndpOptFind(dv, 40 + NDP_NS_OPTS, 72, NDP_OPT_SLLA), -1);
});

Deno.test("ndp NA writers reproduce the kernel's advertisement over garbage", () => {
  const buf = NA.slice();
  buf.fill(0xa5, 40);
  const dv = new DataView(buf.buffer);
  icmpv6SetTypeCode(dv, 40, ICMPV6_NEIGH_ADV, 0);
  ndpNaSetFlags(dv, 40, NDP_NA_S | NDP_NA_O);
  addrWrite(dv, 40 + NDP_TARGET, parseIp6("2001:db8::2")!, 16);
  ndpOptWriteLla(dv, 40 + NDP_NA_LEN, NDP_OPT_TLLA, new Uint8Array([2, 0, 0, 0, 0, 0x0b]));
  icmpv6FillChecksum(buf, 0, 40, 32);
  assert.deepEqual(buf, NA);
});

Deno.test("ndp RS accessors deconstruct the fixture", () => {
  const dv = new DataView(RS.buffer);
  assert.ok(ndpRsCheckLen(dv, 40, 16));
  assert.equal(ndpOptsCheck(dv, 40 + NDP_RS_OPTS, 56), 1);
  assert.equal(ndpOptFind(dv, 40 + NDP_RS_OPTS, 56, NDP_OPT_SLLA), 48);
  assert.ok(icmpv6ChecksumOk(RS, 0, 40, 16));
});

Deno.test("ndp RA writers construct the fixture over garbage", () => {
  const buf = RA.slice();
  buf.fill(0xa5, 40);
  const dv = new DataView(buf.buffer);
  const l4 = 40;
  icmpv6SetTypeCode(dv, l4, ICMPV6_ROUTER_ADV, 0);
  ndpRaSetBody(dv, l4, 255, NDP_RA_M, 65535, 0, 0);
  let p = l4 + NDP_RA_LEN;
  const addr = parseIp6("2001:db8:0:1:2:3:4:5")!;
  p += ndpOptWritePrefix(dv, p, addr, 64, NDP_PI_L | NDP_PI_A, NDP_INFINITE, NDP_INFINITE);
  p += ndpOptWriteLla(dv, p, NDP_OPT_SLLA, OUR_MAC);
  p += ndpOptWriteMtu(dv, p, 65520);
  p += ndpOptWriteRdnss(dv, p, NDP_INFINITE, [new Uint8Array(16), parseIp6("2001:db8::35")!], 100);
  p += ndpOptWriteDnssl(dv, p, NDP_INFINITE, ["example.com.", "a"], 100);
  assert.equal(p, buf.length);
  icmpv6FillChecksum(buf, 0, l4, p - l4);
  assert.deepEqual(buf, RA);
});

Deno.test("ndp RA fixture: five options, checksum valid", () => {
  const dv = new DataView(RA.buffer);
  assert.equal(ndpOptsCheck(dv, 40 + NDP_RA_LEN, RA.length), 5);
  assert.ok(icmpv6ChecksumOk(RA, 0, 40, RA.length - 40));
});

Deno.test("ndp checkLen functions reject every truncation without throwing", () => {
  assertTruncation(ndpNsCheckLen, NS.subarray(40), 24);
  assertTruncation(ndpRsCheckLen, RS.subarray(40), 8);
});

Deno.test("ndpOptsCheck() rejects zero lengths and overruns, ndpOptFind() stops at them", () => {
  const dv = new DataView(new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]).buffer);
  assert.equal(ndpOptsCheck(dv, 0, 16), -1);
  assert.equal(ndpOptFind(dv, 0, 16, 5), -1);
  assert.equal(ndpOptsCheck(dv, 0, 8), 1);
  const over = new DataView(new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0]).buffer);
  assert.equal(ndpOptsCheck(over, 0, 8), -1);
  assert.equal(ndpOptsCheck(over, 0, 1), -1, "a lone type byte");
  assert.equal(ndpOptsCheck(over, 0, 9), -1, "end past the view");
  assert.equal(ndpOptsCheck(over, 0, 0), 0);
});

Deno.test("ndpOptsCheck() and ndpOptFind() never throw on random option areas", () => {
  const r = prng(11);
  for (let i = 0; i < 3000; i++) {
    const b = new Uint8Array(r() % 64);
    for (let j = 0; j < b.length; j++) b[j] = r() % 4 === 0 ? 0 : r() & 0xff;
    const dv = new DataView(b.buffer);
    const n = ndpOptsCheck(dv, 0, b.length);
    const f = ndpOptFind(dv, 0, b.length, b[0] ?? 1);
    assert.ok(n >= -1 && n <= 8);
    assert.ok(f === -1 || f === 0);
  }
});

Deno.test("ndpOptWritePrefix() zeroes the bits past the prefix length", () => {
  const dv = new DataView(new ArrayBuffer(32));
  const all = new Uint8Array(16).fill(0xff);
  ndpOptWritePrefix(dv, 0, all, 61, 0, 0, 0);
  const p = new Uint8Array(dv.buffer, 16, 16);
  assert.deepEqual([...p], [255, 255, 255, 255, 255, 255, 255, 0xf8, 0, 0, 0, 0, 0, 0, 0, 0]);
  ndpOptWritePrefix(dv, 0, all, 128, 0, 0, 0);
  assert.deepEqual(p, all);
});

Deno.test("ndpOptWriteDnssl() skips names it cannot encode and respects the room", () => {
  const dv = new DataView(new ArrayBuffer(4096));
  const bad = [
    "",
    ".",
    "a..b",
    "x".repeat(64) + ".com",
    "ünï.de",
    "sp ace",
    "y".repeat(250) + ".a",
  ];
  assert.equal(ndpOptWriteDnssl(dv, 0, 1, bad, 4096), 0);
  const n = ndpOptWriteDnssl(dv, 0, 1, [...bad, "ok.test"], 4096);
  assert.equal(n, 24);
  assert.deepEqual(dnsslDomains(dv, 0), ["ok.test"]);
  /* 8 + 9 bytes fit in 24, a second name does not */
  assert.equal(ndpOptWriteDnssl(dv, 0, 1, ["ok.test", "second.test"], 24), 24);
  assert.deepEqual(dnsslDomains(dv, 0), ["ok.test"]);
  assert.equal(ndpOptWriteDnssl(dv, 0, 1, ["ok.test"], 16), 0);
  /* exactly a multiple of 8: no padding beyond */
  assert.equal(ndpOptWriteDnssl(dv, 0, 1, ["abcdef"], 64), 16);
  assert.equal(dv.getUint8(1), 2);
});

Deno.test("ndpOptWriteDnssl() stops at the option's 255 * 8 byte limit", () => {
  const dv = new DataView(new ArrayBuffer(8192));
  const names: string[] = [];
  for (let i = 0; i < 100; i++) names.push("d".repeat(60) + i + ".example");
  const n = ndpOptWriteDnssl(dv, 0, 1, names, 8192);
  assert.ok(n <= 255 * 8 && n % 8 === 0);
  assert.equal(dv.getUint8(1), n / 8);
  let used = 8;
  let fit = 0;
  while (fit < names.length && ((used + names[fit]!.length + 2 + 7) & ~7) <= 255 * 8) {
    used += names[fit]!.length + 2;
    fit++;
  }
  assert.deepEqual(dnsslDomains(dv, 0), names.slice(0, fit));
  assert.equal(n, (used + 7) & ~7);
});

Deno.test("ndpOptWriteRdnss() writes nothing without servers and fits the room", () => {
  const dv = new DataView(new ArrayBuffer(256));
  assert.equal(ndpOptWriteRdnss(dv, 0, 1, [], 256), 0);
  assert.equal(ndpOptWriteRdnss(dv, 0, 1, [new Uint8Array(16)], 256), 0);
  const s = parseIp6("2001:db8::53")!;
  assert.equal(ndpOptWriteRdnss(dv, 0, 1, [s, s, s], 40), 40);
  assert.equal(dv.getUint8(1), 5, "length: 8 + 2 addresses, in units of 8");
});

Deno.test("ndpNaSetFlags() writes R, S, O in the top bits and clears the rest", () => {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setUint32(4, 0xffffffff);
  ndpNaSetFlags(dv, 0, NDP_NA_R | NDP_NA_S | NDP_NA_O | 0x1f);
  assert.equal(dv.getUint32(4), 0xe0000000);
  assert.equal(dv.getUint8(4), NDP_NA_R | NDP_NA_S | NDP_NA_O);
});
