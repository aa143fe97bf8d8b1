/**
 * tcp_test.ts - unit tests of the TCP translation state machine, without
 * namespaces: segments from the guest are handed to ip4Input()/ip6Input(),
 * orzo's frames are read back from a fake tap (a SOCK_SEQPACKET socketpair,
 * tests/helpers/fake_tap.ts), and the host side is real sockets on the
 * loopback, reached through the gateway address (mapHostLoopback). The event
 * loop is pumped with runOnce(0), every wait bounded.
 *
 * Each test builds its own context, loop and TCP module (tcpInit) and takes
 * them down (tcpReset) at the end, checking that no fd is left open and that
 * no handler failed.
 *
 * `now` is the loop's clock (performance.now()): the TCP module's timer runs
 * on the same clock, so an injected clock would make its timeouts fire.
 *
 * @module
 */

import { tapDeviceBackend } from "../tap/backend.ts";
import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import type { Ctx } from "../ctx.ts";
import { EventLoop } from "../loop.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import { fwdSpecNew } from "../conf/ports.ts";
import { ERRNO } from "../ffi/errno.ts";
import { AF_INET, SO_PEEK_OFF, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET } from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { fdCount } from "../ffi/proc.ts";
import { ip4Input, ip6Input } from "../tap/l3.ts";
import { tapHandler, tapNew } from "../tap/tap.ts";
import { FWD_TCP, FwdListeners, hostSocket, loopWatch } from "../fwd/listeners.ts";
import { FwdDirection } from "../fwd/direction.ts";
import type { FwdSpec } from "../conf/ports.ts";
import { PIF_HOST } from "../flow/pif.ts";
import {
  ACK_TIMEOUT_MS,
  MSS_MIN4,
  MSS_MIN6,
  RTO_MAX_MS,
  SYN_RTO_MS,
  TCP_FIN_RETRIES,
  TCP_MAX_RETRANS,
  TCP_SYN_RETRIES,
  TCP_TIMER_INTERVAL_MS,
  TCP_TIMER_QUIET_MS,
  tcpAckRetries,
  tcpInit,
  tcpOpenCount,
  tcpReset,
  tcpRto,
  tcpSetHalfOpenMax,
  tcpSetListeners,
  type TcpStats,
  tcpTimer,
  tcpTimerPeriodMs,
} from "./tcp.ts";
import { TAP_FIN_ACKED, TAP_FIN_SENT } from "./conn.ts";
import { FakeTap } from "../tests/helpers/fake_tap.ts";
import { fdBudget } from "../flow/fd_budget.ts";
import { closedPort, HostConn, HostListener } from "../tests/helpers/host_sock.ts";
import {
  ACK,
  ackNum,
  describeSeg,
  dstAddr,
  expectTcp,
  FIN,
  flags,
  flagsNoPsh,
  optMss,
  optWscale,
  parseTcp,
  payload,
  payloadAtMost,
  payloadLen,
  PSH,
  RST,
  type Seg,
  segment,
  type SegOpts,
  SEND_TEMPL,
  seqNum,
  srcAddr,
  SYN,
  SYN_TEMPL,
  type TcpChecker,
  type TcpSeg,
  V6,
  windowOpen,
} from "../tests/helpers/tcp_frames.ts";

/** Opens the listeners of a -t spec's explicit rules in a table of their own. */
function listenRules(loop: EventLoop, spec: FwdSpec, v6: boolean): FwdListeners {
  const l = new FwdListeners(loopWatch(loop));
  new FwdDirection(l, {
    proto: FWD_TCP,
    pif: PIF_HOST,
    spec,
    v4: !v6,
    v6,
    freebind: false,
    socket: hostSocket,
    read: null,
    own: null,
  }).openRules(spec.rules, spec.excluded, true);
  return l;
}

/* ---------------------------------------------------------------- harness */

/** Whether this kernel has SO_PEEK_OFF for TCP (6.10), which orzo uses when it can. */
function peekOffTcp(): boolean {
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const zero = new Uint8Array(4);
  const ok = libc.symbols.setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, zero, 4) === 0;
  libc.symbols.close(fd);
  return ok;
}

const GUEST4 = "10.0.2.15";
const GW4 = "10.0.2.2";
const GUEST6 = "fd00::15";
const GW6 = "fd00::2";
/** Longest wait for anything expected. */
const WAIT_MS = 3000;
/** How long "nothing happens" is watched. */
const QUIET_MS = 100;

/** Everything one test runs on. */
interface Harness {
  /** execution context: IPv4 and IPv6, gateway mapped to the host's loopback */
  c: Ctx;
  /** the loop, pumped by the test */
  loop: EventLoop;
  /** the guest's side */
  tap: FakeTap;
  /** the TCP module's counters */
  stats: TcpStats;
  /** host sockets to close at the end */
  owned: { close(): void }[];
}

function harnessNew(): Harness {
  const c = ctxNew(64);
  c.ip4.enabled = true;
  c.ip4.addr.set(parseIp4(GUEST4)!);
  c.ip4.prefixLen = 24;
  c.ip4.gateway.set(parseIp4(GW4)!);
  c.ip4.mapHostLoopback.set(c.ip4.gateway);
  c.ip6.enabled = true;
  c.ip6.addr.set(parseIp6(GUEST6)!);
  c.ip6.prefixLen = 64;
  c.ip6.gateway.set(parseIp6(GW6)!);
  c.ip6.mapHostLoopback.set(c.ip6.gateway);
  const tap = new FakeTap(12);
  c.tapFd = tap.tapFd;
  c.tap = tapDeviceBackend(tap.tapFd);
  c.tapHdrLen = tap.hdrLen;
  const loop = new EventLoop();
  const stats = tcpInit(c, loop);
  loop.post.push(() => c.flows.flowDeferHandler());
  return { c, loop, tap, stats, owned: [] };
}

function harnessClose(h: Harness): void {
  tcpReset();
  for (const o of h.owned) o.close();
  h.loop.epoll.close();
  h.tap.close();
}

/**
 * A test with a fresh harness, checked for fd leaks and handler failures.
 * @param name test name
 * @param fn the test body
 * @param ignore skip the test (on this kernel)
 */
function tcpTest(name: string, fn: (h: Harness) => Promise<void> | void, ignore = false): void {
  Deno.test({ name, ignore }, async () => {
    const before = fdCount();
    const h = harnessNew();
    let failures = 0;
    try {
      await fn(h);
    } finally {
      failures = h.loop.failures;
      harnessClose(h);
    }
    assert.equal(failures, 0, "handler failures caught by the loop");
    assert.equal(fdCount(), before, "fds open after the test");
  });
}

