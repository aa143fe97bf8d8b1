/**
 * tcp.ts - TCP translation between the guest (tap) and host sockets.
 *
 * Theory of operation (after the seed's, passt's tcp.c): orzo does not
 * terminate TCP. Each guest connection is mirrored by one host socket, and
 * orzo translates what one side's kernel observes into segments for the
 * other, leaving segmentation, congestion control and reassembly to the two
 * kernels.
 *
 * - Set-up. A SYN from the guest opens a non-blocking host socket to the same
 *   destination (after fwdTapTarget(), which refuses loopback, multicast,
 *   broadcast, unspecified addresses and port 0 unless a mapping applies,
 *   silently as pasta does; fwdNatFromTap(): the gateway reaches the host's
 *   loopback); the SYN-ACK goes to the guest only once the host connect
 *   completes, a refused or unreachable destination becomes an RST at once.
 *   A connection accepted on a listening socket (-t) becomes a SYN to the
 *   guest from the client's real address (fwdNatFromHost() for loopback),
 *   unless it comes from the host's loopback and the splice path takes it
 *   (splice.ts).
 * - Host to guest. Socket data is read with MSG_PEEK, so that it stays in the
 *   socket until the guest acknowledges it; SO_PEEK_OFF makes each read start
 *   after what was already sent. It is read straight into the payload area of
 *   preallocated frames, up to the guest's window, and sent as segments of up
 *   to the guest's MSS (larger ones as GSO frames). An ACK from the guest
 *   discards the acknowledged bytes (recv with MSG_TRUNC); two duplicate ACKs,
 *   or ACK_TIMEOUT without progress, rewind to the last acknowledged byte and
 *   send again.
 * - Guest to host. Payload in sequence is written to the socket and
 *   acknowledged after the current batch of frames (one ACK per connection
 *   per batch); out-of-order data is dropped with a duplicate ACK. Within a
 *   batch read from the tap (tap.ts: tapBatch), a connection's consecutive
 *   segments are held as iovecs into the tap's frame buffer and written by
 *   one sendmsg() (holdFlush()): when another connection's data comes, before
 *   anything else of that connection is handled, and when the batch ends.
 *   The guest sends in bursts of several segments per connection, so this
 *   makes a third of the writes (and of the wake-ups of the reader on the
 *   host side). The window advertised to the guest is the free space of the
 *   socket's send buffer.
 * - Checksums. Frames to the guest carry a virtio-net header asking the
 *   guest's kernel to complete the TCP checksum (tap/send.ts); frames from
 *   the guest come with checksums the kernel already trusts.
 * - Half-close and reset. A FIN from the guest shuts down the socket's write
 *   side; end-of-file on the socket becomes a FIN to the guest after all data;
 *   the connection is closed once both directions are done. An RST on either
 *   side resets the other.
 * - Timers. One 100 ms timer walks the connections: SYN_TIMEOUT (host
 *   connect), the handshake frames to the guest (SYN or SYN-ACK, sent again
 *   from SYN_RTO_MS on, doubling, TCP_SYN_RETRIES times: a lost or unwritten
 *   one does not stall the connection; a SYN the guest sends again is
 *   answered at once), ACK_TIMEOUT (retransmit, the timeout doubling each
 *   time up to RTO_MAX_MS as RFC 6298 5.5, at most TCP_MAX_RETRANS times: a
 *   guest paused for a minute keeps its connections), FIN_TIMEOUT,
 *   ACT_TIMEOUT, and window updates after a zero window.
 *
 * Epoll: connection sockets are registered once, edge-triggered, for
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP: new data, a completed connect, or room in a
 * send buffer that was full each produce one event; an ACK from the guest
 * that opens its window resumes sending directly.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import type { EventLoop } from "../loop.ts";
import { EPOLL_TYPE_TCP, EPOLL_TYPE_TCP_LISTEN, EPOLL_TYPE_TCP_TIMER } from "../loop.ts";
import { libc } from "../ffi/libc.ts";
import { ERRNO, errno } from "../ffi/errno.ts";
import { addressOf } from "../ffi/mem.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  IPPROTO_TCP,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_TRUNC,
  O_CLOEXEC,
  O_RDONLY,
  SHUT_WR,
  SIOCOUTQ,
  SO_COOKIE,
  SO_ERROR,
  SO_LINGER,
  SO_PEEK_OFF,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../ffi/layout.ts";
import { sockaddrFromInany, sockaddrToInany } from "../ffi/sockaddr.ts";
import { timerAck, timerCreate, timerIntervalMs, timerSet } from "../ffi/timer.ts";
import { FLOW_STATE_ACTIVE, FLOW_TYPE_TCP } from "../flow/table.ts";
import { PIF_HOST, PIF_SPLICE, PIF_TAP } from "../flow/pif.ts";
import { fwdGuestAddr, fwdNatFromHost } from "../fwd/nat.ts";
import { FWD_OK, fwdRefusalLog, fwdTapTarget } from "../fwd/guard.ts";
import { l2l3Write, l4Finish, pseudoSum, tapSendFrame } from "../tap/send.ts";
import { csumWasmAlloc } from "../wire/checksum.ts";
import { l3Addrs, l4Register } from "../tap/l3.ts";
import { TAP_BATCH, tapBatch, tapFlushRegister } from "../tap/tap.ts";
import { pcapFrame, pcapOn } from "../pcap.ts";
import { TcpOpts, tcpOptsParse } from "../wire/tcp.ts";
import { debug, LOG_DEBUG, logLevel } from "../log.ts";
import {
  ACK_FROM_TAP_DUE,
  ACK_QUEUED,
  ACK_TO_TAP_DUE,
  ESTABLISHED,
  HALF_OPEN,
  seqDiff,
  SOCK_ACCEPTED,
  SOCK_BLOCKED,
  SOCK_DRAINED,
  SOCK_FIN_RCVD,
  SOCK_FIN_SENT,
  SOCK_HUP,
  TAP_FIN_ACKED,
  TAP_FIN_RCVD,
  TAP_FIN_SENT,
  TAP_SYN_ACK_SENT,
  TAP_SYN_RCVD,
  TcpConns,
  WND_LIMITED,
  WS_OK,
} from "./conn.ts";
import { FWD_TCP, type FwdListeners } from "../fwd/listeners.ts";
import type { FwdDirection } from "../fwd/direction.ts";
import { spliceConnect, spliceTimer } from "./splice.ts";
import { inanyLoopback } from "../fwd/nat.ts";
import { fdBudget, fdBudgetTick, fdOverBudget } from "../flow/fd_budget.ts";

/** Timer period of the connection walk. */
export const TCP_TIMER_INTERVAL_MS = 100;
/**
 * Timer period of the walk while no TCP connection is open and no listener
 * is paused: what is left then (`auto` port scans, splice timeouts, the
 * descriptor budget) runs once a second, so an idle orzo is not woken ten
 * times a second for nothing.
 */
export const TCP_TIMER_QUIET_MS = 1000;
/** Period of the `auto` port scans and of spliceTimer() (ms). */
const TCP_SCAN_MS = 1000;
/** Timer period while some window is held back by queued data. */
export const TCP_WATCH_INTERVAL_MS = 1;
/** Handshake timeout: the host connect. */
export const SYN_TIMEOUT_MS = 10_000;
/** First timeout of a SYN or SYN-ACK to the guest (RFC 6298 2.1: 1 s). */
export const SYN_RTO_MS = 1_000;
/** Times a SYN or SYN-ACK is sent again: at 1, 3 and 7 s; reset at 15 s. */
export const TCP_SYN_RETRIES = 3;
/** Time without an ACK for data in flight before retransmitting (the first time). */
export const ACK_TIMEOUT_MS = 2_000;
/** Largest retransmission timeout, after doubling (RFC 6298 2.5 allows 60 s). */
export const RTO_MAX_MS = 60_000;
/**
 * Retransmissions of a lone FIN (nothing else in flight) before giving up: at
 * 2, 6, 14 and 30 s without its ACK; reset at 62 s. A FIN lost on the way
 * (a guest's full input queue drops frames in bursts) is so sent again
 * within seconds, not held with its socket for a minute.
 */
export const TCP_FIN_RETRIES = 4;
/** Inactivity timeout. */
export const ACT_TIMEOUT_MS = 7_200_000;
/** How long a listener is left out of the epoll set when a connection cannot be refused. */
export const LISTEN_PAUSE_MS = 100;
/** Interval of zero-window probes to the guest. */
export const PERSIST_INTERVAL_MS = 200;
/**
 * Retransmissions after timeouts before giving up: at 2, 6, 14, 30, 62, 122,
 * 182 and 242 s without progress; reset at 302 s.
 */
export const TCP_MAX_RETRANS = 8;
/**
 * Most connections from the guest with their host connect pending at once.
 * A guest's SYNs to destinations that never answer would otherwise each hold
 * a flow and a socket for SYN_TIMEOUT_MS: 150,000 of them fill the table.
 * Beyond this, the oldest pending connect is given up (RST to the guest), so
 * connections to destinations that answer keep being made; a destination
 * that answers at all does within far less time than this many new SYNs
 * take to arrive.
 */
export const TCP_HALF_OPEN_MAX = 1024;
/** Window scale we advertise to the guest. */
export const WS_TO_TAP = 8;
/** Data frames filled per socket read. */
export const TCP_FRAMES = 32;
/** MSS assumed when the guest's SYN has none (RFC 9293 3.7.1). */
export const MSS_DEFAULT = 536;
/**
 * Smallest MSS used towards the guest over IPv4, whatever it announces: what
 * every IPv4 host must accept (a 576-byte datagram, RFC 9293 3.7.1, RFC 1122
 * 3.3.2). A guest announcing less (MSS 1) would make orzo write one frame
 * per byte.
 */
export const MSS_MIN4 = 536;
/** Smallest MSS over IPv6: the minimum link MTU of 1280 (RFC 8200 5) less headers. */
export const MSS_MIN6 = 1220;

/** TCP header flags. */
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

/** Where the payload starts in each data frame (headers are written before it). */
const PAYLOAD_OFF = 128;
/** Bytes per data frame slot. */
const FRAME_STRIDE = PAYLOAD_OFF + 65536;
/** Largest payload of one frame: what an IPv4 total length allows. */
const PAYLOAD_MAX4 = 65535 - 20 - 20;
/** Largest payload of one frame: what an IPv6 payload length allows. */
const PAYLOAD_MAX6 = 65535 - 20;
/** EPOLL mask of every connection socket. */
const SOCK_EVENTS = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

