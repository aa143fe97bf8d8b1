/**
 * listen.ts - listening sockets for inbound forwarding (-t), on the host.
 *
 * One socket per (family, port) of the spec's rules: a rule without address
 * listens on 0.0.0.0 and [::] (IPV6_V6ONLY, so the two do not collide), one
 * with an address on that address, `%IF` binds to the interface. Each socket's
 * epoll reference carries its index here, which gives the family, the port
 * and the guest-side target port. Rules from `all` or exclusions ("weak")
 * skip ports that cannot be bound; explicit ports must bind or orzo stops.
 *
 * @module
 */

import type { FwdRule, FwdSpec } from "../conf/ports.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import { portIsSet } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { errno, SysError } from "../ffi/errno.ts";
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
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import { sockaddrFromInany } from "../ffi/sockaddr.ts";

/**
 * The listening sockets, struct-of-arrays by index (the epoll reference of
 * each socket). Slots are added at start-up and by forwards added at run
 * time (fwd/runtime.ts); a slot whose forward was removed has fd -1 and is
 * reused.
 */
export class TcpListeners {
  /** number of slots in use (some may be free: fd -1) */
  count = 0;
  /** socket fd, -1 for a free slot */
  fd: Int32Array = new Int32Array(0);
  /** 1 for IPv6 */
  v6: Uint8Array = new Uint8Array(0);
  /** port listened on */
  port: Uint16Array = new Uint16Array(0);
  /** port on the guest */
  target: Uint16Array = new Uint16Array(0);
  /** the rule each slot was opened for (to close a rule's sockets) */
  readonly rule: (FwdRule | null)[] = [];

  /**
   * Takes a free slot, growing the arrays when full (set-up and control
   * time only, never on the data path).
   * @returns the slot index
   */
  alloc(): number {
    for (let i = 0; i < this.count; i++) if (this.fd[i] === -1) return i;
    if (this.count === this.fd.length) {
      const cap = Math.max(16, this.fd.length * 2);
      const fd = new Int32Array(cap).fill(-1);
      fd.set(this.fd);
      const v6 = new Uint8Array(cap);
      v6.set(this.v6);
      const port = new Uint16Array(cap);
      port.set(this.port);
      const target = new Uint16Array(cap);
      target.set(this.target);
      this.fd = fd;
      this.v6 = v6;
      this.port = port;
      this.target = target;
    }
    this.rule[this.count] = null;
    return this.count++;
  }

  /**
   * Frees the slots of one rule, handing each open socket to `close`.
   * @param rule the rule whose sockets go
   * @param close takes the socket out of epoll and closes it
   * @returns the number of sockets closed
   */
  drop(rule: FwdRule, close: (fd: number) => void): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.rule[i] !== rule || this.fd[i]! < 0) continue;
      close(this.fd[i]!);
      this.fd[i] = -1;
      this.rule[i] = null;
      n++;
    }
    return n;
  }

  /**
   * The ports with an open socket.
   * @param out a port bitmap (8192 bytes), bits are added (not cleared)
   * @returns `out`
   */
  ports(out: Uint8Array): Uint8Array {
    for (let i = 0; i < this.count; i++) {
      if (this.fd[i]! < 0) continue;
      const p = this.port[i]!;
      out[p >> 3] = out[p >> 3]! | (1 << (p & 7));
    }
    return out;
  }
}

const one = new Uint8Array(new Int32Array([1]).buffer);

function hostSocket(domain: number, type: number): number {
  const fd = libc.symbols.socket(domain, type, 0);
  return fd < 0 ? -errno() : fd;
}

/**
 * Opens one listening socket.
 * @param v6 IPv6 (with IPV6_V6ONLY) or IPv4
 * @param addr address to bind (4 or 16 bytes), null for any
 * @param port port number
 * @param ifname interface to bind to (SO_BINDTODEVICE), if any
 * @param freebind whether to set IP_FREEBIND
 * @param socketFn where the socket is created (default: here; NsSync for
 *   the guest's namespace), returning the fd or -errno
 * @returns the fd, or -errno
 */