function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/**
 * Pumps the loop (and Deno's) until cond() gives a value.
 * @returns that value
 */
async function pumpUntil<T>(
  h: Harness,
  what: string,
  cond: () => T | null | undefined | false,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    h.loop.runOnce(0);
    const v = cond();
    if (v !== null && v !== undefined && v !== false) return v;
    if (performance.now() > end) assert.fail(`Timed out after ${timeoutMs} ms: ${what}`);
    await tick();
  }
}

/** Pumps the loop for a while. */
async function pumpFor(h: Harness, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    h.loop.runOnce(0);
    await tick();
  }
}

/** The next frame orzo writes to the tap. */
function nextFrame(h: Harness, what: string, timeoutMs = WAIT_MS): Promise<Uint8Array> {
  return pumpUntil(h, what, () => h.tap.recv(), timeoutMs);
}

/** Checks that orzo writes nothing to the tap for a while. */
async function expectNoFrame(h: Harness, what: string, ms = QUIET_MS): Promise<void> {
  await pumpFor(h, ms);
  const f = h.tap.recv();
  if (f !== null) assert.fail(`${what}: unexpected ${describeSeg(parseTcp(f))}`);
}

/** Hands a segment from the guest to the IP intake, as the tap would. */
function inject(h: Harness, s: Seg): void {
  const f = segment(s);
  const dv = new DataView(f.buffer);
  if (s.v6) ip6Input(h.c, f, dv, 14, f.length - 14, performance.now());
  else ip4Input(h.c, f, dv, 14, f.length - 14, performance.now());
}

function fam(v6: boolean): Partial<Seg> {
  return v6 ? V6 : {};
}

function gw(v6: boolean): string {
  return v6 ? GW6 : GW4;
}

function guest(v6: boolean): string {
  return v6 ? GUEST6 : GUEST4;
}

function famName(v6: boolean): string {
  return v6 ? "IPv6" : "IPv4";
}

function random(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

/** An established connection from the guest to a host server. */
interface Conn {
  /** the server's listening socket */
  srv: HostListener;
  /** the server's end of the connection */
  peer: HostConn;
  /** template of the guest's next segment: ports, addresses, seq and ack to send */
  g: Seg;
  /** orzo's initial sequence number towards the guest */
  isn: number;
}

/**
 * Sets up a connection from the guest to a new server on the host's loopback
 * (SYN, SYN-ACK, ACK, accept).
 * @param o family, options of the guest's SYN, window of its ACKs
 */
async function connEstablished(
  h: Harness,
  o: { v6?: boolean; opts?: SegOpts; win?: number } = {},
): Promise<Conn> {
  const v6 = o.v6 ?? false;
  const srv = new HostListener(v6);
  h.owned.push(srv);
  const syn: Seg = { ...SYN_TEMPL, ...fam(v6), dport: srv.port, opts: o.opts ?? SYN_TEMPL.opts };
  inject(h, syn);
  const sa = expectTcp(await nextFrame(h, "SYN-ACK"), flags(SYN | ACK), ackNum(syn.seq + 1));
  const g: Seg = {
    ...SEND_TEMPL,
    ...fam(v6),
    dport: srv.port,
    seq: syn.seq + 1,
    ack: sa.seq + 1,
    win: o.win ?? 65535,
  };
  inject(h, g);
  const peer = await pumpUntil(h, "the server accepts", () => srv.accept());
  return { srv, peer, g, isn: sa.seq };
}

/**
 * Collects data segments to the guest until `n` bytes came, checking each.
 * @returns the segments
 */
async function recvData(
  h: Harness,
  k: Conn,
  from: number,
  n: number,
  ...checks: TcpChecker[]
): Promise<TcpSeg[]> {
  const segs: TcpSeg[] = [];
  let got = 0;
  while (got < n) {
    const s = expectTcp(
      await nextFrame(h, `data ${got} of ${n}`),
      flagsNoPsh(ACK),
      seqNum(k.isn + 1 + from + got),
      ...checks,
    );
    assert.ok(s.payload.length > 0, "data segment without data");
    segs.push(s);
    got += s.payload.length;
  }
  assert.equal(got, n, "bytes sent to the guest");
  return segs;
}

function concat(segs: TcpSeg[]): Uint8Array {
  const out = new Uint8Array(segs.reduce((a, s) => a + s.payload.length, 0));
  let off = 0;
  for (const s of segs) {
    out.set(s.payload, off);
    off += s.payload.length;
  }
  return out;
}

/* ---------------------------------------------------------------- set-up */

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTapHandler() answers a SYN to a host server with a SYN-ACK once connected (${famName(v6)})`,
    async (h) => {
      const srv = new HostListener(v6);
      h.owned.push(srv);
      const syn: Seg = { ...SYN_TEMPL, ...fam(v6), dport: srv.port, seq: 1000 };
      inject(h, syn);
      assert.equal(h.tap.recv(), null, "SYN-ACK before the host connect completed");
      expectTcp(
        await nextFrame(h, "SYN-ACK"),
        flags(SYN | ACK),
        ackNum(1001),
        srcAddr(gw(v6), srv.port),
        dstAddr(guest(v6), syn.sport),
        optMss(h.c.mtu - (v6 ? 60 : 40)),
        optWscale(8),
        windowOpen(),
        payloadLen(0),
      );
      assert.ok(srv.accept() !== null, "the server has the connection");
    },
  );
}

tcpTest("tcpTapHandler() leaves out window scaling when the guest's SYN has none", async (h) => {
  const srv = new HostListener(false);
  h.owned.push(srv);
  inject(h, { ...SYN_TEMPL, dport: srv.port, opts: { mss: 1460 } });
  expectTcp(await nextFrame(h, "SYN-ACK"), flags(SYN | ACK), optWscale(-1), optMss(h.c.mtu - 40));
});

tcpTest("tcpTapHandler() holds the SYN-ACK while the host connect is pending", async (h) => {
  /* backlog 0 and one queued connection: the host drops further SYNs, and
   * its client retries after about one second */
  const srv = new HostListener(false, 0);
  h.owned.push(srv);
  const filler = HostConn.connect(false, srv.port);
  h.owned.push(filler);
  await pumpFor(h, 20);
  inject(h, { ...SYN_TEMPL, dport: srv.port });
  await expectNoFrame(h, "accept queue full", 300);
  assert.ok(srv.accept() !== null, "the queued connection");
  expectTcp(await nextFrame(h, "SYN-ACK after the retried connect"), flags(SYN | ACK));
});

tcpTest(
  "half-open cap: the oldest pending connects are reset, a live one still opens",
  async (h) => {
    tcpSetHalfOpenMax(4);
    /* a destination that never answers: backlog 0, its one queue slot taken */
    const srv = new HostListener(false, 0);
    h.owned.push(srv);
    const filler = HostConn.connect(false, srv.port);
    h.owned.push(filler);
    await pumpFor(h, 20);
    for (let i = 0; i < 6; i++) {
      inject(h, { ...SYN_TEMPL, sport: 41000 + i, dport: srv.port, seq: 7000 + i });
    }
    /* SYNs 5 and 6 make room: the first two are given up, acking their SYNs */
    for (let i = 0; i < 2; i++) {
      expectTcp(
        await nextFrame(h, `RST for pending connect ${i}`),
        flags(RST | ACK),
        ackNum(7001 + i),
        dstAddr(GUEST4, 41000 + i),
      );
    }
    assert.equal(h.stats.halfOpenDropped, 2);
    assert.equal(tcpOpenCount(), 4, "pending connects left");
    /* a live destination: one more drop, then its SYN-ACK */
    const live = new HostListener(false);
    h.owned.push(live);
    inject(h, { ...SYN_TEMPL, sport: 42000, dport: live.port, seq: 9000 });
    expectTcp(await nextFrame(h, "third RST"), flags(RST | ACK), dstAddr(GUEST4, 41002));
    expectTcp(await nextFrame(h, "SYN-ACK of the live one"), flags(SYN | ACK), ackNum(9001));
    assert.equal(h.stats.halfOpenDropped, 3);
    await pumpFor(h, 10);
    assert.equal(h.c.flows.flowCheck(), null, "flow table consistent");
    assert.equal(h.c.flows.groupCount[0], 4, "TCP flows counted");
  },
);

tcpTest("a SYN beyond the descriptor budget is reset, nothing else is touched", async (h) => {
  const saved = fdBudget.max;
  try {
    fdBudget.max = 0;
    const live = new HostListener(false);
    h.owned.push(live);
    inject(h, { ...SYN_TEMPL, dport: live.port, seq: 100 });
    expectTcp(await nextFrame(h, "RST"), flags(RST | ACK), ackNum(101));
    assert.equal(h.stats.noFd, 1);
    assert.equal(tcpOpenCount(), 0);
    fdBudget.max = saved;
    inject(h, { ...SYN_TEMPL, sport: 40001, dport: live.port, seq: 200 });
    expectTcp(await nextFrame(h, "SYN-ACK"), flags(SYN | ACK), ackNum(201));
  } finally {
    fdBudget.max = saved;
  }
});

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTapHandler() resets a SYN to a refused destination at once, acking it (${famName(v6)})`,
    async (h) => {
      const port = closedPort(v6);
      inject(h, { ...SYN_TEMPL, ...fam(v6), dport: port, seq: 5000 });
      expectTcp(
        await nextFrame(h, "RST", QUIET_MS * 5),
        flags(RST | ACK),
        ackNum(5001),
        srcAddr(gw(v6), port),
        dstAddr(guest(v6), SYN_TEMPL.sport),
      );
      await pumpFor(h, 10);
      assert.equal(tcpOpenCount(), 0, "connections left");
    },
  );
}