/** TCP module state. */
interface TcpState {
  c: Ctx;
  loop: EventLoop;
  conns: TcpConns;
  /** the forwarding sockets (fwd/listeners.ts), null before tcpSetListeners() */
  listeners: FwdListeners | null;
  /** the TCP directions with `auto` rules (-t auto, -T auto), scanned about once a second */
  scanned: FwdDirection[];
  /** when the other sides' ports were last scanned (ms) */
  lastScan: number;
  /** whether host loopback clients of -t ports are spliced to the guest */
  splice: boolean;
  /** --host-lo-to-ns-lo: spliced clients reach the guest's loopback address, not its own */
  spliceToLoopback: boolean;
  /** whether SO_PEEK_OFF works on TCP sockets */
  peekOff: boolean;
  /** SO_SNDBUF of host sockets after sockOpts() (the kernel caps what we ask) */
  sndbuf: number;
  timerFd: number;
  /** the timer's period (ms): TCP_WATCH_INTERVAL_MS, TCP_TIMER_INTERVAL_MS or TCP_TIMER_QUIET_MS */
  timerMs: number;
  lastTimer: number;
  /** connections with an ACK to send after this batch */
  ackQueue: Int32Array;
  ackQueueLen: number;
  /** connections whose window is held back (WND_LIMITED) */
  watch: Int32Array;
  watchLen: number;
  /** a descriptor held in reserve, given up to refuse a connection at EMFILE */
  reserveFd: number;
  /** connections with HALF_OPEN set */
  halfOpen: number;
  /** most HALF_OPEN connections (TCP_HALF_OPEN_MAX unless a test sets it) */
  halfOpenMax: number;
  /** half-open connections, oldest first: flow index, then its halfOpenGen, per entry */
  halfOpenRing: Int32Array;
  /** first entry of the ring, and number of entries (some stale) */
  halfOpenHead: number;
  halfOpenLen: number;
  /** generation of each flow's half-open entry, to tell stale ring entries */
  halfOpenGen: Int32Array;
  /** last generation given */
  halfOpenLast: number;
  /** listening sockets taken out of the epoll set (no reserve left): fd, then data */
  paused: number[];
  /** the SO_COOKIE of each paused listener, by pair */
  pausedCookies: string[];
  /** when the paused listeners are polled again (ms) */
  pausedUntil: number;
  /** counters */
  stats: TcpStats;
}

/** TCP counters. */
export interface TcpStats {
  /** connections opened (both directions) */
  opened: number;
  /** connections closed */
  closed: number;
  /** resets sent to the guest */
  rstToTap: number;
  /** segments from the guest dropped as malformed or out of window */
  dropped: number;
  /** retransmissions started (duplicate ACKs or timeouts) */
  retransmits: number;
  /** writes of guest data to host sockets (one sendmsg() may carry several segments) */
  dataWrites: number;
  /** writes to host sockets that took only part of what was written */
  partialWrites: number;
  /** zero-window probes sent to the guest */
  windowProbes: number;
  /** SYNs from the guest refused by fwdTapTarget() (dropped, no socket) */
  refused: number;
  /** connections refused on a listening socket for want of descriptors (EMFILE, ENFILE) */
  refusedFds: number;
  /** most connections with the host connect pending (the half-open cap) */
  halfOpenMax: number;
  /** half-open connections given up, oldest first, to make room under the cap */
  halfOpenDropped: number;
  /** SYNs from the guest answered with RST: no flow (table full or TCP quota) */
  noFlow: number;
  /** SYNs from the guest answered with RST: no descriptor (budget, EMFILE, ENFILE) */
  noFd: number;
}

let S: TcpState | null = null;

/* Scratch, preallocated: addresses (inany) and sockaddrs */
const key = new Uint8Array(64);
const sa = new Uint8Array(128);
const saLen = new Uint32Array(1);
const saLenBytes = new Uint8Array(saLen.buffer);
const intBuf = new Int32Array(2);
const cookieBuf = new Uint32Array(2);
const cookieBytes = new Uint8Array(cookieBuf.buffer);
const cookieLen = new Uint32Array(1);
const cookieLenBytes = new Uint8Array(cookieLen.buffer);
const intBytes = new Uint8Array(intBuf.buffer);
const intLen = new Uint32Array([4]);
const intLenBytes = new Uint8Array(intLen.buffer);
const lingerBuf = new Int32Array([1, 0]);
const lingerBytes = new Uint8Array(lingerBuf.buffer);
const opts = new TcpOpts();

/* Control segments (SYN, ACK, FIN, RST): one small frame */
const ctlBuf = new Uint8Array(256);
const ctlDv = new DataView(ctlBuf.buffer);
/** Ethernet header offset in ctlBuf (room for any tap header before it). */
const CTL_ETH = 16;

/* Data frames: TCP_FRAMES slots, payload at PAYLOAD_OFF of each; in
 * WebAssembly memory where it can be, for the SIMD checksum without offloads */
const frames = csumWasmAlloc(TCP_FRAMES * FRAME_STRIDE) ??
  new Uint8Array(TCP_FRAMES * FRAME_STRIDE);
const framesDv = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
/* iovec array: entry 0 is the discard buffer (without SO_PEEK_OFF), then one per frame */
const iov = new Uint8Array((TCP_FRAMES + 1) * 16);
const iovDv = new DataView(iov.buffer);
const msg = new Uint8Array(56);
const msgDv = new DataView(msg.buffer);
let discard: Uint8Array<ArrayBuffer> | null = null;
let iovAddr0 = 0n;
let iovAddr1 = 0n;
/* sendmsg() of guest data to a socket: one iovec into the tap's frame buffer (no view per
 * segment); the buffer's address is cached by identity. */
const dataIov = new Uint8Array(16);
const dataIovDv = new DataView(dataIov.buffer);
const dataMsg = new Uint8Array(56);
let dataFrame: Uint8Array | null = null;
let dataFrameAddr = 0;
/* Guest data held for one connection during a tap batch (see the module doc):
 * one iovec per segment into the tap's frame buffer, valid until the batch's
 * flush hooks run. seqFromTap moves only when they are written, so no ACK
 * covers bytes that are not in the socket. */
const holdIov = new Uint8Array(TAP_BATCH * 16);
const holdIovDv = new DataView(holdIov.buffer);
const holdMsg = new Uint8Array(56);
const holdMsgDv = new DataView(holdMsg.buffer);
/** the connection whose data is held, -1 when none */
let holdIdx = -1;
/** segments held */
let holdCount = 0;
/** bytes held */
let holdBytes = 0;
/* the data frames of one socket read, for tap.sendFrames(): header room offsets and lengths */
const batchOffs = new Int32Array(TCP_FRAMES);
const batchLens = new Int32Array(TCP_FRAMES);

/** random start of the initial sequence numbers, fixed for the process */
const ISN_OFFSET = (Math.random() * 4294967296) >>> 0;

/**
 * Our initial sequence number towards the guest: a clock in 64 ns ticks from a
 * random start (RFC 9293 3.4.1, as Linux). A new connection that reuses the
 * addresses and ports of one the guest still holds in TIME_WAIT must start
 * above that one's last sequence number, or the guest answers its SYN with the
 * old connection's ACK and the SYN never gets through (a random ISN did that
 * to about one inbound connection in a thousand under a connection loop).
 * @returns the ISN
 */
function isn(): number {
  return (ISN_OFFSET + Math.floor(performance.now() * 15_625)) >>> 0;
}

/**
 * A retransmission timeout after some timeouts in a row: doubled each time
 * (RFC 6298 5.5), at most RTO_MAX_MS.
 * @param base the first timeout (ms)
 * @param retrans timeouts so far
 * @returns the timeout (ms)
 */
export function tcpRto(base: number, retrans: number): number {
  const t = retrans >= 16 ? RTO_MAX_MS : base * (1 << retrans);
  return t > RTO_MAX_MS ? RTO_MAX_MS : t;
}

/**
 * How many retransmission timeouts the guest may let pass before the
 * connection is given up: TCP_FIN_RETRIES when only our FIN is in flight (its
 * sequence number right after the last byte acked, compared mod 2^32),
 * otherwise TCP_MAX_RETRANS.
 * @param events the connection's events
 * @param seqToTap next sequence number to the guest
 * @param seqAckFromTap last acknowledgement number from the guest
 * @returns the most retransmissions
 */
export function tcpAckRetries(events: number, seqToTap: number, seqAckFromTap: number): number {
  if (
    (events & (TAP_FIN_SENT | TAP_FIN_ACKED)) === TAP_FIN_SENT &&
    seqDiff(seqToTap, seqAckFromTap) === 1
  ) {
    return TCP_FIN_RETRIES;
  }
  return TCP_MAX_RETRANS;
}

/** Offset of the Ethernet header of frame slot i for a family. */
function ethOff(i: number, v6: boolean): number {
  return i * FRAME_STRIDE + PAYLOAD_OFF - 20 - (v6 ? 40 : 20) - 14;
}

/**
 * Starts the TCP module: registers the tap handler, the epoll handlers and
 * the timer.
 * @param c execution context
 * @param loop the event loop
 * @returns the module's counters
 */
