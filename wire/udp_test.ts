import assert from "node:assert/strict";
import { udpCheckLen, udpDstPort, udpFillChecksum4, udpFillChecksum6, udpLen } from "./udp.ts";
import { csumL4v4, csumL4v6 } from "./checksum.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/*
 * UDP over IPv4 captured on a veth (socat); the capture held the partial
 * checksum of an offloaded send (8423), replaced here by the full one,
 * computed independently (Python byte loop) and accepted by tshark.
 */
const PACKET4 = hex(`
  45 00 00 22  30 1c 40 00  40 11 86 ab             // IPv4: tot 34, UDP
  c0 00 02 01  c0 00 02 02                          // 192.0.2.1 -> 192.0.2.2
  e1 22               // source port 57634
  14 e9               // destination port 5353
  00 0e               // length 14
  41 e6               // checksum
  68 65 6c 6c 6f 0a   // "hello\\n"
`);

/* The same datagram over IPv6, full checksum 5e08. */
const PACKET6 = hex(`
  60 0f bd 60  00 0e  11  40
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
  ed 8f 14 e9  00 0e  5e 08  68 65 6c 6c 6f 0a
`);

Deno.test("udp accessors deconstruct the fixture; its checksums verify", () => {
  const { buf, dv } = placed(PACKET4, 14, 2);
  const l4 = 14 + 20;
  assert.ok(udpCheckLen(dv, l4, 14));
  assert.equal(udpDstPort(dv, l4), 5353);
  assert.equal(udpLen(dv, l4), 14);
  assert.equal(csumL4v4(buf, 14, l4, 14, 17), 0);
  assert.equal(csumL4v6(PACKET6, 0, 40, 14, 17), 0);
});

Deno.test("udpFillChecksum4/6() write the fixture's checksums over garbage", () => {
  const buf = PACKET4.slice();
  buf.fill(0xa5, 26, 28);
  udpFillChecksum4(buf, 0, 20, 14);
  assert.deepEqual(buf, PACKET4);
  const b6 = PACKET6.slice();
  b6.fill(0xa5, 46, 48);
  udpFillChecksum6(b6, 0, 40, 14);
  assert.deepEqual(b6, PACKET6);
});

Deno.test("udpCheckLen() rejects every truncation and impossible lengths without throwing", () => {
  assertTruncation(udpCheckLen, PACKET4.subarray(20));
  for (const l of [0, 7, 15, 0xffff]) {
    const b = PACKET4.slice(20);
    new DataView(b.buffer).setUint16(4, l);
    assert.equal(udpCheckLen(new DataView(b.buffer), 0, b.length), false, `length ${l}`);
  }
});

Deno.test("udpFillChecksum4() sends a computed zero as 0xffff", () => {
  const b = PACKET4.slice();
  const dv = new DataView(b.buffer);
  /* make the sum come out as zero: add the checksum into a payload word */
  const c = 0x41e6;
  let w = dv.getUint16(28 + 2) + c;
  w = (w & 0xffff) + (w >>> 16);
  dv.setUint16(28 + 2, w);
  udpFillChecksum4(b, 0, 20, 14);
  assert.equal(dv.getUint16(20 + 6), 0xffff);
  assert.equal(csumL4v4(b, 0, 20, 14, 17), 0);
});
