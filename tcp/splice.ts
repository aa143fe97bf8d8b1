/**
 * splice.ts - TCP between the host's loopback and the guest's loopback,
 * joined in the kernel with splice(2): the bytes never enter orzo.
 *
 * Theory of operation (passt's tcp_splice.c): a connection accepted on one
 * side (a -T listener on the guest's loopback, or a -t listener on the host
 * that a loopback client reached) is mirrored by a socket connecting, in
 * the other side's namespace, to its loopback address (-T, and -t with
 * --host-lo-to-ns-lo) or to the guest's own address, over the guest's
 * loopback interface (-t otherwise, as pasta: services listening only on the
 * guest's loopback stay private); the kernel picks the source address. Each
 * direction has a pipe: splice() moves bytes from the reading socket into the
 * pipe and from the pipe into the writing socket, both without copies to
 * user space. Sockets are edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP): each
 * event moves what can be moved in both directions until a read side is
 * empty or a write side is full. End of file on one side shuts down writing
 * on the other once its pipe is empty; the connection closes when both
 * directions have ended, or at once on an error (resetting both peers).
 *
 * Timeouts (spliceTimer(), about once a second): a connect that has not
 * completed after SPLICE_CONNECT_TIMEOUT_MS, a half-closed connection with
 * nothing moved for SPLICE_FIN_TIMEOUT_MS, and any connection with nothing
 * moved for SPLICE_IDLE_TIMEOUT_MS are reset, both peers: a peer that never
 * closes its side does not hold two sockets and two pipes for ever.
 *
 * Epoll references: type EPOLL_TYPE_TCP_SPLICE, data = flow index * 2 + side
 * (side 0: the accepted socket, side 1: the one we connected).
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import type { EventLoop } from "../loop.ts";
import { EPOLL_TYPE_TCP_SPLICE } from "../loop.ts";
import { libc } from "../ffi/libc.ts";
import { ERRNO, errno } from "../ffi/errno.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLERR,
  EPOLLET,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  IPPROTO_TCP,
  O_CLOEXEC,
  O_NONBLOCK,
  SHUT_WR,
  SO_ERROR,
  SO_LINGER,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "../ffi/layout.ts";
import { sockaddrFromInany } from "../ffi/sockaddr.ts";
import { FLOW_STATE_ACTIVE, FLOW_TYPE_TCP_SPLICE } from "../flow/table.ts";
import { fdBudget, fdOverBudget } from "../flow/fd_budget.ts";
import { PIF_HOST, PIF_SPLICE } from "../flow/pif.ts";
import { debug, LOG_DEBUG, logLevel } from "../log.ts";

/** Bytes a pipe holds (F_SETPIPE_SZ; the kernel may grant less). */
export const SPLICE_PIPE_SIZE = 1 << 20;
/** splice(2) flags: SPLICE_F_MOVE | SPLICE_F_NONBLOCK. */
const SPLICE_FLAGS = 1 | 2;
/** fcntl F_SETPIPE_SZ. */
const F_SETPIPE_SZ = 1031;
const SOCK_EVENTS = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

/** A connect to the other side's loopback not completed by then is reset. */
export const SPLICE_CONNECT_TIMEOUT_MS = 10_000;
/** A half-closed connection with nothing moved for this long is reset (as FIN_TIMEOUT). */
export const SPLICE_FIN_TIMEOUT_MS = 60_000;
/** A connection with nothing moved for this long is reset (as ACT_TIMEOUT). */
export const SPLICE_IDLE_TIMEOUT_MS = 7_200_000;

/** Per-direction state bits (direction d: from side d to side 1 - d). */
const EOF_READ = 1; /* end of file read from the source side */
const SHUT_DONE = 2; /* writing shut down on the destination side */
/** Connection state bits. */
const CONNECTED = 1;

/** Counters of spliced connections. */
export interface SpliceStats {
  /** connections opened */
  opened: number;
  /** connections closed */
  closed: number;
  /** bytes moved, both directions */
  bytes: number;
  /** connections that could not be set up */
  failed: number;
  /** connections reset by a timeout */
  timedOut: number;
}

/** Creates a socket in the guest's namespace; returns the fd or -errno. */
export type NsSocketFn = (domain: number, type: number) => number;

