import assert from "node:assert/strict";
import {
  ICMPV6_ECHO_REQUEST,
  icmpv6CheckLen,
  icmpv6ChecksumOk,
  icmpv6Code,
  icmpv6FillChecksum,
  icmpv6SetTypeCode,
  icmpv6Type,
} from "./icmpv6.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* ICMPv6 echo request captured on a veth (ping -6), with its IPv6 header. */
const PACKET = hex(`
  60 0d 01 ca  00 40  3a  40                        // IPv6: payload 64, ICMPv6, hop limit 64
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // 2001:db8::1
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // 2001:db8::2
  80                  // type: echo request
  00                  // code
  5d 22               // checksum (kernel)
  21 0c               // identifier
  00 01               // sequence 1
  e4 48 07 6b 00 00 00 00 ef 59 0c 00 00 00 00 00  // data (56 bytes)
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
  30 31 32 33 34 35 36 37
`);
const L4 = 40;
const L4LEN = 64;

Deno.test("icmpv6 accessors deconstruct the fixture", () => {
  const { buf, dv } = placed(PACKET, 14);
  assert.ok(icmpv6CheckLen(dv, 14 + L4, L4LEN));
  assert.equal(icmpv6Type(dv, 14 + L4), ICMPV6_ECHO_REQUEST);
  assert.equal(icmpv6Code(dv, 14 + L4), 0);
  assert.ok(icmpv6ChecksumOk(buf, 14, 14 + L4, L4LEN));
});

Deno.test("icmpv6 setters construct the fixture over garbage, checksum included", () => {
  const buf = PACKET.slice();
  buf.fill(0xa5, L4, L4 + 4);
  const dv = new DataView(buf.buffer);
  icmpv6SetTypeCode(dv, L4, ICMPV6_ECHO_REQUEST, 0);
  icmpv6FillChecksum(buf, 0, L4, L4LEN);
  assert.deepEqual(buf, PACKET);
});

Deno.test("icmpv6CheckLen() rejects every truncation without throwing", () => {
  assertTruncation(icmpv6CheckLen, PACKET.subarray(L4), 8);
});

Deno.test("icmpv6ChecksumOk() covers the pseudo-header addresses", () => {
  const b = PACKET.slice();
  b[23] ^= 1; /* source address */
  assert.equal(icmpv6ChecksumOk(b, 0, L4, L4LEN), false);
});
