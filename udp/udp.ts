/**
 * udp.ts - UDP between the guest (tap) and host sockets, and between the
 * host's and the guest's loopback without the tap.
 *
 * # Theory of operation
 *
 * ## Flows
 *
 * UDP has no connections, but most protocols use a connection-like pattern:
 * a client sends from a port of its choosing to a server's port, and the
 * server answers with the addresses and ports swapped. Each such exchange is a
 * flow of type FLOW_TYPE_UDP in the shared flow table (flow/table.ts): the
 * initiating side is where the first datagram came from, the target side is
 * where orzo forwards it. A flow lives while datagrams pass: it expires
 * after UDP_TIMEOUT_MS without traffic, or UDP_TIMEOUT_STREAM_MS once it has
 * carried datagrams in both directions (the kernel's conntrack timeouts,
 * which passt follows). A flow that came from outside (a -u port) and was
 * never answered ends after UDP_TIMEOUT_UNREPLIED_MS only: anyone can make
 * such flows, with any source address and port, and each holds a
 * descriptor (a duplicate of the listener). New flows take at most the UDP
 * share of the flow table (flow/table.ts quotas) and descriptors within the
 * budget (flow/fd_budget.ts); beyond either the datagram is dropped and
 * counted.
 *
 * ## Sockets
 *
 * - Reply sockets. When a flow targets a socket (the host, or the guest's
 *   namespace for spliced flows), orzo opens one datagram socket for it,
 *   bound to the source port the initiator used when possible (so a remote
 *   peer sees the guest's port, as with pasta; SO_REUSEADDR lets two flows
 *   share it) and connected to the target. The connect() makes the kernel
 *   deliver only that peer's datagrams to it, so its epoll reference names the
 *   flow side directly and no lookup is needed.
 * - Listening sockets (fwd/listeners.ts, opened by fwd/direction.ts). -u
 *   binds forwarded ports on the host, -U the guest's loopback ports; a
 *   datagram on one is matched to a flow by the flow hash (protocol,
 *   interface, addresses, ports), and a new flow is made when none matches. The flow keeps a duplicate of the listening
 *   socket to send replies back from the forwarded port.
 * - The tap side has no socket: datagrams from the guest are looked up in the
 *   flow hash by their addresses and ports.
 *
 * ## Paths
 *
 * - Guest to anywhere: a new flow must pass fwdTapTarget() (no loopback,
 *   multicast, broadcast or unspecified address, no port 0, unless a mapping
 *   applies), whose fwdNatFromTap() translates the destination (the gateway
 *   reaches the host's loopback, --dns-forward reaches the host's resolver,
 *   ...). The datagrams of one batch of tap frames (tap.ts keeps them valid
 *   until its flush hook) are queued per socket, iovecs pointing into the
 *   tap's frame buffer (no copy), and sent at once: a run of equal-length
 *   datagrams to a flow's own connected socket as UDP GSO sends
 *   (UDP_SEGMENT: one trip through the IP layer for up to 64 of them), the
 *   rest with sendmmsg().
 * - Socket to guest: recvmmsg() reads up to UDP_BATCH datagrams straight
 *   into the payload area of preallocated frames; the UDP, IP and Ethernet
 *   headers are written in front of each payload and the frame is written to
 *   the tap with a virtio-net header that asks the guest's kernel to finish
 *   the checksum (tap/send.ts), or with a full checksum when the tap has no
 *   such header. A run of equal-length datagrams of one flow goes as one
 *   UDP segmentation frame (virtio-net GSO_UDP_L4, written with writev():
 *   the headers, then each payload in its slot), which the guest's kernel
 *   splits; the sockets' SO_RCVBUF is raised (UDP_RCVBUF) to absorb bursts.
 * - Socket to socket ("spliced", pasta's loopback bypass): a datagram from
 *   the host's loopback to a -u port goes to a socket in the guest's
 *   namespace (opened through ns/ns_sync.ts) that sends it to the guest's
 *   address (--host-lo-to-ns-lo: its loopback address) over the guest's
 *   loopback interface; a datagram from the guest's
 *   loopback to a -U port goes to the host's loopback. The batch read by
 *   recvmmsg() is written by one sendmmsg() on the same buffers; the data
 *   never enters a frame. When no socket can be opened in the namespace the
 *   flow takes the tap path instead (as with --no-splice).
 *
 * ## Per-packet work
 *
 * Nothing on these paths allocates: flows are typed-array state indexed by
 * flow index, the mmsghdr/iovec/sockaddr arrays and the frame buffers are
 * built once, and pointers are written into iovecs as two 32-bit halves.
 * Malformed datagrams are dropped and counted; errors are -errno values.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import type { Ctx } from "../ctx.ts";
import type { EventLoop } from "../loop.ts";
import { EPOLL_TYPE_UDP, EPOLL_TYPE_UDP_LISTEN } from "../loop.ts";
import { libc } from "../ffi/libc.ts";
import { ERRNO, errno, SysError } from "../ffi/errno.ts";
import { addressOf } from "../ffi/mem.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLERR,
  EPOLLIN,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  MMSGHDR_SIZE,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  SO_ERROR,
  SO_RCVBUF,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import { sockaddrFromInany, sockaddrToInany } from "../ffi/sockaddr.ts";
import { FLOW_STATE_ACTIVE, FLOW_TYPE_UDP, flowSidx, INISIDE, TGTSIDE } from "../flow/table.ts";
import {
  inanyCopy,
  inanyIs4,
  inanyIsLinkLocal6,
  inanyIsLoopback,
  inanyIsMulticast,
  inanyIsUnspecified,
} from "../flow/inany.ts";
import { PIF_HOST, PIF_NAMES, PIF_SPLICE, PIF_TAP } from "../flow/pif.ts";
import { fwdGuestAddr, fwdNatFromHost } from "../fwd/nat.ts";
import { FWD_OK, fwdRefusalLog, fwdTapTarget } from "../fwd/guard.ts";
import { l3Addrs, l4Register } from "../tap/l3.ts";
import { TAP_BATCH, tapBatch, tapFlushRegister } from "../tap/tap.ts";
import { l2l3Write, l4Finish, pseudoSum, vnetCsumWrite } from "../tap/send.ts";
import { csumL4v4 } from "../wire/checksum.ts";
import { pcapFrame, pcapOn } from "../pcap.ts";
import { debug, LOG_DEBUG, logLevel } from "../log.ts";
import type { NsSync } from "../ns/ns_sync.ts";
import {
  FWD_TCP,
  FWD_UDP,
  FwdListeners,
  KIND_RULE,
  loopWatch,
  type SocketFn,
} from "../fwd/listeners.ts";
import { FwdDirection } from "../fwd/direction.ts";
import { diagOpen, diagPorts } from "../fwd/diag.ts";
import { scanPorts } from "../fwd/scan.ts";
import type { FwdSpec } from "../conf/ports.ts";
import { portIsSet } from "../conf/ports.ts";
import { fdBudget, fdBudgetTick, fdOverBudget } from "../flow/fd_budget.ts";

/** Idle timeout of a flow, ms (conntrack's nf_conntrack_udp_timeout). */
export const UDP_TIMEOUT_MS = 30_000;
/** Idle timeout of a flow that saw traffic both ways, ms (nf_conntrack_udp_timeout_stream). */
export const UDP_TIMEOUT_STREAM_MS = 120_000;
/**
 * Idle timeout of a flow from outside (a listening socket) that was never
 * answered, ms: spoofed sources hold a descriptor this long, not 30 s.
 */
