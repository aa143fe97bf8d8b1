/**
 * fuzz_main.ts - the tap fuzzer: feeds orzo's tap reader (tap/tap.ts
 * tapHandler(), through the event loop's dispatch boundary) random and
 * mutated frames in-process, with the TCP, UDP and ICMP modules running,
 * and checks that nothing escapes: the loop's handler failure counter stays
 * 0, the flow table and its hash stay consistent (FlowTable.flowCheck())
 * during the run and are empty once every flow is closed, and no descriptor
 * is left open.
 *
 * It must run in a network namespace of its own with only a loopback
 * interface (launch.ts starts it under `unshare -rn`): fuzzed frames make
 * orzo open sockets towards any address, and there they all fail at once,
 * except those to the gateway, which reach servers this process runs on the
 * namespace's loopback (a TCP sink that also sends, a UDP echo), so that
 * connections get established and data, windows and sequence numbers are
 * exercised. It refuses to run where another interface exists.
 *
 * The tap is a SOCK_SEQPACKET socketpair (tests/helpers/fake_tap.ts): frames
 * are written to the peer end in batches of TAP_BATCH and read by
 * tapHandler() on one loop wakeup, as from a real tap; orzo's replies are
 * read back, and SYN-ACKs from them give the sequence numbers of live
 * connections, which later frames use (in window, or off by a little or a
 * lot).
 *
 * Environment: FUZZ_FRAMES (default 1,000,000), FUZZ_SEED (default random;
 * always printed), FUZZ_CRASH_DIR (where a batch that made a handler fail is
 * written, as hex lines: copy it to tests/fuzz/fixtures/ once fixed).
 * Frames in tests/fuzz/fixtures/*.hex are replayed first, one per batch.
 * Exit status 0 when every check passed.
 *
 * @module
 */

import { ctxNew } from "../../ctx.ts";
import { EPOLL_TYPE_TAP_PASTA, EventLoop } from "../../loop.ts";
import { libc } from "../../ffi/libc.ts";
import { errno } from "../../ffi/errno.ts";
import { fdCount } from "../../ffi/proc.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLIN,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MSG_DONTWAIT,
  SO_LINGER,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../ffi/layout.ts";
import { tapHandler, tapNew } from "../../tap/tap.ts";
import { tapDeviceBackend } from "../../tap/backend.ts";
import { tcpCloseAll, tcpInit, tcpReset, tcpSetHalfOpenMax, tcpStatsLine } from "../../tcp/tcp.ts";
import { udpCloseAll, udpInit, udpStatsLine } from "../../udp/udp.ts";
import { icmpCloseAll, icmpInit, icmpStatsLine } from "../../icmp/icmp.ts";
import { configDefaults } from "../../conf/config.ts";
import { FakeTap } from "../helpers/fake_tap.ts";
import { mutate, Prng, randomFrame, SEED_KINDS, seedFrame, tcpFrame } from "./frames.ts";
import { flowTableHooks } from "../../protocols.ts";

/** Frames written per loop wakeup (tap/tap.ts reads at most 64 per event). */
const BATCH = 64;
/** Flow table size: small, so that quotas and a full table are reached. */
const FLOWS = 2048;
/** Half-open cap, small for the same reason. */
const HALF_OPEN = 48;
/** The gateway's live ports (loopback servers in this namespace). */
const PORTS = { tcp: 8080, udp: 5353 };
/** Most host-side connections kept by the TCP server. */
const HOST_CONNS = 200;
/** Flow table check every this many batches. */
const CHECK_EVERY = 16;

const env = (k: string) => Deno.env.get(k);
const frames = Number(env("FUZZ_FRAMES") ?? 1_000_000);
const seed = env("FUZZ_SEED") !== undefined
  ? Number(env("FUZZ_SEED")) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0]!;
const crashDir = env("FUZZ_CRASH_DIR") ?? "/tmp";
const fixturesDir = new URL("./fixtures/", import.meta.url).pathname;

function fail(msg: string): never {
  console.error(`fuzz: ${msg}`);
  Deno.exit(1);
}

