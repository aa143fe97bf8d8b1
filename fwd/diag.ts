/**
 * diag.ts - which ports are bound in a namespace, asked of the kernel over
 * NETLINK_SOCK_DIAG (sock_diag(7), what `ss` uses) instead of read from
 * /proc/net/{tcp,udp}[6].
 *
 * Theory of operation: reading /proc/net/tcp walks the whole established
 * connection hash table of the machine (all namespaces share it), several
 * milliseconds on a large one even when the namespace has no socket at all;
 * the event loop stops for that long, and datagrams pile up in socket
 * buffers. An inet_diag dump that asks only for TCP sockets in LISTEN state
 * walks the listening hash table alone, and one for UDP sockets in state
 * CLOSE (bound, not connected: what a UDP server looks like) walks the UDP
 * table: microseconds. A NETLINK_SOCK_DIAG socket answers for the namespace
 * it was created in, so the guest's is opened through ns/ns_sync.ts.
 *
 * Setup-speed code run about once a second: it reuses one receive buffer and
 * allocates nothing per socket listed, but is not tuned further.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { AF_INET, AF_INET6, AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW } from "../ffi/layout.ts";

/** Netlink protocol of sock_diag. */
export const NETLINK_SOCK_DIAG = 4;
/** nlmsg_type of inet_diag requests and answers. */
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
/** TCP state LISTEN. */
const TCP_LISTEN = 10;
/** Socket state of a bound, unconnected UDP socket (TCP_CLOSE). */
const UDP_UNCONNECTED = 7;
/** nlmsghdr + inet_diag_req_v2 */
const REQ_LEN = 16 + 56;
/** Dumps a request may take before it gives up (a dump is a few messages). */
const MAX_READS = 4096;

/**
 * Opens a NETLINK_SOCK_DIAG socket in the calling thread's namespace.
 * @param socketFn socket(2) where the socket must live (default: here)
 * @returns the fd, or -errno
 */
export function diagOpen(
  socketFn: (domain: number, type: number, protocol: number) => number = (d, t, p) => {
    const fd = libc.symbols.socket(d, t, p);
    return fd < 0 ? -errno() : fd;
  },
): number {
  return socketFn(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

const req = new Uint8Array(REQ_LEN);
const reqDv = new DataView(req.buffer);
const buf = new Uint8Array(65536);
const bufDv = new DataView(buf.buffer);
let seq = 1;

/**
 * Whether bytes at off (IPv4: 4, IPv6: 16) are a loopback address.
 */
function loopback(family: number, off: number): boolean {
  if (family === AF_INET) return buf[off] === 127;
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) return false;
  if (buf[off + 10] === 0xff && buf[off + 11] === 0xff) return buf[off + 12] === 127;
  if (buf[off + 10] !== 0 || buf[off + 11] !== 0) return false;
  for (let i = 12; i < 15; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 15] === 1;
}

/**
 * Sets in `out` the local ports of one family's sockets in one state.
 * @returns ports newly set, or -errno
 */
function dump(
  fd: number,
  family: number,
  proto: number,
  state: number,
  out: Uint8Array,
  skipLoopback: boolean,
): number {
  req.fill(0);
  const s = seq++ >>> 0;
  reqDv.setUint32(0, REQ_LEN, true);
  reqDv.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  reqDv.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  reqDv.setUint32(8, s, true);
  req[16] = family;
  req[17] = proto;
  reqDv.setUint32(20, 1 << state, true);
  if (libc.symbols.send(fd, req, REQ_LEN, 0) < 0) return -errno();
  let n = 0;
  for (let reads = 0; reads < MAX_READS; reads++) {
    const len = libc.symbols.recv(fd, buf, buf.length, 0);
    if (len < 0) return -errno();
    let off = 0;
    while (off + 16 <= len) {
      const mlen = bufDv.getUint32(off, true);
      const type = bufDv.getUint16(off + 4, true);
      if (mlen < 16 || off + mlen > len) return n;
      if (bufDv.getUint32(off + 8, true) !== s) {
        off += (mlen + 3) & ~3;
        continue;
      }
      if (type === NLMSG_DONE) return n;
      if (type === NLMSG_ERROR) {
        const e = bufDv.getInt32(off + 16, true);
        return e < 0 ? e : n;
      }
      if (type === SOCK_DIAG_BY_FAMILY && mlen >= 16 + 72) {
        const m = off + 16;
        /* inet_diag_msg: family, state, timer, retrans, then the socket id:
         * sport (network order) at +4, source address at +8 */
        const port = (buf[m + 4]! << 8) | buf[m + 5]!;
        if (port > 0 && buf[m + 1] === state && !(skipLoopback && loopback(buf[m]!, m + 8))) {
          if ((out[port >> 3]! & (1 << (port & 7))) === 0) n++;
          out[port >> 3] = out[port >> 3]! | (1 << (port & 7));
        }
      }
      off += (mlen + 3) & ~3;
    }
  }
  return n;
}

/**
 * Reads the bound ports of the namespace a diag socket belongs to: UDP
 * sockets bound and not connected, or TCP sockets listening; IPv4 and IPv6.
 * @param fd a NETLINK_SOCK_DIAG socket (diagOpen())
 * @param udp UDP (else TCP)
 * @param out bitmap (8192 bytes), cleared first
 * @param skipLoopback leave out sockets bound to loopback addresses only
 * @returns the number of ports, or -errno when the dump failed
 */
export function diagPorts(
  fd: number,
  udp: boolean,
  out: Uint8Array,
  skipLoopback: boolean,
): number {
  out.fill(0);
  const proto = udp ? 17 : 6;
  const state = udp ? UDP_UNCONNECTED : TCP_LISTEN;
  const a = dump(fd, AF_INET, proto, state, out, skipLoopback);
  if (a < 0) return a;
  const b = dump(fd, AF_INET6, proto, state, out, skipLoopback);
  /* no IPv6 in the namespace is no error */
  return b < 0 ? a : a + b;
}
