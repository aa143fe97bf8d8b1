/**
 * Unit tests of the ICMP module's intake without namespaces (the relaying
 * itself, which needs ping sockets, is tested end to end in
 * tests/e2e/icmp_test.ts).
 */

import { tapDeviceBackend } from "../tap/backend.ts";
import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import { EventLoop } from "../loop.ts";
import { ip4Input, ip6Input } from "../tap/l3.ts";
import { FakeTap } from "../tests/helpers/fake_tap.ts";
import { icmpInit, icmpTimer } from "./icmp.ts";

/** An IPv4 or IPv6 frame with an ICMP message of `len` bytes starting with type/code. */
function icmpFrame(v6: boolean, type: number, len: number): { f: Uint8Array; dv: DataView } {
  const hl = v6 ? 40 : 20;
  const f = new Uint8Array(14 + hl + len);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, v6 ? 0x86dd : 0x0800);
  if (v6) {
    dv.setUint32(14, 0x60000000);
    dv.setUint16(18, len);
    f[20] = 58;
    f[21] = 64;
    f.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15], 22);
    f.set([0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 38);
  } else {
    dv.setUint16(14, 0x4500);
    dv.setUint16(16, 20 + len);
    f[22] = 64;
    f[23] = 1;
    f.set([10, 0, 2, 15], 26);
    f.set([203, 0, 113, 10], 30);
  }
  if (len > 0) f[14 + hl] = type;
  return { f, dv };
}

Deno.test("icmp: only echo requests are taken; truncated messages count as malformed", () => {
  const tap = new FakeTap();
  const c = ctxNew(63);
  c.ip4.enabled = true;
  c.ip6.enabled = true;
  c.tapFd = tap.tapFd;
  c.tap = tapDeviceBackend(tap.tapFd);
  const loop = new EventLoop();
  try {
    const stats = icmpInit(c, loop);
    const send = (v6: boolean, type: number, len: number) => {
      const { f, dv } = icmpFrame(v6, type, len);
      if (v6) ip6Input(c, f, dv, 14, f.length - 14, 0);
      else ip4Input(c, f, dv, 14, f.length - 14, 0);
    };
    const m0 = c.stats.malformed;
    send(false, 8, 4);
    send(true, 128, 7);
    assert.equal(c.stats.malformed, m0 + 2);
    const u0 = c.stats.unhandled;
    send(false, 0, 64); /* echo reply */
    send(false, 3, 64); /* unreachable */
    send(true, 129, 64);
    assert.equal(c.stats.unhandled, u0 + 3);
    assert.equal(stats.requests + stats.dropped, 0);
    assert.equal(c.flows.used, 0);
    /* an echo request makes a flow, or is dropped (and said) when ping sockets are refused */
    send(false, 8, 64);
    assert.equal(stats.requests + stats.dropped, 1);
    assert.equal(c.flows.used, stats.requests);
    icmpTimer(61_000 + 1000);
    c.flows.flowDeferHandler();
    assert.equal(c.flows.used, 0, "the flow ends after 60 s without traffic");
  } finally {
    loop.epoll.close();
    tap.close();
  }
});