interface SpliceState {
  c: Ctx;
  loop: EventLoop;
  nsSocket: NsSocketFn;
  /** socket by sidx (flow index * 2 + side) */
  sock: Int32Array;
  /** pipe read/write ends by direction index (flow index * 2 + d) */
  pipeR: Int32Array;
  pipeW: Int32Array;
  /** bytes in the pipe of each direction */
  pending: Int32Array;
  /** EOF_READ | SHUT_DONE per direction */
  dir: Uint8Array;
  /** CONNECTED */
  state: Uint8Array;
  /** when bytes last moved (or the connection started), ms */
  tsAct: Float64Array;
  stats: SpliceStats;
}

let S: SpliceState | null = null;
const intBuf = new Int32Array(2);
const intBytes = new Uint8Array(intBuf.buffer);
const linger = new Uint8Array(new Int32Array([1, 0]).buffer);
const sa = new Uint8Array(28);
const lo = new Uint8Array(16);
/** the unspecified address: the kernel picks our side's source */
const unspec = new Uint8Array(16);
const pipeFds = new Int32Array(2);
const pipeBytes = new Uint8Array(pipeFds.buffer);
const optLen = new Uint32Array(1);
const optLenBytes = new Uint8Array(optLen.buffer);

/**
 * Starts the splice module.
 * @param c execution context (its flow table)
 * @param loop the event loop
 * @param nsSocket creates sockets in the guest's namespace
 * @returns the module's counters
 */
export function spliceInit(c: Ctx, loop: EventLoop, nsSocket: NsSocketFn): SpliceStats {
  const cap = c.flows.capacity;
  const stats: SpliceStats = { opened: 0, closed: 0, bytes: 0, failed: 0, timedOut: 0 };
  S = {
    c,
    loop,
    nsSocket,
    /* -1 ("none") from spliceInitFlows() on, as the flow table grows */
    sock: new Int32Array(cap * 2),
    pipeR: new Int32Array(cap * 2),
    pipeW: new Int32Array(cap * 2),
    pending: new Int32Array(cap * 2),
    dir: new Uint8Array(cap * 2),
    state: new Uint8Array(cap),
    tsAct: new Float64Array(cap),
    stats,
  };
  c.flows.flowOnPrepare("tcp splice", spliceInitFlows);
  loop.on(EPOLL_TYPE_TCP_SPLICE, spliceHandler);
  return stats;
}

/**
 * Sets the sockets and pipes of flows the table hands out for the first
 * time to -1 (its flowOnPrepare()).
 * @param from first flow index
 * @param to one past the last
 */
function spliceInitFlows(from: number, to: number): void {
  S!.sock.fill(-1, 2 * from, 2 * to);
  S!.pipeR.fill(-1, 2 * from, 2 * to);
  S!.pipeW.fill(-1, 2 * from, 2 * to);
}

/**
 * A one-line summary of the counters, for the exit log.
 * @returns the summary
 */
export function spliceStatsLine(): string {
  const t = S?.stats;
  if (t === undefined) return "TCP splice: off";
  return `TCP splice: opened ${t.opened}, closed ${t.closed}, failed ${t.failed}, ` +
    `bytes ${t.bytes}, timed out ${t.timedOut}`;
}

function loopbackSockaddr(v6: boolean, port: number): number {
  lo.fill(0);
  if (v6) lo[15] = 1;
  else {
    lo[10] = lo[11] = 0xff;
    lo[12] = 127;
    lo[15] = 1;
  }
  return sockaddrFromInany(sa, lo, 0, port, v6);
}

/**
 * Splices a connection accepted on one side to the loopback of the other.
 * @param accepted the accepted socket (non-blocking)
 * @param v6 its family
 * @param port the loopback port to connect to on the other side
 * @param toGuest true: connect inside the guest's namespace (host accepted);
 *   false: connect on the host (accepted in the guest's namespace)
 * @param dst the address to connect to (inany at dstOff), null for the
 *   loopback address of the family; the kernel picks the matching source
 * @param dstOff offset of the address in dst
 * @returns true when the connection was set up (else `accepted` is closed)
 */