/* ------------------------------------------------------------ guest to host */

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTapHandler() writes guest data to the server byte-exact (${famName(v6)})`,
    async (h) => {
      const k = await connEstablished(h, { v6 });
      const data = random(3000);
      for (let off = 0; off < data.length; off += 1000) {
        inject(h, {
          ...k.g,
          seq: k.g.seq + off,
          flags: ACK | PSH,
          payload: data.slice(off, off + 1000),
        });
      }
      await pumpUntil(h, "data at the server", () => k.peer.poll().receivedLen() >= data.length);
      assert.deepEqual(k.peer.received(), data);
    },
  );
}

tcpTest("tcpTapHandler() acknowledges a batch of guest segments with one ACK", async (h) => {
  const k = await connEstablished(h);
  for (let i = 0; i < 3; i++) {
    inject(h, { ...k.g, seq: k.g.seq + i * 100, payload: random(100) });
  }
  assert.equal(h.tap.recv(), null, "ACK before the end of the batch");
  h.loop.runOnce(0);
  const frames = h.tap.drain();
  assert.equal(frames.length, 1, "frames after the batch");
  expectTcp(frames[0]!, flags(ACK), ackNum(k.g.seq + 300), seqNum(k.isn + 1), payloadLen(0));
});

/**
 * Has the tap reader read the given segments from the guest as one batch.
 * @returns the TCP module's writes to host sockets during the batch
 */
function batchRead(h: Harness, segs: Seg[]): number {
  const tap = tapNew(h.tap.tapFd, h.tap.hdrLen);
  for (const s of segs) h.tap.send(segment(s));
  const writes = h.stats.dataWrites;
  assert.equal(tapHandler(h.c, tap, performance.now()), true, "the tap reader goes on");
  return h.stats.dataWrites - writes;
}

tcpTest(
  "tapHandler() writes one connection's segments of a batch with one sendmsg()",
  async (h) => {
    const k = await connEstablished(h);
    const data = random(3000);
    const segs = [0, 1, 2].map((i) => ({
      ...k.g,
      seq: k.g.seq + i * 1000,
      payload: data.slice(i * 1000, (i + 1) * 1000),
    }));
    assert.equal(batchRead(h, segs), 1, "writes to the socket");
    h.loop.runOnce(0);
    const frames = h.tap.drain();
    assert.equal(frames.length, 1, "frames after the batch");
    expectTcp(frames[0]!, flags(ACK), ackNum(k.g.seq + 3000));
    await pumpUntil(h, "all data at the server", () => k.peer.poll().receivedLen() >= 3000);
    assert.deepEqual(k.peer.received(), data);
  },
);

tcpTest("tapHandler() keeps each connection's bytes in order across a mixed batch", async (h) => {
  const a = await connEstablished(h);
  const b = await connEstablished(h);
  const da = random(300);
  const db = random(200);
  const seg = (k: Conn, d: Uint8Array<ArrayBuffer>, i: number): Seg => ({
    ...k.g,
    seq: k.g.seq + i * 100,
    payload: d.slice(i * 100, (i + 1) * 100),
  });
  /* a0 a1 | b0 | a2 b1: a's data is written when b's comes, and the other way round */
  const writes = batchRead(h, [
    seg(a, da, 0),
    seg(a, da, 1),
    seg(b, db, 0),
    seg(a, da, 2),
    seg(b, db, 1),
  ]);
  assert.equal(writes, 4, "writes to the sockets");
  h.loop.runOnce(0);
  const acks = h.tap.drain().map((f) => expectTcp(f, flags(ACK)));
  assert.deepEqual(
    acks.map((s) => s.ack).sort(),
    [a.g.seq + 300, b.g.seq + 200].map((n) => n >>> 0).sort(),
    "one ACK per connection, for all its data",
  );
  await pumpUntil(h, "a's data at its server", () => a.peer.poll().receivedLen() >= 300);
  await pumpUntil(h, "b's data at its server", () => b.peer.poll().receivedLen() >= 200);
  assert.deepEqual(a.peer.received(), da);
  assert.deepEqual(b.peer.received(), db);
});

tcpTest("tapHandler() acknowledges only what the socket took of a held batch", async (h) => {
  const k = await connEstablished(h);
  k.peer.setRcvBuf(65536);
  /* batches of 40 segments of 8000 bytes, the server not reading, until a write falls short
   * (the socket's send buffer grows to net.ipv4.tcp_wmem's largest, 4 MiB by default) */
  const SEG = 8000;
  const BATCHES = 100;
  const data = new Uint8Array(BATCHES * 40 * SEG);
  for (let o = 0; o < data.length; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
  let next = 0;
  for (let b = 0; b < BATCHES && h.stats.partialWrites === 0; b++) {
    const segs: Seg[] = [];
    for (let i = 0; i < 40; i++, next += SEG) {
      segs.push({ ...k.g, seq: k.g.seq + next, payload: data.slice(next, next + SEG) });
    }
    batchRead(h, segs);
    h.loop.runOnce(0);
  }
  assert.ok(h.stats.partialWrites > 0, "a held batch was written in part");
  const acks = h.tap.drain().map((f) => expectTcp(f, flags(ACK)).ack);
  const acked = (acks.at(-1)! - k.g.seq) >>> 0;
  assert.ok(acked > 0 && acked < next, `acknowledged ${acked} of ${next}`);
  /* the server gets exactly the acknowledged bytes, in order */
  await pumpUntil(h, "the acknowledged bytes at the server", () => {
    k.peer.poll();
    return k.peer.receivedLen() >= acked;
  });
  await pumpFor(h, QUIET_MS);
  assert.equal(k.peer.poll().receivedLen(), acked, "bytes at the server");
  assert.deepEqual(k.peer.received(), data.subarray(0, acked));
});

tcpTest("tapHandler() writes the data held before a FIN in the same batch", async (h) => {
  const k = await connEstablished(h);
  const data = random(200);
  const writes = batchRead(h, [
    { ...k.g, payload: data.slice(0, 100) },
    { ...k.g, seq: k.g.seq + 100, flags: FIN | ACK, payload: data.slice(100) },
  ]);
  assert.equal(writes, 2, "the held segment, then the one with the FIN");
  h.loop.runOnce(0);
  expectTcp(h.tap.drain().at(-1) ?? null, flags(ACK), ackNum(k.g.seq + 201));
  await pumpUntil(h, "end of file at the server", () => k.peer.poll().eof);
  assert.deepEqual(k.peer.received(), data);
});

tcpTest(
  "tcpTapHandler() drops a segment beyond the expected sequence with a duplicate ACK",
  async (h) => {
    const k = await connEstablished(h);
    inject(h, { ...k.g, seq: k.g.seq + 100, payload: random(100) });
    expectTcp(h.tap.recv(), flags(ACK), ackNum(k.g.seq));
    await pumpFor(h, QUIET_MS);
    assert.equal(k.peer.poll().receivedLen(), 0, "bytes written to the server");
    assert.equal(h.stats.dropped, 1, "segments dropped");
  },
);

tcpTest(
  "tcpTapHandler() acknowledges a retransmitted segment without writing it again",
  async (h) => {
    const k = await connEstablished(h);
    const data = random(100);
    inject(h, { ...k.g, payload: data });
    expectTcp(await nextFrame(h, "ACK"), flags(ACK), ackNum(k.g.seq + 100));
    inject(h, { ...k.g, payload: data });
    expectTcp(await nextFrame(h, "ACK of the old segment"), flags(ACK), ackNum(k.g.seq + 100));
    await pumpFor(h, QUIET_MS);
    assert.deepEqual(k.peer.poll().received(), data);
  },
);

tcpTest(
  "tcpTapHandler() writes only the new part of a segment overlapping acknowledged data",
  async (h) => {
    const k = await connEstablished(h);
    const data = random(300);
    inject(h, { ...k.g, payload: data.slice(0, 100) });
    h.loop.runOnce(0);
    inject(h, { ...k.g, payload: data });
    expectTcp(h.tap.drain()[0] ?? null, flags(ACK), ackNum(k.g.seq + 100));
    expectTcp(await nextFrame(h, "ACK of the overlap"), flags(ACK), ackNum(k.g.seq + 300));
    await pumpUntil(h, "data at the server", () => k.peer.poll().receivedLen() >= 300);
    await pumpFor(h, QUIET_MS);
    assert.deepEqual(k.peer.poll().received(), data);
  },
);

/* ------------------------------------------------------------ host to guest */

for (const v6 of [false, true]) {
  tcpTest(
    `tcpSockHandler() sends server data in segments of at most the guest's MSS (${famName(v6)})`,
    async (h) => {
      const mss = v6 ? 1300 : 600;
      const k = await connEstablished(h, { v6, opts: { mss } });
      const data = random(4 * mss);
      assert.equal(k.peer.send(data), data.length);
      const segs = await recvData(
        h,
        k,
        0,
        data.length,
        payloadAtMost(mss),
        srcAddr(gw(v6), k.srv.port),
        dstAddr(guest(v6), k.g.sport),
        ackNum(k.g.seq),
      );
      assert.deepEqual(concat(segs), data);
    },
  );
}

