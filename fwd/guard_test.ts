/**
 * guard_test.ts - tests for the classification of flows from the guest.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import type { Ctx } from "../ctx.ts";
import { inanyFormat, inanyParse } from "../flow/inany.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import {
  ADDR_BROADCAST,
  ADDR_LOOPBACK,
  ADDR_MULTICAST,
  ADDR_UNICAST,
  ADDR_UNSPECIFIED,
  FWD_OK,
  fwdAddrClass,
  fwdTapTarget,
  inanyIsBroadcast4,
  REFUSAL_NAMES,
  REFUSE_DST_BROADCAST,
  REFUSE_DST_LOOPBACK,
  REFUSE_DST_MULTICAST,
  REFUSE_DST_UNSPECIFIED,
  REFUSE_PORT0,
  REFUSE_SOURCE,
  REFUSE_V4MAPPED,
} from "./guard.ts";

/** The hermetic topology's addressing: guest 198.51.100.2/24, gateway .1 mapped. */
function ctx(opts: { mapGw?: boolean; guestAddr?: boolean; dns?: boolean } = {}): Ctx {
  const c = ctxNew();
  c.ip4.enabled = true;
  c.ip4.addr.set(parseIp4("198.51.100.2")!);
  c.ip4.prefixLen = 24;
  c.ip4.gateway.set(parseIp4("198.51.100.1")!);
  c.ip6.enabled = true;
  c.ip6.addr.set(parseIp6("2001:db8:1::2")!);
  c.ip6.gateway.set(parseIp6("2001:db8:1::1")!);
  if (opts.mapGw ?? true) {
    c.ip4.mapHostLoopback.set(c.ip4.gateway);
    c.ip6.mapHostLoopback.set(c.ip6.gateway);
  }
  if (opts.guestAddr) {
    c.ip4.mapGuestAddr.set(parseIp4("192.0.2.7")!);
    c.ip6.mapGuestAddr.set(parseIp6("2001:db8:7::7")!);
  }
  if (opts.dns) {
    c.ip4.dnsMatch.set(parseIp4("192.0.2.53")!);
    c.ip4.dnsHost.set(parseIp4("127.0.0.53")!);
    c.ip6.dnsMatch.set(parseIp6("2001:db8:53::53")!);
    c.ip6.dnsHost.set(parseIp6("::1")!);
  }
  return c;
}

/** A 64-byte key (source, destination, target, spare) at offset 0. */
function key(src: string, dst: string): Uint8Array {
  const k = new Uint8Array(64).fill(0xa5);
  assert.ok(inanyParse(src, k, 0), src);
  assert.ok(inanyParse(dst, k, 16), dst);
  return k;
}

function cls(c: Ctx, s: string): number {
  const b = new Uint8Array(20).fill(0xa5);
  assert.ok(inanyParse(s, b, 2), s);
  return fwdAddrClass(c, b, 2);
}

Deno.test("fwdAddrClass() sorts every address class, IPv4 and IPv6", () => {
  const c = ctx();
  const cases: [string, number][] = [
    ["0.0.0.0", ADDR_UNSPECIFIED],
    ["::", ADDR_UNSPECIFIED],
    ["127.0.0.1", ADDR_LOOPBACK],
    ["127.255.255.254", ADDR_LOOPBACK],
    ["127.1.2.3", ADDR_LOOPBACK],
    ["::1", ADDR_LOOPBACK],
    ["224.0.0.1", ADDR_MULTICAST],
    ["239.255.255.250", ADDR_MULTICAST],
    ["ff02::1", ADDR_MULTICAST],
    ["ff05::1:3", ADDR_MULTICAST],
    ["255.255.255.255", ADDR_BROADCAST],
    ["198.51.100.255", ADDR_BROADCAST], /* the guest prefix's directed broadcast */
    ["198.51.100.1", ADDR_UNICAST],
    ["198.51.101.255", ADDR_UNICAST], /* another prefix's: not known as one */
    ["203.0.113.10", ADDR_UNICAST],
    ["128.0.0.1", ADDR_UNICAST],
    ["223.255.255.255", ADDR_UNICAST],
    ["240.0.0.1", ADDR_UNICAST],
    ["2001:db8:2::10", ADDR_UNICAST],
    ["::2", ADDR_UNICAST],
    ["1::", ADDR_UNICAST],
    ["fe80::1", ADDR_UNICAST],
    ["fe00::1", ADDR_UNICAST],
  ];
  for (const [a, want] of cases) assert.equal(cls(c, a), want, a);
});