export function spliceConnect(
  accepted: number,
  v6: boolean,
  port: number,
  toGuest: boolean,
  dst: Uint8Array | null = null,
  dstOff = 0,
): boolean {
  const s = S;
  if (s === null) {
    libc.symbols.close(accepted);
    return false;
  }
  const domain = v6 ? AF_INET6 : AF_INET;
  const type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = toGuest ? s.nsSocket(domain, type) : libc.symbols.socket(domain, type, 0);
  if (fd < 0) return fail(s, accepted, -1, "socket");
  intBuf[0] = 1;
  libc.symbols.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intBytes, 4);
  libc.symbols.setsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, intBytes, 4);
  /* lo: the loopback address of the family, also for the flow's accepted side */
  let len = loopbackSockaddr(v6, port);
  if (dst !== null) len = sockaddrFromInany(sa, dst, dstOff, port, v6);
  if (libc.symbols.connect(fd, sa, len) < 0 && errno() !== ERRNO.EINPROGRESS) {
    return fail(s, accepted, fd, "connect");
  }
  const fl = s.c.flows;
  const idx = fl.flowAllocFor(FLOW_TYPE_TCP_SPLICE);
  if (idx < 0) return fail(s, accepted, fd, "flow table full or TCP quota reached", 0);
  const pifA = toGuest ? PIF_HOST : PIF_SPLICE;
  const pifB = toGuest ? PIF_SPLICE : PIF_HOST;
  fl.flowInitiate(idx, pifA, lo, 0, lo, 0, port, 0);
  if (dst === null) fl.flowTarget(idx, pifB, lo, 0, lo, 0, 0, port);
  else fl.flowTarget(idx, pifB, unspec, 0, dst, dstOff, 0, port);
  fl.flowSetType(idx, FLOW_TYPE_TCP_SPLICE);
  for (let d = 0; d < 2; d++) {
    if (libc.symbols.pipe2(pipeBytes, O_NONBLOCK | O_CLOEXEC) < 0) {
      for (let e = 0; e < d; e++) closePipe(s, idx * 2 + e);
      fl.flowAllocCancel(idx);
      return fail(s, accepted, fd, "pipe2");
    }
    libc.symbols.fcntl(pipeFds[1]!, F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
    s.pipeR[idx * 2 + d] = pipeFds[0]!;
    s.pipeW[idx * 2 + d] = pipeFds[1]!;
    s.pending[idx * 2 + d] = 0;
    s.dir[idx * 2 + d] = 0;
  }
  /* six descriptors for one connection: the highest of them within the
   * budget, like a tap flow's socket */
  const highest = Math.max(fd, s.pipeR[idx * 2]!, s.pipeW[idx * 2]!, pipeFds[0]!, pipeFds[1]!);
  if (fdOverBudget(highest)) {
    for (let d = 0; d < 2; d++) closePipe(s, idx * 2 + d);
    fl.flowAllocCancel(idx);
    return fail(s, accepted, fd, "descriptor budget", 0);
  }
  s.sock[idx * 2] = accepted;
  s.sock[idx * 2 + 1] = fd;
  s.state[idx] = 0;
  s.tsAct[idx] = performance.now();
  fl.flowActivate(idx);
  s.loop.epoll.add(accepted, SOCK_EVENTS, EPOLL_TYPE_TCP_SPLICE, idx * 2);
  s.loop.epoll.add(fd, SOCK_EVENTS, EPOLL_TYPE_TCP_SPLICE, idx * 2 + 1);
  s.stats.opened++;
  return true;
}

/** Gives up a connection being set up; e is the failed call's errno (0: none). */
function fail(s: SpliceState, a: number, b: number, what: string, e = errno()): false {
  if (e === ERRNO.EMFILE || e === ERRNO.ENFILE) fdBudget.exhausted++;
  if (logLevel >= LOG_DEBUG) debug(`TCP splice: ${what} failed: errno ${e}`);
  libc.symbols.setsockopt(a, SOL_SOCKET, SO_LINGER, linger, 8);
  libc.symbols.close(a);
  if (b >= 0) libc.symbols.close(b);
  s.stats.failed++;
  return false;
}

function closePipe(s: SpliceState, d: number): void {
  if (s.pipeR[d]! >= 0) libc.symbols.close(s.pipeR[d]!);
  if (s.pipeW[d]! >= 0) libc.symbols.close(s.pipeW[d]!);
  s.pipeR[d] = -1;
  s.pipeW[d] = -1;
}

/** Closes a spliced connection; with `reset`, both peers see a reset. */
function spliceClose(s: SpliceState, idx: number, reset: boolean): void {
  for (let side = 0; side < 2; side++) {
    const fd = s.sock[idx * 2 + side]!;
    if (fd >= 0) {
      if (reset) libc.symbols.setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, 8);
      libc.symbols.close(fd);
      s.sock[idx * 2 + side] = -1;
    }
    closePipe(s, idx * 2 + side);
  }
  s.c.flows.flowFree(idx);
  s.stats.closed++;
}