tcpTest("tcpSockHandler() stops at the guest's window and resumes when it opens", async (h) => {
  const k = await connEstablished(h, { opts: { mss: 600 }, win: 1200 });
  const data = random(3000);
  assert.equal(k.peer.send(data), data.length);
  const first = await recvData(h, k, 0, 1200, payloadAtMost(600));
  await expectNoFrame(h, "window full");
  /* all acknowledged, but no room */
  inject(h, { ...k.g, ack: k.isn + 1 + 1200, win: 0 });
  await expectNoFrame(h, "zero window");
  /* a window update */
  inject(h, { ...k.g, ack: k.isn + 1 + 1200, win: 1800 });
  const rest = await recvData(h, k, 1200, 1800, payloadAtMost(600));
  await expectNoFrame(h, "window full again");
  assert.deepEqual(concat([...first, ...rest]), data);
});

tcpTest("tcpSockHandler() scales the guest's window by its window scale option", async (h) => {
  /* window field 300, shift 2: 1200 bytes */
  const k = await connEstablished(h, { opts: { mss: 600, wscale: 2 }, win: 300 });
  const data = random(3000);
  assert.equal(k.peer.send(data), data.length);
  await recvData(h, k, 0, 1200, payloadAtMost(600));
  await expectNoFrame(h, "window full");
});

