import assert from "node:assert/strict";
import { type Ctx, ctxNew } from "../ctx.ts";
import { ARP_REPLY_LEN, arpHandle } from "./arp.ts";
import { hex, prng } from "../wire/_hex.ts";

/* ARP request captured on a veth: who has 192.0.2.2? tell 192.0.2.1. */
const REQUEST = hex(`
  ff ff ff ff ff ff  02 00 00 00 00 0a  08 06       // Ethernet: broadcast, from the guest, ARP
  00 01 08 00 06 04  00 01                          // Ethernet/IPv4, request
  02 00 00 00 00 0a  c0 00 02 01                    // sender: guest MAC, 192.0.2.1
  00 00 00 00 00 00  c0 00 02 02                    // target: ?, 192.0.2.2
`);

/* What passt answers: 192.0.2.2 is at our MAC. */
const REPLY = hex(`
  02 00 00 00 00 0a  9a 55 9a 55 9a 55  08 06       // to the guest, from us, ARP
  00 01 08 00 06 04  00 02                          // Ethernet/IPv4, reply
  9a 55 9a 55 9a 55  c0 00 02 02                    // sender: our MAC, 192.0.2.2
  02 00 00 00 00 0a  c0 00 02 01                    // target: the guest
`);

function ctx(): Ctx {
  const c = ctxNew();
  c.ip4.enabled = true;
  c.ip4.addr.set([192, 0, 2, 1]);
  c.ip4.gateway.set([192, 0, 2, 2]);
  return c;
}

/** Returns a copy of the request with bytes changed. */
function patched(changes: [number, number][]): Uint8Array<ArrayBuffer> {
  const b = REQUEST.slice();
  for (const [at, v] of changes) b[at] = v;
  return b;
}

Deno.test("arpHandle() answers a request with our MAC, every byte as passt", () => {
  const c = ctx();
  const out = new Uint8Array(100).fill(0xa5);
  assert.equal(arpHandle(c, REQUEST, 0, REQUEST.length, out), ARP_REPLY_LEN);
  assert.deepEqual(out.subarray(0, ARP_REPLY_LEN), REPLY);
  assert.equal(out[ARP_REPLY_LEN], 0xa5, "nothing written past the reply");
  assert.equal(c.stats.arpReplies, 1);
  assert.equal(c.stats.malformed + c.stats.unhandled, 0);
});

Deno.test("arpHandle() answers for any address but the guest's own", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  const other = patched([[38, 203], [39, 0], [40, 113], [41, 10]]);
  assert.equal(arpHandle(c, other, 0, other.length, out), ARP_REPLY_LEN);
  assert.deepEqual(out.subarray(28, 32), new Uint8Array([203, 0, 113, 10]));
  const own = patched([[41, 1], [31, 7]]);
  assert.equal(arpHandle(c, own, 0, own.length, out), 0);
  assert.equal(c.stats.arpReplies, 1);
  assert.equal(c.stats.unhandled, 1);
});

Deno.test("arpHandle() ignores announcements but answers probes from 0.0.0.0", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  const announce = patched([[31, 9], [41, 9]]);
  assert.equal(arpHandle(c, announce, 0, announce.length, out), 0);
  const probe = patched([[28, 0], [29, 0], [30, 0], [31, 0]]);
  assert.equal(arpHandle(c, probe, 0, probe.length, out), ARP_REPLY_LEN);
  assert.deepEqual(out.subarray(38, 42), new Uint8Array(4), "reply to 0.0.0.0");
  assert.equal(c.stats.unhandled, 1);
  assert.equal(c.stats.arpReplies, 1);
});

Deno.test("arpHandle() does not answer replies or other operations", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  for (const op of [0, 2, 3, 0x101]) {
    const b = patched([[20, op >> 8], [21, op & 0xff]]);
    assert.equal(arpHandle(c, b, 0, b.length, out), 0);
  }
  assert.equal(c.stats.unhandled, 4);
  assert.equal(c.stats.malformed, 0);
});

