/**
 * netlink_sock.ts - the rtnetlink socket: open, send a request, collect its reply.
 *
 * Setup-time code (it allocates and blocks). A socket belongs to the network
 * namespace of the thread that created it and keeps using that namespace
 * wherever it is used from later, so a socket opened while the thread was
 * inside the guest's namespace configures the guest's namespace.
 *
 * Each request gets the next sequence number; its reply is gathered by
 * `NlReply` (netlink.ts), which checks sequence and port id, ends at
 * NLMSG_DONE or NLMSG_ERROR and turns errors into `NlError`. Datagrams are
 * sized with `MSG_PEEK | MSG_TRUNC` first, so none is ever truncated, and only
 * datagrams sent by the kernel (port id 0) are accepted. A receive timeout
 * (SO_RCVTIMEO) bounds every wait. When a request fails midway, whatever is
 * left of its reply is drained, so that the next dump is not refused (EBUSY)
 * while the kernel still has one running on this socket.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check, ERRNO, errno, SysError } from "./errno.ts";
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  MSG_PEEK,
  MSG_TRUNC,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_SOCKET,
} from "./layout.ts";
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
  NlError,
  nlMalformed,
  type NlMsg,
  NlReply,
  nlStamp,
  nlTypeName,
  SOCKADDR_NL_SIZE,
  SOL_NETLINK,
} from "./netlink.ts";

/** SO_RCVTIMEO on x86_64 (asm-generic/socket.h), takes a struct timeval. */
const SO_RCVTIMEO = 20;
/** Longest wait for one reply datagram. */
const RECV_TIMEOUT_S = 5;
/** Receive buffer size to start with (kernel dumps fill up to 32 KiB). */
const RX_INITIAL = 32768;
/** Most datagrams read while draining an abandoned reply. */
const DRAIN_MAX = 4096;
/** Times a dump is repeated when the kernel flags it as interrupted. */
const DUMP_RETRIES = 3;

const ports = new Map<number, number>();
let seqLast = 0;
let rxBuf = new Uint8Array(RX_INITIAL);
const peekBuf = new Uint8Array(16);
const fromAddr = new Uint8Array(SOCKADDR_NL_SIZE);
const fromLen = new Uint32Array(1);
const kernelAddr = new Uint8Array(SOCKADDR_NL_SIZE);
kernelAddr[0] = AF_NETLINK;

function setIntOpt(fd: number, level: number, name: number, value: number): boolean {
  const v = new Int32Array([value]);
  return libc.symbols.setsockopt(fd, level, name, v, 4) === 0;
}

/** Socket options orzo wants on every rtnetlink socket; best effort, as pasta. */
function setOptions(fd: number): void {
  setIntOpt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
  setIntOpt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
  setIntOpt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
  const tv = new BigInt64Array([BigInt(RECV_TIMEOUT_S), 0n]);
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
}

/**
 * Opens an rtnetlink socket in the calling thread's network namespace:
 * AF_NETLINK/NETLINK_ROUTE, SOCK_CLOEXEC, bound (the kernel picks the port
 * id), with strict dump checking, extended and capped acknowledgements (each
 * when the kernel has it) and a 5 s receive timeout.
 * @returns the socket
 * @throws SysError when it cannot be created or bound
 */
export function nlOpen(): number {
  const fd = libc.symbols.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw new SysError("socket(AF_NETLINK)", errno());
  try {
    const sa = new Uint8Array(SOCKADDR_NL_SIZE);
    sa[0] = AF_NETLINK;
    check(libc.symbols.bind(fd, sa, SOCKADDR_NL_SIZE), "bind(AF_NETLINK)");
    setOptions(fd);
    ports.set(fd, queryPortid(fd));
  } catch (e) {
    libc.symbols.close(fd);
    throw e;
  }
  return fd;
}

/**
 * Closes a socket from nlOpen.
 * @param fd the socket
 */
export function nlClose(fd: number): void {
  ports.delete(fd);
  libc.symbols.close(fd);
}

function queryPortid(fd: number): number {
  const sa = new Uint8Array(SOCKADDR_NL_SIZE);
  const len = new Uint32Array([SOCKADDR_NL_SIZE]);
  check(libc.symbols.getsockname(fd, sa, len), "getsockname(AF_NETLINK)");
  const dv = new DataView(sa.buffer);
  if (len[0]! < 8 || dv.getUint16(0, true) !== AF_NETLINK) {
    throw new SysError(`getsockname: fd ${fd} is not a netlink socket`, ERRNO.ENOTSOCK);
  }
  return dv.getUint32(4, true);
}

/**
 * Returns the port id the kernel gave a netlink socket (asked each time: fd
 * numbers get reused). A socket not opened by nlOpen (say, created raw on
 * another thread) gets nlOpen's socket options the first time it is seen
 * here; an unbound one gets its port id when it first sends, and 0 is
 * returned until then.
 * @param fd the socket
 * @returns its port id (nl_pid), 0 while unbound
 * @throws SysError ENOTSOCK when `fd` is not a netlink socket
 */
export function nlPortid(fd: number): number {
  const p = queryPortid(fd);
  const seen = ports.get(fd);
  if (seen === undefined || (seen !== 0 && seen !== p)) setOptions(fd);
  ports.set(fd, p);
  return p;
}

function nextSeq(): number {
  seqLast = seqLast >= 0xffffffff ? 1 : seqLast + 1;
  return seqLast;
}

function sendMsg(fd: number, msg: Uint8Array<ArrayBuffer>, op: string): void {
  for (;;) {
    const n = libc.symbols.sendto(fd, msg, msg.length, 0, kernelAddr, SOCKADDR_NL_SIZE);
    if (n < 0) {
      if (errno() === ERRNO.EINTR) continue;
      throw new SysError(`send ${op}`, errno());
    }
    if (n !== msg.length) {
      throw new SysError(`send ${op}: ${n} of ${msg.length} bytes sent`, ERRNO.EMSGSIZE);
    }
    return;
  }
}