tcpTest(
  "tcpTapHandler() resends from the last acknowledged byte after two duplicate ACKs",
  async (h) => {
    const k = await connEstablished(h, { opts: { mss: 1000 } });
    const data = random(3000);
    assert.equal(k.peer.send(data), data.length);
    await recvData(h, k, 0, 3000);
    const ack = { ...k.g, ack: k.isn + 1 + 1000 };
    inject(h, ack);
    await expectNoFrame(h, "after a new ACK");
    inject(h, ack);
    inject(h, ack);
    /* at once, not at the retransmission timeout */
    expectTcp(
      await nextFrame(h, "data sent again", ACK_TIMEOUT_MS / 4),
      flagsNoPsh(ACK),
      seqNum(k.isn + 1 + 1000),
      payload(data.slice(1000, 2000)),
    );
    const rest = await recvData(h, k, 2000, 1000);
    assert.deepEqual(concat(rest), data.slice(2000));
    assert.equal(h.stats.retransmits, 1, "retransmissions");
  },
);

/* --------------------------------------------------------- close and reset */

tcpTest("tcpTapHandler() shuts down the socket on a FIN from the guest", async (h) => {
  const k = await connEstablished(h);
  inject(h, { ...k.g, flags: FIN | ACK });
  expectTcp(await nextFrame(h, "ACK of the FIN"), flags(ACK), ackNum(k.g.seq + 1));
  await pumpUntil(h, "end of file at the server", () => k.peer.poll().eof);
  assert.equal(k.peer.error, 0);
});

tcpTest("tcpSockHandler() sends a FIN to the guest after all of the server's data", async (h) => {
  const k = await connEstablished(h, { opts: { mss: 600 }, win: 1000 });
  const data = random(3000);
  assert.equal(k.peer.send(data), data.length);
  k.peer.close();
  let got = 0;
  while (got < data.length) {
    await recvData(h, k, got, 1000);
    got += 1000;
    inject(h, { ...k.g, ack: k.isn + 1 + got, win: 1000 });
  }
  expectTcp(await nextFrame(h, "FIN"), flags(FIN | ACK), seqNum(k.isn + 1 + 3000), payloadLen(0));
});

tcpTest(
  "tcpSockHandler() sends the FIN with the server's last data, not at the guest's ACK",
  async (h) => {
    const k = await connEstablished(h);
    const data = random(30);
    assert.equal(k.peer.send(data), data.length);
    k.peer.close();
    const [seg] = await recvData(h, k, 0, data.length);
    assert.deepEqual(seg!.payload, data);
    expectTcp(await nextFrame(h, "FIN"), flags(FIN | ACK), seqNum(k.isn + 1 + 30), payloadLen(0));
  },
  /* without SO_PEEK_OFF a peek cannot tell the end of file from data in
   * flight, and the FIN waits for the guest's ACK */
  !peekOffTcp(),
);

tcpTest("tcpTapHandler() closes the connection once both FINs are acknowledged", async (h) => {
  const k = await connEstablished(h);
  inject(h, { ...k.g, flags: FIN | ACK });
  expectTcp(await nextFrame(h, "ACK of the FIN"), flags(ACK), ackNum(k.g.seq + 1));
  k.peer.close();
  expectTcp(await nextFrame(h, "FIN"), flags(FIN | ACK), seqNum(k.isn + 1));
  assert.equal(tcpOpenCount(), 1);
  inject(h, { ...k.g, seq: k.g.seq + 1, ack: k.isn + 2 });
  await pumpFor(h, 10);
  assert.equal(tcpOpenCount(), 0, "connections left");
  assert.equal(h.stats.closed, 1);
});

tcpTest(
  "tcpTimer() sends a lost FIN again at the retransmission timeout, and gives up after TCP_FIN_RETRIES",
  async (h) => {
    const k = await connEstablished(h);
    inject(h, { ...k.g, flags: FIN | ACK });
    expectTcp(await nextFrame(h, "ACK of the FIN"), flags(ACK), ackNum(k.g.seq + 1));
    k.peer.close();
    expectTcp(await nextFrame(h, "FIN"), flags(FIN | ACK), seqNum(k.isn + 1));
    /* that FIN is lost: sent again at each timeout, not held for a minute */
    let t = simStart();
    tcpTimer(t);
    for (let r = 0; r < TCP_FIN_RETRIES; r++) {
      t += tcpRto(ACK_TIMEOUT_MS, r) + 10;
      tcpTimer(t);
      expectTcp(await nextFrame(h, `FIN again (${r + 1})`), flags(FIN | ACK), seqNum(k.isn + 1));
    }
    assert.equal(tcpOpenCount(), 1);
    t += tcpRto(ACK_TIMEOUT_MS, TCP_FIN_RETRIES) + 10;
    tcpTimer(t);
    expectTcp(h.tap.recv(), flags(RST | ACK));
    assert.equal(tcpOpenCount(), 0, "connections left");
  },
);

tcpTest("tcpTimer() closes a connection whose FIN, sent again, is then acknowledged", async (h) => {
  const k = await connEstablished(h);
  inject(h, { ...k.g, flags: FIN | ACK });
  expectTcp(await nextFrame(h, "ACK of the FIN"), flags(ACK), ackNum(k.g.seq + 1));
  k.peer.close();
  expectTcp(await nextFrame(h, "FIN"), flags(FIN | ACK), seqNum(k.isn + 1));
  let t = simStart();
  tcpTimer(t);
  t += ACK_TIMEOUT_MS + 10;
  tcpTimer(t);
  expectTcp(await nextFrame(h, "FIN again"), flags(FIN | ACK), seqNum(k.isn + 1));
  inject(h, { ...k.g, seq: k.g.seq + 1, ack: k.isn + 2 });
  await pumpFor(h, 10);
  assert.equal(tcpOpenCount(), 0, "connections left");
  assert.equal(h.stats.rstToTap, 0, "resets");
});