export const UDP_TIMEOUT_UNREPLIED_MS = 5_000;
/** Datagrams read by one recvmmsg(). */
export const UDP_BATCH = 32;
/** recvmmsg() rounds per readiness event at most, so other fds get their turn. */
const UDP_ROUNDS = 4;
/** Largest UDP payload: over IPv6 (IPv4 sockets never return more than 65507). */
export const UDP_PAYLOAD_MAX = 65535 - 8;
/** Largest UDP payload in an IPv4 frame. */
const UDP_PAYLOAD_MAX4 = 65535 - 20 - 8;
/** Offset of the payload in a frame slot: room for [tap header][Ethernet][IPv6][UDP]. */
const PAYLOAD_OFF = 128;
/** Bytes per frame slot. */
const SLOT = PAYLOAD_OFF + 65536;
/**
 * SO_RCVBUF of the sockets orzo reads datagrams from (the kernel caps it at
 * net.core.rmem_max): room for a burst that arrives while the loop is busy or not scheduled,
 * instead of drops.
 */
const UDP_RCVBUF = 4 << 20;
const rcvbuf = new Uint8Array(new Int32Array([UDP_RCVBUF]).buffer);
/** How often the timer walks the flows, ms. */
const UDP_TIMER_MS = 1000;

/** Direction bits: a datagram came from the initiating / target side. */
const DIR_FROM_INI = 1;
const DIR_FROM_TGT = 2;

/** Counters of the UDP module. */
export interface UdpStats {
  /** flows created */
  flowsOpened: number;
  /** flows ended */
  flowsClosed: number;
  /** datagrams from the guest sent to a socket */
  fromTap: number;
  /** datagrams written to the guest */
  toTap: number;
  /** datagrams forwarded socket to socket (spliced) */
  spliced: number;
  /** datagrams dropped: no flow could be made, a send failed, truncated */
  dropped: number;
  /** datagrams from the guest dropped as malformed */
  malformed: number;
  /** datagrams from the guest refused by fwdTapTarget() (no flow, no socket; in dropped too) */
  refused: number;
  /** flows from outside that ended unanswered after UDP_TIMEOUT_UNREPLIED_MS */
  unrepliedExpired: number;
  /** new flows not made for want of a flow entry (table full or UDP quota; in dropped too) */
  noFlow: number;
  /** new flows not made for want of a descriptor (budget, EMFILE, ENFILE; in dropped too) */
  noFd: number;
}

/** The module's state, set by udpInit(). */
interface UdpState {
  c: Ctx;
  loop: EventLoop;
  /** socket of each flow side, -1 when none (the tap side) */
  sock: Int32Array;
  /** 1 when sock[sidx] is the flow's own connected socket (in epoll), 0 for a listener's duplicate */
  own: Uint8Array;
  /** last traffic, ms */
  ts: Float64Array;
  /** DIR_* bits seen */
  dirs: Uint8Array;
  /** the forwarding sockets (fwd/listeners.ts: shared with TCP) */
  listeners: FwdListeners;
  nsSync: NsSync | null;
  splice: boolean;
  /** --host-lo-to-ns-lo: spliced datagrams go to the guest's loopback address */
  spliceToLoopback: boolean;
  lastTimer: number;
  /** -u (host to guest), scanned for -u auto; null only before udpInit() ends */
  fwdIn: FwdDirection | null;
  /** -U (the guest's loopback to the host's), scanned for -U auto; null without a namespace */
  fwdOut: FwdDirection | null;
  stats: UdpStats;
}

let S: UdpState | null = null;

/* Addresses of the current datagram: [0,16) source, [16,32) destination,
 * [32,48) target's address, [48,64) our address towards the target. */
const key = new Uint8Array(64);
/* Scratch sockaddr for bind/connect at flow set-up. */
const saTmp = new Uint8Array(28);
const saLen = new Int32Array(1);
const saLenBytes = new Uint8Array(saLen.buffer);

/* Frame slots: recvmmsg() reads payloads at PAYLOAD_OFF of each slot. */
const frames = new Uint8Array(UDP_BATCH * SLOT);
const framesDv = new DataView(frames.buffer);
/* Per-slot views starting at the tap header, for IPv4 and IPv6 frames. */
const views4: Uint8Array<ArrayBuffer>[] = [];
const views6: Uint8Array<ArrayBuffer>[] = [];
let hdrRel4 = 0;
let hdrRel6 = 0;

/* recvmmsg(): one mmsghdr, iovec and source sockaddr per slot. */
const rmsg = new Uint8Array(UDP_BATCH * MMSGHDR_SIZE);
const rmsgDv = new DataView(rmsg.buffer);
const riov = new Uint8Array(UDP_BATCH * 16);
const rname = new Uint8Array(UDP_BATCH * 32);
/* Views of each slot's source sockaddr. */
const rnameViews: Uint8Array[] = [];
/* sendmmsg() for spliced batches: same payloads, lengths set per batch. */
const smsg = new Uint8Array(UDP_BATCH * MMSGHDR_SIZE);
const smsgDv = new DataView(smsg.buffer);
const siov = new Uint8Array(UDP_BATCH * 16);
const siovDv = new DataView(siov.buffer);
const smsgViews: Uint8Array<ArrayBuffer>[] = [];
/* Destination of spliced datagrams sent on an unconnected socket. */
const spliceTo = new Uint8Array(28);
let spliceToAddr = 0;
/* sendmmsg() from the tap: datagrams of one batch of tap frames (tap.ts keeps them valid until
 * its flush hook), for one socket, each an iovec pointing into the tap's frame buffer. */
const tmsg = new Uint8Array(TAP_BATCH * MMSGHDR_SIZE);
const tmsgDv = new DataView(tmsg.buffer);
const tiov = new Uint8Array(TAP_BATCH * 16);
const tiovDv = new DataView(tiov.buffer);
/* Destinations of datagrams sent on a listener's duplicate (unconnected), one per entry. */
const tapTo = new Uint8Array(TAP_BATCH * 28);
const tapToViews: Uint8Array[] = [];
const tmsgViews: Uint8Array<ArrayBuffer>[] = [];
let tapToAddr = 0;
/* The queued batch: its socket and length; whether every datagram goes on the flow's own
 * connected socket (no destination per datagram), and the first datagram's payload length. */
let tapPendSock = -1;
let tapPendLen = 0;
let tapPendOwn = true;
let tapPendSize = 0;
/* UDP GSO (UDP_SEGMENT): one sendmsg() carries a run of equal datagrams, segmented by the
 * kernel after the IP layer. A segment size the kernel refused is not tried again (-1: GSO
 * unsupported). */
const UDP_SEGMENT = 103;
/** Largest total payload of one GSO send (the kernel's limit is an IPv4 datagram). */
const GSO_BYTES_MAX = 65535 - 20 - 8;
/** Most segments per GSO send (UDP_MAX_SEGMENTS of older kernels). */
const GSO_SEGS_MAX = 64;
let gsoSizeMax = 65535;
const gsoMsg = new Uint8Array(56);
const gsoMsgDv = new DataView(gsoMsg.buffer);
/* cmsghdr { u64 len = CMSG_LEN(2); i32 level = SOL_UDP; i32 type = UDP_SEGMENT; u16 size } */
const gsoCtl = new Uint8Array(24);
const gsoCtlDv = new DataView(gsoCtl.buffer);
let tiovBase = 0;
/* Target of each datagram of a listener's batch (sidx), -1 for none. */
const batchTo = new Int32Array(UDP_BATCH);
/* SO_ERROR read-out. */
const soErr = new Uint8Array(4);
const soErrLen = new Uint8Array(new Int32Array([4]).buffer);

/* The tap's frame buffer and its address, cached by identity. */
let lastFrame: Uint8Array | null = null;
let lastFrameAddr = 0;

