/**
 * listeners.ts - the one table of forwarding sockets (TCP listeners, UDP
 * bound sockets), on the host (-t, -u) and in the guest's namespace (-T, -U).
 *
 * Every socket that accepts connections or datagrams for a forward has a
 * slot here, struct-of-arrays, and one epoll reference encoding, as passt's
 * fwd_listen_ref: {port, pif, family} (listenRef()). The handlers of
 * EPOLL_TYPE_TCP_LISTEN and EPOLL_TYPE_UDP_LISTEN find the slot of an event
 * from its reference and fd (lookup(): a map from reference to a chain of
 * slots; sockets on the same port, pif and family but on different
 * addresses share a chain), which gives the target port, the listening
 * address and the target address. Slots are taken at set-up, by `auto`
 * scanning and by forwards added at run time, never on the data path; a
 * closed slot has fd -1 and is reused.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { cString } from "../ffi/mem.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLIN,
  IP_FREEBIND,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_BINDTODEVICE,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import { sockaddrFromInany } from "../ffi/sockaddr.ts";
import type { FwdRule } from "../conf/ports.ts";
import { EPOLL_TYPE_TCP_LISTEN, EPOLL_TYPE_UDP_LISTEN, type EventLoop } from "../loop.ts";

/** Table protocol of a TCP listener. */
export const FWD_TCP = 0;
/** Table protocol of a UDP bound socket. */
export const FWD_UDP = 1;

/** Slot kind: opened for an explicit rule (start-up or run time). */
export const KIND_RULE = 0;
/** Slot kind: opened by `auto` scanning. */
export const KIND_AUTO = 1;

/**
 * The epoll reference of a forwarding socket: {port, pif, family}.
 * @param port the bound port
 * @param pif PIF_HOST or PIF_SPLICE: where the socket lives
 * @param v6 an IPv6 socket
 * @returns the u32 epoll data
 */
export function listenRef(port: number, pif: number, v6: boolean): number {
  return (port & 0xffff) | (pif & 0xff) << 16 | (v6 ? 1 << 24 : 0);
}

/**
 * The port of an epoll reference.
 * @param ref from listenRef()
 * @returns the port
 */
export function refPort(ref: number): number {
  return ref & 0xffff;
}

/**
 * The pif of an epoll reference.
 * @param ref from listenRef()
 * @returns the pif
 */
export function refPif(ref: number): number {
  return (ref >>> 16) & 0xff;
}

/**
 * The family of an epoll reference.
 * @param ref from listenRef()
 * @returns true for IPv6
 */
export function refV6(ref: number): boolean {
  return (ref & (1 << 24)) !== 0;
}

/** Adds and removes a socket to and from the event loop. */
export interface ListenWatch {
  /** adds a socket (EPOLLIN) with its table protocol and reference; 0 or -errno */
  add(proto: number, fd: number, ref: number): number;
  /** removes a socket before it is closed */
  del(fd: number): void;
}

/**
 * The event loop's side of a table: TCP listeners under
 * EPOLL_TYPE_TCP_LISTEN, UDP sockets under EPOLL_TYPE_UDP_LISTEN, each with
 * its listenRef().
 * @param loop the event loop
 * @returns the watch
 */
export function loopWatch(loop: EventLoop): ListenWatch {
  return {
    add: (proto, fd, ref) =>
      loop.epoll.add(
        fd,
        EPOLLIN,
        proto === FWD_TCP ? EPOLL_TYPE_TCP_LISTEN : EPOLL_TYPE_UDP_LISTEN,
        ref,
      ),
    del: (fd) => {
      loop.epoll.del(fd);
    },
  };
}

/** What a new slot holds (see {@linkcode FwdListeners}). */
export interface ListenSlot {
  /** FWD_TCP or FWD_UDP */
  proto: number;
  /** PIF_HOST or PIF_SPLICE */
  pif: number;
  /** IPv6 socket */
  v6: boolean;
  /** port bound */
  port: number;
  /** port on the other side */
  target: number;
  /** KIND_RULE or KIND_AUTO */
  kind: number;
  /** bound address as inany (16 bytes) */
  addr: Uint8Array;
  /** target address as inany, null for the default */
  toAddr: Uint8Array | null;
  /** the rule the socket was opened for, null for `auto` */
  rule: FwdRule | null;
}