export function listenOn(
  v6: boolean,
  addr: Uint8Array | null,
  port: number,
  ifname: string | undefined,
  freebind: boolean,
  socketFn: (domain: number, type: number) => number = hostSocket,
): number {
  const fd = socketFn(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
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
  const inany = new Uint8Array(16);
  if (addr !== null) {
    if (addr.length === 4) {
      inany[10] = inany[11] = 0xff;
      inany.set(addr, 12);
    } else inany.set(addr);
  }
  const sa = new Uint8Array(28);
  const len = sockaddrFromInany(sa, inany, 0, port, v6);
  if (libc.symbols.bind(fd, sa, len) < 0 || libc.symbols.listen(fd, 128) < 0) {
    const e = errno();
    libc.symbols.close(fd);
    return -e;
  }
  return fd;
}

/**
 * Opens the listening sockets of rules into a table. Rules with `scan` set
 * are left to tcp/auto.ts.
 * @param l the table to add to
 * @param rules the rules
 * @param excluded ports left out (`~` of the spec)
 * @param families which families are enabled
 * @param freebind whether to set IP_FREEBIND (--freebind)
 * @param onSocket called for each socket with its index (to add it to epoll)
 * @throws SysError when an explicitly given port cannot be bound (the
 *   sockets opened before stay in the table)
 */
export function tcpListenRules(
  l: TcpListeners,
  rules: readonly FwdRule[],
  excluded: Uint8Array,
  families: { v4: boolean; v6: boolean },
  freebind: boolean,
  onSocket: (fd: number, index: number) => void,
): void {
  for (const rule of rules) {
    if (rule.scan) continue;
    const a4 = rule.addr !== undefined ? parseIp4(rule.addr) : null;
    const a6 = rule.addr !== undefined && a4 === null ? parseIp6(rule.addr) : null;
    const fams: [boolean, Uint8Array | null][] = [];
    if (rule.addr === undefined) {
      if (families.v4) fams.push([false, null]);
      if (families.v6) fams.push([true, null]);
    } else if (a4 !== null) fams.push([false, a4]);
    else if (a6 !== null) {
      /* an IPv4-mapped address listens as IPv4 */
      const mapped = a6.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
      fams.push(mapped ? [false, a6.slice(12)] : [true, a6]);
    }
    for (let p = rule.first; p <= rule.last; p++) {
      if (portIsSet(excluded, p)) continue;
      const target = (rule.to + (p - rule.first)) & 0xffff;
      for (const [v6, addr] of fams) {
        const fd = listenOn(v6, addr, p, rule.ifname, freebind);
        if (fd < 0) {
          if (rule.weak) continue;
          throw new SysError(`Failed to bind port ${p} (${rule.source})`, -fd);
        }
        const index = l.alloc();
        l.fd[index] = fd;
        l.v6[index] = v6 ? 1 : 0;
        l.port[index] = p;
        l.target[index] = target;
        l.rule[index] = rule;
        onSocket(fd, index);
      }
    }
  }
}

/**
 * Opens the listening sockets of a spec.
 * @param spec the -t spec
 * @param families which families are enabled
 * @param freebind whether to set IP_FREEBIND (--freebind)
 * @param onSocket called for each socket with its index (to add it to epoll)
 * @returns the listeners
 * @throws SysError when an explicitly given port cannot be bound
 */
export function tcpListen(
  spec: FwdSpec,
  families: { v4: boolean; v6: boolean },
  freebind: boolean,
  onSocket: (fd: number, index: number) => void,
): TcpListeners {
  const l = new TcpListeners();
  if (spec.mode === "spec" || spec.mode === "all") {
    tcpListenRules(l, spec.rules, spec.excluded, families, freebind, onSocket);
  }
  return l;
}
