/**
 * icmp.ts - ICMP and ICMPv6 echo (ping) from the guest, through the host's
 * "ping" sockets.
 *
 * # Theory of operation
 *
 * orzo sends no raw packets: an echo request from the guest is handed to a
 * datagram socket of protocol IPPROTO_ICMP or IPPROTO_ICMPV6 (a "ping
 * socket", icmp(7)), which the kernel lets unprivileged processes open when
 * their group is in `net.ipv4.ping_group_range` of the namespace the socket
 * is made in. For pasta that is the host's namespace, as for every other
 * socket orzo opens; pasta also opens the range in the guest's namespace
 * ("0 0", pasta.ts) so that the guest's own ping can use such sockets. When
 * the host's range excludes orzo the socket cannot be made: orzo says so
 * once, with passt's hint, and drops echo requests, as passt does.
 *
 * The kernel owns a ping socket's identifier: it rewrites the identifier of
 * every request (and fills in the checksum) and only delivers replies that
 * carry it. So each (guest address, destination, guest identifier) is a flow
 * of type FLOW_TYPE_PING4 or FLOW_TYPE_PING6 with its own socket: requests
 * are sent on it as they are, replies are given the guest's identifier back,
 * a complete checksum (the guest's ping may check it), and written to the
 * tap from the address the guest pinged. A reply with the same sequence
 * number as the previous one is dropped (passt does this in pasta mode). A
 * flow ends after ICMP_TIMEOUT_MS without requests or replies.
 *
 * A new flow must pass fwdTapTarget(), as for TCP and UDP: no loopback,
 * multicast, broadcast or unspecified address unless a mapping applies;
 * its fwdNatFromTap() makes pinging the gateway ping the host's loopback.
 *
 * Nothing here allocates per packet: flow state is typed arrays by flow
 * index, the reply is read straight into a preallocated frame.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import type { EventLoop } from "../loop.ts";
import { EPOLL_TYPE_PING } from "../loop.ts";
import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { addressOf } from "../ffi/mem.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLERR,
  EPOLLIN,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SO_ERROR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import { sockaddrFromInany } from "../ffi/sockaddr.ts";
import {
  FLOW_STATE_ACTIVE,
  FLOW_TYPE_PING4,
  FLOW_TYPE_PING6,
  flowSidx,
  INISIDE,
  TGTSIDE,
} from "../flow/table.ts";
import { inanyIs4 } from "../flow/inany.ts";
import { PIF_HOST, PIF_NAMES, PIF_TAP } from "../flow/pif.ts";
import { FWD_OK, fwdRefusalLog, fwdTapTarget } from "../fwd/guard.ts";
import { l3Addrs, l4Register } from "../tap/l3.ts";
import { l2l3Write } from "../tap/send.ts";
import { ICMP_ECHO, ICMP_ECHOREPLY, ICMP_ID, ICMP_SEQ, icmpFillChecksum } from "../wire/icmp.ts";
import { ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, icmpv6FillChecksum } from "../wire/icmpv6.ts";
import { pcapFrame, pcapOn } from "../pcap.ts";
import { debug, LOG_DEBUG, logLevel, warn } from "../log.ts";

/** Idle timeout of a ping flow, ms (passt's ICMP_ECHO_TIMEOUT). */
export const ICMP_TIMEOUT_MS = 60_000;
/** How often the timer walks the flows, ms. */
const ICMP_TIMER_MS = 1000;
/** Largest ICMP message handled (an IPv6 payload). */
const ICMP_MSG_MAX = 65535;
/** Offset of the ICMP header in the reply frame buffer. */
const MSG_OFF = 128;
/** Replies read per readiness event at most. */
const ICMP_ROUNDS = 16;

/** Counters of the ICMP module. */
export interface IcmpStats {
  /** echo requests sent to a ping socket */
  requests: number;
  /** echo replies written to the guest */
  replies: number;
  /** requests or replies dropped */
  dropped: number;
  /** ping sockets that could not be opened */
  sockFailures: number;
  /** echo requests refused by fwdTapTarget() (no flow, no socket; in dropped too) */
  refused: number;
}