export function tcpInit(c: Ctx, loop: EventLoop): TcpStats {
  const conns = new TcpConns(c.flows.capacity);
  c.flows.flowOnPrepare("tcp", (from, to) => conns.prepare(from, to));
  const stats: TcpStats = {
    opened: 0,
    closed: 0,
    rstToTap: 0,
    dropped: 0,
    retransmits: 0,
    dataWrites: 0,
    partialWrites: 0,
    windowProbes: 0,
    refused: 0,
    refusedFds: 0,
    halfOpenMax: TCP_HALF_OPEN_MAX,
    halfOpenDropped: 0,
    noFlow: 0,
    noFd: 0,
  };
  const timerFd = timerCreate();
  timerSet(timerFd, TCP_TIMER_INTERVAL_MS, TCP_TIMER_INTERVAL_MS);
  loop.epoll.add(timerFd, EPOLLIN, EPOLL_TYPE_TCP_TIMER);
  S = {
    c,
    loop,
    conns,
    listeners: null,
    scanned: [],
    lastScan: 0,
    splice: false,
    spliceToLoopback: false,
    peekOff: probePeekOff(),
    sndbuf: probeSndbuf(),
    timerFd,
    timerMs: TCP_TIMER_INTERVAL_MS,
    lastTimer: 0,
    ackQueue: new Int32Array(c.flows.capacity),
    ackQueueLen: 0,
    watch: new Int32Array(c.flows.capacity + 1),
    watchLen: 0,
    reserveFd: reserveOpen(),
    halfOpen: 0,
    halfOpenMax: TCP_HALF_OPEN_MAX,
    halfOpenRing: new Int32Array(4 * TCP_HALF_OPEN_MAX + 32),
    halfOpenHead: 0,
    halfOpenLen: 0,
    halfOpenGen: new Int32Array(c.flows.capacity),
    halfOpenLast: 0,
    paused: [],
    pausedCookies: [],
    pausedUntil: 0,
    stats,
  };
  if (!S.peekOff) debug("SO_PEEK_OFF not supported for TCP: using a discard buffer");

  iovAddr0 = addressOf(iov);
  iovAddr1 = iovAddr0 + 16n;
  const base = addressOf(frames);
  for (let i = 0; i < TCP_FRAMES; i++) {
    iovDv.setBigUint64((i + 1) * 16, base + BigInt(i * FRAME_STRIDE + PAYLOAD_OFF), true);
  }
  msgDv.setBigUint64(16, iovAddr1, true);
  const dataMsgDv = new DataView(dataMsg.buffer);
  dataMsgDv.setBigUint64(16, addressOf(dataIov), true);
  dataMsgDv.setBigUint64(24, 1n, true);
  dataFrame = null;
  holdMsgDv.setBigUint64(16, addressOf(holdIov), true);
  holdIdx = -1;
  holdCount = 0;
  holdBytes = 0;
  tapFlushRegister(tcpTapFlush);

  l4Register(IPPROTO_TCP, tcpTapHandler);
  loop.on(EPOLL_TYPE_TCP, tcpSockHandler);
  loop.on(EPOLL_TYPE_TCP_TIMER, (fd, _d, _e, now) => {
    timerAck(fd);
    if (S!.watchLen > 0) tcpWatchWindows(now);
    if (now - S!.lastTimer >= TCP_TIMER_INTERVAL_MS) tcpTimer(now);
  });
  loop.on(EPOLL_TYPE_TCP_LISTEN, tcpListenHandler);
  loop.post.push(tcpDeferHandler);
  return stats;
}

/**
 * Stops the TCP module, so that tcpInit() can start it again (tests): every
 * connection is closed (its host peer reset), the timer closed, the state
 * dropped. Listening sockets stay open: they belong to whoever opened them.
 */
export function tcpReset(): void {
  const s = S;
  if (s === null) return;
  tcpCloseAll();
  holdIdx = -1;
  holdCount = 0;
  holdBytes = 0;
  libc.symbols.close(s.timerFd);
  if (s.reserveFd >= 0) libc.symbols.close(s.reserveFd);
  S = null;
}

/**
 * Sets the half-open cap (tests; orzo uses TCP_HALF_OPEN_MAX).
 * @param max most connections from the guest with their host connect pending
 */
export function tcpSetHalfOpenMax(max: number): void {
  if (S === null) return;
  S.halfOpenMax = Math.max(1, max | 0);
  S.stats.halfOpenMax = S.halfOpenMax;
  if (S.halfOpenRing.length < 4 * S.halfOpenMax + 32) {
    halfOpenCompact(S, new Int32Array(4 * S.halfOpenMax + 32));
  }
}

/**
 * Tells the TCP module about the forwarding sockets (-t, -T: their slots
 * give each listener's target).
 * @param l the listener table
 */
export function tcpSetListeners(l: FwdListeners): void {
  if (S !== null) S.listeners = l;
}

/**
 * Turns on the splice path for host loopback clients of -t ports: spliced
 * over the guest's loopback interface, to the guest's own address or
 * (--host-lo-to-ns-lo) its loopback address. (-T listeners, in the guest's
 * namespace, are always spliced to the host's loopback.)
 * @param spliceInbound whether -t connections from the host's loopback are spliced
 * @param toLoopback --host-lo-to-ns-lo: connect to 127.0.0.1 / ::1 in the guest
 */
export function tcpSetSplice(spliceInbound: boolean, toLoopback = false): void {
  if (S === null) return;
  S.splice = spliceInbound;
  S.spliceToLoopback = toLoopback;
}

/**
 * Turns on automatic forwarding (-t auto, -T auto): the other sides' ports
 * are scanned now and then about once a second.
 * @param dirs the TCP directions with `auto` rules
 */
export function tcpSetScan(dirs: FwdDirection[]): void {
  if (S === null) return;
  S.scanned = dirs;
  for (const d of dirs) d.scan();
  S.lastScan = performance.now();
}

/**
 * Options of every host socket: no Nagle delay (the guest's kernel already
 * decides when to send), and a send buffer as large as the system allows, so
 * that the window offered to the guest (the buffer's free space) is not held
 * back by a buffer that autotuning would only grow after a blocked write.
 */
function sockOpts(fd: number): void {
  intBuf[0] = 1;
  libc.symbols.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intBytes, 4);
  intBuf[0] = 0x7fffffff;
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, intBytes, 4);
}

/** The SO_SNDBUF that sockOpts() gives a socket. */
function probeSndbuf(): number {
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1 << 20;
  sockOpts(fd);
  intLen[0] = 4;
  intBuf[0] = 1 << 20;
  libc.symbols.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, intBytes, intLenBytes);
  libc.symbols.close(fd);
  return intBuf[0]!;
}

const devNull = new TextEncoder().encode("/dev/null\0");

/** Opens the reserve descriptor (see refusePending()); -1 when none is left. */
function reserveOpen(): number {
  return libc.symbols.open(devNull, O_RDONLY | O_CLOEXEC, 0);
}

/**
 * Out of descriptors with a connection pending on a listening socket: that
 * socket stays readable (level-triggered), so returning would spin the loop.
 * Refuse the connection instead: give up the reserve descriptor, accept,
 * reset, take the reserve back (what pasta and many servers do). Without a
 * reserve (another process took the last descriptor of the system), stop
 * polling the listener for LISTEN_PAUSE_MS.
 */
function refusePending(s: TcpState, fd: number, data: number, now: number): void {
  s.stats.refusedFds++;
  if (s.reserveFd >= 0) {
    libc.symbols.close(s.reserveFd);
    const cfd = libc.symbols.accept4(fd, null, null, SOCK_CLOEXEC);
    if (cfd >= 0) {
      libc.symbols.setsockopt(cfd, SOL_SOCKET, SO_LINGER, lingerBytes, 8);
      libc.symbols.close(cfd);
    }
    s.reserveFd = reserveOpen();
    if (cfd >= 0) return;
  }
  if (logLevel >= LOG_DEBUG) debug(`TCP: out of descriptors, listener ${fd} paused`);
  s.loop.epoll.mod(fd, 0, EPOLL_TYPE_TCP_LISTEN, data);
  s.paused.push(fd, data);
  s.pausedCookies.push(socketCookie(fd));
  s.pausedUntil = now + LISTEN_PAUSE_MS;
  timerQuiet(s, false);
}

/**
 * Sets the walk's period: TCP_TIMER_QUIET_MS when quiet, else
 * TCP_TIMER_INTERVAL_MS. Leaves alone the faster period of held-back
 * windows (TCP_WATCH_INTERVAL_MS), which has connections to watch.
 * @param quiet whether no connection is open and no listener paused
 */
function timerQuiet(s: TcpState, quiet: boolean): void {
  if (s.watchLen === 0) timerPeriod(s, quiet ? TCP_TIMER_QUIET_MS : TCP_TIMER_INTERVAL_MS);
}

/** Re-arms the walk's timer with a period, if it does not run at it already. */
function timerPeriod(s: TcpState, ms: number): void {
  if (s.timerMs === ms) return;
  s.timerMs = ms;
  timerSet(s.timerFd, ms, ms);
}

/**
 * A socket's identity (SO_COOKIE, as a string: cold path only), or "" when
 * the fd is no socket: a paused listener that was closed meanwhile (a
 * forward removed, an `auto` port gone) may have left its number to another
 * socket, which must not be re-armed as that listener.
 */
function socketCookie(fd: number): string {
  cookieLen[0] = 8;
  if (libc.symbols.getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookieBytes, cookieLenBytes) < 0) {
    return "";
  }
  return `${cookieBuf[0]}:${cookieBuf[1]}`;
}

/** Polls the paused listening sockets again (after LISTEN_PAUSE_MS). */
function listenResume(s: TcpState): void {
  if (s.reserveFd < 0) s.reserveFd = reserveOpen();
  const p = s.paused;
  for (let i = 0; i < p.length; i += 2) {
    const cookie = s.pausedCookies[i >> 1]!;
    if (cookie === "" || socketCookie(p[i]!) !== cookie) continue;
    s.loop.epoll.mod(p[i]!, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, p[i + 1]!);
  }
  p.length = 0;
  s.pausedCookies.length = 0;
}

function probePeekOff(): boolean {
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  intBuf[0] = 0;
  const ok = libc.symbols.setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, intBytes, 4) === 0;
  libc.symbols.close(fd);
  return ok;
}

/* ------------------------------------------------------------ frames to tap */

/** Writes the TCP header of a segment to the guest at l4 in buf. */
function tcpHeader(
  S: TcpState,
  buf: Uint8Array,
  dv: DataView,
  l4: number,
  idx: number,
  sidx: number,
  seq: number,
  flags: number,
  hlen: number,
): void {
  const fl = S.c.flows;
  const conns = S.conns;
  dv.setUint16(l4, fl.lport[sidx]!);
  dv.setUint16(l4 + 2, fl.rport[sidx]!);
  dv.setUint32(l4 + 4, seq);
  dv.setUint32(l4 + 8, (flags & ACK) ? conns.seqFromTap[idx]! : 0);
  buf[l4 + 12] = (hlen >> 2) << 4;
  buf[l4 + 13] = flags;
  dv.setUint16(l4 + 14, (flags & SYN) ? Math.min(conns.wndToTap[idx]!, 65535) : windowField(idx));
  dv.setUint16(l4 + 18, 0);
}

/** The window field for the guest: free send buffer space, scaled. */
function windowField(idx: number): number {
  const conns = S!.conns;
  const ws = conns.wsToTap[idx]!;
  const w = conns.wndToTap[idx]! >>> ws;
  return w > 65535 ? 65535 : w;
}

/**
 * Recomputes the window we offer the guest: the room left in the host
 * socket's send buffer (half of SO_SNDBUF holds payload, the rest is
 * accounted to overhead) less what is queued there, or zero while a write
 * to it is blocked. Offering no more than fits means segments from the guest
 * are never refused; a window held back by queued data is watched
 * (WND_LIMITED) and re-offered as the socket drains, see tcpWatchWindows().
 */