Deno.test("inanyIsBroadcast4() follows the guest's prefix and ignores IPv6", () => {
  const c = ctx();
  const b = new Uint8Array(16);
  const is = (s: string) => (inanyParse(s, b, 0), inanyIsBroadcast4(c, b, 0));
  assert.equal(is("198.51.100.255"), true);
  c.ip4.prefixLen = 16;
  assert.equal(is("198.51.100.255"), false);
  assert.equal(is("198.51.255.255"), true);
  c.ip4.prefixLen = 31; /* point to point: no broadcast but the limited one */
  assert.equal(is("198.51.100.3"), false);
  assert.equal(is("255.255.255.255"), true);
  c.ip4.prefixLen = 0;
  assert.equal(is("255.255.255.255"), true);
  assert.equal(is("198.51.100.255"), false);
  assert.equal(is("ff02::ffff:ffff"), false);
  assert.equal(is("::ffff:ffff"), false); /* IPv4-compatible, not mapped */
});

Deno.test("fwdTapTarget() refuses every non-unicast destination without a mapping", () => {
  for (const mapGw of [false, true]) {
    const c = ctx({ mapGw });
    const cases: [boolean, string, string, number][] = [
      [false, "198.51.100.2", "127.0.0.1", REFUSE_DST_LOOPBACK],
      [false, "198.51.100.2", "127.3.2.1", REFUSE_DST_LOOPBACK],
      [false, "198.51.100.2", "0.0.0.0", REFUSE_DST_UNSPECIFIED],
      [false, "198.51.100.2", "224.0.0.1", REFUSE_DST_MULTICAST],
      [false, "198.51.100.2", "239.1.2.3", REFUSE_DST_MULTICAST],
      [false, "198.51.100.2", "255.255.255.255", REFUSE_DST_BROADCAST],
      [false, "198.51.100.2", "198.51.100.255", REFUSE_DST_BROADCAST],
      [true, "2001:db8:1::2", "::1", REFUSE_DST_LOOPBACK],
      [true, "2001:db8:1::2", "::", REFUSE_DST_UNSPECIFIED],
      [true, "2001:db8:1::2", "ff02::1", REFUSE_DST_MULTICAST],
    ];
    for (const [v6, src, dst, want] of cases) {
      const k = key(src, dst);
      assert.equal(
        fwdTapTarget(c, v6, k, 0, 40000, 8080, true),
        want,
        `${dst}, mapGw ${mapGw}`,
      );
      assert.equal(inanyFormat(k, 0), src, "the source is left alone");
      assert.equal(inanyFormat(k, 16), dst, "the destination is left alone");
    }
  }
});

Deno.test("fwdTapTarget() refuses IPv4-mapped addresses in IPv6 frames by the frame's family", () => {
  const c = ctx();
  const cases: [string, string][] = [
    ["2001:db8:1::2", "::ffff:127.0.0.1"],
    ["2001:db8:1::2", "::ffff:0.0.0.0"],
    /* the mapped gateway: mapped in IPv4, not through an IPv6 frame */
    ["2001:db8:1::2", "::ffff:198.51.100.1"],
    ["2001:db8:1::2", "::ffff:203.0.113.10"],
    ["::ffff:198.51.100.2", "2001:db8:2::10"],
    ["::ffff:198.51.100.2", "::ffff:203.0.113.10"],
  ];
  for (const [src, dst] of cases) {
    assert.equal(
      fwdTapTarget(c, true, key(src, dst), 0, 40000, 8080, true),
      REFUSE_V4MAPPED,
      `${src} -> ${dst}`,
    );
    assert.equal(fwdTapTarget(c, true, key(src, dst), 0, 7, 0, false), REFUSE_V4MAPPED);
  }
  /* the same addresses read from an IPv4 frame are plain IPv4 */
  const k = key("198.51.100.2", "203.0.113.10");
  assert.equal(fwdTapTarget(c, false, k, 0, 40000, 8080, true), FWD_OK);
  assert.equal(inanyFormat(k, 32), "203.0.113.10");
});