tcpTest("the connection walk slows to once a second while no connection is open", async (h) => {
  assert.equal(tcpTimerPeriodMs(), TCP_TIMER_INTERVAL_MS, "at start");
  let t = simStart();
  tcpTimer(t);
  assert.equal(tcpTimerPeriodMs(), TCP_TIMER_QUIET_MS, "no connection");
  const k = await connEstablished(h);
  assert.equal(tcpTimerPeriodMs(), TCP_TIMER_INTERVAL_MS, "a connection from the guest");
  t += TCP_TIMER_INTERVAL_MS;
  tcpTimer(t);
  assert.equal(tcpTimerPeriodMs(), TCP_TIMER_INTERVAL_MS, "still open");
  inject(h, { ...k.g, flags: RST });
  await pumpUntil(h, "error at the server", () => k.peer.poll().error !== 0 || k.peer.eof);
  assert.equal(tcpOpenCount(), 0, "connections left");
  t += TCP_TIMER_INTERVAL_MS;
  tcpTimer(t);
  assert.equal(tcpTimerPeriodMs(), TCP_TIMER_QUIET_MS, "closed");
});

tcpTest("tcpTapHandler() resets the server's connection on an RST from the guest", async (h) => {
  const k = await connEstablished(h);
  inject(h, { ...k.g, flags: RST });
  await pumpUntil(h, "error at the server", () => k.peer.poll().error !== 0 || k.peer.eof);
  assert.equal(k.peer.error, ERRNO.ECONNRESET);
  assert.equal(tcpOpenCount(), 0, "connections left");
});

tcpTest("tcpSockHandler() resets the guest's connection when the server resets", async (h) => {
  const k = await connEstablished(h);
  k.peer.reset();
  expectTcp(await nextFrame(h, "RST"), flags(RST | ACK), seqNum(k.isn + 1), ackNum(k.g.seq));
  assert.equal(tcpOpenCount(), 0, "connections left");
});

/* ---------------------------------------------------- no connection, garbage */

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTapHandler() answers an ACK for no connection with an RST (${famName(v6)})`,
    async (h) => {
      inject(h, { ...SEND_TEMPL, ...fam(v6), sport: 40001, dport: 9, seq: 5000, ack: 7777 });
      expectTcp(
        h.tap.recv(),
        flags(RST),
        seqNum(7777),
        srcAddr(gw(v6), 9),
        dstAddr(guest(v6), 40001),
      );
      await expectNoFrame(h, "after the RST");
      assert.equal(tcpOpenCount(), 0);
    },
  );
}

tcpTest(
  "tcpTapHandler() answers data without ACK for no connection with an RST acking it",
  (h) => {
    inject(h, { ...SEND_TEMPL, dport: 9, seq: 5000, flags: PSH, payload: random(10) });
    expectTcp(h.tap.recv(), flags(RST | ACK), seqNum(0), ackNum(5010));
  },
);

tcpTest("tcpTapHandler() ignores an RST for no connection", async (h) => {
  inject(h, { ...SEND_TEMPL, dport: 9, flags: RST });
  await expectNoFrame(h, "after the RST");
});

const MALFORMED: [string, Partial<Seg>][] = [
  ["a data offset below 5", { doff: 4 }],
  ["a data offset beyond the segment", { doff: 15, payload: random(8) }],
  ["a truncated TCP header", { l4Len: 12 }],
  ["no TCP header at all", { l4Len: 0 }],
  ["a SYN with an option of length 0", { flags: SYN, opts: { raw: [2, 0, 0, 0] } }],
  ["a SYN with an option past the header", { flags: SYN, opts: { mss: 1460, raw: [3, 7, 0] } }],
];

for (const [what, o] of MALFORMED) {
  tcpTest(`tcpTapHandler() counts ${what} as malformed and drops it`, async (h) => {
    const srv = new HostListener(false);
    h.owned.push(srv);
    assert.doesNotThrow(() => inject(h, { ...SEND_TEMPL, dport: srv.port, ...o }));
    assert.equal(h.c.stats.malformed, 1, "malformed count");
    await expectNoFrame(h, "malformed segment");
    assert.equal(tcpOpenCount(), 0, "connections");
    assert.equal(srv.accept(), null, "connection at the server");
  });
}

/* ------------------------------------------------------------ inbound (-t) */

/** A host listener with -t forwarding of its port to `target` on the guest. */
function inboundSetup(h: Harness, v6: boolean, target: number): number {
  const port = closedPort(v6);
  const spec = fwdSpecNew();
  spec.mode = "spec";
  spec.rules.push({
    addr: v6 ? "::1" : "127.0.0.1",
    first: port,
    last: port,
    to: target,
    weak: false,
    scan: false,
    source: `-t ${port}:${target}`,
  });
  const l = listenRules(h.loop, spec, v6);
  h.owned.push({ close: () => l.closeAll() });
  assert.equal(l.count, 1, "listening sockets");
  tcpSetListeners(l);
  return port;
}

for (const v6 of [false, true]) {
  tcpTest(
    `tcpListenHandler() turns a host connection into a SYN to the guest, completed by its SYN-ACK (${
      famName(v6)
    })`,
    async (h) => {
      const target = 8080;
      const port = inboundSetup(h, v6, target);
      const client = HostConn.connect(v6, port);
      h.owned.push(client);
      const syn = expectTcp(
        await nextFrame(h, "SYN to the guest"),
        flags(SYN),
        srcAddr(gw(v6), client.port()),
        dstAddr(guest(v6), target),
        optMss(h.c.mtu - (v6 ? 60 : 40)),
        optWscale(8),
        windowOpen(),
      );
      const g: Seg = {
        ...SYN_TEMPL,
        ...fam(v6),
        sport: target,
        dport: syn.sport,
        seq: 7000,
        ack: syn.seq + 1,
        flags: SYN | ACK,
      };
      inject(h, g);
      expectTcp(
        await nextFrame(h, "ACK of the SYN-ACK"),
        flags(ACK),
        seqNum(syn.seq + 1),
        ackNum(7001),
      );
      const data = random(200);
      assert.equal(client.send(data), data.length);
      expectTcp(
        await nextFrame(h, "client data"),
        flagsNoPsh(ACK),
        seqNum(syn.seq + 1),
        payload(data),
      );
    },
  );
}

/* ------------------------------------------- lost handshake frames (issue 9) */

/** Size of the frames that fill the fake tap's queue. */
const FILLER = 60000;

/**
 * Fills the fake tap's queue from orzo's end, so that orzo's next writes
 * fail with EAGAIN, as a full tap queue would.
 * @returns the number of filler frames queued
 */
function tapFill(h: Harness): number {
  const junk = new Uint8Array(FILLER);
  let n = 0;
  for (; n < 1000; n++) {
    if (libc.symbols.write(h.tap.tapFd, junk, junk.length) < 0) break;
  }
  assert.ok(n > 0 && n < 1000, `filler frames: ${n}`);
  return n;
}

/**
 * Empties the fake tap's queue.
 * @returns the frames that are not filler, in order
 */
function tapUnfill(h: Harness): Uint8Array[] {
  return h.tap.drain().filter((f) => f.length !== FILLER);
}

/**
 * Where a simulated clock starts (tcpTimer() is then called with later
 * times): the loop's own clock now, so that whatever orzo stamped so far
 * is not later.
 */
function simStart(): number {
  return performance.now();
}

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTimer() sends a SYN-ACK again whose tap write failed (${famName(v6)})`,
    async (h) => {
      const srv = new HostListener(v6);
      h.owned.push(srv);
      tapFill(h);
      const syn: Seg = { ...SYN_TEMPL, ...fam(v6), dport: srv.port, seq: 3000 };
      inject(h, syn);
      const peer = await pumpUntil(h, "the host connect", () => srv.accept());
      h.owned.push(peer);
      await pumpFor(h, 20);
      assert.deepEqual(tapUnfill(h), [], "frames written while the tap was full");
      const t0 = simStart();
      tcpTimer(t0);
      assert.equal(h.tap.recv(), null, "SYN-ACK sent again before its timeout");
      tcpTimer(t0 + SYN_RTO_MS + 10);
      const sa = expectTcp(
        h.tap.recv(),
        flags(SYN | ACK),
        ackNum(3001),
        optMss(h.c.mtu - (v6 ? 60 : 40)),
      );
      inject(h, { ...SEND_TEMPL, ...fam(v6), dport: srv.port, seq: 3001, ack: sa.seq + 1 });
      const data = random(100);
      assert.equal(peer.send(data), data.length);
      expectTcp(await nextFrame(h, "data"), flagsNoPsh(ACK), seqNum(sa.seq + 1), payload(data));
    },
  );
}