function updateWndToTap(S: TcpState, idx: number, now: number): void {
  const conns = S.conns;
  const fd = conns.sock[idx]!;
  void now;
  /* every host socket gets the same SO_SNDBUF (sockOpts()): read once */
  const cap = S.sndbuf >> 1;
  let free = cap;
  if (libc.symbols.ioctl_u32(fd, SIOCOUTQ, intBytes) === 0) free -= intBuf[0]!;
  if (free < 0 || (conns.flags[idx]! & SOCK_BLOCKED)) free = 0;
  const max = 65535 * (1 << conns.wsToTap[idx]!);
  conns.wndToTap[idx] = free > max ? max : free;
  if (free < cap >> 1 && free < max) {
    if (!(conns.flags[idx]! & WND_LIMITED)) {
      conns.flags[idx] = conns.flags[idx]! | WND_LIMITED;
      S.watch[S.watchLen++] = idx;
      if (S.watchLen === 1) timerPeriod(S, TCP_WATCH_INTERVAL_MS);
    }
  } else conns.flags[idx] = conns.flags[idx]! & ~WND_LIMITED;
}

/**
 * Offers the guest more window on connections whose window was held back,
 * once their sockets have drained enough (every TCP_WATCH_INTERVAL_MS).
 * @param now monotonic time in ms
 */
function tcpWatchWindows(now: number): void {
  const s = S!;
  const conns = s.conns;
  const fl = s.c.flows;
  let kept = 0;
  for (let i = 0; i < s.watchLen; i++) {
    const idx = s.watch[i]!;
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP) continue;
    if (conns.sock[idx]! < 0 || !(conns.flags[idx]! & WND_LIMITED)) continue;
    const before = conns.wndToTap[idx]!;
    conns.flags[idx] = conns.flags[idx]! & ~WND_LIMITED;
    updateWndToTap(s, idx, now);
    const after = conns.wndToTap[idx]!;
    if (
      after > before &&
      (after - before >= s.sndbuf >> 3 || !(conns.flags[idx]! & WND_LIMITED))
    ) {
      tcpSendFlags(s, idx, ACK);
    }
    if (conns.flags[idx]! & WND_LIMITED) {
      /* updateWndToTap() appended it again: keep one entry */
      s.watchLen--;
      s.watch[kept++] = idx;
    }
  }
  s.watchLen = kept;
  if (kept === 0) timerPeriod(s, TCP_TIMER_INTERVAL_MS);
}

/**
 * Sends a control segment (no payload) to the guest.
 * @returns true when written
 */
function tcpSendFlags(S: TcpState, idx: number, flags: number): boolean {
  const c = S.c;
  const conns = S.conns;
  const v6 = conns.v6[idx] === 1;
  const sidx = idx * 2 + conns.tapSide[idx]!;
  let hlen = 20;
  if (flags & SYN) hlen += conns.flags[idx]! & WS_OK ? 8 : 4;
  const fl = c.flows;
  const l4 = l2l3Write(
    c,
    ctlBuf,
    ctlDv,
    CTL_ETH,
    v6,
    IPPROTO_TCP,
    fl.laddr,
    sidx * 16,
    fl.raddr,
    sidx * 16,
    hlen,
  );
  let seq = conns.seqToTap[idx]!;
  if ((flags & (SYN | FIN)) !== 0) {
    /* SYN and FIN take a sequence number */
    conns.seqToTap[idx] = (seq + 1) >>> 0;
  } else if (flags & RST) {
    seq = conns.seqToTap[idx]!;
  }
  tcpHeader(S, ctlBuf, ctlDv, l4, idx, sidx, seq, flags, hlen);
  if (flags & SYN) {
    /* MSS from our MTU, and window scaling when the guest asked for it */
    const mtu = c.mtu === 0 ? 65520 : c.mtu;
    const mss = mtu - (v6 ? 60 : 40);
    ctlBuf[l4 + 20] = 2;
    ctlBuf[l4 + 21] = 4;
    ctlDv.setUint16(l4 + 22, mss > 65535 ? 65535 : mss);
    if (conns.flags[idx]! & WS_OK) {
      ctlBuf[l4 + 24] = 1;
      ctlBuf[l4 + 25] = 3;
      ctlBuf[l4 + 26] = 3;
      ctlBuf[l4 + 27] = conns.wsToTap[idx]!;
    }
  }
  if (flags & ACK) conns.seqAckToTap[idx] = conns.seqFromTap[idx]!;
  const ip = CTL_ETH + 14;
  l4Finish(c, ctlBuf, ctlDv, CTL_ETH, l4, hlen, 16, pseudoSum(ctlBuf, ip, v6, IPPROTO_TCP, hlen));
  const frameLen = l4 + hlen - CTL_ETH;
  return tapSendFrame(c, ctlBuf, CTL_ETH, frameLen);
}

/**
 * Sends an RST built from scratch (no connection state): from key[16..32]
 * (the guest's destination) to key[0..16] (the guest).
 */
function rstRaw(
  c: Ctx,
  v6: boolean,
  ourPort: number,
  guestPort: number,
  seq: number,
  ack: number,
  flags: number,
): void {
  const l4 = l2l3Write(c, ctlBuf, ctlDv, CTL_ETH, v6, IPPROTO_TCP, key, 16, key, 0, 20);
  ctlDv.setUint16(l4, ourPort);
  ctlDv.setUint16(l4 + 2, guestPort);
  ctlDv.setUint32(l4 + 4, seq);
  ctlDv.setUint32(l4 + 8, ack);
  ctlBuf[l4 + 12] = 5 << 4;
  ctlBuf[l4 + 13] = flags;
  ctlDv.setUint16(l4 + 14, 0);
  ctlDv.setUint16(l4 + 18, 0);
  l4Finish(
    c,
    ctlBuf,
    ctlDv,
    CTL_ETH,
    l4,
    20,
    16,
    pseudoSum(ctlBuf, CTL_ETH + 14, v6, IPPROTO_TCP, 20),
  );
  tapSendFrame(c, ctlBuf, CTL_ETH, l4 + 20 - CTL_ETH);
  S!.stats.rstToTap++;
}

/**
 * Answers a segment that belongs to no connection with an RST (RFC 9293
 * 3.10.7.1); key holds its addresses (l3Addrs()).
 */
function tcpRstNoConn(
  c: Ctx,
  v6: boolean,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payloadLen: number,
): void {
  if (flags & ACK) {
    rstRaw(c, v6, dport, sport, ack, 0, RST);
    return;
  }
  let end = seq + payloadLen;
  if (flags & SYN) end++;
  if (flags & FIN) end++;
  rstRaw(c, v6, dport, sport, 0, end >>> 0, RST | ACK);
}

/* ------------------------------------------------------ connection lifecycle */

/** Closes a connection: the socket (resetting the peer if asked) and the flow. */
function connClose(S: TcpState, idx: number, rstPeer: boolean): void {
  const conns = S.conns;
  if (idx === holdIdx) holdIdx = -1; /* data held for it goes with it */
  const fd = conns.sock[idx]!;
  if (conns.flags[idx]! & HALF_OPEN) S.halfOpen--;
  if (fd >= 0) {
    if (rstPeer) libc.symbols.setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerBytes, 8);
    libc.symbols.close(fd);
    conns.sock[idx] = -1;
  }
  conns.events[idx] = 0;
  conns.flags[idx] = 0;
  S.c.flows.flowFree(idx);
  S.stats.closed++;
  if (logLevel >= LOG_DEBUG) debug(`TCP flow ${idx}: closed${rstPeer ? " (reset)" : ""}`);
}

/** Resets a connection: RST to the guest and to the host peer. */
function connRst(S: TcpState, idx: number): void {
  if (S.conns.events[idx]! & (ESTABLISHED | SOCK_ACCEPTED | TAP_SYN_ACK_SENT)) {
    tcpSendFlags(S, idx, RST | ACK);
    S.stats.rstToTap++;
  }
  connClose(S, idx, true);
}

/** Closes the connection if both directions are finished. */
function connCheckDone(S: TcpState, idx: number): void {
  const ev = S.conns.events[idx]!;
  if ((ev & (SOCK_FIN_SENT | TAP_FIN_ACKED)) === (SOCK_FIN_SENT | TAP_FIN_ACKED)) {
    flushAck(S, idx);
    connClose(S, idx, false);
  }
}

/** Queues an ACK to the guest, sent after the current batch. */
function queueAck(S: TcpState, idx: number): void {
  const conns = S.conns;
  const f = conns.flags[idx]!;
  conns.flags[idx] = f | ACK_TO_TAP_DUE;
  if (f & ACK_QUEUED) return;
  conns.flags[idx] = f | ACK_TO_TAP_DUE | ACK_QUEUED;
  S.ackQueue[S.ackQueueLen++] = idx;
}

/** Sends a queued ACK now, if one is due. */
function flushAck(S: TcpState, idx: number): void {
  const conns = S.conns;
  if (conns.flags[idx]! & ACK_TO_TAP_DUE) {
    conns.flags[idx] = conns.flags[idx]! & ~ACK_TO_TAP_DUE;
    updateWndToTap(S, idx, performance.now());
    tcpSendFlags(S, idx, ACK);
  }
}

/**
 * After each batch of events: the queued ACKs, then the timer walk when due.
 * @param now monotonic time in ms
 */
function tcpDeferHandler(now: number): void {
  const s = S!;
  const q = s.ackQueue;
  const conns = s.conns;
  const fl = s.c.flows;
  for (let i = 0; i < s.ackQueueLen; i++) {
    const idx = q[i]!;
    conns.flags[idx] = conns.flags[idx]! & ~ACK_QUEUED;
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP) continue;
    if (conns.sock[idx]! < 0) continue;
    flushAck(s, idx);
  }
  s.ackQueueLen = 0;
  void now;
}

/* ----------------------------------------------------------- guest to host */

/**
 * Handles a TCP segment from the guest.
 * @param c execution context
 * @param v6 IPv6 or IPv4
 * @param frame buffer holding the frame
 * @param dv DataView over frame's buffer
 * @param ipOff offset of the IP header
 * @param l4Off offset of the TCP header
 * @param l4Len TCP header and payload length
 * @param now monotonic time in ms
 */