/** The forwarding sockets, struct-of-arrays by slot (see the module doc). */
export class FwdListeners {
  /** number of slots in use (some may be free: fd -1) */
  count = 0;
  /** capacity of the arrays */
  cap: number;
  /** socket fd, -1 for a free slot */
  fd: Int32Array;
  /** FWD_TCP or FWD_UDP */
  proto: Uint8Array;
  /** PIF_HOST (on the host) or PIF_SPLICE (in the guest's namespace) */
  pif: Uint8Array;
  /** 1 for an IPv6 socket */
  v6: Uint8Array;
  /** port bound */
  port: Uint16Array;
  /** port the connections or datagrams go to on the other side */
  target: Uint16Array;
  /** KIND_RULE or KIND_AUTO */
  kind: Uint8Array;
  /** next slot of the same reference, -1 at the end */
  next: Int32Array;
  /** bound address as inany (all zero for [::], ::ffff:0.0.0.0 for 0.0.0.0), 16 bytes each */
  addr: Uint8Array;
  /** target address on the other side as inany, all zero for the default, 16 bytes each */
  toAddr: Uint8Array;
  /** the rule each slot was opened for (to close a rule's sockets), null for `auto` */
  readonly rule: (FwdRule | null)[] = [];
  /** first slot by proto << 25 | reference */
  readonly #head = new Map<number, number>();
  readonly #watch: ListenWatch;

  /**
   * Allocates the arrays.
   * @param watch adds sockets to the event loop and removes them
   * @param cap initial capacity
   */
  constructor(watch: ListenWatch, cap = 64) {
    this.#watch = watch;
    this.cap = cap;
    this.fd = new Int32Array(cap).fill(-1);
    this.proto = new Uint8Array(cap);
    this.pif = new Uint8Array(cap);
    this.v6 = new Uint8Array(cap);
    this.port = new Uint16Array(cap);
    this.target = new Uint16Array(cap);
    this.kind = new Uint8Array(cap);
    this.next = new Int32Array(cap).fill(-1);
    this.addr = new Uint8Array(cap * 16);
    this.toAddr = new Uint8Array(cap * 16);
  }