/* Only a loopback interface here, or nothing runs */
for (const line of Deno.readTextFileSync("/proc/self/net/dev").split("\n").slice(2)) {
  const name = line.split(":")[0]!.trim();
  if (name !== "" && name !== "lo") {
    console.error(`fuzz: interface ${name} present: run me in a namespace of my own`);
    Deno.exit(2);
  }
}

console.log(`fuzz: seed ${seed}, ${frames} frames`);
const fdsBefore = fdCount();

/* ---------------------------------------------------------------- orzo */

const c = ctxNew(FLOWS);
c.ip4.enabled = true;
c.ip4.addr.set([10, 0, 2, 15]);
c.ip4.prefixLen = 24;
c.ip4.gateway.set([10, 0, 2, 2]);
c.ip4.mapHostLoopback.set(c.ip4.gateway);
c.dns4 = [new Uint8Array([10, 0, 2, 3])];
c.ip6.enabled = true;
c.ip6.addr.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15]);
c.ip6.prefixLen = 64;
c.ip6.gateway.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]);
c.ip6.mapHostLoopback.set(c.ip6.gateway);
const fake = new FakeTap(12);
const tap = tapNew(fake.tapFd, 12);
c.tapFd = fake.tapFd;
c.tap = tapDeviceBackend(fake.tapFd);
c.tapHdrLen = 12;
const loop = new EventLoop();
let tapGone = 0;
loop.epoll.add(fake.tapFd, EPOLLIN, EPOLL_TYPE_TAP_PASTA);
loop.on(EPOLL_TYPE_TAP_PASTA, (_fd, _d, _e, now) => {
  if (!tapHandler(c, tap, now)) tapGone++;
});
tcpInit(c, loop);
tcpSetHalfOpenMax(HALF_OPEN);
udpInit(c, loop, configDefaults("pasta"), { nsSync: null });
icmpInit(c, loop);
flowTableHooks(c, loop);

/* ------------------------------------------------- servers on the loopback */

const sa = new Uint8Array(28);
const saDv = new DataView(sa.buffer);
const one = new Uint8Array(new Int32Array([1]).buffer);
const linger = new Uint8Array(new Int32Array([1, 0]).buffer);

function sockaddr(v6: boolean, port: number): number {
  sa.fill(0);
  saDv.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  saDv.setUint16(2, port);
  if (v6) sa[23] = 1;
  else sa.set([127, 0, 0, 1], 4);
  return v6 ? 28 : 16;
}

