/**
 * listen.ts - UDP "listening" sockets: the host's ports forwarded to the
 * guest (-u) and the guest's loopback ports forwarded to the host (-U).
 *
 * UDP has no listen(), but a socket bound to a forwarded port may start new
 * flows, by analogy with TCP (passt's udp.c). A rule without address binds
 * 0.0.0.0 and [::] (IPV6_V6ONLY, so that the two coexist), one with an
 * address binds that address, `%IF` binds to the interface. -U sockets live
 * in the guest's namespace and bind its loopback addresses (127.0.0.1 and
 * ::1). Every socket gets an index in a table of struct-of-arrays that grows
 * at set-up (and when `auto` scanning binds a port) and is read on the data
 * path; a closed slot is reused.
 *
 * @module
 */

import type { FwdSpec } from "../conf/ports.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import { portIsSet } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { cString } from "../ffi/mem.ts";
import {
  AF_INET,
  AF_INET6,
  IP_FREEBIND,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_BINDTODEVICE,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import { sockaddrFromInany } from "../ffi/sockaddr.ts";
import { PIF_SPLICE } from "../flow/pif.ts";

/** The listening sockets, struct-of-arrays by index. */
export class UdpListeners {
  /** number of slots in use (some may be closed: fd -1) */
  count = 0;
  /** capacity of the arrays */
  cap: number;
  /** socket fd, -1 for a free slot */
  fd: Int32Array;
  /** PIF_HOST (-u, on the host) or PIF_SPLICE (-U, in the guest's namespace) */
  pif: Uint8Array;
  /** 1 for an IPv6 socket */
  v6: Uint8Array;
  /** port bound */
  port: Uint16Array;
  /** port the datagrams go to on the other side */
  target: Uint16Array;
  /** 1 when bound by `auto` scanning (closed when the port goes away) */
  auto: Uint8Array;
  /** bound address as inany (all zero for [::], ::ffff:0.0.0.0 for 0.0.0.0), 16 bytes each */
  addr: Uint8Array;
  /** target address on the other side as inany, all zero for the default, 16 bytes each */
  toAddr: Uint8Array;

  /**
   * Allocates the arrays.
   * @param cap initial capacity
   */
  constructor(cap = 64) {
    this.cap = cap;
    this.fd = new Int32Array(cap).fill(-1);
    this.pif = new Uint8Array(cap);
    this.v6 = new Uint8Array(cap);
    this.port = new Uint16Array(cap);
    this.target = new Uint16Array(cap);
    this.auto = new Uint8Array(cap);
    this.addr = new Uint8Array(cap * 16);
    this.toAddr = new Uint8Array(cap * 16);
  }

  /**
   * Takes a free slot, growing the arrays when full (set-up and scan time
   * only).
   * @returns the slot index
   */
  alloc(): number {
    for (let i = 0; i < this.count; i++) if (this.fd[i] === -1) return i;
    if (this.count === this.cap) {
      const cap = this.cap * 2;
      const grow = <T extends Int32Array | Uint8Array | Uint16Array>(a: T, n: number): T => {
        const b = new (a.constructor as { new (n: number): T })(n);
        b.set(a);
        return b;
      };
      const fd = new Int32Array(cap).fill(-1);
      fd.set(this.fd);
      this.fd = fd;
      this.pif = grow(this.pif, cap);
      this.v6 = grow(this.v6, cap);
      this.port = grow(this.port, cap);
      this.target = grow(this.target, cap);
      this.auto = grow(this.auto, cap);
      this.addr = grow(this.addr, cap * 16);
      this.toAddr = grow(this.toAddr, cap * 16);
      this.cap = cap;
    }
    return this.count++;
  }

  /**
   * Finds the open socket of a (pif, family, port).
   * @param pif PIF_HOST or PIF_SPLICE
   * @param v6 IPv6 socket
   * @param port the port
   * @returns the slot index, or -1
   */
  find(pif: number, v6: boolean, port: number): number {
    const w = v6 ? 1 : 0;
    for (let i = 0; i < this.count; i++) {
      if (this.fd[i]! >= 0 && this.pif[i] === pif && this.v6[i] === w && this.port[i] === port) {
        return i;
      }
    }
    return -1;
  }
}

const one = new Uint8Array(new Int32Array([1]).buffer);
const sa = new Uint8Array(28);

/** Loopback addresses as inany, for -U sockets. */
const LOOPBACK4_INANY = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
const LOOPBACK6_INANY = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const ANY4_INANY = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
const ANY6_INANY = new Uint8Array(16);

/**
 * Sets up and binds a datagram socket.
 * @param fd a fresh socket of the family
 * @param v6 IPv6
 * @param addr buffer holding the inany address to bind
 * @param addrOff offset of the address in `addr`
 * @param port port to bind
 * @param ifname interface to bind to, if any
 * @param freebind set IP_FREEBIND
 * @returns fd, or -errno (the socket is then closed)
 */
export function udpBindSocket(
  fd: number,
  v6: boolean,
  addr: Uint8Array,
  addrOff: number,
  port: number,
  ifname: string | undefined,
  freebind: boolean,
): number {
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
  if (v6) libc.symbols.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
  if (freebind) libc.symbols.setsockopt(fd, IPPROTO_IP, IP_FREEBIND, one, 4);
  if (ifname !== undefined) {
    const name = cString(ifname);
    if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) < 0) {
      const e = errno();
      libc.symbols.close(fd);
      return -e;
    }
  }
  const len = sockaddrFromInany(sa, addr, addrOff, port, v6);
  if (libc.symbols.bind(fd, sa, len) < 0) {
    const e = errno();
    libc.symbols.close(fd);
    return -e;
  }
  return fd;
}