export function tcpTapHandler(
  c: Ctx,
  v6: boolean,
  frame: Uint8Array,
  dv: DataView,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  now: number,
): void {
  const s = S!;
  if (l4Len < 20) {
    c.stats.malformed++;
    return;
  }
  const hlen = (frame[l4Off + 12]! >> 4) * 4;
  if (hlen < 20 || hlen > l4Len) {
    c.stats.malformed++;
    return;
  }
  const sport = dv.getUint16(l4Off);
  const dport = dv.getUint16(l4Off + 2);
  const seq = dv.getUint32(l4Off + 4);
  const ack = dv.getUint32(l4Off + 8);
  const flags = frame[l4Off + 13]! & 0x3f;
  const win = dv.getUint16(l4Off + 14);
  const payloadLen = l4Len - hlen;
  l3Addrs(frame, ipOff, v6, key);

  const sidx = c.flows.flowLookup(IPPROTO_TCP, PIF_TAP, key, 16, key, 0, dport, sport);
  if (sidx < 0) {
    if (flags & RST) return;
    if ((flags & (SYN | ACK)) === SYN) {
      if (!tcpOptsParse(dv, l4Off, opts)) {
        c.stats.malformed++;
        return;
      }
      connFromTap(s, v6, seq, win, sport, dport, now);
      return;
    }
    tcpRstNoConn(c, v6, sport, dport, seq, ack, flags, payloadLen);
    return;
  }
  const idx = sidx >> 1;
  /* the data held for this connection goes first, unless this segment only adds to it */
  if (idx === holdIdx && (payloadLen === 0 || (flags & (SYN | FIN | RST)) !== 0)) holdFlush(s);
  const conns = s.conns;
  conns.tsAct[idx] = now;
  const ev = conns.events[idx]!;

  if (flags & RST) {
    /* in window (loosely): close both sides */
    connClose(s, idx, true);
    return;
  }

  if (ev & SOCK_ACCEPTED) {
    /* we sent a SYN to the guest: expect its SYN-ACK */
    if ((flags & ACK) && ack !== conns.seqToTap[idx]) {
      /* not for our SYN (RFC 9293 3.10.7.3): a reset from its ACK number */
      s.stats.dropped++;
      rstRaw(c, v6, dport, sport, ack, 0, RST);
      return;
    }
    if ((flags & (SYN | ACK)) !== (SYN | ACK)) {
      s.stats.dropped++;
      return;
    }
    if (!tcpOptsParse(dv, l4Off, opts)) {
      c.stats.malformed++;
      return;
    }
    conns.seqFromTap[idx] = (seq + 1) >>> 0;
    conns.seqAckFromTap[idx] = ack;
    conns.retrans[idx] = 0;
    connOpts(s, idx, true);
    conns.wndFromTap[idx] = win;
    conns.event(idx, ESTABLISHED);
    conns.flags[idx] = conns.flags[idx]! & ~ACK_FROM_TAP_DUE;
    updateWndToTap(s, idx, now);
    tcpSendFlags(s, idx, ACK);
    dataFromSock(s, idx, now);
    return;
  }

  if (ev & TAP_SYN_RCVD) {
    if (!(ev & TAP_SYN_ACK_SENT)) return; /* connect still in progress */
    if (flags & SYN) {
      /* the guest's SYN again: our SYN-ACK was lost, answer it again */
      if (!(flags & ACK) && ((seq + 1) >>> 0) === conns.seqFromTap[idx]) synResend(s, idx);
      return;
    }
    if ((flags & ACK) === 0) return;
    if (ack !== conns.seqToTap[idx]) {
      /* an unacceptable ACK in SYN-RECEIVED (RFC 9293 3.10.7.4): a reset
       * from its ACK number; the connection stays */
      s.stats.dropped++;
      rstRaw(c, v6, dport, sport, ack, 0, RST);
      return;
    }
    conns.event(idx, ESTABLISHED);
    conns.seqAckFromTap[idx] = ack;
    conns.retrans[idx] = 0;
    conns.flags[idx] = conns.flags[idx]! & ~ACK_FROM_TAP_DUE;
    conns.wndFromTap[idx] = win << conns.wsFromTap[idx]!;
    if (payloadLen > 0 || (flags & FIN)) {
      dataFromTap(s, idx, frame, l4Off + hlen, payloadLen, seq, flags, now);
    }
    dataFromSock(s, idx, now);
    return;
  }

  if (!(ev & ESTABLISHED)) return;
  if (flags & SYN) {
    /* its SYN-ACK again: our ACK was lost */
    queueAck(s, idx);
    return;
  }

  if (flags & ACK) ackFromTap(s, idx, ack, win, payloadLen, flags, now);
  if (conns.sock[idx]! < 0) return;
  if (payloadLen > 0 || (flags & FIN)) {
    dataFromTap(s, idx, frame, l4Off + hlen, payloadLen, seq, flags, now);
  }
  if (conns.sock[idx]! >= 0) connCheckDone(s, idx);
}

/** Applies the guest's SYN options: MSS and window scaling. */
function connOpts(S: TcpState, idx: number, ourSynHadWs: boolean): void {
  const conns = S.conns;
  const v6 = conns.v6[idx] === 1;
  let mss = opts.mss > 0 ? opts.mss : MSS_DEFAULT;
  const max = v6 ? PAYLOAD_MAX6 : PAYLOAD_MAX4;
  if (mss > max) mss = max;
  /* a sane floor, but never beyond what our link carries */
  const mtu = S.c.mtu === 0 ? 65520 : S.c.mtu;
  const link = mtu - (v6 ? 60 : 40);
  const min = v6 ? MSS_MIN6 : MSS_MIN4;
  if (mss < min) mss = min < link ? min : link;
  if (mss < 1) mss = 1;
  conns.mss[idx] = mss;
  if (opts.wscale >= 0 && ourSynHadWs) {
    conns.wsFromTap[idx] = opts.wscale > 14 ? 14 : opts.wscale;
    conns.wsToTap[idx] = WS_TO_TAP;
    conns.flags[idx] = conns.flags[idx]! | WS_OK;
  } else {
    conns.wsFromTap[idx] = 0;
    conns.wsToTap[idx] = 0;
    conns.flags[idx] = conns.flags[idx]! & ~WS_OK;
  }
}

/** A SYN from the guest: open the host socket. */
function connFromTap(
  S: TcpState,
  v6: boolean,
  seq: number,
  win: number,
  sport: number,
  dport: number,
  now: number,
): void {
  const c = S.c;
  const fl = c.flows;
  /* target: the destination, translated, if the flow may exist at all */
  const why = fwdTapTarget(c, v6, key, 0, sport, dport, true);
  if (why !== FWD_OK) {
    /* as pasta: no socket, no answer */
    S.stats.refused++;
    fwdRefusalLog("TCP", v6, why, key, 0, sport, dport);
    return;
  }
  /* at the half-open cap: the oldest pending connect makes room */
  if (S.halfOpen >= S.halfOpenMax) halfOpenDropOldest(S);
  const idx = fl.flowAllocFor(FLOW_TYPE_TCP);
  if (idx < 0) {
    S.stats.noFlow++;
    tcpRstSyn(S, v6, seq, sport, dport);
    return;
  }
  timerQuiet(S, false);
  fl.flowInitiate(idx, PIF_TAP, key, 16, key, 0, dport, sport);
  for (let i = 48; i < 64; i++) key[i] = 0;
  fl.flowTarget(idx, PIF_HOST, key, 48, key, 32, 0, dport);
  fl.flowSetType(idx, FLOW_TYPE_TCP);

  const fd = libc.symbols.socket(
    v6 ? AF_INET6 : AF_INET,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0 || fdOverBudget(fd)) {
    /* no descriptor: an RST for this connection only */
    if (fd >= 0) libc.symbols.close(fd);
    else if (errno() === ERRNO.EMFILE || errno() === ERRNO.ENFILE) fdBudget.exhausted++;
    fl.flowAllocCancel(idx);
    S.stats.noFd++;
    tcpRstSyn(S, v6, seq, sport, dport);
    return;
  }
  sockOpts(fd);
  const len = sockaddrFromInany(sa, key, 32, dport, v6);
  const rc = libc.symbols.connect(fd, sa, len);
  const e = rc < 0 ? errno() : 0;
  if (rc < 0 && e !== ERRNO.EINPROGRESS) {
    libc.symbols.close(fd);
    fl.flowAllocCancel(idx);
    if (logLevel >= LOG_DEBUG) debug(`TCP: connect to port ${dport} failed: errno ${e}`);
    tcpRstSyn(S, v6, seq, sport, dport);
    return;
  }
  const conns = S.conns;
  conns.reset(idx);
  conns.sock[idx] = fd;
  conns.tapSide[idx] = 0;
  conns.v6[idx] = v6 ? 1 : 0;
  conns.seqFromTap[idx] = (seq + 1) >>> 0;
  conns.seqAckToTap[idx] = (seq + 1) >>> 0;
  const start = isn();
  conns.seqToTap[idx] = start;
  conns.seqAckFromTap[idx] = start;
  connOpts(S, idx, true);
  conns.wndFromTap[idx] = win;
  conns.event(idx, TAP_SYN_RCVD);
  conns.tsAck[idx] = now;
  conns.tsAct[idx] = now;
  fl.flowActivate(idx);
  fl.flowHashInsert(idx * 2);
  S.loop.epoll.add(fd, SOCK_EVENTS, EPOLL_TYPE_TCP, idx);
  S.stats.opened++;
  if (rc === 0) connectFinish(S, idx, now);
  else halfOpenAdd(S, idx);
}

/** Counts a connection as half-open and queues it, newest last. */
function halfOpenAdd(S: TcpState, idx: number): void {
  const conns = S.conns;
  conns.flags[idx] = conns.flags[idx]! | HALF_OPEN;
  S.halfOpen++;
  const gen = (S.halfOpenLast + 1) | 0;
  S.halfOpenLast = gen;
  S.halfOpenGen[idx] = gen;
  const ring = S.halfOpenRing;
  const slots = ring.length >> 1;
  if (S.halfOpenLen === slots) halfOpenCompact(S, ring);
  const at = ((S.halfOpenHead + S.halfOpenLen) % slots) * 2;
  S.halfOpenRing[at] = idx;
  S.halfOpenRing[at + 1] = gen;
  S.halfOpenLen++;
}

/** Whether a ring entry still names a half-open connection. */
function halfOpenLive(S: TcpState, idx: number, gen: number): boolean {
  return S.c.flows.state[idx] === FLOW_STATE_ACTIVE && S.c.flows.type[idx] === FLOW_TYPE_TCP &&
    (S.conns.flags[idx]! & HALF_OPEN) !== 0 && S.halfOpenGen[idx] === gen;
}