interface IcmpState {
  c: Ctx;
  loop: EventLoop;
  /** ping socket of each flow, -1 when none */
  sock: Int32Array;
  /** last traffic, ms */
  ts: Float64Array;
  /** sequence number of the last reply forwarded, -1 for none */
  lastSeq: Int32Array;
  lastTimer: number;
  warned: boolean;
  stats: IcmpStats;
}

let S: IcmpState | null = null;

/* [0,16) source, [16,32) destination, [32,48) target, [48,64) our side */
const key = new Uint8Array(64);
/* The reply frame: the ICMP message at MSG_OFF, headers written before it. */
const out = new Uint8Array(MSG_OFF + ICMP_MSG_MAX);
const outDv = new DataView(out.buffer);
const outMsg = out.subarray(MSG_OFF);
let view4: Uint8Array<ArrayBuffer> = out;
let view6: Uint8Array<ArrayBuffer> = out;
/* sendmsg() of a request: the iovec points into the tap's frame buffer. */
const msg = new Uint8Array(56);
const msgDv = new DataView(msg.buffer);
const iov = new Uint8Array(16);
const iovDv = new DataView(iov.buffer);
const to = new Uint8Array(28);
let lastFrame: Uint8Array | null = null;
let lastFrameAddr = 0;
const soErr = new Uint8Array(4);
const soErrLen = new Uint8Array(new Int32Array([4]).buffer);

function putPtr(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off, addr >>> 0, true);
  dv.setUint32(off + 4, Math.floor(addr / 4294967296) >>> 0, true);
}

/**
 * Sets the socket and last sequence of flows the table hands out for the
 * first time to -1 (its flowOnPrepare()).
 * @param from first flow index
 * @param to one past the last
 */
function icmpInitFlows(from: number, to: number): void {
  S!.sock.fill(-1, from, to);
  S!.lastSeq.fill(-1, from, to);
}

/**
 * Starts the ICMP module: registers the tap handlers for ICMP and ICMPv6
 * (NDP stays with local/ndp.ts), the ping socket handler and the timer.
 * @param c execution context
 * @param loop the event loop
 * @returns the module's counters
 */
export function icmpInit(c: Ctx, loop: EventLoop): IcmpStats {
  const cap = c.flows.capacity;
  const stats: IcmpStats = {
    requests: 0,
    replies: 0,
    dropped: 0,
    sockFailures: 0,
    refused: 0,
  };
  S = {
    c,
    loop,
    /* sock and lastSeq: -1 ("none") from icmpInitFlows() on, as the table grows */
    sock: new Int32Array(cap),
    ts: new Float64Array(cap),
    lastSeq: new Int32Array(cap),
    lastTimer: 0,
    warned: false,
    stats,
  };
  const h = c.tapHdrLen;
  view4 = out.subarray(MSG_OFF - 20 - 14 - h);
  view6 = out.subarray(MSG_OFF - 40 - 14 - h);
  putPtr(msgDv, 0, Number(addressOf(to)));
  putPtr(msgDv, 16, Number(addressOf(iov)));
  msgDv.setUint32(24, 1, true);
  c.flows.flowOnPrepare("icmp", icmpInitFlows);
  l4Register(IPPROTO_ICMP, icmpTapHandler);
  l4Register(IPPROTO_ICMPV6, icmpTapHandler);
  loop.on(EPOLL_TYPE_PING, icmpSockHandler);
  loop.post.push(icmpTimer);
  return stats;
}