function recvRetry(fd: number, buf: Uint8Array<ArrayBuffer>, flags: number, from: boolean): number {
  for (;;) {
    fromLen[0] = SOCKADDR_NL_SIZE;
    const n = from
      ? libc.symbols.recvfrom(fd, buf, buf.length, flags, fromAddr, fromLen)
      : libc.symbols.recvfrom(fd, buf, buf.length, flags, null, null);
    if (n < 0 && errno() === ERRNO.EINTR) continue;
    return n < 0 ? -errno() : n;
  }
}

/**
 * Receives one datagram whole.
 * @returns the datagram (a view of the shared receive buffer), or null when it
 *   did not come from the kernel and was dropped
 */
function recvDatagram(fd: number, op: string, flags = 0): Uint8Array | null {
  const size = recvRetry(fd, peekBuf, flags | MSG_PEEK | MSG_TRUNC, false);
  if (size < 0) throw new SysError(`recv ${op} reply`, size);
  if (size > rxBuf.length) {
    let n = rxBuf.length;
    while (n < size) n *= 2;
    rxBuf = new Uint8Array(n);
  }
  const n = recvRetry(fd, rxBuf, flags | MSG_TRUNC, true);
  if (n < 0) throw new SysError(`recv ${op} reply`, n);
  if (n > rxBuf.length) throw nlMalformed(`${op} reply of ${n} bytes truncated`);
  const from = new DataView(fromAddr.buffer);
  if (fromLen[0]! >= 8 && from.getUint32(4, true) !== 0) return null;
  return rxBuf.subarray(0, n);
}

/**
 * Reads and drops whatever is queued on the socket, without blocking.
 * @param fd the socket
 * @returns the number of datagrams dropped
 */
export function nlDrain(fd: number): number {
  let count = 0;
  while (count < DRAIN_MAX) {
    const n = recvRetry(fd, rxBuf, MSG_DONTWAIT | MSG_TRUNC, false);
    if (n < 0 && -n !== ERRNO.ENOBUFS) break;
    count++;
  }
  return count;
}

/**
 * Sends one request and collects its whole reply.
 * @param fd netlink socket
 * @param msg the request (sequence number and port id are stamped here)
 * @param op request name for errors (by default the message type's name)
 * @returns the completed reply
 * @throws NlError when the kernel refuses the request (e.g. "RTM_NEWADDR: EEXIST");
 *   SysError on socket errors, on timeout (EAGAIN) and on malformed replies (EBADMSG)
 */
export function nlTransact(fd: number, msg: Uint8Array<ArrayBuffer>, op?: string): NlReply {
  if (msg.length < 16) throw new RangeError(`Netlink request of ${msg.length} bytes`);
  const name = op ?? nlTypeName(new DataView(msg.buffer, msg.byteOffset).getUint16(4, true));
  const seq = nextSeq();
  nlStamp(msg, seq, 0);
  nlPortid(fd); /* a socket seen the first time gets its options before use */
  sendMsg(fd, msg, name);
  const reply = new NlReply(name, seq, nlPortid(fd)); /* bound by now */
  try {
    for (let foreign = 0;;) {
      const d = recvDatagram(fd, name);
      if (d === null) {
        /* not from the kernel: bounded, so a flood cannot keep us here */
        if (++foreign > DRAIN_MAX) throw nlMalformed(`${name}: too many foreign datagrams`);
        continue;
      }
      if (reply.feed(d)) return reply;
    }
  } catch (e) {
    nlDrain(fd);
    throw e;
  }
}

/**
 * Sends a request that expects an acknowledgement (NLM_F_ACK), and returns the
 * data messages that came before it (RTM_GETLINK by index answers with one).
 * @param fd netlink socket
 * @param msg the request
 * @param op request name for errors
 * @returns data messages of the reply
 * @throws NlError when the kernel refuses the request
 */
export function nlDo(fd: number, msg: Uint8Array<ArrayBuffer>, op?: string): NlMsg[] {
  return nlTransact(fd, msg, op).messages;
}

/**
 * Sends a dump request (NLM_F_DUMP) and returns all its messages. A dump the
 * kernel marks as interrupted (NLM_F_DUMP_INTR: the table changed meanwhile)
 * is repeated, up to 3 times; one that overran the socket buffer (ENOBUFS),
 * or that the kernel refused because an abandoned dump was still running on
 * the socket (EBUSY, after draining it), is repeated once.
 * @param fd netlink socket
 * @param msg the request
 * @param op request name for errors
 * @returns data messages of the reply
 * @throws NlError when the kernel refuses the request
 */
export function nlDump(fd: number, msg: Uint8Array<ArrayBuffer>, op?: string): NlMsg[] {
  let retried = false;
  for (let i = 0;; i++) {
    let reply: NlReply;
    try {
      reply = nlTransact(fd, msg, op);
    } catch (e) {
      const again = e instanceof SysError && (e.errno === ERRNO.ENOBUFS || e.errno === ERRNO.EBUSY);
      if (again && !retried) {
        retried = true;
        continue; /* nlTransact drained the socket */
      }
      throw e;
    }
    if (!reply.interrupted || i >= DUMP_RETRIES) return reply.messages;
  }
}

/**
 * Whether an error is the kernel refusing with a given errno.
 * @param e the caught value
 * @param code errno name, such as "EEXIST"
 * @returns true when `e` is an NlError with that code
 */
export function nlErrorIs(e: unknown, code: string): boolean {
  return e instanceof NlError && e.code === code;
}
