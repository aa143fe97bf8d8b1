/**
 * Unit tests of the UDP translation without namespaces: frames from the
 * "guest" go in through ip4Input()/ip6Input(), frames to it come out of a
 * fake tap (tests/helpers/fake_tap.ts), and the "host" is sockets on this
 * process's loopback. The event loop is turned by hand, with an injected
 * clock for the timeouts.
 */

import { tapDeviceBackend } from "../tap/backend.ts";
import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import type { Ctx } from "../ctx.ts";
import { EventLoop } from "../loop.ts";
import { configDefaults } from "../conf/config.ts";
import type { Config } from "../conf/config.ts";
import { confPorts } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
} from "../ffi/layout.ts";
import { ip4Input, ip6Input } from "../tap/l3.ts";
import { csumFinish, csumPartial } from "../wire/checksum.ts";
import { FakeTap } from "../tests/helpers/fake_tap.ts";
import { ETH_P_IPV6 } from "../wire/eth.ts";
import { NsSync } from "../ns/ns_sync.ts";
import {
  UDP_TIMEOUT_MS,
  UDP_TIMEOUT_STREAM_MS,
  udpCloseAll,
  udpFlowCount,
  udpInit,
  udpListeners,
  udpTimer,
} from "./udp.ts";

const GUEST4 = [10, 0, 2, 15];
const GW4 = [10, 0, 2, 2];
const GUEST6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15];
const GW6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
const GUEST_MAC = [0x02, 0, 0, 0, 0, 0x15];

/** A context as pasta.ts makes it: the gateway maps to the host's loopback. */
function testCtx(tap: FakeTap): Ctx {
  const c = ctxNew(1023);
  c.ip4.enabled = true;
  c.ip4.addr.set(GUEST4);
  c.ip4.addrSeen.set(GUEST4);
  c.ip4.prefixLen = 24;
  c.ip4.gateway.set(GW4);
  c.ip4.mapHostLoopback.set(GW4);
  c.ip6.enabled = true;
  c.ip6.addr.set(GUEST6);
  c.ip6.addrSeen.set(GUEST6);
  c.ip6.gateway.set(GW6);
  c.ip6.mapHostLoopback.set(GW6);
  c.guestMac.set(GUEST_MAC);
  c.tapFd = tap.tapFd;
  c.tap = tapDeviceBackend(tap.tapFd);
  c.tapHdrLen = tap.hdrLen;
  return c;
}

/** A UDP socket of the test on the loopback. */
class Sock {
  readonly fd: number;
  readonly port: number;
  readonly v6: boolean;
  constructor(v6: boolean, port = 0) {
    this.v6 = v6;
    this.fd = libc.symbols.socket(
      v6 ? AF_INET6 : AF_INET,
      SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
    );
    assert.ok(this.fd >= 0);
    if (v6) {
      libc.symbols.setsockopt(this.fd, IPPROTO_IPV6, IPV6_V6ONLY, new Uint8Array([1, 0, 0, 0]), 4);
    }
    const sa = sockaddr(v6, port);
    assert.equal(libc.symbols.bind(this.fd, sa, sa.length), 0, `bind: errno ${errno()}`);
    const out = new Uint8Array(28);
    libc.symbols.getsockname(this.fd, out, new Uint8Array(new Uint32Array([28]).buffer));
    this.port = (out[2]! << 8) | out[3]!;
  }
  sendTo(data: Uint8Array, port: number): void {
    const sa = sockaddr(this.v6, port);
    const n = libc.symbols.sendto(
      this.fd,
      data as Uint8Array<ArrayBuffer>,
      data.length,
      0,
      sa,
      sa.length,
    );
    assert.equal(n, data.length, `sendto: errno ${errno()}`);
  }
  /** Receives one datagram: its bytes and the sender's port, or null. */
  recv(): { data: Uint8Array; port: number } | null {
    const buf = new Uint8Array(65536);
    const sa = new Uint8Array(28);
    const n = libc.symbols.recvfrom(
      this.fd,
      buf,
      buf.length,
      MSG_DONTWAIT,
      sa,
      new Uint8Array(new Uint32Array([28]).buffer),
    );
    if (n < 0) return null;
    return { data: buf.slice(0, n), port: (sa[2]! << 8) | sa[3]! };
  }
  close(): void {
    libc.symbols.close(this.fd);
  }
}