/** Inany form of a rule's address text, or null for a bad one. */
function addrInany(text: string): { v6: boolean; a: Uint8Array } | null {
  const a4 = parseIp4(text);
  if (a4 !== null) {
    const a = ANY4_INANY.slice();
    a.set(a4, 12);
    return { v6: false, a };
  }
  const a6 = parseIp6(text);
  if (a6 === null) return null;
  const mapped = a6.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
  return { v6: !mapped, a: a6 };
}

/** A socket factory: returns an fd or -errno. */
export type SocketFn = (domain: number, type: number, protocol: number) => number;

/** What {@linkcode udpListen} needs besides the spec. */
export interface UdpListenOptions {
  /** PIF_HOST for -u (sockets on the host), PIF_SPLICE for -U (in the guest's namespace) */
  pif: number;
  /** IPv4 enabled */
  v4: boolean;
  /** IPv6 enabled */
  v6: boolean;
  /** --freebind */
  freebind: boolean;
  /** creates a socket where it must live (libc's socket() on the host) */
  socket: SocketFn;
  /** called with each new socket and its index (to add it to epoll) */
  onSocket: (fd: number, index: number) => void;
}

/**
 * Binds one forwarded port (both families unless an address says which).
 * @param l the table
 * @param o options
 * @param port port to bind
 * @param target port on the other side
 * @param addrText listening address (canonical text), undefined for any
 * @param ifname interface, if any
 * @param toAddrText target address (canonical text), undefined for the default
 * @param auto bound by `auto` scanning
 * @returns 0 when at least one socket was bound, else -errno of the failure
 */
export function udpListenPort(
  l: UdpListeners,
  o: UdpListenOptions,
  port: number,
  target: number,
  addrText: string | undefined,
  ifname: string | undefined,
  toAddrText: string | undefined,
  auto: boolean,
): number {
  const fams: { v6: boolean; a: Uint8Array }[] = [];
  if (o.pif === PIF_SPLICE) {
    if (o.v4) fams.push({ v6: false, a: LOOPBACK4_INANY });
    if (o.v6) fams.push({ v6: true, a: LOOPBACK6_INANY });
  } else if (addrText === undefined) {
    if (o.v4) fams.push({ v6: false, a: ANY4_INANY });
    if (o.v6) fams.push({ v6: true, a: ANY6_INANY });
  } else {
    const x = addrInany(addrText);
    if (x !== null) fams.push(x);
  }
  const to = toAddrText !== undefined ? addrInany(toAddrText) : null;
  let ok = 0;
  let fail = -22; /* EINVAL: nothing to bind */
  for (const f of fams) {
    if (l.find(o.pif, f.v6, port) >= 0 && addrText === undefined) {
      ok++;
      continue;
    }
    const s = o.socket(f.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
      fail = s;
      continue;
    }
    const fd = udpBindSocket(s, f.v6, f.a, 0, port, ifname, o.freebind);
    if (fd < 0) {
      fail = fd;
      continue;
    }
    const i = l.alloc();
    l.fd[i] = fd;
    l.pif[i] = o.pif;
    l.v6[i] = f.v6 ? 1 : 0;
    l.port[i] = port;
    l.target[i] = target;
    l.auto[i] = auto ? 1 : 0;
    l.addr.set(f.a, i * 16);
    l.toAddr.fill(0, i * 16, i * 16 + 16);
    if (to !== null && to.v6 === f.v6) l.toAddr.set(to.a, i * 16);
    o.onSocket(fd, i);
    ok++;
  }
  return ok > 0 ? 0 : fail;
}

/**
 * Opens the listening sockets of a spec's explicit rules (`auto` rules are
 * left to scanning).
 * @param l the table to add to
 * @param spec the -u or -U spec
 * @param o options
 * @returns null, or the first failure of an explicitly given port as
 *   { port, errno, source } (weak rules, from `all` or exclusions, skip
 *   ports that cannot be bound)
 */
export function udpListen(
  l: UdpListeners,
  spec: FwdSpec,
  o: UdpListenOptions,
): { port: number; errno: number; source: string } | null {
  if (spec.mode !== "spec" && spec.mode !== "all") return null;
  for (const rule of spec.rules) {
    if (rule.scan) continue;
    for (let p = rule.first; p <= rule.last; p++) {
      if (portIsSet(spec.excluded, p)) continue;
      const target = (rule.to + (p - rule.first)) & 0xffff;
      const r = udpListenPort(l, o, p, target, rule.addr, rule.ifname, rule.toAddr, false);
      if (r < 0 && !rule.weak) return { port: p, errno: -r, source: rule.source };
    }
  }
  return null;
}