/** Address of a buffer as a Number (set-up and cache misses only). */
function addrNum(buf: Uint8Array<ArrayBuffer>): number {
  return Number(addressOf(buf));
}

/** Stores a pointer (a Number below 2^53) as two little-endian 32-bit words. */
function putPtr(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off, addr >>> 0, true);
  dv.setUint32(off + 4, Math.floor(addr / 4294967296) >>> 0, true);
}

/** Builds the message arrays once. */
function buffersInit(c: Ctx): void {
  const framesAddr = addrNum(frames);
  const riovAddr = addrNum(riov);
  const rnameAddr = addrNum(rname);
  const siovAddr = addrNum(siov);
  const riovDv = new DataView(riov.buffer);
  for (let i = 0; i < UDP_BATCH; i++) {
    const payload = framesAddr + i * SLOT + PAYLOAD_OFF;
    putPtr(riovDv, i * 16, payload);
    riovDv.setUint32(i * 16 + 8, UDP_PAYLOAD_MAX, true);
    putPtr(siovDv, i * 16, payload);
    const m = i * MMSGHDR_SIZE;
    putPtr(rmsgDv, m, rnameAddr + i * 32);
    rmsgDv.setUint32(m + 8, 28, true);
    putPtr(rmsgDv, m + 16, riovAddr + i * 16);
    rmsgDv.setUint32(m + 24, 1, true);
    putPtr(smsgDv, m + 16, siovAddr + i * 16);
    smsgDv.setUint32(m + 24, 1, true);
    rnameViews.push(rname.subarray(i * 32, i * 32 + 28));
    smsgViews.push(smsg.subarray(m));
  }
  spliceToAddr = addrNum(spliceTo);
  slotPayloadAddr = framesAddr + PAYLOAD_OFF;
  tapToAddr = addrNum(tapTo);
  const tiovAddr = addrNum(tiov);
  tapToViews.length = 0;
  tmsgViews.length = 0;
  for (let i = 0; i < TAP_BATCH; i++) {
    putPtr(tmsgDv, i * MMSGHDR_SIZE + 16, tiovAddr + i * 16);
    tmsgDv.setUint32(i * MMSGHDR_SIZE + 24, 1, true);
    tapToViews.push(tapTo.subarray(i * 28, i * 28 + 28));
    tmsgViews.push(tmsg.subarray(i * MMSGHDR_SIZE));
  }
  tapPendSock = -1;
  tapPendLen = 0;
  tiovBase = tiovAddr;
  gsoCtlDv.setUint32(0, 18, true);
  gsoCtlDv.setInt32(8, IPPROTO_UDP, true);
  gsoCtlDv.setInt32(12, UDP_SEGMENT, true);
  putPtr(gsoMsgDv, 32, addrNum(gsoCtl));
  gsoMsgDv.setUint32(40, 24, true);
  const h = c.tapHdrLen;
  hdrRel4 = PAYLOAD_OFF - 8 - 20 - 14 - h;
  hdrRel6 = PAYLOAD_OFF - 8 - 40 - 14 - h;
  views4.length = 0;
  views6.length = 0;
  for (let i = 0; i < UDP_BATCH; i++) {
    views4.push(frames.subarray(i * SLOT + hdrRel4));
    views6.push(frames.subarray(i * SLOT + hdrRel6));
  }
}

/** Calls of each helper made by udpWarmUp(). */
const WARM_UP_CALLS = 20000;

/**
 * Runs the helpers of the per-datagram path (flow lookup and its SipHash,
 * header writing, checksums) enough times for V8 to compile them: a path
 * used rarely (a ping every 50 ms) otherwise stays in the interpreter, where
 * one flow lookup costs tens of microseconds. Takes a few milliseconds at
 * start; touches no socket and no flow.
 * @param c execution context
 */
export function udpWarmUp(c: Ctx): void {
  const fl = c.flows;
  const k = new Uint8Array(64);
  k[10] =
    k[11] =
    k[26] =
    k[27] =
      0xff;
  const scratch = new Uint8Array(256);
  const dv = new DataView(scratch.buffer);
  for (let i = 0; i < WARM_UP_CALLS; i++) {
    k[15] = i & 0xff;
    const v6 = (i & 1) === 1;
    fl.flowLookup(IPPROTO_UDP, PIF_TAP, k, 16, k, 0, i & 0xffff, (i * 7) & 0xffff);
    const l4 = l2l3Write(c, scratch, dv, 16, v6, IPPROTO_UDP, k, 0, k, 16, 8 + (i & 63));
    vnetCsumWrite(scratch, dv, 4, l4, 6, pseudoSum(scratch, 30, v6, IPPROTO_UDP, 8 + (i & 63)));
    if ((i & 7) === 0) csumL4v4(scratch, 30, 50, 64, IPPROTO_UDP);
    inanyIs4(k, 0);
    inanyIsMulticast(k, 16);
  }
}

/**
 * Sets the sockets of flows the table hands out for the first time to -1
 * (its flowOnPrepare()).
 * @param from first flow index
 * @param to one past the last
 */
function udpInitFlows(from: number, to: number): void {
  S!.sock.fill(-1, 2 * from, 2 * to);
}

/** Options of {@linkcode udpInit}. */
export interface UdpInitOptions {
  /** channel for sockets in the guest's namespace (splice, -U), null when none */
  nsSync: NsSync | null;
  /**
   * the forwarding socket table shared with TCP (fwd/listeners.ts); absent:
   * a table of UDP's own (tests)
   */
  listeners?: FwdListeners;
}

/** Ports of a spec's explicit (not `auto`) rules, as a bitmap. */
function staticPorts(spec: FwdSpec): Uint8Array {
  const m = new Uint8Array(8192);
  for (const r of spec.rules) {
    if (r.scan) continue;
    for (let p = r.first; p <= r.last; p++) {
      if (!portIsSet(spec.excluded, p)) m[p >> 3] = m[p >> 3]! | (1 << (p & 7));
    }
  }
  return m;
}

/**
 * A port scanner for one namespace: sock_diag on `diagFd` when it works,
 * procfs under `netDir` otherwise.
 */
function portScanner(
  diagFd: number,
  netDir: string,
): (udp: boolean, out: Uint8Array, skipLoopback: boolean) => number {
  let diag = diagFd >= 0;
  return (udp, out, skipLoopback) => {
    if (diag) {
      const n = diagPorts(diagFd, udp, out, skipLoopback);
      if (n >= 0) return n;
      debug(`UDP: sock_diag failed (errno ${-n}): scanning ${netDir} instead`);
      diag = false;
    }
    return scanPorts(netDir, udp, out, skipLoopback);
  };
}

/**
 * Ports orzo binds in one namespace: its UDP sockets there, and its TCP
 * listeners there (on the host, `auto` ones too; in the guest's namespace,
 * those of -T rules), and the explicit TCP ports of the configuration.
 */
function ownPorts(out: Uint8Array, pif: number, tcpStatic: Uint8Array): Uint8Array {
  out.set(tcpStatic);
  const L = S!.listeners;
  L.ports(out, FWD_UDP, pif);
  return L.ports(out, FWD_TCP, pif, pif === PIF_HOST ? -1 : KIND_RULE);
}

/**
 * Starts the UDP module: registers the tap handler and the epoll handlers,
 * opens the -u and -U sockets and starts the flow timer.
 * @param c execution context (tap and flow table ready)
 * @param loop the event loop
 * @param conf the configuration (-u, -U, --no-splice, --freebind)
 * @param opts the namespace socket channel
 * @returns the module's counters
 * @throws SysError when an explicitly forwarded port cannot be bound
 */
