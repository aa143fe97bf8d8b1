import assert from "node:assert/strict";
import {
  ETH_HLEN,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ethCheckLen,
  ethDst,
  ethReply,
  ethSetDst,
  ethSetSrc,
  ethSetType,
  ethSrc,
  ethType,
} from "./eth.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* Ethernet header of an ARP request captured on a veth. */
const FRAME = hex(`
  ff ff ff ff ff ff   // destination: broadcast
  02 00 00 00 00 0a   // source
  08 06               // EtherType: ARP
`);
const SRC = new Uint8Array([2, 0, 0, 0, 0, 0x0a]);
const BCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

Deno.test("eth accessors deconstruct the fixture", () => {
  const { dv } = placed(FRAME, 3);
  assert.ok(ethCheckLen(dv, 3, ETH_HLEN));
  assert.equal(ethType(dv, 3), ETH_P_ARP);
  const m = new Uint8Array(6);
  ethDst(dv, 3, m);
  assert.deepEqual(m, BCAST);
  ethSrc(dv, 3, m);
  assert.deepEqual(m, SRC);
});

Deno.test("eth setters construct the fixture over garbage", () => {
  const buf = new Uint8Array(ETH_HLEN).fill(0xa5);
  const dv = new DataView(buf.buffer);
  ethSetDst(dv, 0, BCAST);
  ethSetSrc(dv, 0, SRC);
  ethSetType(dv, 0, ETH_P_ARP);
  assert.deepEqual(buf, FRAME);
});

Deno.test("ethCheckLen() rejects every truncation without throwing", () => {
  assertTruncation(ethCheckLen, FRAME);
});

Deno.test("ethReply() answers to the source, from us, aliasing allowed", () => {
  const buf = FRAME.slice();
  const dv = new DataView(buf.buffer);
  const us = new Uint8Array([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);
  ethReply(dv, 0, dv, 0, us, ETH_P_IPV6);
  const m = new Uint8Array(6);
  ethDst(dv, 0, m);
  assert.deepEqual(m, SRC);
  ethSrc(dv, 0, m);
  assert.deepEqual(m, us);
  assert.equal(ethType(dv, 0), ETH_P_IPV6);
});

Deno.test("EtherType constants", () => {
  assert.deepEqual([ETH_P_IP, ETH_P_ARP, ETH_P_IPV6], [0x0800, 0x0806, 0x86dd]);
});