function server(v6: boolean, type: number, port: number): number {
  const fd = libc.symbols.socket(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
  if (v6) libc.symbols.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
  const len = sockaddr(v6, port);
  if (libc.symbols.bind(fd, sa, len) < 0) fail(`bind port ${port}: errno ${errno()}`);
  if (type === SOCK_STREAM && libc.symbols.listen(fd, 512) < 0) fail(`listen: errno ${errno()}`);
  return fd;
}

const listeners = [server(false, SOCK_STREAM, PORTS.tcp), server(true, SOCK_STREAM, PORTS.tcp)];
const echoes = [server(false, SOCK_DGRAM, PORTS.udp), server(true, SOCK_DGRAM, PORTS.udp)];
const hostConns: number[] = [];
const scratch = new Uint8Array(65536);
const peerSa = new Uint8Array(28);
const peerLen = new Uint32Array(1);
const peerLenBytes = new Uint8Array(peerLen.buffer);

/** Accepts, reads, sometimes writes or resets: the other ends of the guest's connections. */
function serveHost(rnd: Prng): void {
  for (const l of listeners) {
    for (let i = 0; i < 64; i++) {
      const fd = libc.symbols.accept4(l, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      hostConns.push(fd);
    }
  }
  for (let i = 0; i < hostConns.length; i++) {
    const fd = hostConns[i]!;
    const n = libc.symbols.recv(fd, scratch, scratch.length, MSG_DONTWAIT);
    let close = n === 0 || (n < 0 && errno() !== 11) || rnd.oneIn(300);
    if (!close && rnd.oneIn(4)) {
      libc.symbols.send(fd, scratch, 1 + rnd.below(rnd.oneIn(10) ? 60000 : 3000), MSG_DONTWAIT);
    }
    if (hostConns.length > HOST_CONNS && i < hostConns.length - HOST_CONNS) close = true;
    if (close) {
      if (rnd.oneIn(2)) libc.symbols.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, 8);
      libc.symbols.close(fd);
      hostConns[i] = hostConns[hostConns.length - 1]!;
      hostConns.pop();
      i--;
    }
  }
  for (const u of echoes) {
    for (let i = 0; i < 64; i++) {
      peerLen[0] = 28;
      const n = libc.symbols.recvfrom(
        u,
        scratch,
        scratch.length,
        MSG_DONTWAIT,
        peerSa,
        peerLenBytes,
      );
      if (n < 0) break;
      if (!rnd.oneIn(3)) libc.symbols.sendto(u, scratch, n, MSG_DONTWAIT, peerSa, peerLen[0]!);
    }
  }
}

/* ------------------------------------------------- the guest's connections */

/** Live connections learnt from SYN-ACKs: guest port, family, next seq each way. */
const KNOWN = 256;
const knownPort = new Int32Array(KNOWN).fill(-1);
const knownV6 = new Uint8Array(KNOWN);
const knownSeq = new Uint32Array(KNOWN);
const knownAck = new Uint32Array(KNOWN);
let knownNext = 0;
let knownCount = 0;
const knownSlot4 = new Int32Array(65536).fill(-1);
const knownSlot6 = new Int32Array(65536).fill(-1);

/** Reads what orzo wrote to the guest; learns connections from SYN-ACKs, data and resets. */
function drainTap(): number {
  let n = 0;
  for (;;) {
    const f = fake.recv();
    if (f === null) return n;
    n++;
    const e = 12;
    if (f.length < e + 14 + 40) continue;
    const v6 = f[e + 12] === 0x86 && f[e + 13] === 0xdd;
    const ip = e + 14;
    const l4 = v6 ? ip + 40 : ip + (f[ip]! & 0x0f) * 4;
    if ((v6 ? f[ip + 6] : f[ip + 9]) !== 6 || l4 + 20 > f.length) continue;
    const dv = new DataView(f.buffer, f.byteOffset);
    const dport = dv.getUint16(l4 + 2);
    const seq = dv.getUint32(l4 + 4);
    const ack = dv.getUint32(l4 + 8);
    const flags = f[l4 + 13]!;
    const hl = (f[l4 + 12]! >> 4) * 4;
    const total = v6 ? 40 + dv.getUint16(ip + 4) : dv.getUint16(ip + 2);
    const payload = total - (l4 - ip) - hl;
    const slots = v6 ? knownSlot6 : knownSlot4;
    let k = slots[dport]!;
    if (flags & 0x04) {
      if (k >= 0) {
        knownPort[k] = -1;
        slots[dport] = -1;
      }
      continue;
    }
    if ((flags & 0x12) === 0x12) {
      if (k < 0) {
        k = knownNext;
        knownNext = (knownNext + 1) % KNOWN;
        const old = knownPort[k]!;
        if (old >= 0) (knownV6[k] ? knownSlot6 : knownSlot4)[old] = -1;
        else knownCount++;
        slots[dport] = k;
        knownPort[k] = dport;
        knownV6[k] = v6 ? 1 : 0;
      }
      knownSeq[k] = ack;
      knownAck[k] = (seq + 1) >>> 0;
    } else if (k >= 0 && payload > 0) {
      knownAck[k] = (seq + payload) >>> 0;
    } else if (k >= 0 && (flags & 0x01)) knownAck[k] = (seq + 1) >>> 0;
  }
}

const FLAG_CHOICES = [0x10, 0x10, 0x18, 0x18, 0x18, 0x11, 0x04, 0x14, 0x02, 0x12, 0x01, 0x00, 0x3f];

/** A segment on a live connection: mostly in window, sometimes off. */
function connFrame(b: Uint8Array, rnd: Prng): number {
  let k = rnd.below(KNOWN);
  for (let i = 0; i < 8 && knownPort[k]! < 0; i++) k = rnd.below(KNOWN);
  if (knownPort[k]! < 0) return 0;
  const flags = FLAG_CHOICES[rnd.below(FLAG_CHOICES.length)]!;
  const off = (r: number) => r < 70 ? 0 : r < 90 ? rnd.below(6000) - 3000 : rnd.u32();
  const dSeq = off(rnd.below(100));
  const dAck = off(rnd.below(100));
  const payload = (flags & 0x08) ? rnd.below(rnd.oneIn(20) ? 20000 : 1400) : 0;
  const winR = rnd.below(10);
  const len = tcpFrame(b, {
    v6: knownV6[k] === 1,
    sport: knownPort[k]!,
    dport: PORTS.tcp,
    seq: (knownSeq[k]! + dSeq) >>> 0,
    ack: (knownAck[k]! + dAck) >>> 0,
    flags,
    win: winR === 0 ? 0 : winR === 1 ? 1 : winR < 5 ? 0xffff : rnd.below(65536),
    optLen: rnd.oneIn(10) ? 4 * rnd.below(11) : 0,
    payload,
  });
  if (dSeq === 0) knownSeq[k] = (knownSeq[k]! + payload + ((flags & 0x03) ? 1 : 0)) >>> 0;
  return len;
}

/* ---------------------------------------------------------------- the run */

const VNET = 12;
/** Frames of the current batch, each with its 12-byte virtio-net header. */
const batchBuf = new Uint8Array(BATCH * 65600);
const batchLen = new Int32Array(BATCH);
let batchN = 0;
let crashes = 0;
let sent = 0;

function frameAt(i: number): Uint8Array {
  return batchBuf.subarray(i * 65600 + VNET, i * 65600 + VNET + 65536);
}

/** Writes the batch to the tap, runs one loop wakeup, reads the replies. */
function flush(rnd: Prng): void {
  for (let i = 0; i < batchN; i++) {
    const at = i * 65600;
    const frame = batchBuf.subarray(at) as Uint8Array<ArrayBuffer>;
    /* the tap's queue full (large frames): let orzo read, then again */
    for (let tries = 0;; tries++) {
      if (libc.symbols.send(fake.peerFd, frame, batchLen[i]! + VNET, MSG_DONTWAIT) >= 0) break;
      if (errno() !== 11 || tries === 100) fail(`write to the tap: errno ${errno()}`);
      loop.runOnce(0);
      drainTap();
    }
    sent++;
  }
  const before = loop.failures;
  for (let r = 0; r < 4; r++) {
    loop.runOnce(0);
    drainTap();
  }
  if (loop.failures !== before) saveCrash();
  serveHost(rnd);
  batchN = 0;
}

function saveCrash(): void {
  crashes++;
  const path = `${crashDir}/orzo-fuzz-${seed}-${sent}.hex`;
  const lines: string[] = [];
  for (let i = 0; i < batchN; i++) {
    const f = frameAt(i).subarray(0, batchLen[i]!);
    lines.push(Array.from(f, (x) => x.toString(16).padStart(2, "0")).join(""));
  }
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  console.error(`fuzz: handler failure in the batch before frame ${sent}: written to ${path}`);
}

function check(what: string): void {
  const bad = c.flows.flowCheck();
  if (bad !== null) fail(`flow table inconsistent ${what}: ${bad}`);
}

/* fixtures: frames that once broke something, one per batch */
let fixtures = 0;
const fixRnd = new Prng(1);
try {
  for (const e of [...Deno.readDirSync(fixturesDir)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (!e.name.endsWith(".hex")) continue;
    for (const line of Deno.readTextFileSync(fixturesDir + e.name).split("\n")) {
      const hex = line.replace(/#.*/, "").trim();
      if (hex === "") continue;
      const f = frameAt(0);
      for (let i = 0; i < hex.length / 2; i++) f[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      batchLen[0] = hex.length / 2;
      batchN = 1;
      flush(fixRnd);
      fixtures++;
    }
  }
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
if (loop.failures !== 0) fail(`${loop.failures} handler failures replaying the fixtures`);
console.log(`fuzz: ${fixtures} fixture frames replayed`);

const rnd = new Prng(seed);
const t0 = performance.now();
let batches = 0;
for (let n = 0; n < frames; n++) {
  const f = frameAt(batchN);
  let len = 0;
  const r = rnd.below(100);
  if (r < 25 && knownCount > 0) len = connFrame(f, rnd);
  if (len === 0) {
    if (r < 35) len = seedFrame(f, rnd.below(SEED_KINDS), rnd, PORTS);
    else if (r < 88) len = mutate(f, seedFrame(f, rnd.below(SEED_KINDS), rnd, PORTS), rnd);
    else len = randomFrame(f, rnd);
  } else if (rnd.oneIn(4)) len = mutate(f, len, rnd);
  /* a zero-length read means end of file to the tap reader: no real tap gives one */
  if (len === 0) f[len++] = rnd.below(256);
  /* the virtio-net header: zero, or garbage now and then */
  const h = batchBuf.subarray(batchN * 65600, batchN * 65600 + VNET);
  if (rnd.oneIn(50)) { for (let i = 0; i < VNET; i++) h[i] = rnd.below(256); }
  else h.fill(0);
  batchLen[batchN++] = len;
  if (batchN === BATCH) {
    flush(rnd);
    if (++batches % CHECK_EVERY === 0) check(`after frame ${sent}`);
  }
}
if (batchN > 0) flush(rnd);
const secs = (performance.now() - t0) / 1000;
check("at the end of the run");

console.log(
  `fuzz: ${sent} frames in ${secs.toFixed(1)} s (${Math.round(sent / secs)}/s), ` +
    `${fixtures} fixtures, handler failures ${loop.failures}, tap EOFs ${tapGone}, ` +
    `connections learnt ${knownCount}`,
);
const st = c.stats;
console.log(
  `fuzz: tap frames in ${st.framesIn}, out ${st.framesOut}, malformed ${st.malformed}, ` +
    `unhandled ${st.unhandled}, ARP ${st.arpReplies}, NDP ${st.ndpAdverts}, RA ${st.routerAdverts}, ` +
    `DHCP ${st.dhcpReplies}, DHCPv6 ${st.dhcpv6Replies}`,
);
console.log(`fuzz: ${c.flows.flowStatsLine()}`);
console.log(`fuzz: ${tcpStatsLine()}`);
console.log(`fuzz: ${udpStatsLine()}`);
console.log(`fuzz: ${icmpStatsLine()}`);

/* everything closed: the table must be empty and consistent, no fd left */
tcpCloseAll();
udpCloseAll();
icmpCloseAll();
c.flows.flowDeferHandler();
check("after closing every flow");
if (c.flows.used !== 0) fail(`${c.flows.used} flow entries left after closing every flow`);
if (c.flows.hashCount !== 0) fail(`${c.flows.hashCount} hash entries left`);
tcpReset();
for (const fd of [...hostConns, ...listeners, ...echoes]) libc.symbols.close(fd);
loop.epoll.close();
fake.close();
const fdsAfter = fdCount();
if (fdsAfter !== fdsBefore) {
  const open = [...Deno.readDirSync("/proc/self/fd")].map((e) => {
    try {
      return `${e.name} -> ${Deno.readLinkSync(`/proc/self/fd/${e.name}`)}`;
    } catch {
      return e.name;
    }
  });
  fail(`descriptors: ${fdsBefore} before, ${fdsAfter} after: ${open.join(", ")}`);
}
if (crashes > 0 || loop.failures !== 0) fail(`${loop.failures} handler failures (seed ${seed})`);
if (tapGone !== 0) fail(`the tap reader saw end of file ${tapGone} times`);
console.log(`fuzz: ok (seed ${seed}); descriptors ${fdsBefore} before and after`);