export function udpInit(
  c: Ctx,
  loop: EventLoop,
  conf: Config,
  opts: UdpInitOptions,
): UdpStats {
  const cap = c.flows.capacity;
  const stats: UdpStats = {
    flowsOpened: 0,
    flowsClosed: 0,
    fromTap: 0,
    toTap: 0,
    spliced: 0,
    dropped: 0,
    malformed: 0,
    refused: 0,
    unrepliedExpired: 0,
    noFlow: 0,
    noFd: 0,
  };
  S = {
    c,
    loop,
    /* -1 ("none") from udpInitFlows() on, as the flow table grows */
    sock: new Int32Array(cap * 2),
    own: new Uint8Array(cap * 2),
    ts: new Float64Array(cap),
    dirs: new Uint8Array(cap),
    listeners: opts.listeners ?? new FwdListeners(loopWatch(loop)),
    nsSync: opts.nsSync,
    splice: !conf.noSplice && opts.nsSync !== null,
    spliceToLoopback: conf.hostLoToNsLo,
    lastTimer: 0,
    fwdIn: null,
    fwdOut: null,
    stats,
  };
  c.flows.flowOnPrepare("udp", udpInitFlows);
  buffersInit(c);
  udpWarmUp(c);
  l4Register(IPPROTO_UDP, udpTapHandler);
  tapFlushRegister(udpTapFlush);
  loop.on(EPOLL_TYPE_UDP, udpSockHandler);
  loop.on(EPOLL_TYPE_UDP_LISTEN, udpListenHandler);
  loop.post.push(udpTimer);

  const st = S;
  const hostSocket: SocketFn = (d, t, p) => {
    const fd = libc.symbols.socket(d, t, p);
    if (fd < 0) return -errno();
    libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, 4);
    return fd;
  };
  const fams = { v4: c.ip4.enabled, v6: c.ip6.enabled };
  /* pasta's defaults are -u auto and -U auto: the other side's UDP ports,
   * and its TCP ones (see fwd/direction.ts) */
  const ns = opts.nsSync;
  const udpAndTcp = (scan: ReturnType<typeof portScanner>, skipLoopback: boolean) => {
    const tcp = new Uint8Array(8192);
    return (out: Uint8Array) => {
      const n = scan(true, out, skipLoopback);
      if (n < 0) return n;
      if (scan(false, tcp, skipLoopback) >= 0) {
        for (let i = 0; i < 8192; i++) out[i] = out[i]! | tcp[i]!;
      }
      return n;
    };
  };
  const autoIn = ns !== null && ns.tid > 0 && conf.udp.rules.some((r) => r.scan);
  const ownIn = new Uint8Array(8192);
  const tcpNs = staticPorts(conf.tcpNs);
  st.fwdIn = new FwdDirection(st.listeners, {
    ...fams,
    proto: FWD_UDP,
    pif: PIF_HOST,
    spec: conf.udp,
    freebind: conf.freebind,
    socket: hostSocket,
    read: autoIn
      ? udpAndTcp(
        portScanner(diagOpen((d, t, p) => ns.socket(d, t, p)), `/proc/self/task/${ns.tid}/net`),
        true,
      )
      : null,
    own: () => ownPorts(ownIn, PIF_SPLICE, tcpNs),
  });
  if (conf.udp.mode === "spec" || conf.udp.mode === "all") {
    st.fwdIn.openRules(conf.udp.rules, conf.udp.excluded, true);
  }
  if (ns !== null) {
    const ownOut = new Uint8Array(8192);
    const tcpHost = staticPorts(conf.tcp);
    st.fwdOut = new FwdDirection(st.listeners, {
      ...fams,
      proto: FWD_UDP,
      pif: PIF_SPLICE,
      spec: conf.udpNs,
      freebind: false,
      socket: (d, t, p) => ns.socket(d, t, p),
      read: conf.udpNs.rules.some((r) => r.scan)
        ? udpAndTcp(portScanner(diagOpen(), "/proc/self/net"), false)
        : null,
      own: () => ownPorts(ownOut, PIF_HOST, tcpHost),
    });
    if (conf.udpNs.mode === "spec" || conf.udpNs.mode === "all") {
      st.fwdOut.openRules(conf.udpNs.rules, conf.udpNs.excluded, true);
    }
  } else if (conf.udpNs.mode === "spec" || conf.udpNs.mode === "all") {
    throw new SysError("UDP forwarding from the namespace (-U)", ERRNO.ENOSYS);
  }
  st.fwdIn.scan();
  st.fwdOut?.scan();
  return stats;
}

/**
 * The forwarding sockets (for scanning and tests).
 * @returns the table, or null before udpInit()
 */
export function udpListeners(): FwdListeners | null {
  return S === null ? null : S.listeners;
}

/**
 * The UDP directions (for forwards added at run time).
 * @returns -u and -U (null without a namespace), or null before udpInit()
 */
export function udpDirections(): { in: FwdDirection; out: FwdDirection | null } | null {
  return S === null ? null : { in: S.fwdIn!, out: S.fwdOut };
}

/** Writes the unspecified address of a family as inany at key[off]. */
function keyAny(off: number, v6: boolean): void {
  for (let i = 0; i < 16; i++) key[off + i] = 0;
  if (!v6) key[off + 10] = key[off + 11] = 0xff;
}

/** Writes the loopback address of a family as inany at key[off]. */
function keyLoopback(off: number, v6: boolean): void {
  keyAny(off, v6);
  if (!v6) key[off + 12] = 127;
  key[off + 15] = 1;
}

/** Port bound by the last udpFlowSocket(). */
let boundPort = 0;
const one = new Uint8Array(new Int32Array([1]).buffer);

/**
 * Sets up a flow's own socket (fresh, from the namespace it must live in):
 * bound to key[bindOff] port bindPort, or to any port when that one is
 * taken or privileged, and connected to key[connOff] port connPort.
 * @returns the fd (boundPort set), or -errno (the socket is then closed)
 */
function udpFlowSocket(
  fd: number,
  v6: boolean,
  bindOff: number,
  bindPort: number,
  connOff: number,
  connPort: number,
): number {
  const lib = libc.symbols;
  lib.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
  lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, 4);
  if (v6) lib.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
  let len = sockaddrFromInany(saTmp, key, bindOff, bindPort, v6);
  if (lib.bind(fd, saTmp, len) < 0) {
    const e = errno();
    if (bindPort === 0 || (e !== ERRNO.EADDRINUSE && e !== ERRNO.EACCES)) {
      lib.close(fd);
      return -e;
    }
    /* unbound after a failed bind: try again with a port of the kernel's choice */
    len = sockaddrFromInany(saTmp, key, bindOff, 0, v6);
    if (lib.bind(fd, saTmp, len) < 0) {
      const e2 = errno();
      lib.close(fd);
      return -e2;
    }
  }
  len = sockaddrFromInany(saTmp, key, connOff, connPort, v6);
  if (lib.connect(fd, saTmp, len) < 0) {
    const e = errno();
    lib.close(fd);
    return -e;
  }
  saLen[0] = 28;
  if (lib.getsockname(fd, saTmp, saLenBytes) === 0) {
    boundPort = (saTmp[2]! << 8) | saTmp[3]!;
  } else boundPort = bindPort;
  return fd;
}

/** Logs a new flow at debug level. */
function flowLog(idx: number, what: string): void {
  if (logLevel >= LOG_DEBUG) debug(`UDP: ${what}: ${S!.c.flows.flowDescribe(idx, PIF_NAMES)}`);
}