/** Makes a ping flow for key[0..32) and identifier id; returns its index or -1. */
function pingNew(st: IcmpState, v6: boolean, id: number, now: number): number {
  const c = st.c;
  const fl = c.flows;
  const why = fwdTapTarget(c, v6, key, 0, id, 0, false);
  if (why !== FWD_OK) {
    st.stats.refused++;
    fwdRefusalLog("ICMP", v6, why, key, 0, id, 0);
    return -1;
  }
  if (inanyIs4(key, 32) === v6) return -1;
  const idx = fl.flowAllocFor(v6 ? FLOW_TYPE_PING6 : FLOW_TYPE_PING4);
  if (idx < 0) return -1;
  fl.flowInitiate(idx, PIF_TAP, key, 16, key, 0, id, id);
  for (let i = 0; i < 16; i++) key[48 + i] = 0;
  if (!v6) key[58] = key[59] = 0xff;
  const s = libc.symbols.socket(
    v6 ? AF_INET6 : AF_INET,
    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
  );
  if (s < 0) {
    const e = errno();
    st.stats.sockFailures++;
    if (!st.warned) {
      st.warned = true;
      warn(`Cannot open "ping" socket (errno ${e}). You might need to:`);
      warn('  sysctl -w net.ipv4.ping_group_range="0 2147483647"');
      warn("...echo requests/replies will fail.");
    }
    fl.flowAllocCancel(idx);
    return -1;
  }
  fl.flowTarget(idx, PIF_HOST, key, 48, key, 32, 0, 0);
  fl.flowSetType(idx, v6 ? FLOW_TYPE_PING6 : FLOW_TYPE_PING4);
  if (
    !fl.flowHashInsert(flowSidx(idx, INISIDE)) ||
    st.loop.epoll.add(s, EPOLLIN, EPOLL_TYPE_PING, idx) < 0
  ) {
    libc.symbols.close(s);
    fl.flowAllocCancel(idx);
    return -1;
  }
  st.sock[idx] = s;
  st.ts[idx] = now;
  st.lastSeq[idx] = -1;
  fl.flowActivate(idx);
  if (logLevel >= LOG_DEBUG) {
    debug(`ICMP: new ping flow, socket ${s}: ${fl.flowDescribe(idx, PIF_NAMES)}`);
  }
  return idx;
}

/**
 * Tap handler for ICMP and ICMPv6 (registered with l4Register): relays
 * echo requests; other messages from the guest are dropped.
 * @param c execution context
 * @param v6 ICMPv6 over IPv6
 * @param frame buffer holding the frame
 * @param dv DataView over `frame`'s buffer
 * @param ipOff offset of the IP header
 * @param l4Off offset of the ICMP header
 * @param l4Len length of the ICMP message
 * @param now monotonic time, ms
 */
