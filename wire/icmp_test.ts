import assert from "node:assert/strict";
import { ICMP_ECHO, ICMP_ID, ICMP_SEQ, icmpFillChecksum } from "./icmp.ts";
import { csumFinish, csumPartial } from "./checksum.ts";
import { hex, placed } from "./_hex.ts";

/* ICMP echo request captured on a veth (ping). */
const MESSAGE = hex(`
  08                  // type: echo request
  00                  // code
  7b 1e               // checksum (kernel)
  21 0b               // identifier
  00 01               // sequence 1
  e4 48 07 6b 00 00 00 00 a5 4e 0c 00 00 00 00 00  // data (56 bytes)
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
  30 31 32 33 34 35 36 37
`);

Deno.test("icmpFillChecksum() writes the kernel's checksum over garbage", () => {
  const buf = MESSAGE.slice();
  buf[2] = 0xa5;
  buf[3] = 0x5a;
  icmpFillChecksum(buf, 0, buf.length);
  assert.deepEqual(buf, MESSAGE);
  assert.equal(new DataView(buf.buffer).getUint16(ICMP_ID), 0x210b);
  assert.equal(new DataView(buf.buffer).getUint16(ICMP_SEQ), 1);
  assert.equal(buf[0], ICMP_ECHO);
});

Deno.test("icmpFillChecksum() at an offset: the message sums to zero", () => {
  const { buf } = placed(MESSAGE, 34);
  buf[34 + 2] = 0;
  buf[34 + 3] = 0;
  icmpFillChecksum(buf, 34, MESSAGE.length);
  assert.equal(csumFinish(csumPartial(buf, 34, MESSAGE.length, 0)), 0);
});