function sockaddr(v6: boolean, port: number): Uint8Array<ArrayBuffer> {
  const sa = new Uint8Array(v6 ? 28 : 16);
  sa[0] = v6 ? AF_INET6 : AF_INET;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  if (v6) sa[23] = 1;
  else sa.set([127, 0, 0, 1], 4);
  return sa;
}

/** Builds an Ethernet frame with a UDP datagram from the guest. */
function udpFrame(
  v6: boolean,
  src: number[],
  dst: number[],
  sport: number,
  dport: number,
  payload: Uint8Array,
  ulenDelta = 0,
): { frame: Uint8Array; dv: DataView; ipLen: number } {
  const ipHl = v6 ? 40 : 20;
  const l4 = 8 + payload.length;
  const frame = new Uint8Array(14 + ipHl + l4);
  const dv = new DataView(frame.buffer);
  frame.set([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55], 0);
  frame.set(GUEST_MAC, 6);
  dv.setUint16(12, v6 ? 0x86dd : 0x0800);
  const ip = 14;
  if (v6) {
    dv.setUint32(ip, 0x60000000);
    dv.setUint16(ip + 4, l4);
    frame[ip + 6] = 17;
    frame[ip + 7] = 64;
    frame.set(src, ip + 8);
    frame.set(dst, ip + 24);
  } else {
    dv.setUint16(ip, 0x4500);
    dv.setUint16(ip + 2, 20 + l4);
    dv.setUint16(ip + 6, 0x4000);
    frame[ip + 8] = 64;
    frame[ip + 9] = 17;
    frame.set(src, ip + 12);
    frame.set(dst, ip + 16);
    dv.setUint16(ip + 10, csumFinish(csumPartial(frame, ip, 20, 0)));
  }
  const u = ip + ipHl;
  dv.setUint16(u, sport);
  dv.setUint16(u + 2, dport);
  dv.setUint16(u + 4, l4 + ulenDelta);
  frame.set(payload, u + 8);
  return { frame, dv, ipLen: ipHl + l4 };
}

/** Hands a frame from the guest to orzo. */
function fromGuest(c: Ctx, v6: boolean, f: ReturnType<typeof udpFrame>, now: number): void {
  if (v6) ip6Input(c, f.frame, f.dv, 14, f.ipLen, now);
  else ip4Input(c, f.frame, f.dv, 14, f.ipLen, now);
}

/** Turns the loop once: waits up to ms for events and runs their handlers. */
function pump(loop: EventLoop, now: number, ms = 200): number {
  const ep = loop.epoll;
  const n = ep.wait(ms);
  for (let i = 0; i < n; i++) {
    loop.handlers[ep.typeOf(i)]?.(ep.fdOf(i), ep.dataOf(i), ep.eventsOf(i), now);
  }
  return n;
}

/** A UDP frame to the guest, parsed. */
interface Out {
  v6: boolean;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  payload: Uint8Array;
  csumOk: boolean;
}

/** Parses a frame orzo wrote (virtio-net header first) and completes its checksum. */
function parseOut(raw: Uint8Array): Out {
  const dv = new DataView(raw.buffer, raw.byteOffset);
  assert.equal(raw[0], 1, "NEEDS_CSUM");
  const eth = 12;
  assert.deepEqual([...raw.subarray(eth, eth + 6)], GUEST_MAC);
  const v6 = dv.getUint16(eth + 12) === ETH_P_IPV6;
  const ip = eth + 14;
  const u = ip + (v6 ? 40 : 20);
  const csumStart = dv.getUint16(6, true);
  const csumOff = dv.getUint16(8, true);
  assert.equal(eth + csumStart, u);
  assert.equal(csumOff, 6);
  const l4 = dv.getUint16(u + 4);
  assert.equal(u + l4, raw.length);
  /* what the guest's kernel does: sum from csum_start with the pseudo-header sum in place */
  const full = raw.slice();
  const c = csumFinish(csumPartial(full, u, l4, 0));
  full[u + 6] = c >> 8;
  full[u + 7] = c & 0xff;
  let sum = 17 + l4;
  const a0 = v6 ? ip + 8 : ip + 12;
  const alen = v6 ? 32 : 8;
  for (let i = 0; i < alen; i += 2) sum += (full[a0 + i]! << 8) | full[a0 + i + 1]!;
  const csumOk = csumFinish(csumPartial(full, u, l4, sum)) === 0;
  return {
    v6,
    src: [...raw.subarray(v6 ? ip + 8 : ip + 12, v6 ? ip + 24 : ip + 16)],
    dst: [...raw.subarray(v6 ? ip + 24 : ip + 16, v6 ? ip + 40 : ip + 20)],
    sport: dv.getUint16(u),
    dport: dv.getUint16(u + 2),
    payload: raw.slice(u + 8),
    csumOk,
  };
}

