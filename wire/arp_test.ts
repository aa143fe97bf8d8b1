import assert from "node:assert/strict";
import {
  ARP_LEN,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  arpCheckLen,
  arpIsEthIp4,
  arpOp,
  arpSetHeader,
  arpSetSha,
  arpSetSpa,
  arpSetTpa,
  arpSpa,
  arpTpa,
} from "./arp.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* ARP request captured on a veth ("who has 192.0.2.2? tell 192.0.2.1"). */
const PACKET = hex(`
  00 01               // hardware type: Ethernet
  08 00               // protocol type: IPv4
  06 04               // lengths: 6, 4
  00 01               // operation: request
  02 00 00 00 00 0a   // sender MAC
  c0 00 02 01         // sender IP 192.0.2.1
  00 00 00 00 00 00   // target MAC (unknown)
  c0 00 02 02         // target IP 192.0.2.2
`);
const SHA = new Uint8Array([2, 0, 0, 0, 0, 0x0a]);

Deno.test("arp accessors deconstruct the fixture", () => {
  const { dv } = placed(PACKET, 14);
  assert.ok(arpCheckLen(dv, 14, ARP_LEN));
  assert.ok(arpIsEthIp4(dv, 14));
  assert.equal(arpOp(dv, 14), ARP_OP_REQUEST);
  assert.equal(arpSpa(dv, 14), 0xc0000201);
  assert.equal(arpTpa(dv, 14), 0xc0000202);
});

Deno.test("arp setters construct the fixture over garbage", () => {
  const buf = new Uint8Array(ARP_LEN).fill(0xa5);
  const dv = new DataView(buf.buffer);
  arpSetHeader(dv, 0, ARP_OP_REQUEST);
  arpSetSha(dv, 0, SHA);
  arpSetSpa(dv, 0, 0xc0000201);
  buf.fill(0, 18, 24); /* target MAC: orzo answers over the request, where it is set */
  arpSetTpa(dv, 0, 0xc0000202);
  assert.deepEqual(buf, PACKET);
});

Deno.test("arpCheckLen() rejects every truncation without throwing", () => {
  assertTruncation(arpCheckLen, PACKET);
});

Deno.test("arpIsEthIp4() rejects other hardware and protocol types and lengths", () => {
  for (const [at, v] of [[1, 6], [2, 0x86], [4, 8], [5, 16]] as const) {
    const b = PACKET.slice();
    b[at] = v;
    assert.equal(arpIsEthIp4(new DataView(b.buffer), 0), false);
  }
});

Deno.test("arp round trip: a reply parses back", () => {
  const buf = new Uint8Array(ARP_LEN);
  const dv = new DataView(buf.buffer);
  arpSetHeader(dv, 0, ARP_OP_REPLY);
  arpSetSpa(dv, 0, 0x01020304);
  arpSetTpa(dv, 0, 0xfffffffe);
  assert.ok(arpIsEthIp4(dv, 0));
  assert.equal(arpOp(dv, 0), ARP_OP_REPLY);
  assert.equal(arpSpa(dv, 0), 0x01020304);
  assert.equal(arpTpa(dv, 0), 0xfffffffe);
});