/** Finishes a new flow's set-up: type, state, epoll, activation. */
function flowFinish(st: UdpState, idx: number, now: number): boolean {
  const fl = st.c.flows;
  const tgt = flowSidx(idx, TGTSIDE);
  const s = st.sock[tgt]!;
  if (s >= 0 && st.own[tgt] === 1) {
    if (st.loop.epoll.add(s, EPOLLIN, EPOLL_TYPE_UDP, tgt) < 0) return false;
  }
  st.ts[idx] = now;
  st.dirs[idx] = 0;
  fl.flowActivate(idx);
  st.stats.flowsOpened++;
  flowLog(idx, "new flow");
  return true;
}

/** Abandons a flow being set up, closing what it opened. */
function flowCancel(st: UdpState, idx: number): void {
  for (let side = 0; side < 2; side++) {
    const sidx = flowSidx(idx, side);
    const s = st.sock[sidx]!;
    if (s >= 0) {
      if (st.own[sidx] === 1) st.loop.epoll.del(s);
      libc.symbols.close(s);
    }
    st.sock[sidx] = -1;
    st.own[sidx] = 0;
  }
  st.c.flows.flowAllocCancel(idx);
}

/**
 * Makes a flow for a datagram from the guest whose addresses are in
 * key[0..32).
 * @returns the sidx of the guest's side, or -1
 */
function flowFromTap(
  st: UdpState,
  v6: boolean,
  sport: number,
  dport: number,
  now: number,
): number {
  const c = st.c;
  const fl = c.flows;
  const why = fwdTapTarget(c, v6, key, 0, sport, dport, true);
  if (why !== FWD_OK) {
    st.stats.refused++;
    fwdRefusalLog("UDP", v6, why, key, 0, sport, dport);
    return -1;
  }
  /* a link-local target would need a scope: not forwarded */
  if (v6 && inanyIsLinkLocal6(key, 32)) return -1;
  const idx = fl.flowAllocFor(FLOW_TYPE_UDP);
  if (idx < 0) {
    st.stats.noFlow++;
    return -1;
  }
  fl.flowInitiate(idx, PIF_TAP, key, 16, key, 0, dport, sport);
  keyAny(48, v6);
  const raw = budgeted(
    st,
    libc.symbols.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
  );
  const s = raw < 0 ? raw : udpFlowSocket(raw, v6, 48, sport, 32, dport);
  if (s < 0) {
    if (logLevel >= LOG_DEBUG) {
      debug(`UDP: cannot open a socket for a flow from the guest: errno ${-s}`);
    }
    fl.flowAllocCancel(idx);
    return -1;
  }
  fl.flowTarget(idx, PIF_HOST, key, 48, key, 32, boundPort, dport);
  fl.flowSetType(idx, FLOW_TYPE_UDP);
  const tgt = flowSidx(idx, TGTSIDE);
  st.sock[tgt] = s;
  st.own[tgt] = 1;
  if (!fl.flowHashInsert(flowSidx(idx, INISIDE)) || !flowFinish(st, idx, now)) {
    flowCancel(st, idx);
    return -1;
  }
  return flowSidx(idx, INISIDE);
}

/**
 * Makes a flow for a datagram that arrived on listening socket l, from the
 * address in key[0..16) and port sport.
 * @returns the sidx of the initiating side, or -1
 */
function flowFromListener(st: UdpState, l: number, sport: number, now: number): number {
  const c = st.c;
  const fl = c.flows;
  const L = st.listeners;
  if (sport === 0 || inanyIsUnspecified(key, 0) || inanyIsMulticast(key, 0)) return -1;
  const pif = L.pif[l]!;
  const lport = L.port[l]!;
  const eport = L.target[l]!;
  const v6 = !inanyIs4(key, 0);
  const idx = fl.flowAllocFor(FLOW_TYPE_UDP);
  if (idx < 0) {
    st.stats.noFlow++;
    return -1;
  }
  fl.flowInitiate(idx, pif, L.addr, l * 16, key, 0, lport, sport);
  const tgt = flowSidx(idx, TGTSIDE);
  let targetSet = false;
  if (pif === PIF_SPLICE) {
    /* the guest's loopback to the host's: keep the loopback address and port */
    if (!inanyIsLoopback(key, 0)) {
      fl.flowAllocCancel(idx);
      return -1;
    }
    keyLoopback(32, v6);
    inanyCopy(key, 48, key, 0);
    const raw = budgeted(
      st,
      libc.symbols.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    );
    const s = raw < 0 ? raw : udpFlowSocket(raw, v6, 48, sport, 32, eport);
    if (s < 0) {
      fl.flowAllocCancel(idx);
      return -1;
    }
    fl.flowTarget(idx, PIF_HOST, key, 48, key, 32, boundPort, eport);
    st.sock[tgt] = s;
    st.own[tgt] = 1;
    targetSet = true;
  } else if (st.splice && inanyIsLoopback(key, 0)) {
    /* the host's loopback to the guest's address, over the guest's loopback;
     * with --host-lo-to-ns-lo to the guest's loopback address */
    const seen = v6 ? c.ip6.addrSeen : c.ip4.addrSeen;
    let zero = true;
    for (let i = 0; i < seen.length; i++) if (seen[i] !== 0) zero = false;
    if ((!zero || st.spliceToLoopback) && (v6 ? c.ip6.enabled : c.ip4.enabled)) {
      if (st.spliceToLoopback) keyLoopback(32, v6);
      else if (!inanyIsUnspecified(L.toAddr, l * 16)) inanyCopy(key, 32, L.toAddr, l * 16);
      else fwdGuestAddr(c, v6, key, 32);
      keyAny(48, v6);
      const ns = st.nsSync!.socket(
        v6 ? AF_INET6 : AF_INET,
        SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
        0,
      );
      const raw = ns < 0 ? ns : budgeted(st, ns);
      const s = raw < 0 ? raw : udpFlowSocket(raw, v6, 48, sport, 32, eport);
      if (s >= 0) {
        fl.flowTarget(idx, PIF_SPLICE, key, 48, key, 32, boundPort, eport);
        st.sock[tgt] = s;
        st.own[tgt] = 1;
        targetSet = true;
      } else if (logLevel >= LOG_DEBUG) {
        debug(`UDP: no socket in the namespace (errno ${-s}): using the tap`);
      }
    }
  }
  if (!targetSet && c.tapFd < 0) {
    /* no tap (--splice-only): only the splice path */
    fl.flowAllocCancel(idx);
    return -1;
  }
  if (!targetSet) {
    /* to the guest over the tap, from the source as the guest sees it */
    inanyCopy(key, 48, key, 0);
    fwdNatFromHost(c, key, 48);
    if (!inanyIsUnspecified(L.toAddr, l * 16)) inanyCopy(key, 32, L.toAddr, l * 16);
    else if (v6 && inanyIsLinkLocal6(key, 48) && !isZero(c.ip6.addrLinkLocalSeen)) {
      inanyCopy(key, 32, c.ip6.addrLinkLocalSeen, 0);
    } else fwdGuestAddr(c, v6, key, 32);
    if ((v6 && !c.ip6.enabled) || (!v6 && !c.ip4.enabled) || inanyIsUnspecified(key, 32)) {
      fl.flowAllocCancel(idx);
      return -1;
    }
    fl.flowTarget(idx, PIF_TAP, key, 48, key, 32, sport, eport);
  }
  fl.flowSetType(idx, FLOW_TYPE_UDP);
  /* replies leave from the forwarded port: keep a duplicate of the listener */
  const ini = flowSidx(idx, INISIDE);
  const dup = budgeted(st, libc.symbols.fcntl(L.fd[l]!, 1030, /* F_DUPFD_CLOEXEC */ 0));
  if (dup < 0) {
    flowCancel(st, idx);
    return -1;
  }
  st.sock[ini] = dup;
  st.own[ini] = 0;
  if (!fl.flowHashInsert(ini)) {
    flowCancel(st, idx);
    return -1;
  }
  if (fl.pif[tgt] === PIF_TAP && !fl.flowHashInsert(tgt)) {
    flowCancel(st, idx);
    return -1;
  }
  if (!flowFinish(st, idx, now)) {
    flowCancel(st, idx);
    return -1;
  }
  return ini;
}