function conf(specs: [string, string][] = []): Config {
  const c = configDefaults("pasta");
  for (const [opt, arg] of specs) {
    const fwd = opt === "u" ? c.udp : c.udpNs;
    confPorts(fwd, opt as "u" | "U", arg, { pasta: true, ipv4: true, ipv6: true });
  }
  return c;
}

/** A port nobody uses now (bound and released). */
function freePort(v6 = false): number {
  const s = new Sock(v6);
  const p = s.port;
  s.close();
  return p;
}

/** Runs fn with a context, loop and fake tap, and cleans up. */
async function withUdp(
  specs: [string, string][],
  fn: (c: Ctx, loop: EventLoop, tap: FakeTap) => void | Promise<void>,
  nsSync: NsSync | null = null,
  tapHdrLen = 12,
): Promise<void> {
  const tap = new FakeTap(tapHdrLen);
  const c = testCtx(tap);
  const loop = new EventLoop();
  try {
    udpInit(c, loop, conf(specs), { nsSync });
    await fn(c, loop, tap);
  } finally {
    udpCloseAll();
    loop.epoll.close();
    tap.close();
  }
}

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  Deno.test(`udp: guest to the gateway reaches the host's loopback and back (${fam})`, async () => {
    const srv = new Sock(v6);
    const sport = freePort(v6);
    try {
      await withUdp([], (c, loop, tap) => {
        const payload = new TextEncoder().encode("hello, host");
        fromGuest(
          c,
          v6,
          udpFrame(v6, v6 ? GUEST6 : GUEST4, v6 ? GW6 : GW4, sport, srv.port, payload),
          0,
        );
        const got = srv.recv();
        assert.ok(got !== null, "the host's socket got the datagram");
        assert.deepEqual(got.data, payload);
        assert.equal(got.port, sport, "the guest's source port is kept");
        assert.equal(udpFlowCount(), 1);
        /* a second datagram uses the same flow */
        fromGuest(
          c,
          v6,
          udpFrame(v6, v6 ? GUEST6 : GUEST4, v6 ? GW6 : GW4, sport, srv.port, new Uint8Array(0)),
          1,
        );
        assert.equal(srv.recv()?.data.length, 0, "empty datagrams pass");
        assert.equal(udpFlowCount(), 1);
        /* the reply */
        const reply = new Uint8Array(3000).map((_, i) => i * 7);
        srv.sendTo(reply, sport);
        assert.ok(pump(loop, 2) > 0);
        const frames = tap.drain();
        assert.equal(frames.length, 1);
        const o = parseOut(frames[0]!);
        assert.equal(o.v6, v6);
        assert.deepEqual(o.src, v6 ? GW6 : GW4, "from the address the guest used");
        assert.deepEqual(o.dst, v6 ? GUEST6 : GUEST4);
        assert.equal(o.sport, srv.port);
        assert.equal(o.dport, sport);
        assert.deepEqual(o.payload, reply);
        assert.ok(o.csumOk, "the completed checksum is right");
      });
    } finally {
      srv.close();
    }
  });
}

