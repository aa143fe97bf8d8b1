import assert from "node:assert/strict";
import {
  IPV6_EXT_MAX,
  IPV6_HLEN,
  ipv6HopLimit,
  ipv6IsValid,
  ipv6L4,
  ipv6L4IsFragment,
  ipv6L4Off,
  ipv6L4Proto,
  ipv6PayloadLen,
  ipv6SetHopLimit,
  ipv6SetNextHeader,
  ipv6SetPayloadLen,
  ipv6SetVersionTcFlow,
} from "./ipv6.ts";
import { IPPROTO_ICMPV6, IPPROTO_UDP } from "./ip_proto.ts";
import { addrWrite } from "./addr.ts";
import { parseIp6 } from "../conf/addr.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* UDP over IPv6 captured on a veth (socat). */
const PACKET = hex(`
  60 0f bd 60         // version 6, traffic class 0, flow label 0xfbd60
  00 0e               // payload length 14
  11                  // next header UDP
  40                  // hop limit 64
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // source 2001:db8::1
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // destination 2001:db8::2
  ed 8f 14 e9 00 0e 5b 94 68 65 6c 6c 6f 0a         // UDP
`);

/* MLDv2 report captured on a veth: hop-by-hop options (router alert) before ICMPv6. */
const MLD = hex(`
  60 00 00 00  00 38  00  01                        // payload 56, next header hop-by-hop
  fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 0b   // fe80::ff:fe00:b
  ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 16   // ff02::16
  3a 00 05 02 00 00 01 00                           // hop-by-hop: next ICMPv6, len 0, router alert, PadN
  8f 00 6f d7 00 00 00 02                           // MLDv2 report, 2 records
  04 00 00 00 ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 0b
  04 00 00 00 ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02
`);

Deno.test("ipv6 accessors deconstruct the fixture", () => {
  const { dv } = placed(PACKET, 14, 4);
  assert.ok(ipv6IsValid(dv, 14, PACKET.length + 4));
  assert.ok(ipv6IsValid(dv, 14, PACKET.length));
  assert.equal(ipv6PayloadLen(dv, 14), 14);
  assert.equal(ipv6L4Proto(ipv6L4(dv, 14, PACKET.length)), IPPROTO_UDP);
  assert.equal(ipv6HopLimit(dv, 14), 64);
});

Deno.test("ipv6 setters construct the fixture over garbage", () => {
  const buf = new Uint8Array(PACKET.length).fill(0xa5);
  buf.set(PACKET.subarray(IPV6_HLEN), IPV6_HLEN);
  const dv = new DataView(buf.buffer);
  ipv6SetVersionTcFlow(dv, 0, 0, 0xfbd60);
  ipv6SetPayloadLen(dv, 0, 14);
  ipv6SetNextHeader(dv, 0, IPPROTO_UDP);
  ipv6SetHopLimit(dv, 0, 64);
  addrWrite(dv, 8, parseIp6("2001:db8::1")!, 16);
  addrWrite(dv, 24, parseIp6("2001:db8::2")!, 16);
  assert.deepEqual(buf, PACKET);
});

Deno.test("ipv6SetVersionTcFlow() places the traffic class", () => {
  const dv = new DataView(new ArrayBuffer(40));
  ipv6SetVersionTcFlow(dv, 0, 0xb8, 0xfffff);
  assert.equal(dv.getUint32(0), (6 << 28 | 0xb8 << 20 | 0xfffff) >>> 0);
});

Deno.test("ipv6IsValid() and ipv6L4() reject every truncation without throwing", () => {
  assertTruncation(ipv6IsValid, PACKET);
  assertTruncation(ipv6L4Check, PACKET);
});

function ipv6L4Check(dv: DataView, off: number, len: number): boolean {
  return ipv6L4(dv, off, len) >= 0;
}

Deno.test("ipv6IsValid() rejects a version other than 6", () => {
  const b = PACKET.slice();
  b[0] = 0x40;
  assert.equal(ipv6IsValid(new DataView(b.buffer), 0, b.length), false);
});