tcpTest("tcpTapHandler() answers the guest's SYN sent again with the same SYN-ACK", async (h) => {
  const srv = new HostListener(false);
  h.owned.push(srv);
  const syn: Seg = { ...SYN_TEMPL, dport: srv.port, seq: 9000 };
  inject(h, syn);
  const first = expectTcp(await nextFrame(h, "SYN-ACK"), flags(SYN | ACK), ackNum(9001));
  /* the SYN-ACK was lost: the guest sends its SYN again */
  inject(h, syn);
  expectTcp(h.tap.recv(), flags(SYN | ACK), seqNum(first.seq), ackNum(9001));
  /* a SYN with another sequence number is not the same connection attempt */
  inject(h, { ...syn, seq: 12345 });
  await expectNoFrame(h, "a SYN for another connection on the same ports");
  inject(h, { ...SEND_TEMPL, dport: srv.port, seq: 9001, ack: first.seq + 1 });
  await pumpUntil(h, "the server accepts", () => srv.accept());
  assert.equal(tcpOpenCount(), 1, "connections");
});

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTimer() sends a SYN to the guest again whose tap write failed, then gives up (${
      famName(v6)
    })`,
    async (h) => {
      const port = inboundSetup(h, v6, 8080);
      tapFill(h);
      const client = HostConn.connect(v6, port);
      h.owned.push(client);
      await pumpUntil(h, "the connection accepted", () => tcpOpenCount() === 1);
      await pumpFor(h, 20);
      assert.deepEqual(tapUnfill(h), [], "frames written while the tap was full");
      let t = simStart();
      tcpTimer(t);
      assert.equal(h.tap.recv(), null, "SYN sent again before its timeout");
      let synSeq = -1;
      for (let i = 0; i < TCP_SYN_RETRIES; i++) {
        t += tcpRto(SYN_RTO_MS, i) + 10;
        tcpTimer(t);
        const syn = expectTcp(h.tap.recv(), flags(SYN), dstAddr(guest(v6), 8080));
        if (synSeq < 0) synSeq = syn.seq;
        assert.equal(syn.seq, synSeq, "the same initial sequence number");
      }
      t += tcpRto(SYN_RTO_MS, TCP_SYN_RETRIES) + 10;
      tcpTimer(t);
      expectTcp(h.tap.recv(), flags(RST | ACK));
      await pumpUntil(h, "the client reset", () => client.poll().error !== 0 || client.eof);
      assert.equal(client.error, ERRNO.ECONNRESET);
      assert.equal(tcpOpenCount(), 0, "connections");
    },
  );
}

tcpTest("tcpTapHandler() acknowledges the guest's SYN-ACK sent again", async (h) => {
  const port = inboundSetup(h, false, 8080);
  const client = HostConn.connect(false, port);
  h.owned.push(client);
  const syn = expectTcp(await nextFrame(h, "SYN to the guest"), flags(SYN));
  const sa: Seg = { ...SYN_TEMPL, sport: 8080, dport: syn.sport, seq: 7000, ack: syn.seq + 1 };
  inject(h, { ...sa, flags: SYN | ACK });
  expectTcp(await nextFrame(h, "ACK"), flags(ACK), ackNum(7001));
  /* our ACK was lost */
  inject(h, { ...sa, flags: SYN | ACK });
  expectTcp(await nextFrame(h, "ACK again"), flags(ACK), seqNum(syn.seq + 1), ackNum(7001));
});

tcpTest(
  "tcpTapHandler() resets a SYN-ACK that does not acknowledge our SYN, and the connection goes on",
  async (h) => {
    const port = inboundSetup(h, false, 8080);
    const client = HostConn.connect(false, port);
    h.owned.push(client);
    const syn = expectTcp(await nextFrame(h, "SYN to the guest"), flags(SYN));
    const sa: Seg = { ...SYN_TEMPL, sport: 8080, dport: syn.sport, seq: 7000, ack: syn.seq + 1 };
    const bad = (syn.seq + 1000) >>> 0;
    inject(h, { ...sa, flags: SYN | ACK, ack: bad });
    /* RFC 9293 3.10.7.3: <SEQ=SEG.ACK><CTL=RST> */
    expectTcp(await nextFrame(h, "RST"), flags(RST), seqNum(bad));
    assert.equal(tcpOpenCount(), 1, "connections");
    inject(h, { ...sa, flags: SYN | ACK });
    expectTcp(await nextFrame(h, "ACK"), flags(ACK), ackNum(7001));
  },
);

tcpTest(
  "tcpTapHandler() resets an ACK that does not acknowledge our SYN-ACK, and the connection goes on",
  async (h) => {
    const srv = new HostListener(false);
    h.owned.push(srv);
    const syn: Seg = { ...SYN_TEMPL, dport: srv.port, seq: 9000 };
    inject(h, syn);
    const sa = expectTcp(await nextFrame(h, "SYN-ACK"), flags(SYN | ACK), ackNum(9001));
    const bad = (sa.seq + 5000) >>> 0;
    inject(h, { ...SEND_TEMPL, dport: srv.port, seq: 9001, ack: bad });
    /* RFC 9293 3.10.7.4: <SEQ=SEG.ACK><CTL=RST> */
    expectTcp(await nextFrame(h, "RST"), flags(RST), seqNum(bad));
    inject(h, { ...SEND_TEMPL, dport: srv.port, seq: 9001, ack: sa.seq + 1 });
    await pumpUntil(h, "the server accepts", () => srv.accept());
    assert.equal(tcpOpenCount(), 1, "connections");
  },
);

/* ------------------------------------------------------ backoff (issue 9) */

tcpTest("tcpRto() doubles from its base up to RTO_MAX_MS", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 40].map((r) => tcpRto(ACK_TIMEOUT_MS, r)),
    [2000, 4000, 8000, 16000, 32000, RTO_MAX_MS, RTO_MAX_MS, RTO_MAX_MS],
  );
});

tcpTest("tcpAckRetries() tells a lone FIN in flight across the sequence wrap", () => {
  for (const ack of [0xffffffff, 0x7fffffff, 0, 12345]) {
    const fin = (ack + 1) >>> 0;
    assert.equal(tcpAckRetries(TAP_FIN_SENT, fin, ack), TCP_FIN_RETRIES, `ack ${ack}`);
    assert.equal(tcpAckRetries(TAP_FIN_SENT, (ack + 2) >>> 0, ack), TCP_MAX_RETRANS);
    assert.equal(tcpAckRetries(TAP_FIN_SENT | TAP_FIN_ACKED, fin, ack), TCP_MAX_RETRANS);
    assert.equal(tcpAckRetries(0, fin, ack), TCP_MAX_RETRANS);
  }
});

tcpTest(
  "tcpTimer() backs off exponentially: a guest silent for a minute keeps its connection",
  async (h) => {
    const k = await connEstablished(h, { opts: { mss: 1000 }, win: 4000 });
    const data = random(8000);
    assert.equal(k.peer.send(data), data.length);
    await recvData(h, k, 0, 4000);
    let t = simStart();
    tcpTimer(t);
    /* the guest acknowledges nothing: resends at 2, 6, 14, 30, 62 s */
    for (let r = 0; r < 5; r++) {
      const rto = tcpRto(ACK_TIMEOUT_MS, r);
      tcpTimer(t + rto - 50);
      assert.equal(h.tap.recv(), null, `retransmission ${r + 1} before ${rto} ms`);
      t += rto + 10;
      tcpTimer(t);
      const segs = await recvData(h, k, 0, 4000);
      assert.deepEqual(concat(segs), data.slice(0, 4000), `retransmission ${r + 1}`);
    }
    assert.equal(h.stats.retransmits, 5);
    /* the guest is back */
    inject(h, { ...k.g, ack: k.isn + 1 + 4000 });
    const rest = await recvData(h, k, 4000, 4000);
    assert.deepEqual(concat(rest), data.slice(4000));
    assert.equal(tcpOpenCount(), 1, "connections");
    assert.equal(h.stats.rstToTap, 0, "resets");
  },
);

tcpTest("tcpTimer() resets a connection after TCP_MAX_RETRANS timeouts", async (h) => {
  const k = await connEstablished(h, { opts: { mss: 1000 }, win: 1000 });
  assert.equal(k.peer.send(random(1000)), 1000);
  await recvData(h, k, 0, 1000);
  let t = simStart();
  tcpTimer(t);
  for (let r = 0; r < TCP_MAX_RETRANS; r++) {
    t += tcpRto(ACK_TIMEOUT_MS, r) + 10;
    tcpTimer(t);
    await recvData(h, k, 0, 1000);
  }
  t += tcpRto(ACK_TIMEOUT_MS, TCP_MAX_RETRANS) + 10;
  tcpTimer(t);
  expectTcp(h.tap.recv(), flags(RST | ACK));
  await pumpUntil(h, "the server's reset", () => k.peer.poll().error !== 0 || k.peer.eof);
  assert.equal(k.peer.error, ERRNO.ECONNRESET);
  assert.equal(tcpOpenCount(), 0, "connections");
});

/* ------------------------------------------------- hostile input (issue 9) */

for (const v6 of [false, true]) {
  tcpTest(
    `tcpTapHandler() sends segments of at least ${
      v6 ? MSS_MIN6 : MSS_MIN4
    } bytes whatever MSS the guest announces (${famName(v6)})`,
    async (h) => {
      const min = v6 ? MSS_MIN6 : MSS_MIN4;
      const k = await connEstablished(h, { v6, opts: { mss: 1 } });
      const data = random(3 * min);
      assert.equal(k.peer.send(data), data.length);
      const segs = await recvData(h, k, 0, data.length, payloadAtMost(min));
      assert.equal(segs.length, 3, "segments");
      assert.deepEqual(concat(segs), data);
    },
  );
}

tcpTest("ip6Input() drops a first fragment and counts it", async (h) => {
  const srv = new HostListener(true);
  h.owned.push(srv);
  const f = segment({ ...SYN_TEMPL, ...V6, dport: srv.port });
  /* a fragment header (offset 0, more fragments) between IPv6 and TCP */
  const g = new Uint8Array(f.length + 8);
  g.set(f.subarray(0, 54), 0);
  g.set([6, 0, 0, 1, 0, 0, 0, 42], 54);
  g.set(f.subarray(54), 62);
  const dv = new DataView(g.buffer);
  dv.setUint16(14 + 4, dv.getUint16(14 + 4) + 8);
  g[14 + 6] = 44;
  ip6Input(h.c, g, dv, 14, g.length - 14, performance.now());
  assert.equal(h.c.stats.unhandled, 1, "frames unhandled");
  await expectNoFrame(h, "a fragment");
  assert.equal(srv.accept(), null, "connection at the server");
  assert.equal(tcpOpenCount(), 0, "connections");
});