/**
 * Checks a descriptor just opened (or the failure to open it) for a new flow
 * against the descriptor budget: counts and closes what the flow may not
 * keep.
 * @param fd the new descriptor, or -1 with errno set
 * @returns fd, or -errno (-EMFILE when beyond the budget)
 */
function budgeted(st: UdpState, fd: number): number {
  if (fd < 0) {
    const e = errno();
    if (e === ERRNO.EMFILE || e === ERRNO.ENFILE) fdBudget.exhausted++;
    st.stats.noFd++;
    return -e;
  }
  if (fdOverBudget(fd)) {
    libc.symbols.close(fd);
    st.stats.noFd++;
    return -ERRNO.EMFILE;
  }
  return fd;
}

function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Ends a flow: closes its sockets and frees its entry.
 * @param idx flow index (an ACTIVE UDP flow)
 */
function udpFlowClose(st: UdpState, idx: number): void {
  udpTapFlush(st.c);
  for (let side = 0; side < 2; side++) {
    const sidx = flowSidx(idx, side);
    const s = st.sock[sidx]!;
    if (s >= 0) {
      if (st.own[sidx] === 1) st.loop.epoll.del(s);
      libc.symbols.close(s);
    }
    st.sock[sidx] = -1;
    st.own[sidx] = 0;
  }
  st.c.flows.flowFree(idx);
  st.stats.flowsClosed++;
}

/**
 * Tap handler for UDP (registered with l4Register): forwards one datagram
 * from the guest to its flow's socket, making the flow when needed.
 * @param c execution context
 * @param v6 IPv6 frame
 * @param frame buffer holding the frame
 * @param dv DataView over `frame`'s buffer
 * @param ipOff offset of the IP header
 * @param l4Off offset of the UDP header
 * @param l4Len bytes from the UDP header to the end of the IP payload
 * @param now monotonic time, ms
 */
export function udpTapHandler(
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
    st.stats.malformed++;
    c.stats.malformed++;
    return;
  }
  const ulen = dv.getUint16(l4Off + 4);
  if (ulen < 8 || ulen > l4Len) {
    st.stats.malformed++;
    c.stats.malformed++;
    return;
  }
  const sport = dv.getUint16(l4Off);
  const dport = dv.getUint16(l4Off + 2);
  l3Addrs(frame, ipOff, v6, key);
  const fl = c.flows;
  let sidx = fl.flowLookup(IPPROTO_UDP, PIF_TAP, key, 16, key, 0, dport, sport);
  if (sidx < 0) {
    sidx = flowFromTap(st, v6, sport, dport, now);
    if (sidx < 0) {
      st.stats.dropped++;
      return;
    }
  }
  const idx = sidx >> 1;
  st.ts[idx] = now;
  st.dirs[idx]! |= (sidx & 1) === INISIDE ? DIR_FROM_INI : DIR_FROM_TGT;
  const to = sidx ^ 1;
  const s = st.sock[to]!;
  if (s < 0) {
    st.stats.dropped++;
    return;
  }
  if (frame !== lastFrame) {
    lastFrame = frame;
    lastFrameAddr = Number(addressOf(frame as Uint8Array<ArrayBuffer>));
  }
  if (s !== tapPendSock || tapPendLen === TAP_BATCH) {
    udpTapFlush(c);
    tapPendSock = s;
    tapPendOwn = true;
    tapPendSize = ulen - 8;
  }
  const i = tapPendLen++;
  const m = i * MMSGHDR_SIZE;
  putPtr(tiovDv, i * 16, lastFrameAddr + l4Off + 8);
  tiovDv.setUint32(i * 16 + 8, ulen - 8, true);
  tiovDv.setUint32(i * 16 + 12, 0, true);
  if (st.own[to] === 1) {
    tmsgDv.setUint32(m, 0, true);
    tmsgDv.setUint32(m + 4, 0, true);
    tmsgDv.setUint32(m + 8, 0, true);
  } else {
    const v6to = !inanyIs4(fl.raddr, to * 16);
    const len = sockaddrFromInany(tapToViews[i]!, fl.raddr, to * 16, fl.rport[to]!, v6to);
    putPtr(tmsgDv, m, tapToAddr + i * 28);
    tmsgDv.setUint32(m + 8, len, true);
    tapPendOwn = false;
  }
  /* fed outside a tap batch, nothing keeps the frame valid: send now */
  if (!tapBatch.active) udpTapFlush(c);
}

/**
 * Sends the datagrams queued by udpTapHandler() with sendmmsg(): a datagram
 * that fails is dropped and counted, and the rest go on (tap.ts flush hook).
 * @param _c execution context
 */
export function udpTapFlush(_c: Ctx): void {
  const st = S;
  const n = tapPendLen;
  if (st === null || n === 0) return;
  const s = tapPendSock;
  tapPendLen = 0;
  tapPendSock = -1;
  let done = 0;
  if (tapPendOwn && n > 1 && tapPendSize <= gsoSizeMax) done = gsoSend(st, s, n);
  while (done < n) {
    const r = libc.symbols.sendmmsg(s, tmsgViews[done]!, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r <= 0) {
      st.stats.dropped++;
      done++;
    } else {
      st.stats.fromTap += r;
      done += r;
    }
  }
}

/**
 * Sends the leading run of queued datagrams that share one payload length (the
 * last of a run may be shorter) as UDP GSO sends on a connected socket.
 * @param st module state
 * @param s the socket
 * @param n datagrams queued
 * @returns how many datagrams were sent or dropped (the rest go by sendmmsg())
 */
function gsoSend(st: UdpState, s: number, n: number): number {
  const size = tapPendSize;
  if (size === 0) return 0;
  let per = Math.floor(GSO_BYTES_MAX / size);
  if (per > GSO_SEGS_MAX) per = GSO_SEGS_MAX;
  let done = 0;
  while (done < n) {
    /* the run: full-size datagrams, and at most one shorter one to end it */
    let k = 0;
    while (done + k < n && k < per) {
      const len = tiovDv.getUint32((done + k) * 16 + 8, true);
      if (len > size) break;
      k++;
      if (len < size) break;
    }
    if (k < 2) return done;
    putPtr(gsoMsgDv, 16, tiovBase + done * 16);
    gsoMsgDv.setUint32(24, k, true);
    gsoCtlDv.setUint16(16, size, true);
    const r = libc.symbols.sendmsg(s, gsoMsg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0) {
      const e = errno();
      /* a full send buffer, a pending error: sendmmsg() sends what fits, one by one */
      if (e === ERRNO.EAGAIN || e === ERRNO.ECONNREFUSED) return done;
      /* EINVAL, EMSGSIZE, EIO: not for this size (path MTU, no GSO): plain sends from now on */
      gsoSizeMax = size - 1;
      if (logLevel >= LOG_DEBUG) debug(`UDP: GSO of ${size}-byte datagrams refused: errno ${e}`);
      return done;
    }
    st.stats.fromTap += k;
    done += k;
  }
  return done;
}

/**
 * Reads a batch of datagrams from a socket into the frame slots.
 * @returns the number read (0 when none or on error)
 */