/**
 * Drops the stale entries of the ring (connections no longer half-open),
 * keeping the order, into `to` (the same ring or a larger one). At most
 * halfOpenMax entries are live, and the ring has room for four times that:
 * compaction runs once every 3 * halfOpenMax additions at most.
 */
function halfOpenCompact(S: TcpState, to: Int32Array): void {
  const from = S.halfOpenRing;
  const slots = from.length >> 1;
  let kept = 0;
  for (let i = 0; i < S.halfOpenLen; i++) {
    const at = ((S.halfOpenHead + i) % slots) * 2;
    const idx = from[at]!;
    const gen = from[at + 1]!;
    if (!halfOpenLive(S, idx, gen)) continue;
    to[kept * 2] = idx;
    to[kept * 2 + 1] = gen;
    kept++;
  }
  S.halfOpenRing = to;
  S.halfOpenHead = 0;
  S.halfOpenLen = kept;
}

/**
 * Gives up the oldest half-open connection: RST to the guest (acknowledging
 * its SYN, as for a refused connect), socket closed, flow freed.
 */
function halfOpenDropOldest(S: TcpState): void {
  const ring = S.halfOpenRing;
  const slots = ring.length >> 1;
  while (S.halfOpenLen > 0) {
    const at = S.halfOpenHead * 2;
    const idx = ring[at]!;
    const gen = ring[at + 1]!;
    S.halfOpenHead = (S.halfOpenHead + 1) % slots;
    S.halfOpenLen--;
    if (!halfOpenLive(S, idx, gen)) continue;
    if (logLevel >= LOG_DEBUG) debug(`TCP flow ${idx}: half-open cap reached, connect given up`);
    S.conns.events[idx] = TAP_SYN_ACK_SENT;
    tcpSendFlags(S, idx, RST | ACK);
    S.stats.rstToTap++;
    S.stats.halfOpenDropped++;
    connClose(S, idx, false);
    return;
  }
}

/** RST for a SYN we could not serve (key holds its addresses). */
function tcpRstSyn(S: TcpState, v6: boolean, seq: number, sport: number, dport: number): void {
  rstRaw(S.c, v6, dport, sport, 0, (seq + 1) >>> 0, RST | ACK);
}

/**
 * Sends our SYN (inbound connection) or SYN-ACK (outbound) to the guest
 * again, from our initial sequence number.
 */
function synResend(S: TcpState, idx: number): void {
  const conns = S.conns;
  conns.seqToTap[idx] = conns.seqAckFromTap[idx]!;
  tcpSendFlags(S, idx, conns.events[idx]! & SOCK_ACCEPTED ? SYN : SYN | ACK);
}

/** The host connect completed (or failed): SYN-ACK (or RST) to the guest. */
function connectFinish(S: TcpState, idx: number, now: number): void {
  const conns = S.conns;
  intLen[0] = 4;
  intBuf[0] = 0;
  libc.symbols.getsockopt(conns.sock[idx]!, SOL_SOCKET, SO_ERROR, intBytes, intLenBytes);
  if (intBuf[0] === 0 && (conns.flags[idx]! & HALF_OPEN)) {
    conns.flags[idx] = conns.flags[idx]! & ~HALF_OPEN;
    S.halfOpen--;
  }
  if (intBuf[0] !== 0) {
    if (logLevel >= LOG_DEBUG) debug(`TCP flow ${idx}: connect failed: errno ${intBuf[0]}`);
    /* RST in reply to the guest's SYN: ack its sequence */
    conns.events[idx] = TAP_SYN_ACK_SENT;
    tcpSendFlags(S, idx, RST | ACK);
    S.stats.rstToTap++;
    connClose(S, idx, false);
    return;
  }
  if (S.peekOff) {
    intBuf[0] = 0;
    libc.symbols.setsockopt(conns.sock[idx]!, SOL_SOCKET, SO_PEEK_OFF, intBytes, 4);
  }
  updateWndToTap(S, idx, now);
  tcpSendFlags(S, idx, SYN | ACK);
  conns.event(idx, TAP_SYN_ACK_SENT);
  conns.flags[idx] = conns.flags[idx]! | ACK_FROM_TAP_DUE;
  conns.tsAck[idx] = now;
}

/** An ACK from the guest: consume acknowledged data, note its window, resend on dup ACKs. */
function ackFromTap(
  S: TcpState,
  idx: number,
  ack: number,
  win: number,
  payloadLen: number,
  flags: number,
  now: number,
): void {
  const conns = S.conns;
  const acked = (ack - conns.seqAckFromTap[idx]!) | 0;
  const inflight = (conns.seqToTap[idx]! - conns.seqAckFromTap[idx]!) | 0;
  const wnd = win << conns.wsFromTap[idx]!;
  let resend = false;
  if (acked > 0 && acked <= inflight) {
    let data = acked;
    const finAcked = (conns.events[idx]! & TAP_FIN_SENT) !== 0 && ack === conns.seqToTap[idx];
    if (finAcked) data--;
    if (data > 0) {
      libc.symbols.recv(
        conns.sock[idx]!,
        null as unknown as Uint8Array<ArrayBuffer>,
        data,
        MSG_TRUNC | MSG_DONTWAIT,
      );
    }
    conns.seqAckFromTap[idx] = ack;
    conns.dupAcks[idx] = 0;
    conns.retrans[idx] = 0;
    conns.tsAck[idx] = now;
    if (finAcked) conns.event(idx, TAP_FIN_ACKED);
    if (ack === conns.seqToTap[idx]) conns.flags[idx] = conns.flags[idx]! & ~ACK_FROM_TAP_DUE;
  } else if (
    acked === 0 && inflight > 0 && payloadLen === 0 && (flags & FIN) === 0 &&
    wnd === conns.wndFromTap[idx]
  ) {
    if (++conns.dupAcks[idx]! === 2) {
      retransmit(S, idx);
      conns.dupAcks[idx] = 0;
      resend = true;
    }
  }
  /* resend: send again now, not at the next ACK or ACK_TIMEOUT */
  const opened = wnd > conns.wndFromTap[idx]! || acked > 0 || resend;
  conns.wndFromTap[idx] = wnd;
  if (resend) conns.flags[idx] = conns.flags[idx]! & ~SOCK_DRAINED;
  /* more to send only if the last read did not empty the socket */
  if (
    opened && !(conns.flags[idx]! & SOCK_DRAINED) &&
    !(conns.events[idx]! & SOCK_FIN_RCVD && conns.events[idx]! & TAP_FIN_SENT)
  ) {
    dataFromSock(S, idx, now);
  }
}

/** Rewinds to the last byte the guest acknowledged, to send again. */
function retransmit(S: TcpState, idx: number): void {
  const conns = S.conns;
  S.stats.retransmits++;
  conns.seqToTap[idx] = conns.seqAckFromTap[idx]!;
  /* what was sent is to be read again: the socket is not drained for us */
  conns.flags[idx] = conns.flags[idx]! & ~SOCK_DRAINED;
  if (S.peekOff) {
    intBuf[0] = 0;
    libc.symbols.setsockopt(conns.sock[idx]!, SOL_SOCKET, SO_PEEK_OFF, intBytes, 4);
  }
  /* a FIN not yet acknowledged goes again after the data */
  if ((conns.events[idx]! & (TAP_FIN_SENT | TAP_FIN_ACKED)) === TAP_FIN_SENT) {
    conns.events[idx] = conns.events[idx]! & ~(TAP_FIN_SENT | SOCK_FIN_RCVD);
  }
}

/**
 * Points an iovec at a segment's payload in a frame (the frame buffer's
 * address is cached by identity: no pointer object per segment).
 * @param dv view over the iovec array
 * @param o byte offset of the iovec in it
 * @param frame the frame buffer
 * @param off payload offset in it
 * @param len payload length
 */
function iovSegment(dv: DataView, o: number, frame: Uint8Array, off: number, len: number): void {
  if (frame !== dataFrame) {
    dataFrame = frame;
    dataFrameAddr = Number(addressOf(frame as Uint8Array<ArrayBuffer>));
  }
  const at = dataFrameAddr + off;
  dv.setUint32(o, at >>> 0, true);
  dv.setUint32(o + 4, Math.floor(at / 4294967296) >>> 0, true);
  dv.setUint32(o + 8, len, true);
}

/** Flush hook of a tap batch (tap.ts): writes the guest data held (holdFlush()). */
function tcpTapFlush(): void {
  if (S !== null) holdFlush(S);
}

/** Writes the guest data held for one connection with one sendmsg() (dataWrite()). */
function holdFlush(S: TcpState): void {
  const idx = holdIdx;
  if (idx < 0) return;
  const count = holdCount;
  const bytes = holdBytes;
  holdIdx = -1;
  holdCount = 0;
  holdBytes = 0;
  if (S.conns.sock[idx]! < 0) return;
  holdMsgDv.setUint32(24, count, true);
  dataWrite(S, idx, holdMsg, bytes);
}

/**
 * Writes guest data to a connection's socket with one sendmsg() and moves
 * seqFromTap by what the socket took: what it did not take is not
 * acknowledged, and the guest sends it again (SOCK_BLOCKED meanwhile).
 * @param msg the msghdr, its iovecs on the data
 * @param len bytes it carries
 * @returns bytes written, or -1 when a socket error reset the connection
 */