Deno.test("arpHandle() counts non-Ethernet/IPv4 ARP and bad EtherTypes as malformed", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  const bad: [number, number][][] = [
    [[15, 6]], //              hardware type 6
    [[16, 0x86]], //           protocol type 0x8600
    [[18, 8]], //              hardware length 8
    [[19, 16]], //             protocol length 16
    [[13, 0x00]], //           EtherType 0x0800
    [[6, 0x03]], //            multicast source MAC
  ];
  for (const ch of bad) {
    const b = patched(ch);
    assert.equal(arpHandle(c, b, 0, b.length, out), 0);
  }
  assert.equal(c.stats.malformed, bad.length);
  assert.equal(c.stats.arpReplies, 0);
});

Deno.test("arpHandle() rejects every truncation without throwing", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  for (let n = 0; n < REQUEST.length; n++) {
    assert.equal(arpHandle(c, REQUEST, 0, n, out), 0);
    assert.equal(arpHandle(c, REQUEST.slice(0, n), 0, n, out), 0);
  }
  assert.equal(c.stats.malformed, 2 * REQUEST.length);
});

Deno.test("arpHandle() rejects ranges outside the frame", () => {
  const c = ctx();
  const out = new Uint8Array(64);
  assert.equal(arpHandle(c, REQUEST, 1, REQUEST.length, out), 0);
  assert.equal(arpHandle(c, REQUEST, -1, 10, out), 0);
  assert.equal(arpHandle(c, REQUEST, 0, -5, out), 0);
  assert.equal(c.stats.malformed, 3);
});

Deno.test("arpHandle() works at offsets, into a sub-array, and in place", () => {
  const c = ctx();
  const pool = new Uint8Array(256).fill(0xee);
  pool.set(REQUEST, 70);
  const outBuf = new Uint8Array(128);
  const out = outBuf.subarray(12);
  assert.equal(arpHandle(c, pool.subarray(2), 68, REQUEST.length, out), ARP_REPLY_LEN);
  assert.deepEqual(outBuf.subarray(12, 12 + ARP_REPLY_LEN), REPLY);
  const inPlace = REQUEST.slice();
  assert.equal(arpHandle(c, inPlace, 0, inPlace.length, inPlace), ARP_REPLY_LEN);
  assert.deepEqual(inPlace, REPLY);
});

Deno.test("arpHandle() writes nothing into a too small output buffer", () => {
  const c = ctx();
  const out = new Uint8Array(ARP_REPLY_LEN - 1);
  assert.equal(arpHandle(c, REQUEST, 0, REQUEST.length, out), 0);
  assert.deepEqual(out, new Uint8Array(ARP_REPLY_LEN - 1));
});

Deno.test("arpHandle() is silent while IPv4 is disabled", () => {
  const c = ctx();
  c.ip4.enabled = false;
  assert.equal(arpHandle(c, REQUEST, 0, REQUEST.length, new Uint8Array(64)), 0);
  assert.equal(c.stats.unhandled, 1);
});

Deno.test("arpHandle() survives random garbage and counts every frame", () => {
  const c = ctx();
  const r = prng(42);
  const out = new Uint8Array(64);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const len = r() % 64;
    const b = new Uint8Array(len);
    for (let j = 0; j < len; j++) b[j] = r() & 0xff;
    /* half the time keep a plausible header so that deeper checks run */
    if (len >= 22 && (i & 1) === 0) {
      b.set(REQUEST.subarray(12, 22), 12);
      b[6]! &= 0xfe;
    }
    const reply = arpHandle(c, b, 0, len, out);
    assert.ok(reply === 0 || reply === ARP_REPLY_LEN);
  }
  const s = c.stats;
  assert.equal(s.malformed + s.unhandled + s.arpReplies, n);
  assert.ok(s.malformed > 0 && s.arpReplies > 0);
});