function recvBatch(fd: number): number {
  for (let i = 0; i < UDP_BATCH; i++) {
    const m = i * MMSGHDR_SIZE;
    rmsgDv.setUint32(m + 8, 28, true);
    rmsgDv.setInt32(m + 48, 0, true);
  }
  const n = libc.symbols.recvmmsg(fd, rmsg, UDP_BATCH, MSG_DONTWAIT, null);
  return n < 0 ? 0 : n;
}

/** Clears a pending socket error (ICMP unreachable and the like). */
function sockErrClear(fd: number): void {
  soErrLen[0] = 4;
  libc.symbols.getsockopt(fd, SOL_SOCKET, SO_ERROR, soErr, soErrLen);
}

/**
 * Writes the Ethernet, IP and UDP headers in front of slot i's payload, from
 * flow side `to`'s addresses and ports.
 * @returns the offset of the IP header in `frames` (Ethernet 14 bytes before,
 *   UDP right before the payload)
 */
function slotHeadersWrite(c: Ctx, i: number, to: number, v6: boolean, l4len: number): number {
  const fl = c.flows;
  const a = to * 16;
  const udp = i * SLOT + PAYLOAD_OFF - 8;
  const ip = udp - (v6 ? 40 : 20);
  l2l3Write(c, frames, framesDv, ip - 14, v6, IPPROTO_UDP, fl.laddr, a, fl.raddr, a, l4len);
  framesDv.setUint16(udp, fl.lport[to]!);
  framesDv.setUint16(udp + 2, fl.rport[to]!);
  framesDv.setUint16(udp + 4, l4len);
  return ip;
}

/**
 * Writes datagram i of the batch to the guest, for flow side `to` (on the
 * tap).
 */
function tapSendSlot(st: UdpState, i: number, to: number): void {
  const c = st.c;
  const m = i * MMSGHDR_SIZE;
  const len = rmsgDv.getUint32(m + 56, true);
  if ((rmsgDv.getInt32(m + 48, true) & MSG_TRUNC) !== 0) {
    st.stats.dropped++;
    return;
  }
  const fl = c.flows;
  const a = to * 16;
  const v6 = !inanyIs4(fl.laddr, a);
  if (!v6 && len > UDP_PAYLOAD_MAX4) {
    st.stats.dropped++;
    return;
  }
  const l4len = len + 8;
  const ip = slotHeadersWrite(c, i, to, v6, l4len);
  const udp = i * SLOT + PAYLOAD_OFF - 8;
  const eth = ip - 14;
  const hdrLen = c.tapHdrLen;
  l4Finish(c, frames, framesDv, eth, udp, l4len, 6, pseudoSum(frames, ip, v6, IPPROTO_UDP, l4len));
  const frameLen = udp - eth + l4len;
  if (pcapOn) pcapFrame(frames, eth, frameLen);
  const view = v6 ? views6[i]! : views4[i]!;
  const n = c.tap.send(view, frameLen + hdrLen);
  if (n < 0) {
    st.stats.dropped++;
    return;
  }
  c.stats.framesOut++;
  st.stats.toTap++;
}

/**
 * Sends datagrams start..start+n-1 of the batch to flow side `to` (a socket)
 * with one sendmmsg().
 */
function spliceSend(st: UdpState, start: number, n: number, to: number): void {
  const s = st.sock[to]!;
  if (s < 0) {
    st.stats.dropped += n;
    return;
  }
  let nameAddr = 0;
  let nameLen = 0;
  if (st.own[to] !== 1) {
    const fl = st.c.flows;
    const v6 = !inanyIs4(fl.raddr, to * 16);
    nameLen = sockaddrFromInany(spliceTo, fl.raddr, to * 16, fl.rport[to]!, v6);
    nameAddr = spliceToAddr;
  }
  let count = 0;
  for (let i = start; i < start + n; i++) {
    const m = i * MMSGHDR_SIZE;
    if ((rmsgDv.getInt32(m + 48, true) & MSG_TRUNC) !== 0) continue;
    /* compact: entry start+count sends slot i */
    const j = start + count;
    const e = j * MMSGHDR_SIZE;
    siovDv.setUint32(j * 16 + 8, rmsgDv.getUint32(m + 56, true), true);
    /* the iovec of entry j must point at slot i's payload */
    putPtr(siovDv, j * 16, slotPayloadAddr + i * SLOT);
    putPtr(smsgDv, e, nameAddr);
    smsgDv.setUint32(e + 8, nameLen, true);
    count++;
  }
  if (count === 0) return;
  const r = libc.symbols.sendmmsg(s, smsgViews[start]!, count, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (r < 0) st.stats.dropped += count;
  else {
    st.stats.spliced += r;
    st.stats.dropped += count - r;
  }
  st.stats.dropped += n - count;
}

/* Address of slot 0's payload, set at init. */
let slotPayloadAddr = 0;

/** virtio_net_hdr gso_type: UDP segmentation (USO), any IP version. */
const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/* writev() of a USO frame: the first slot's headers and payload, then the other payloads. */
const usoIov = new Uint8Array(GSO_SEGS_MAX * 16);
const usoIovDv = new DataView(usoIov.buffer);
/* Cleared when the tap refuses a USO frame: one frame per datagram from then on. */
let usoOn = true;

/** Forwards datagrams start..start+n-1 of the batch to flow side `to`. */
function forward(st: UdpState, start: number, n: number, to: number): void {
  if (st.c.flows.pif[to] !== PIF_TAP) {
    spliceSend(st, start, n, to);
    return;
  }
  let i = start;
  const end = start + n;
  while (i < end) {
    const k = usoOn && st.c.tapHdrLen === 12 && !pcapOn ? usoRun(i, end) : 1;
    if (k < 2 || !tapSendUso(st, i, k, to)) {
      for (let j = i; j < i + (k < 1 ? 1 : k); j++) tapSendSlot(st, j, to);
    }
    i += k < 1 ? 1 : k;
  }
}

/**
 * @param i first datagram of the run
 * @param end end of the batch
 * @returns how many datagrams from i make one USO frame: untruncated, all of the first one's
 *   length except a shorter last one, within the limits of a GSO packet
 */
function usoRun(i: number, end: number): number {
  const first = i * MMSGHDR_SIZE;
  const size = rmsgDv.getUint32(first + 56, true);
  if (size === 0 || (rmsgDv.getInt32(first + 48, true) & MSG_TRUNC) !== 0) return 1;
  let per = Math.floor(GSO_BYTES_MAX / size);
  if (per > GSO_SEGS_MAX) per = GSO_SEGS_MAX;
  let k = 1;
  while (i + k < end && k < per) {
    const m = (i + k) * MMSGHDR_SIZE;
    if ((rmsgDv.getInt32(m + 48, true) & MSG_TRUNC) !== 0) break;
    const len = rmsgDv.getUint32(m + 56, true);
    if (len > size || len === 0) break;
    k++;
    if (len < size) break;
  }
  return k;
}

/**
 * Writes datagrams i..i+k-1 (one flow side, a run from usoRun()) to the guest as one UDP
 * segmentation frame: the guest's kernel splits it into the datagrams.
 * @returns false when nothing was written and the datagrams are to go one by one
 */
function tapSendUso(st: UdpState, i: number, k: number, to: number): boolean {
  const c = st.c;
  const fl = c.flows;
  const a = to * 16;
  const v6 = !inanyIs4(fl.laddr, a);
  const size = rmsgDv.getUint32(i * MMSGHDR_SIZE + 56, true);
  let total = 0;
  for (let j = i; j < i + k; j++) {
    const len = rmsgDv.getUint32(j * MMSGHDR_SIZE + 56, true);
    const at = (j - i) * 16;
    putPtr(usoIovDv, at, slotPayloadAddr + j * SLOT);
    usoIovDv.setUint32(at + 8, len, true);
    usoIovDv.setUint32(at + 12, 0, true);
    total += len;
  }
  const l4len = total + 8;
  const ip = slotHeadersWrite(c, i, to, v6, l4len);
  const udp = i * SLOT + PAYLOAD_OFF - 8;
  const eth = ip - 14;
  const partial = pseudoSum(frames, ip, v6, IPPROTO_UDP, l4len);
  vnetCsumWrite(frames, framesDv, eth - 12, udp, 6, partial, VIRTIO_NET_HDR_GSO_UDP_L4, size);
  framesDv.setUint16(eth - 12 + 2, udp + 8 - eth, true); /* hdr_len */
  /* the first iovec starts at the virtio-net header, before the first payload */
  const hdrBytes = PAYLOAD_OFF - (eth - 12 - i * SLOT);
  putPtr(usoIovDv, 0, slotPayloadAddr - PAYLOAD_OFF + eth - 12);
  usoIovDv.setUint32(8, size + hdrBytes, true);
  const n = libc.symbols.writev(c.tapFd, usoIov, k);
  if (n < 0) {
    const e = errno();
    if (e === ERRNO.EINVAL) {
      usoOn = false;
      debug(`UDP: the tap refuses segmentation frames (EINVAL): one frame per datagram`);
      return false;
    }
    st.stats.dropped += k;
    return true;
  }
  c.stats.framesOut++;
  st.stats.toTap += k;
  return true;
}

/**
 * Epoll handler for a flow's own socket: datagrams from the target go to
 * the initiating side.
 * @param fd the socket
 * @param sidx the flow side the socket belongs to
 * @param events EPOLL* mask
 * @param now monotonic time, ms
 */
export function udpSockHandler(fd: number, sidx: number, events: number, now: number): void {
  const st = S!;
  const idx = sidx >> 1;
  const fl = st.c.flows;
  if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_UDP) return;
  if (st.sock[sidx] !== fd) return;
  if ((events & EPOLLERR) !== 0) sockErrClear(fd);
  if ((events & EPOLLIN) === 0) return;
  const to = sidx ^ 1;
  for (let round = 0; round < UDP_ROUNDS; round++) {
    const n = recvBatch(fd);
    if (n === 0) return;
    st.ts[idx] = now;
    st.dirs[idx]! |= (sidx & 1) === INISIDE ? DIR_FROM_INI : DIR_FROM_TGT;
    forward(st, 0, n, to);
    if (n < UDP_BATCH) return;
  }
}