function dataWrite(S: TcpState, idx: number, msg: Uint8Array, len: number): number {
  const conns = S.conns;
  S.stats.dataWrites++;
  let written = libc.symbols.sendmsg(conns.sock[idx]!, msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (written < 0) {
    if (errno() !== ERRNO.EAGAIN) {
      connRst(S, idx);
      return -1;
    }
    written = 0;
  }
  conns.seqFromTap[idx] = (conns.seqFromTap[idx]! + written) >>> 0;
  if (written < len) {
    conns.flags[idx] = conns.flags[idx]! | SOCK_BLOCKED;
    S.stats.partialWrites++;
  }
  return written;
}

/**
 * Whether a segment of guest data is for holding (see the module doc): in a
 * tap batch, with payload and no FIN, next in sequence after what is written
 * and held, for a socket that took all data so far.
 */
function dataHoldable(S: TcpState, idx: number, len: number, seq: number, flags: number): boolean {
  const conns = S.conns;
  if (!tapBatch.active || len === 0 || (flags & FIN) !== 0) return false;
  if ((conns.flags[idx]! & SOCK_BLOCKED) !== 0 || (conns.events[idx]! & SOCK_FIN_SENT) !== 0) {
    return false;
  }
  const held = idx === holdIdx ? holdBytes : 0;
  return seq === ((conns.seqFromTap[idx]! + held) >>> 0);
}

/**
 * Holds a segment of guest data (dataHoldable()) for one sendmsg() with the
 * connection's next segments of this tap batch; its ACK is queued.
 */
function dataHold(S: TcpState, idx: number, frame: Uint8Array, off: number, len: number): void {
  if (idx !== holdIdx || holdCount === TAP_BATCH) holdFlush(S);
  iovSegment(holdIovDv, holdCount * 16, frame, off, len);
  holdIdx = idx;
  holdCount++;
  holdBytes += len;
  queueAck(S, idx);
}

/** Payload (and FIN) from the guest: to the socket. */
function dataFromTap(
  S: TcpState,
  idx: number,
  frame: Uint8Array,
  off: number,
  len: number,
  seq: number,
  flags: number,
  now: number,
): void {
  if (dataHoldable(S, idx, len, seq, flags)) {
    dataHold(S, idx, frame, off, len);
    return;
  }
  if (idx === holdIdx) holdFlush(S);
  const conns = S.conns;
  if (conns.sock[idx]! < 0) return;
  const expected = conns.seqFromTap[idx]!;
  const diff = (seq - expected) | 0;
  if (diff > 0) {
    /* data missing before this segment: a duplicate ACK at once, so that the
     * guest's fast retransmit (three of them) sends the gap again */
    S.stats.dropped++;
    updateWndToTap(S, idx, now);
    tcpSendFlags(S, idx, ACK);
    return;
  }
  if (diff < 0) {
    const skip = -diff;
    if (skip >= len) {
      /* all old: acknowledge again (a retransmitted FIN included) */
      queueAck(S, idx);
      return;
    }
    off += skip;
    len -= skip;
  }
  let written = len;
  if (len > 0) {
    if (conns.events[idx]! & SOCK_FIN_SENT) return;
    iovSegment(dataIovDv, 0, frame, off, len);
    written = dataWrite(S, idx, dataMsg, len);
    if (written < 0) return;
  }
  if ((flags & FIN) && written === len && !(conns.events[idx]! & TAP_FIN_RCVD)) {
    conns.seqFromTap[idx] = (conns.seqFromTap[idx]! + 1) >>> 0;
    conns.event(idx, TAP_FIN_RCVD);
    libc.symbols.shutdown(conns.sock[idx]!, SHUT_WR);
    conns.event(idx, SOCK_FIN_SENT);
  }
  conns.tsAct[idx] = now;
  queueAck(S, idx);
}

/* ----------------------------------------------------------- host to guest */

/** Sends socket data to the guest, as much as its window allows. */
function dataFromSock(S: TcpState, idx: number, now: number): void {
  const conns = S.conns;
  const c = S.c;
  const fd = conns.sock[idx]!;
  if (fd < 0 || !(conns.events[idx]! & ESTABLISHED)) return;
  const v6 = conns.v6[idx] === 1;
  const mss = conns.mss[idx]!;
  const sidx = idx * 2 + conns.tapSide[idx]!;
  const fl = c.flows;
  for (let round = 0; round < 64; round++) {
    if (conns.events[idx]! & TAP_FIN_SENT) return;
    const inflight = (conns.seqToTap[idx]! - conns.seqAckFromTap[idx]!) | 0;
    const avail = conns.wndFromTap[idx]! - inflight;
    if (avail <= 0) return;
    let nframes = Math.ceil(avail / mss);
    if (nframes > TCP_FRAMES) nframes = TCP_FRAMES;
    let want = 0;
    for (let i = 0; i < nframes; i++) {
      const l = i === nframes - 1 ? Math.min(mss, avail - i * mss) : mss;
      iovDv.setUint32((i + 1) * 16 + 8, l, true);
      want += l;
    }
    let iovcnt = nframes;
    if (S.peekOff) {
      msgDv.setBigUint64(16, iovAddr1, true);
    } else {
      /* skip what was already sent with a discard buffer first */
      if (discard === null || discard.length < inflight) {
        discard = new Uint8Array(Math.max(inflight, 1 << 20) * 2);
      }
      iovDv.setBigUint64(0, addressOf(discard), true);
      iovDv.setUint32(8, inflight, true);
      msgDv.setBigUint64(16, iovAddr0, true);
      iovcnt++;
    }
    msgDv.setUint32(24, iovcnt, true);
    msgDv.setUint32(28, 0, true);
    let n = libc.symbols.recvmsg(fd, msg, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      if (e === ERRNO.EAGAIN) {
        conns.flags[idx] = conns.flags[idx]! | SOCK_DRAINED;
        return;
      }
      if (e === ERRNO.EINTR) return;
      connRst(S, idx);
      return;
    }
    const read = n;
    if (!S.peekOff) n -= inflight;
    if (n <= 0) {
      /* without SO_PEEK_OFF, n === 0 is also "nothing new after what was
       * sent": only an empty read is the end of file */
      if (read === 0) {
        /* end of file, all data sent: FIN to the guest */
        if (!(conns.events[idx]! & TAP_FIN_SENT)) {
          conns.event(idx, SOCK_FIN_RCVD);
          tcpSendFlags(S, idx, FIN | ACK);
          conns.event(idx, TAP_FIN_SENT);
          conns.flags[idx] = conns.flags[idx]! | ACK_FROM_TAP_DUE;
          conns.tsAck[idx] = now;
        }
      }
      return;
    }
    if (inflight === 0) conns.tsAck[idx] = now;
    /* one frame per MSS-sized chunk, all handed to the tap at once */
    let sent = 0;
    let i = 0;
    updateWndToTap(S, idx, now);
    let seq = conns.seqToTap[idx]!;
    while (sent < n) {
      const len = Math.min(mss, n - sent);
      const eth = ethOff(i, v6);
      const l4 = l2l3Write(
        c,
        frames,
        framesDv,
        eth,
        v6,
        IPPROTO_TCP,
        fl.laddr,
        sidx * 16,
        fl.raddr,
        sidx * 16,
        20 + len,
      );
      tcpHeader(S, frames, framesDv, l4, idx, sidx, seq, sent + len === n ? ACK | PSH : ACK, 20);
      l4Finish(
        c,
        frames,
        framesDv,
        eth,
        l4,
        20 + len,
        16,
        pseudoSum(frames, eth + 14, v6, IPPROTO_TCP, 20 + len),
      );
      const frameLen = 14 + (v6 ? 40 : 20) + 20 + len;
      if (pcapOn) pcapFrame(frames, eth, frameLen);
      batchOffs[i] = eth - c.tapHdrLen;
      batchLens[i] = frameLen + c.tapHdrLen;
      seq = (seq + len) >>> 0;
      sent += len;
      i++;
    }
    const w = c.tap.sendFrames(frames, batchOffs, batchLens, i);
    const done = w < 0 ? 0 : w;
    if (done > 0) {
      /* every frame but the last carries a full MSS */
      c.stats.framesOut += done;
      conns.seqToTap[idx] = (conns.seqToTap[idx]! + (done === i ? n : done * mss)) >>> 0;
      conns.seqAckToTap[idx] = conns.seqFromTap[idx]!;
    }
    if (done < i) {
      /* tap queue full: send the rest later, from the first frame not sent */
      if (S.peekOff) {
        intBuf[0] = (conns.seqToTap[idx]! - conns.seqAckFromTap[idx]!) | 0;
        libc.symbols.setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, intBytes, 4);
      }
      conns.flags[idx] = (conns.flags[idx]! | ACK_FROM_TAP_DUE) & ~SOCK_DRAINED;
      return;
    }
    conns.flags[idx] = (conns.flags[idx]! | ACK_FROM_TAP_DUE) & ~ACK_TO_TAP_DUE;
    conns.tsAct[idx] = now;
    if (n < want) {
      /* end of file behind the data: read again to find it */
      if (conns.flags[idx]! & SOCK_HUP) continue;
      /* socket drained: wait for the next edge */
      conns.flags[idx] = conns.flags[idx]! | SOCK_DRAINED;
      return;
    }
  }
}

/**
 * Epoll handler for connection sockets.
 * @param fd the socket
 * @param idx flow index
 * @param events EPOLL* mask
 * @param now monotonic time in ms
 */
function tcpSockHandler(fd: number, idx: number, events: number, now: number): void {
  const s = S!;
  const conns = s.conns;
  if (s.c.flows.state[idx] !== FLOW_STATE_ACTIVE || conns.sock[idx] !== fd) return;
  const ev = conns.events[idx]!;
  /* remember end of file even before the connection is established: the
   * edge does not come again */
  if (events & (EPOLLRDHUP | EPOLLHUP)) conns.flags[idx] = conns.flags[idx]! | SOCK_HUP;
  if (ev & TAP_SYN_RCVD) {
    if (!(ev & TAP_SYN_ACK_SENT) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      connectFinish(s, idx, now);
    }
    return;
  }
  if (ev & SOCK_ACCEPTED) {
    if (events & (EPOLLERR | EPOLLHUP)) connRst(s, idx);
    return;
  }
  if (events & EPOLLERR) {
    connRst(s, idx);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
    conns.flags[idx] = conns.flags[idx]! & ~SOCK_DRAINED;
    dataFromSock(s, idx, now);
    /* end of file came with the last data, in one edge: read again to find
     * it, or the FIN would wait for the guest's next ACK */
    if ((events & (EPOLLRDHUP | EPOLLHUP)) && conns.sock[idx]! >= 0) dataFromSock(s, idx, now);
  }
  if (conns.sock[idx]! < 0) return;
  if ((events & EPOLLOUT) && (conns.flags[idx]! & SOCK_BLOCKED)) {
    /* room in the send buffer again: open the window, then three duplicate
     * ACKs so that the guest retransmits what did not fit at once */
    conns.flags[idx] = conns.flags[idx]! & ~SOCK_BLOCKED;
    updateWndToTap(s, idx, now);
    for (let i = 0; i < 4; i++) tcpSendFlags(s, idx, ACK);
  }
  connCheckDone(s, idx);
}

/* ------------------------------------------------------------- inbound (-t) */

/**
 * Epoll handler for listening sockets: accepts and starts connections to
 * the guest.
 * @param fd the listening socket
 * @param data the listener's reference {port, pif, family} (fwd/listeners.ts)
 * @param _events EPOLL* mask
 * @param now monotonic time in ms
 */
