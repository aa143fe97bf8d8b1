import assert from "node:assert/strict";
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ethCheckLen, ethType } from "./eth.ts";
import { assertTruncation, hex, placed } from "./_hex.ts";

/* Ethernet header of an ARP request captured on a veth. */
const FRAME = hex(`
  ff ff ff ff ff ff   // destination: broadcast
  02 00 00 00 00 0a   // source
  08 06               // EtherType: ARP
`);

Deno.test("eth accessors deconstruct the fixture", () => {
  const { dv } = placed(FRAME, 3);
  assert.ok(ethCheckLen(dv, 3, ETH_HLEN));
  assert.equal(ethType(dv, 3), ETH_P_ARP);
});

Deno.test("ethCheckLen() rejects every truncation without throwing", () => {
  assertTruncation(ethCheckLen, FRAME);
});

Deno.test("EtherType constants", () => {
  assert.deepEqual([ETH_P_IP, ETH_P_ARP, ETH_P_IPV6], [0x0800, 0x0806, 0x86dd]);
});