/**
 * Moves bytes in direction d (from side d to side 1 - d) until the source
 * is empty or the destination full.
 * @returns -1 on an error (the connection must be reset), else 0
 */
function move(s: SpliceState, idx: number, d: number, now: number): number {
  const di = idx * 2 + d;
  const from = s.sock[idx * 2 + d]!;
  const to = s.sock[idx * 2 + 1 - d]!;
  const pr = s.pipeR[di]!;
  const pw = s.pipeW[di]!;
  for (let round = 0; round < 1024; round++) {
    let progress = false;
    if ((s.dir[di]! & EOF_READ) === 0) {
      const n = libc.symbols.splice(from, null, pw, null, SPLICE_PIPE_SIZE, SPLICE_FLAGS);
      if (n > 0) {
        s.pending[di] = s.pending[di]! + n;
        progress = true;
      } else if (n === 0) {
        s.dir[di] = s.dir[di]! | EOF_READ;
      } else {
        const e = errno();
        if (e !== ERRNO.EAGAIN && e !== ERRNO.EINTR) return -1;
      }
    }
    if (s.pending[di]! > 0) {
      const m = libc.symbols.splice(pr, null, to, null, s.pending[di]!, SPLICE_FLAGS);
      if (m > 0) {
        s.pending[di] = s.pending[di]! - m;
        s.stats.bytes += m;
        progress = true;
      } else if (m < 0) {
        const e = errno();
        if (e !== ERRNO.EAGAIN && e !== ERRNO.EINTR) return -1;
      }
    }
    if (!progress) break;
    s.tsAct[idx] = now;
  }
  if ((s.dir[di]! & (EOF_READ | SHUT_DONE)) === EOF_READ && s.pending[di] === 0) {
    libc.symbols.shutdown(to, SHUT_WR);
    s.dir[di] = s.dir[di]! | SHUT_DONE;
  }
  return 0;
}

/**
 * Epoll handler for spliced sockets.
 * @param fd the socket
 * @param sidx flow index * 2 + side
 * @param events EPOLL* mask
 * @param now monotonic time in ms
 */
function spliceHandler(fd: number, sidx: number, events: number, now: number): void {
  const s = S!;
  const idx = sidx >> 1;
  if (s.c.flows.state[idx] !== FLOW_STATE_ACTIVE || s.sock[sidx] !== fd) return;
  if (events & EPOLLERR) {
    spliceClose(s, idx, true);
    return;
  }
  if ((s.state[idx]! & CONNECTED) === 0) {
    /* the connecting side (1) reports the outcome of connect() */
    if ((sidx & 1) === 0) return;
    intBuf[0] = 0;
    optLen[0] = 4;
    libc.symbols.getsockopt(fd, SOL_SOCKET, SO_ERROR, intBytes, optLenBytes);
    if (intBuf[0] !== 0) {
      spliceClose(s, idx, true);
      return;
    }
    s.state[idx] = s.state[idx]! | CONNECTED;
  }
  if (move(s, idx, 0, now) < 0 || move(s, idx, 1, now) < 0) {
    spliceClose(s, idx, true);
    return;
  }
  if ((s.dir[idx * 2]! & SHUT_DONE) && (s.dir[idx * 2 + 1]! & SHUT_DONE)) {
    spliceClose(s, idx, false);
  }
}

/**
 * The timeouts of spliced connections (see the module's doc); call about
 * once a second.
 * @param now monotonic time in ms
 */
export function spliceTimer(now: number): void {
  const s = S;
  if (s === null) return;
  const fl = s.c.flows;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP_SPLICE) continue;
    const idle = now - s.tsAct[idx]!;
    let limit = SPLICE_IDLE_TIMEOUT_MS;
    if ((s.state[idx]! & CONNECTED) === 0) limit = SPLICE_CONNECT_TIMEOUT_MS;
    else if ((s.dir[idx * 2]! | s.dir[idx * 2 + 1]!) & EOF_READ) limit = SPLICE_FIN_TIMEOUT_MS;
    if (idle > limit) {
      if (logLevel >= LOG_DEBUG) debug(`TCP splice flow ${idx}: timed out`);
      s.stats.timedOut++;
      spliceClose(s, idx, true);
    }
  }
}

/**
 * Closes every spliced connection (at exit).
 */
export function spliceCloseAll(): void {
  const s = S;
  if (s === null) return;
  const fl = s.c.flows;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_TCP_SPLICE) continue;
    spliceClose(s, idx, true);
  }
}