Deno.test("udp: a batch of replies becomes one frame each, in order", async () => {
  const srv = new Sock(false);
  const sport = freePort();
  try {
    await withUdp([], (c, loop, tap) => {
      fromGuest(c, false, udpFrame(false, GUEST4, GW4, sport, srv.port, new Uint8Array([1])), 0);
      assert.ok(srv.recv() !== null);
      for (let i = 0; i < 100; i++) srv.sendTo(new Uint8Array(100 + i).fill(i), sport);
      const frames: Uint8Array[] = [];
      for (let round = 0; round < 20 && frames.length < 100; round++) {
        pump(loop, 1, 50);
        frames.push(...tap.drain());
      }
      assert.equal(frames.length, 100);
      frames.forEach((f, i) => {
        const o = parseOut(f);
        assert.equal(o.payload.length, 100 + i);
        assert.equal(o.payload[0], i);
      });
    });
  } finally {
    srv.close();
  }
});

Deno.test("udp: flows expire after 30 s one way, 120 s both ways", async () => {
  const srv = new Sock(false);
  const p1 = freePort();
  const p2 = freePort();
  try {
    await withUdp([], (c, loop, tap) => {
      fromGuest(c, false, udpFrame(false, GUEST4, GW4, p1, srv.port, new Uint8Array([1])), 0);
      fromGuest(c, false, udpFrame(false, GUEST4, GW4, p2, srv.port, new Uint8Array([2])), 0);
      assert.equal(udpFlowCount(), 2);
      srv.recv();
      srv.recv();
      srv.sendTo(new Uint8Array([3]), p2);
      pump(loop, 0);
      assert.equal(tap.drain().length, 1);
      udpTimer(UDP_TIMEOUT_MS - 1);
      assert.equal(udpFlowCount(), 2);
      udpTimer(UDP_TIMEOUT_MS + 1001);
      assert.equal(udpFlowCount(), 1, "the one-way flow is gone, the two-way one stays");
      c.flows.flowDeferHandler();
      udpTimer(UDP_TIMEOUT_STREAM_MS + 2002);
      assert.equal(udpFlowCount(), 0);
      c.flows.flowDeferHandler();
      assert.equal(c.flows.used, 0);
    });
  } finally {
    srv.close();
  }
});

Deno.test("udp: malformed, multicast and broadcast datagrams are dropped without a flow", async () => {
  await withUdp([], (c) => {
    const before = c.stats.malformed;
    /* UDP length beyond the IP payload */
    fromGuest(c, false, udpFrame(false, GUEST4, GW4, 1000, 53, new Uint8Array(10), 1), 0);
    /* UDP length below the header */
    fromGuest(c, false, udpFrame(false, GUEST4, GW4, 1000, 53, new Uint8Array(10), -11), 0);
    assert.equal(c.stats.malformed, before + 2);
    fromGuest(
      c,
      false,
      udpFrame(false, GUEST4, [255, 255, 255, 255], 68, 67, new Uint8Array(10)),
      0,
    );
    fromGuest(
      c,
      false,
      udpFrame(false, GUEST4, [10, 0, 2, 255], 1000, 1000, new Uint8Array(10)),
      0,
    );
    fromGuest(
      c,
      false,
      udpFrame(false, GUEST4, [224, 0, 0, 251], 5353, 5353, new Uint8Array(10)),
      0,
    );
    fromGuest(
      c,
      true,
      udpFrame(
        true,
        GUEST6,
        [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb],
        5353,
        5353,
        new Uint8Array(10),
      ),
      0,
    );
    /* port 0 */
    fromGuest(c, false, udpFrame(false, GUEST4, GW4, 0, 53, new Uint8Array(10)), 0);
    assert.equal(udpFlowCount(), 0);
  });
});

Deno.test("udp: -u forwards a host port to the guest (tap path) and replies go back from it", async () => {
  const port = freePort();
  const target = freePort();
  await withUdp([["u", `127.0.0.1/${port}:${target}`]], (c, loop, tap) => {
    assert.equal(udpListeners()!.count, 1);
    const client = new Sock(false);
    try {
      client.sendTo(new TextEncoder().encode("ping"), port);
      assert.ok(pump(loop, 0) > 0);
      const frames = tap.drain();
      assert.equal(frames.length, 1);
      const o = parseOut(frames[0]!);
      /* the host's loopback appears as the gateway (--map-host-loopback) */
      assert.deepEqual(o.src, GW4);
      assert.deepEqual(o.dst, GUEST4);
      assert.equal(o.sport, client.port);
      assert.equal(o.dport, target);
      assert.ok(o.csumOk);
      /* the guest answers from the target port */
      fromGuest(
        c,
        false,
        udpFrame(false, GUEST4, GW4, target, client.port, new TextEncoder().encode("pong")),
        1,
      );
      const got = client.recv();
      assert.ok(got !== null);
      assert.equal(new TextDecoder().decode(got.data), "pong");
      assert.equal(got.port, port, "from the forwarded port");
      assert.equal(udpFlowCount(), 1);
    } finally {
      client.close();
    }
  });
});

