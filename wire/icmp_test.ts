import assert from "node:assert/strict";
import {
  ICMP_ECHO,
  ICMP_HLEN,
  icmpCheckLen,
  icmpChecksum,
  icmpChecksumOk,
  icmpCode,
  icmpFillChecksum,
  icmpId,
  icmpSeq,
  icmpSetChecksum,
  icmpSetId,
  icmpSetSeq,
  icmpSetTypeCode,
  icmpType,
} from "./icmp.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

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

Deno.test("icmp accessors deconstruct the fixture", () => {
  const { buf, dv } = placed(MESSAGE, 34);
  assert.ok(icmpCheckLen(dv, 34, MESSAGE.length));
  assert.equal(icmpType(dv, 34), ICMP_ECHO);
  assert.equal(icmpCode(dv, 34), 0);
  assert.equal(icmpChecksum(dv, 34), 0x7b1e);
  assert.equal(icmpId(dv, 34), 0x210b);
  assert.equal(icmpSeq(dv, 34), 1);
  assert.ok(icmpChecksumOk(buf, 34, MESSAGE.length));
});

Deno.test("icmp setters construct the fixture over garbage, checksum included", () => {
  const buf = new Uint8Array(MESSAGE.length).fill(0xa5);
  buf.set(MESSAGE.subarray(ICMP_HLEN), ICMP_HLEN);
  const dv = new DataView(buf.buffer);
  icmpSetTypeCode(dv, 0, ICMP_ECHO, 0);
  icmpSetId(dv, 0, 0x210b);
  icmpSetSeq(dv, 0, 1);
  icmpFillChecksum(buf, 0, buf.length);
  assert.deepEqual(buf, MESSAGE);
});

Deno.test("icmpCheckLen() rejects every truncation without throwing", () => {
  assertTruncation(icmpCheckLen, MESSAGE, ICMP_HLEN);
});

Deno.test("icmpChecksumOk() detects corruption", () => {
  const b = MESSAGE.slice();
  const dv = new DataView(b.buffer);
  icmpSetChecksum(dv, 0, 0x7b1f);
  assert.equal(icmpChecksumOk(b, 0, b.length), false);
});