Deno.test("fwdTapTarget() refuses a source that no guest owns", () => {
  const c = ctx();
  const cases: [boolean, string, string][] = [
    [false, "0.0.0.0", "203.0.113.10"],
    [false, "127.0.0.1", "203.0.113.10"],
    [false, "224.0.0.1", "203.0.113.10"],
    [false, "255.255.255.255", "203.0.113.10"],
    [false, "198.51.100.255", "203.0.113.10"],
    [true, "::", "2001:db8:2::10"],
    [true, "::1", "2001:db8:2::10"],
    [true, "ff02::1", "2001:db8:2::10"],
    /* also towards the mapped gateway, which would reach the host's loopback */
    [false, "127.0.0.1", "198.51.100.1"],
    [true, "::1", "2001:db8:1::1"],
  ];
  for (const [v6, src, dst] of cases) {
    assert.equal(fwdTapTarget(c, v6, key(src, dst), 0, 40000, 80, true), REFUSE_SOURCE, src);
    assert.equal(fwdTapTarget(c, v6, key(src, dst), 0, 7, 0, false), REFUSE_SOURCE, src);
  }
});

Deno.test("fwdTapTarget() refuses port 0 with ports, allows identifier 0 without", () => {
  const c = ctx();
  for (
    const [v6, src, dst] of [[false, "198.51.100.2", "198.51.100.1"], [
      true,
      "2001:db8:1::2",
      "2001:db8:2::10",
    ]] as const
  ) {
    assert.equal(fwdTapTarget(c, v6, key(src, dst), 0, 40000, 0, true), REFUSE_PORT0);
    assert.equal(fwdTapTarget(c, v6, key(src, dst), 0, 0, 80, true), REFUSE_PORT0);
    assert.equal(fwdTapTarget(c, v6, key(src, dst), 0, 0, 0, false), FWD_OK);
  }
});

Deno.test("fwdTapTarget() lets configured mappings reach the host's loopback", () => {
  const c = ctx({ guestAddr: true, dns: true });
  const cases: [boolean, string, string, number, string][] = [
    [false, "198.51.100.2", "198.51.100.1", 8080, "127.0.0.1"],
    [true, "2001:db8:1::2", "2001:db8:1::1", 8080, "::1"],
    [false, "198.51.100.2", "192.0.2.7", 8080, "198.51.100.2"],
    [true, "2001:db8:1::2", "2001:db8:7::7", 8080, "2001:db8:1::2"],
    [false, "198.51.100.2", "192.0.2.53", 53, "127.0.0.53"],
    [true, "2001:db8:1::2", "2001:db8:53::53", 53, "::1"],
    /* not port 53: no DNS mapping, the address stays */
    [false, "198.51.100.2", "192.0.2.53", 54, "192.0.2.53"],
    [false, "198.51.100.2", "203.0.113.10", 80, "203.0.113.10"],
  ];
  for (const [v6, src, dst, dport, target] of cases) {
    const k = key(src, dst);
    assert.equal(fwdTapTarget(c, v6, k, 0, 40000, dport, true), FWD_OK, dst);
    assert.equal(inanyFormat(k, 32), target, dst);
    assert.equal(inanyFormat(k, 16), dst, "the guest's destination is kept");
  }
  /* at an offset other than 0, for ICMP too */
  const b = new Uint8Array(80).fill(0xa5);
  inanyParse("198.51.100.2", b, 8);
  inanyParse("198.51.100.1", b, 24);
  assert.equal(fwdTapTarget(c, false, b, 8, 7, 0, false), FWD_OK);
  assert.equal(inanyFormat(b, 40), "127.0.0.1");
  assert.equal(b[7], 0xa5);
  assert.equal(b[56], 0xa5);
});

Deno.test("fwdTapTarget() without the gateway mapping: the gateway is an ordinary address", () => {
  const c = ctx({ mapGw: false });
  const k = key("198.51.100.2", "198.51.100.1");
  assert.equal(fwdTapTarget(c, false, k, 0, 40000, 8080, true), FWD_OK);
  assert.equal(inanyFormat(k, 32), "198.51.100.1");
});

Deno.test("every verdict has a name", () => {
  for (let i = 0; i <= REFUSE_DST_BROADCAST; i++) {
    assert.equal(typeof REFUSAL_NAMES[i], "string", String(i));
  }
});