/**
 * Epoll handler for a listening socket: each datagram is matched to a flow
 * (made when new), then runs of datagrams for the same flow are forwarded
 * together.
 * @param fd the socket
 * @param ref its reference {port, pif, family} (fwd/listeners.ts)
 * @param events EPOLL* mask
 * @param now monotonic time, ms
 */
export function udpListenHandler(fd: number, ref: number, events: number, now: number): void {
  const st = S!;
  const L = st.listeners;
  const l = L.lookup(FWD_UDP, ref, fd);
  if (l < 0) return;
  if ((events & EPOLLERR) !== 0) sockErrClear(fd);
  if ((events & EPOLLIN) === 0) return;
  const fl = st.c.flows;
  const pif = L.pif[l]!;
  const lport = L.port[l]!;
  for (let round = 0; round < UDP_ROUNDS; round++) {
    const n = recvBatch(fd);
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const sport = sockaddrToInany(rnameViews[i]!, key, 0);
      let sidx = -1;
      if (sport >= 0) {
        sidx = fl.flowLookup(IPPROTO_UDP, pif, L.addr, l * 16, key, 0, lport, sport);
        if (sidx < 0) sidx = flowFromListener(st, l, sport, now);
      }
      if (sidx < 0) {
        batchTo[i] = -1;
        continue;
      }
      const idx = sidx >> 1;
      st.ts[idx] = now;
      st.dirs[idx]! |= (sidx & 1) === INISIDE ? DIR_FROM_INI : DIR_FROM_TGT;
      batchTo[i] = sidx ^ 1;
    }
    let i = 0;
    while (i < n) {
      const to = batchTo[i]!;
      let j = i + 1;
      while (j < n && batchTo[j] === to) j++;
      if (to < 0) st.stats.dropped += j - i;
      else forward(st, i, j - i, to);
      i = j;
    }
    if (n < UDP_BATCH) return;
  }
}

/**
 * Post-batch hook: at most once per UDP_TIMER_MS, ends flows idle for longer
 * than their timeout.
 * @param now monotonic time, ms
 */
export function udpTimer(now: number): void {
  const st = S!;
  if (now - st.lastTimer < UDP_TIMER_MS) return;
  st.lastTimer = now;
  fdBudgetTick(now);
  const fl = st.c.flows;
  const end = fl.maxUsed;
  for (let idx = 0; idx < end; idx++) {
    if (fl.state[idx] !== FLOW_STATE_ACTIVE || fl.type[idx] !== FLOW_TYPE_UDP) continue;
    const dirs = st.dirs[idx]!;
    const unreplied = (dirs & DIR_FROM_TGT) === 0 && fl.pif[flowSidx(idx, INISIDE)] === PIF_HOST;
    const limit = dirs === (DIR_FROM_INI | DIR_FROM_TGT)
      ? UDP_TIMEOUT_STREAM_MS
      : unreplied
      ? UDP_TIMEOUT_UNREPLIED_MS
      : UDP_TIMEOUT_MS;
    if (now - st.ts[idx]! > limit) {
      flowLog(idx, "timeout");
      if (unreplied) st.stats.unrepliedExpired++;
      udpFlowClose(st, idx);
    }
  }
  if (st.fwdIn !== null && st.fwdIn.hasAuto && !st.fwdIn.scan()) {
    debug("UDP: cannot read the guest's ports any more: automatic forwarding stops");
    st.fwdIn.stopScanning();
  }
  st.fwdOut?.scan();
}

/**
 * Ends every UDP flow and closes the listening sockets (at exit, and in
 * tests).
 */
export function udpCloseAll(): void {
  const st = S;
  if (st === null) return;
  const fl = st.c.flows;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] === FLOW_STATE_ACTIVE && fl.type[idx] === FLOW_TYPE_UDP) {
      udpFlowClose(st, idx);
    }
  }
  st.listeners.closeAll(FWD_UDP);
}

/**
 * One line of counters for the debug log at exit.
 * @returns the text
 */
export function udpStatsLine(): string {
  const s = S?.stats;
  if (s === undefined) return "udp: off";
  return `udp: flows ${s.flowsOpened} opened, ${s.flowsClosed} closed; datagrams from tap ${s.fromTap}, ` +
    `to tap ${s.toTap}, spliced ${s.spliced}, dropped ${s.dropped}, malformed ${s.malformed}, ` +
    `refused ${s.refused}; unreplied from outside expired ${s.unrepliedExpired}, ` +
    `flows not made for want of an entry ${s.noFlow}, of a descriptor ${s.noFd}`;
}

/**
 * Number of active UDP flows (tests).
 * @returns the count
 */
export function udpFlowCount(): number {
  const st = S;
  if (st === null) return 0;
  const fl = st.c.flows;
  let n = 0;
  for (let idx = 0; idx < fl.maxUsed; idx++) {
    if (fl.state[idx] === FLOW_STATE_ACTIVE && fl.type[idx] === FLOW_TYPE_UDP) n++;
  }
  return n;
}