  #alloc(): number {
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
      this.proto = grow(this.proto, cap);
      this.pif = grow(this.pif, cap);
      this.v6 = grow(this.v6, cap);
      this.port = grow(this.port, cap);
      this.target = grow(this.target, cap);
      this.kind = grow(this.kind, cap);
      this.next = grow(this.next, cap);
      this.addr = grow(this.addr, cap * 16);
      this.toAddr = grow(this.toAddr, cap * 16);
      this.cap = cap;
    }
    return this.count++;
  }

  /**
   * Puts an open socket in a slot and in the event loop.
   * @param fd the socket
   * @param s what the slot holds
   * @returns the slot, or -errno when the event loop refused it (the
   *   socket is then closed)
   */
  add(fd: number, s: ListenSlot): number {
    const ref = listenRef(s.port, s.pif, s.v6);
    const r = this.#watch.add(s.proto, fd, ref);
    if (r < 0) {
      libc.symbols.close(fd);
      return r;
    }
    const i = this.#alloc();
    this.fd[i] = fd;
    this.proto[i] = s.proto;
    this.pif[i] = s.pif;
    this.v6[i] = s.v6 ? 1 : 0;
    this.port[i] = s.port;
    this.target[i] = s.target;
    this.kind[i] = s.kind;
    this.addr.set(s.addr, i * 16);
    this.toAddr.fill(0, i * 16, i * 16 + 16);
    if (s.toAddr !== null) this.toAddr.set(s.toAddr, i * 16);
    this.rule[i] = s.rule;
    const key = s.proto << 25 | ref;
    this.next[i] = this.#head.get(key) ?? -1;
    this.#head.set(key, i);
    return i;
  }

  /**
   * Closes the socket of a slot and frees it.
   * @param i the slot
   */
  close(i: number): void {
    const fd = this.fd[i]!;
    if (fd < 0) return;
    const key = this.proto[i]! << 25 | listenRef(this.port[i]!, this.pif[i]!, this.v6[i] === 1);
    let j = this.#head.get(key) ?? -1;
    if (j === i) {
      if (this.next[i]! < 0) this.#head.delete(key);
      else this.#head.set(key, this.next[i]!);
    } else {
      while (j >= 0 && this.next[j] !== i) j = this.next[j]!;
      if (j >= 0) this.next[j] = this.next[i]!;
    }
    this.next[i] = -1;
    this.#watch.del(fd);
    libc.symbols.close(fd);
    this.fd[i] = -1;
    this.rule[i] = null;
  }

  /**
   * The slot of an epoll event (data path: no allocation).
   * @param proto FWD_TCP or FWD_UDP
   * @param ref the event's reference
   * @param fd the event's fd
   * @returns the slot, or -1 (a socket closed meanwhile)
   */
  lookup(proto: number, ref: number, fd: number): number {
    let i = this.#head.get(proto << 25 | ref) ?? -1;
    while (i >= 0 && this.fd[i] !== fd) i = this.next[i]!;
    return i;
  }

  /**
   * Finds an open socket.
   * @param proto FWD_TCP or FWD_UDP
   * @param pif PIF_HOST or PIF_SPLICE
   * @param v6 IPv6 socket
   * @param port the port
   * @param kind KIND_RULE or KIND_AUTO, -1 for either
   * @returns the first such slot, or -1
   */
  find(proto: number, pif: number, v6: boolean, port: number, kind = -1): number {
    let i = this.#head.get(proto << 25 | listenRef(port, pif, v6)) ?? -1;
    while (i >= 0 && kind >= 0 && this.kind[i] !== kind) i = this.next[i]!;
    return i;
  }

  /**
   * The ports with an open socket.
   * @param out a port bitmap (8192 bytes); bits are added, not cleared
   * @param proto FWD_TCP or FWD_UDP, -1 for both
   * @param pif PIF_HOST or PIF_SPLICE
   * @param kind KIND_RULE or KIND_AUTO, -1 for either
   * @returns `out`
   */
  ports(out: Uint8Array, proto: number, pif: number, kind = -1): Uint8Array {
    for (let i = 0; i < this.count; i++) {
      if (this.fd[i]! < 0 || this.pif[i] !== pif) continue;
      if ((proto >= 0 && this.proto[i] !== proto) || (kind >= 0 && this.kind[i] !== kind)) {
        continue;
      }
      const p = this.port[i]!;
      out[p >> 3] = out[p >> 3]! | (1 << (p & 7));
    }
    return out;
  }

  /**
   * Closes every socket of a protocol (at exit, and in tests).
   * @param proto FWD_TCP or FWD_UDP, -1 for both
   */
  closeAll(proto = -1): void {
    for (let i = 0; i < this.count; i++) {
      if (this.fd[i]! >= 0 && (proto < 0 || this.proto[i] === proto)) this.close(i);
    }
  }
}

/** A socket factory: returns an fd or -errno (libc's socket() on the host). */
export type SocketFn = (domain: number, type: number, protocol: number) => number;

/** The host's socket(), returning -errno. */
export const hostSocket: SocketFn = (d, t, p) => {
  const fd = libc.symbols.socket(d, t, p);
  return fd < 0 ? -errno() : fd;
};

const one = new Uint8Array(new Int32Array([1]).buffer);
const saBuf = new Uint8Array(28);

/**
 * Opens one forwarding socket: a TCP listener or a bound UDP socket, with
 * SO_REUSEADDR, IPV6_V6ONLY (so that [::] and 0.0.0.0 coexist), IP_FREEBIND
 * and SO_BINDTODEVICE as asked.
 * @param proto FWD_TCP or FWD_UDP
 * @param v6 IPv6 or IPv4
 * @param addr inany address to bind (16 bytes)
 * @param port port number
 * @param ifname interface to bind to, if any
 * @param freebind whether to set IP_FREEBIND
 * @param socketFn where the socket is created (the host, or the guest's namespace)
 * @returns the fd, or -errno
 */
export function fwdSocket(
  proto: number,
  v6: boolean,
  addr: Uint8Array,
  port: number,
  ifname: string | undefined,
  freebind: boolean,
  socketFn: SocketFn = hostSocket,
): number {
  const type = (proto === FWD_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = socketFn(v6 ? AF_INET6 : AF_INET, type, 0);
  if (fd < 0) return fd;
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
  const len = sockaddrFromInany(saBuf, addr, 0, port, v6);
  if (
    libc.symbols.bind(fd, saBuf, len) < 0 ||
    (proto === FWD_TCP && libc.symbols.listen(fd, 128) < 0)
  ) {
    const e = errno();
    libc.symbols.close(fd);
    return -e;
  }
  return fd;
}
