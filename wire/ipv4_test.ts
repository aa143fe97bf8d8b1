import assert from "node:assert/strict";
import {
  ipv4ChecksumOk,
  ipv4FillChecksum,
  ipv4HeaderLen,
  ipv4IsFragment,
  ipv4IsValid,
  ipv4Proto,
  ipv4TotalLen,
} from "./ipv4.ts";
import { IPPROTO_ICMP } from "./ip_proto.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* IPv4 packet of an ICMP echo request captured on a veth (Linux 6.18, ping). */
const PACKET = hex(`
  45                  // version 4, IHL 5
  00                  // DSCP/ECN
  00 54               // total length 84
  19 72               // identification
  40 00               // flags DF, fragment offset 0
  40                  // TTL 64
  01                  // protocol ICMP
  9d 33               // header checksum (kernel)
  c0 00 02 01         // source 192.0.2.1
  c0 00 02 02         // destination 192.0.2.2
  08 00 7b 1e 21 0b 00 01                          // ICMP echo header
  e4 48 07 6b 00 00 00 00 a5 4e 0c 00 00 00 00 00  // payload (56 bytes)
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
  30 31 32 33 34 35 36 37
`);

Deno.test("ipv4 accessors deconstruct the fixture", () => {
  const { buf, dv } = placed(PACKET, 14, 6);
  assert.ok(ipv4IsValid(dv, 14, PACKET.length + 6));
  assert.ok(ipv4IsValid(dv, 14, PACKET.length));
  assert.equal(ipv4HeaderLen(dv, 14), 20);
  assert.equal(ipv4TotalLen(dv, 14), 84);
  assert.equal(ipv4IsFragment(dv, 14), false);
  assert.equal(ipv4Proto(dv, 14), IPPROTO_ICMP);
  assert.ok(ipv4ChecksumOk(buf, 14));
});

Deno.test("ipv4FillChecksum() writes the kernel's checksum over garbage", () => {
  const buf = PACKET.slice();
  buf[10] = 0xa5;
  buf[11] = 0x5a;
  ipv4FillChecksum(buf, 0);
  assert.deepEqual(buf, PACKET);
});

Deno.test("ipv4IsValid() rejects every truncation of the packet without throwing", () => {
  assertTruncation(ipv4IsValid, PACKET);
});

Deno.test("ipv4IsValid() rejects impossible header and total lengths", () => {
  const cases: [number, number][] = [[0, 0x44], [0, 0x40], [3, 19], [3, 0], [3, 85], [2, 0xff]];
  for (const [at, v] of cases) {
    const b = PACKET.slice();
    b[at] = v;
    assert.equal(ipv4IsValid(new DataView(b.buffer), 0, b.length), false, `byte ${at} = ${v}`);
  }
  /* IHL 15 (60 bytes) within a total length of 84 is fine */
  const b = PACKET.slice();
  b[0] = 0x4f;
  assert.ok(ipv4IsValid(new DataView(b.buffer), 0, b.length));
});

Deno.test("ipv4IsValid() rejects a version other than 4", () => {
  const b = PACKET.slice();
  b[0] = 0x65;
  assert.equal(ipv4IsValid(new DataView(b.buffer), 0, b.length), false);
});

Deno.test("ipv4IsFragment() reads MF and the offset", () => {
  const b = PACKET.slice();
  const dv = new DataView(b.buffer);
  dv.setUint16(6, 0x2000); /* MF */
  assert.ok(ipv4IsFragment(dv, 0));
  dv.setUint16(6, 185); /* offset 1480 */
  assert.ok(ipv4IsFragment(dv, 0));
  dv.setUint16(6, 0x4000); /* DF only */
  assert.equal(ipv4IsFragment(dv, 0), false);
});

Deno.test("ipv4ChecksumOk() detects a flipped bit", () => {
  const b = PACKET.slice();
  b[8] ^= 0x10;
  assert.equal(ipv4ChecksumOk(b, 0), false);
  ipv4FillChecksum(b, 0);
  assert.ok(ipv4ChecksumOk(b, 0));
});