Deno.test("ipv6L4() finds UDP right after the header", () => {
  const { dv } = placed(PACKET, 2);
  const r = ipv6L4(dv, 2, PACKET.length);
  assert.equal(ipv6L4Proto(r), IPPROTO_UDP);
  assert.equal(ipv6L4Off(r), 40);
  assert.ok(!ipv6L4IsFragment(r), "not a fragment");
});

Deno.test("ipv6L4() skips the hop-by-hop header of a captured MLD report", () => {
  assert.equal(MLD.length, 96);
  const r = ipv6L4(new DataView(MLD.buffer), 0, MLD.length);
  assert.equal(ipv6L4Proto(r), IPPROTO_ICMPV6);
  assert.equal(ipv6L4Off(r), 48);
});

/** Builds an IPv6 packet with the given extension headers (raw bytes) before an 8-byte UDP header. */
function withExt(first: number, ext: number[]): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(40 + ext.length + 8);
  const dv = new DataView(b.buffer);
  ipv6SetVersionTcFlow(dv, 0, 0, 0);
  ipv6SetPayloadLen(dv, 0, ext.length + 8);
  ipv6SetNextHeader(dv, 0, first);
  b.set(ext, 40);
  return b;
}

Deno.test("ipv6L4() walks routing, destination options, AH and a first fragment", () => {
  const ext = [
    60,
    0,
    0,
    0,
    0,
    0,
    0,
    0, //               routing, 8 bytes, next: destination options
    51,
    1,
    ...new Array(14).fill(0), //       destination options, 16 bytes, next: AH
    44,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, //   AH, (1 + 2) * 4 = 12 bytes, next: fragment
    17,
    0,
    0,
    0,
    0,
    0,
    0,
    1, //               fragment, offset 0, more fragments, next: UDP
  ];
  const b = withExt(43, ext);
  const r = ipv6L4(new DataView(b.buffer), 0, b.length);
  assert.equal(ipv6L4Proto(r), IPPROTO_UDP);
  assert.equal(ipv6L4Off(r), 40 + ext.length);
  assert.ok(ipv6L4IsFragment(r), "first fragment flagged");
});

Deno.test("ipv6L4() returns -1 for a later fragment, no next header, an overrun", () => {
  const frag = withExt(44, [17, 0, 0x05, 0xc8, 0, 0, 0, 1]);
  assert.equal(ipv6L4(new DataView(frag.buffer), 0, frag.length), -1);
  const none = withExt(59, []);
  assert.equal(ipv6L4(new DataView(none.buffer), 0, none.length), -1);
  const over = withExt(0, [17, 200, 0, 0, 0, 0, 0, 0]);
  assert.equal(ipv6L4(new DataView(over.buffer), 0, over.length), -1);
});

Deno.test("ipv6L4() stops at ESP and returns it as the protocol", () => {
  const b = withExt(60, [50, 0, 0, 0, 0, 0, 0, 0]);
  const r = ipv6L4(new DataView(b.buffer), 0, b.length);
  assert.equal(ipv6L4Proto(r), 50 /* ESP */);
  assert.equal(ipv6L4Off(r), 48);
});

Deno.test("ipv6L4() gives up after IPV6_EXT_MAX extension headers", () => {
  const hdr = (n: number) => [n, 0, 0, 0, 0, 0, 0, 0];
  const ok: number[] = [];
  for (let i = 0; i < IPV6_EXT_MAX - 1; i++) ok.push(...hdr(60));
  ok.push(...hdr(17));
  const b = withExt(60, ok);
  assert.equal(ipv6L4Proto(ipv6L4(new DataView(b.buffer), 0, b.length)), IPPROTO_UDP);
  const long = withExt(60, [...hdr(60), ...ok]);
  assert.equal(ipv6L4(new DataView(long.buffer), 0, long.length), -1);
});