Deno.test("udp: -U (namespace loopback to host loopback) and the spliced -u path, without the tap", async () => {
  /* NsSync in this process's own namespace stands in for the guest's */
  const ns = await NsSync.start(-1);
  const srv = new Sock(false);
  const srv2 = new Sock(false);
  const portU = freePort();
  const portu = freePort();
  try {
    await withUdp(
      [["U", `${portU}:${srv.port}`], ["u", `127.0.0.1/${portu}:127.0.0.1/${srv2.port}`]],
      (_c, loop, tap) => {
        const client = new Sock(false);
        try {
          for (const [to, server] of [[portU, srv], [portu, srv2]] as const) {
            const data = new Uint8Array(60000).map((_, i) => i ^ to);
            client.sendTo(data, to);
            pump(loop, 0);
            const got = server.recv();
            assert.ok(got !== null, `server behind ${to} got it`);
            assert.deepEqual(got.data, data);
            server.sendTo(got.data.subarray(0, 1000), got.port);
            pump(loop, 0);
            const back = client.recv();
            assert.ok(back !== null);
            assert.equal(back.port, to);
            assert.deepEqual(back.data, data.subarray(0, 1000));
          }
          assert.equal(tap.drain().length, 0, "nothing went through the tap");
        } finally {
          client.close();
        }
      },
      ns,
    );
  } finally {
    srv.close();
    srv2.close();
    ns.close();
  }
});

Deno.test("udp: without the virtio-net header, frames carry a complete checksum", async () => {
  const srv = new Sock(false);
  const sport = freePort();
  try {
    await withUdp(
      [],
      (c, loop, tap) => {
        fromGuest(c, false, udpFrame(false, GUEST4, GW4, sport, srv.port, new Uint8Array([1])), 0);
        assert.ok(srv.recv() !== null);
        srv.sendTo(new Uint8Array(1001).map((_, i) => i), sport);
        pump(loop, 0);
        const [f] = tap.drain();
        assert.ok(f !== undefined);
        assert.deepEqual([...f.subarray(0, 6)], GUEST_MAC, "the frame starts with Ethernet");
        const ip = 14;
        const u = ip + 20;
        assert.equal(csumFinish(csumPartial(f, ip, 20, 0)), 0, "IPv4 header checksum");
        let sum = 17 + 1009;
        for (let i = 12; i < 20; i += 2) sum += (f[ip + i]! << 8) | f[ip + i + 1]!;
        assert.equal(csumFinish(csumPartial(f, u, 1009, sum)), 0, "UDP checksum");
        assert.equal(f.length, 14 + 20 + 8 + 1001);
      },
      null,
      0,
    );
  } finally {
    srv.close();
  }
});

Deno.test("udp: when the guest's source port is taken on the host, the flow uses another", async () => {
  const srv = new Sock(false);
  /* bound without SO_REUSEADDR: orzo cannot share it */
  const taken = new Sock(false);
  try {
    await withUdp([], (c, loop, tap) => {
      fromGuest(
        c,
        false,
        udpFrame(false, GUEST4, GW4, taken.port, srv.port, new Uint8Array([7])),
        0,
      );
      const got = srv.recv();
      assert.ok(got !== null);
      assert.notEqual(got.port, taken.port);
      srv.sendTo(new Uint8Array([8]), got.port);
      pump(loop, 0);
      const [f] = tap.drain();
      assert.ok(f !== undefined);
      assert.equal(parseOut(f).dport, taken.port, "the guest still sees its own port");
    });
  } finally {
    srv.close();
    taken.close();
  }
});
