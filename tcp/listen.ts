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

import type { FwdSpec } from "../conf/ports.ts";
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

/** The listening sockets, struct-of-arrays by index. */
export interface TcpListeners {
  /** number of sockets */
  count: number;
  /** socket fd */
  fd: Int32Array;
  /** 1 for IPv6 */
  v6: Uint8Array;
  /** port listened on */
  port: Uint16Array;
  /** port on the guest */
  target: Uint16Array;
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
  const fds: number[] = [];
  const v6s: number[] = [];
  const ports: number[] = [];
  const targets: number[] = [];
  if (spec.mode === "spec" || spec.mode === "all") {
    for (const rule of spec.rules) {
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
        if (portIsSet(spec.excluded, p)) continue;
        const target = (rule.to + (p - rule.first)) & 0xffff;
        for (const [v6, addr] of fams) {
          const fd = listenOn(v6, addr, p, rule.ifname, freebind);
          if (fd < 0) {
            if (rule.weak) continue;
            throw new SysError(`Failed to bind port ${p} (${rule.source})`, -fd);
          }
          const index = fds.length;
          fds.push(fd);
          v6s.push(v6 ? 1 : 0);
          ports.push(p);
          targets.push(target);
          onSocket(fd, index);
        }
      }
    }
  }
  return {
    count: fds.length,
    fd: Int32Array.from(fds),
    v6: Uint8Array.from(v6s),
    port: Uint16Array.from(ports),
    target: Uint16Array.from(targets),
  };
}