function tcpListenHandler(fd: number, data: number, _events: number, now: number): void {
  const s = S!;
  const c = s.c;
  const l = s.listeners;
  /* (a listener closed meanwhile has no slot: its connections are closed) */
  const slot = l === null ? -1 : l.lookup(FWD_TCP, data, fd);
  for (let n = 0; n < 64; n++) {
    saLen[0] = sa.length;
    const cfd = libc.symbols.accept4(fd, sa, saLenBytes, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      const e = errno();
      if (e !== ERRNO.EMFILE && e !== ERRNO.ENFILE) return;
      fdBudget.exhausted++;
      refusePending(s, fd, data, now);
      if (s.paused.length > 0) return;
      continue;
    }
    if (fdOverBudget(cfd)) {
      /* beyond the flows' share of descriptors: refused, as at EMFILE */
      s.stats.refusedFds++;
      libc.symbols.setsockopt(cfd, SOL_SOCKET, SO_LINGER, lingerBytes, 8);
      libc.symbols.close(cfd);
      continue;
    }
    if (slot < 0) {
      libc.symbols.close(cfd);
      continue;
    }
    const v6 = l!.v6[slot] === 1;
    const lport = l!.port[slot]!;
    const dport = l!.target[slot]!;
    if (l!.pif[slot] === PIF_SPLICE) {
      /* from the guest's loopback (-T): to the host's loopback, spliced */
      spliceConnect(cfd, v6, dport, false);
      continue;
    }
    const peerPort = sockaddrToInany(sa, key, 0);
    if (s.splice && peerPort >= 0 && inanyLoopback(key, 0)) {
      /* a client on the host's loopback: spliced over the guest's loopback
       * interface, to the guest's address unless --host-lo-to-ns-lo */
      if (s.spliceToLoopback) spliceConnect(cfd, v6, dport, true);
      else {
        fwdGuestAddr(c, v6, key, 32);
        spliceConnect(cfd, v6, dport, true, key, 32);
      }
      continue;
    }
    const ip = v6 ? c.ip6 : c.ip4;
    if (peerPort < 0 || !ip.enabled || c.tapFd < 0) {
      /* (no tap with --splice-only: only loopback clients get through) */
      libc.symbols.close(cfd);
      continue;
    }
    /* our side towards the guest: the client, seen through the NAT */
    for (let i = 0; i < 16; i++) key[16 + i] = key[i]!;
    fwdNatFromHost(c, key, 16);
    /* the guest's address */
    fwdGuestAddr(c, v6, key, 32);
    for (let i = 48; i < 64; i++) key[i] = 0;
    const fl = c.flows;
    const idx = fl.flowAllocFor(FLOW_TYPE_TCP);
    if (idx < 0) {
      libc.symbols.close(cfd);
      continue;
    }
    timerQuiet(s, false);
    fl.flowInitiate(idx, PIF_HOST, key, 48, key, 0, lport, peerPort);
    fl.flowTarget(idx, PIF_TAP, key, 16, key, 32, peerPort, dport);
    fl.flowSetType(idx, FLOW_TYPE_TCP);
    fl.flowActivate(idx);
    if (!fl.flowHashInsert(idx * 2 + 1)) {
      /* same addresses and ports as a live connection */
      fl.flowFree(idx);
      libc.symbols.close(cfd);
      continue;
    }
    const conns = s.conns;
    conns.reset(idx);
    conns.sock[idx] = cfd;
    conns.tapSide[idx] = 1;
    conns.v6[idx] = v6 ? 1 : 0;
    const start = isn();
    conns.seqToTap[idx] = start;
    conns.seqAckFromTap[idx] = start;
    conns.seqFromTap[idx] = 0;
    conns.flags[idx] = WS_OK | ACK_FROM_TAP_DUE;
    conns.wsToTap[idx] = WS_TO_TAP;
    conns.event(idx, SOCK_ACCEPTED);
    conns.tsAck[idx] = now;
    conns.tsAct[idx] = now;
    sockOpts(cfd);
    if (s.peekOff) {
      intBuf[0] = 0;
      libc.symbols.setsockopt(cfd, SOL_SOCKET, SO_PEEK_OFF, intBytes, 4);
    }
    s.loop.epoll.add(cfd, SOCK_EVENTS, EPOLL_TYPE_TCP, idx);
    updateWndToTap(s, idx, now);
    tcpSendFlags(s, idx, SYN);
    s.stats.opened++;
  }
}

/* ------------------------------------------------------------------ timers */

/**
 * The connection walk: timeouts, retransmissions, window updates.
 * @param now monotonic time in ms
 */
export function tcpTimer(now: number): void {
  const s = S;
  if (s === null) return;
  const fl = s.c.flows;
  const conns = s.conns;
  const max = fl.maxUsed;
  let open = 0;
  for (let idx = 0; idx < max; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP) continue;
    open++;
    if (conns.sock[idx]! < 0) continue;
    const ev = conns.events[idx]!;
    const f = conns.flags[idx]!;
    const since = now - conns.tsAck[idx]!;
    if (!(ev & ESTABLISHED)) {
      if (ev & (SOCK_ACCEPTED | TAP_SYN_ACK_SENT)) {
        /* our SYN or SYN-ACK, unanswered: lost, or its tap write failed */
        if (since > tcpRto(SYN_RTO_MS, conns.retrans[idx]!)) {
          if (conns.retrans[idx]! >= TCP_SYN_RETRIES) {
            connRst(s, idx);
            continue;
          }
          conns.retrans[idx] = conns.retrans[idx]! + 1;
          synResend(s, idx);
          conns.tsAck[idx] = now;
        }
      } else if (since > SYN_TIMEOUT_MS) connRst(s, idx);
      continue;
    }
    if (now - conns.tsAct[idx]! > ACT_TIMEOUT_MS) {
      connRst(s, idx);
      continue;
    }
    if (
      conns.wndFromTap[idx] === 0 && conns.seqToTap[idx] === conns.seqAckFromTap[idx] &&
      !(ev & TAP_FIN_SENT) && !(f & SOCK_DRAINED) && since >= PERSIST_INTERVAL_MS
    ) {
      /* zero window with data waiting: probe it (RFC 9293 3.8.6.1), in case
       * the guest's window update was lost; its answer carries the window */
      conns.seqToTap[idx] = (conns.seqToTap[idx]! - 1) >>> 0;
      tcpSendFlags(s, idx, ACK);
      conns.seqToTap[idx] = (conns.seqToTap[idx]! + 1) >>> 0;
      conns.tsAck[idx] = now;
      s.stats.windowProbes++;
    }
    if (f & ACK_FROM_TAP_DUE) {
      if (since > tcpRto(ACK_TIMEOUT_MS, conns.retrans[idx]!)) {
        if (conns.seqToTap[idx] === conns.seqAckFromTap[idx]) {
          conns.flags[idx] = f & ~ACK_FROM_TAP_DUE;
          /* nothing in flight, but the socket may hold more (a failed tap write) */
          if (!(f & SOCK_DRAINED)) dataFromSock(s, idx, now);
        } else if (
          conns.retrans[idx]! >=
            tcpAckRetries(ev, conns.seqToTap[idx]!, conns.seqAckFromTap[idx]!)
        ) {
          connRst(s, idx);
          continue;
        } else {
          conns.retrans[idx] = conns.retrans[idx]! + 1;
          retransmit(s, idx);
          conns.tsAck[idx] = now;
          dataFromSock(s, idx, now);
        }
      }
    }
  }
  s.lastTimer = now;
  fdBudgetTick(now);
  if (s.paused.length > 0 && now >= s.pausedUntil) listenResume(s);
  timerQuiet(s, open === 0 && s.paused.length === 0);
  /* (half a walk early: a quiet timer's tick may come a little before the second is up) */
  if (now - s.lastScan >= TCP_SCAN_MS - TCP_TIMER_INTERVAL_MS / 2) {
    s.lastScan = now;
    for (const d of s.scanned) d.scan();
    spliceTimer(now);
  }
}

/**
 * The connection walk's period, read back from its timerfd (for tests and
 * diagnostics).
 * @returns milliseconds, or -errno
 */
export function tcpTimerPeriodMs(): number {
  return S === null ? -ERRNO.EBADF : timerIntervalMs(S.timerFd);
}

/**
 * The tap backend drained after refusing frames (passt's stream socket):
 * connections whose last send stopped at a refused frame, with nothing in
 * flight to bring an ACK, send again now rather than at ACK_TIMEOUT.
 * @param now monotonic time in ms
 */
export function tcpTapWritable(now: number): void {
  const s = S;
  if (s === null) return;
  const fl = s.c.flows;
  const conns = s.conns;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP) continue;
    if (conns.sock[idx]! < 0 || !(conns.events[idx]! & ESTABLISHED)) continue;
    if (conns.flags[idx]! & SOCK_DRAINED) continue;
    if (conns.seqToTap[idx] !== conns.seqAckFromTap[idx]) continue;
    dataFromSock(s, idx, now);
  }
}

/**
 * Closes every connection (at exit), resetting both peers: the host's, and
 * the guest's once it knows of the connection.
 */
export function tcpCloseAll(): void {
  const s = S;
  if (s === null) return;
  const fl = s.c.flows;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP) continue;
    if (s.conns.sock[idx]! >= 0) connRst(s, idx);
  }
  fl.flowDeferHandler();
}

/**
 * The module's counters, for the exit summary.
 * @returns a one-line summary
 */
export function tcpStatsLine(): string {
  const t = S?.stats;
  if (t === undefined) return "TCP: off";
  return `TCP: opened ${t.opened}, closed ${t.closed}, resets to guest ${t.rstToTap}, ` +
    `dropped ${t.dropped}, retransmits ${t.retransmits}, partial writes ${t.partialWrites}, ` +
    `window probes ${t.windowProbes}, refused ${t.refused}, ` +
    `refused for want of descriptors ${t.refusedFds}; half-open ${S!.halfOpen} ` +
    `(cap ${t.halfOpenMax}, oldest dropped ${t.halfOpenDropped}), SYNs reset for want of ` +
    `a flow ${t.noFlow}, of a descriptor ${t.noFd}`;
}

/**
 * Number of open TCP connections (for tests and statistics).
 * @returns connections with a host socket
 */
export function tcpOpenCount(): number {
  const s = S;
  if (s === null) return 0;
  let n = 0;
  for (let i = 0; i < s.c.flows.maxUsed; i++) if (s.conns.sock[i]! >= 0) n++;
  return n;
}