export function icmpTapHandler(
  c: Ctx,
  v6: boolean,
  frame: Uint8Array,
  dv: DataView,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  now: number,
): void {
  const st = S!;
  if (l4Len < 8) {
    c.stats.malformed++;
    return;
  }
  if (frame[l4Off] !== (v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO) || frame[l4Off + 1] !== 0) {
    c.stats.unhandled++;
    return;
  }
  const id = dv.getUint16(l4Off + ICMP_ID);
  l3Addrs(frame, ipOff, v6, key);
  const fl = c.flows;
  const sidx = fl.flowLookup(v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, PIF_TAP, key, 16, key, 0, id, id);
  let idx = sidx >> 1;
  if (sidx < 0) {
    idx = pingNew(st, v6, id, now);
    if (idx < 0) {
      st.stats.dropped++;
      return;
    }
  }
  st.ts[idx] = now;
  const tgt = flowSidx(idx, TGTSIDE);
  const len = sockaddrFromInany(to, fl.raddr, tgt * 16, 0, v6);
  msgDv.setUint32(8, len, true);
  if (frame !== lastFrame) {
    lastFrame = frame;
    lastFrameAddr = Number(addressOf(frame as Uint8Array<ArrayBuffer>));
  }
  putPtr(iovDv, 0, lastFrameAddr + l4Off);
  iovDv.setUint32(8, l4Len, true);
  iovDv.setUint32(12, 0, true);
  if (libc.symbols.sendmsg(st.sock[idx]!, msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
    st.stats.dropped++;
    if (logLevel >= LOG_DEBUG) debug(`ICMP: sending echo request failed: errno ${errno()}`);
    return;
  }
  st.stats.requests++;
}

/**
 * Epoll handler for a ping socket: echo replies go to the guest.
 * @param fd the socket
 * @param idx the flow index
 * @param events EPOLL* mask
 * @param now monotonic time, ms
 */
export function icmpSockHandler(fd: number, idx: number, events: number, now: number): void {
  const st = S!;
  const c = st.c;
  const fl = c.flows;
  const type = fl.type[idx];
  if (
    fl.state[idx] !== FLOW_STATE_ACTIVE || st.sock[idx] !== fd ||
    (type !== FLOW_TYPE_PING4 && type !== FLOW_TYPE_PING6)
  ) {
    return;
  }
  if ((events & EPOLLERR) !== 0) {
    soErrLen[0] = 4;
    libc.symbols.getsockopt(fd, SOL_SOCKET, SO_ERROR, soErr, soErrLen);
  }
  if ((events & EPOLLIN) === 0) return;
  const v6 = type === FLOW_TYPE_PING6;
  const ini = flowSidx(idx, INISIDE);
  const a = ini * 16;
  for (let round = 0; round < ICMP_ROUNDS; round++) {
    const n = libc.symbols.recv(fd, outMsg, ICMP_MSG_MAX, MSG_DONTWAIT);
    if (n < 0) return;
    st.ts[idx] = now;
    if (n < 8 || out[MSG_OFF] !== (v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHOREPLY)) {
      st.stats.dropped++;
      continue;
    }
    const seq = outDv.getUint16(MSG_OFF + ICMP_SEQ);
    if (seq === st.lastSeq[idx]) {
      st.stats.dropped++;
      continue;
    }
    st.lastSeq[idx] = seq;
    outDv.setUint16(MSG_OFF + 4, fl.rport[ini]!);
    const ip = MSG_OFF - (v6 ? 40 : 20);
    const eth = ip - 14;
    /* from the address the guest pinged, to the guest */
    l2l3Write(
      c,
      out,
      outDv,
      eth,
      v6,
      v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
      fl.laddr,
      a,
      fl.raddr,
      a,
      n,
    );
    if (v6) icmpv6FillChecksum(out, ip, MSG_OFF, n);
    else icmpFillChecksum(out, MSG_OFF, n);
    const hdrLen = c.tapHdrLen;
    const hdr = eth - hdrLen;
    const frameLen = MSG_OFF - eth + n;
    if (hdrLen === 12) out.fill(0, hdr, eth);
    else if (hdrLen === 4) outDv.setUint32(hdr, frameLen);
    if (pcapOn) pcapFrame(out, eth, frameLen);
    if (c.tap.send(v6 ? view6 : view4, frameLen + hdrLen) < 0) {
      st.stats.dropped++;
      continue;
    }
    c.stats.framesOut++;
    st.stats.replies++;
  }
}

/** Ends a ping flow. */
function pingClose(st: IcmpState, idx: number): void {
  const s = st.sock[idx]!;
  if (s >= 0) {
    st.loop.epoll.del(s);
    libc.symbols.close(s);
  }
  st.sock[idx] = -1;
  st.c.flows.flowFree(idx);
}

/**
 * Post-batch hook: at most once per second, ends ping flows idle for
 * ICMP_TIMEOUT_MS.
 * @param now monotonic time, ms
 */
export function icmpTimer(now: number): void {
  const st = S!;
  if (now - st.lastTimer < ICMP_TIMER_MS) return;
  st.lastTimer = now;
  const fl = st.c.flows;
  const end = fl.maxUsed;
  for (let idx = 0; idx < end; idx++) {
    const t = fl.type[idx];
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || (t !== FLOW_TYPE_PING4 && t !== FLOW_TYPE_PING6)) {
      continue;
    }
    if (now - st.ts[idx]! > ICMP_TIMEOUT_MS) pingClose(st, idx);
  }
}

/** Ends every ping flow, closing its socket (at exit, and in tests). */
export function icmpCloseAll(): void {
  const st = S;
  if (st === null) return;
  const fl = st.c.flows;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    const t = fl.type[idx];
    if (fl.state[idx] === FLOW_STATE_ACTIVE && (t === FLOW_TYPE_PING4 || t === FLOW_TYPE_PING6)) {
      pingClose(st, idx);
    }
  }
}

/**
 * One line of counters for the debug log at exit.
 * @returns the text
 */
export function icmpStatsLine(): string {
  const s = S?.stats;
  if (s === undefined) return "icmp: off";
  return `icmp: echo requests ${s.requests}, replies ${s.replies}, dropped ${s.dropped}, ` +
    `socket failures ${s.sockFailures}, refused ${s.refused}`;
}
