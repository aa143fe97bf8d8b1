/**
 * host_sock.ts - host-side TCP peers for unit tests of the TCP translation:
 * listening sockets and connections on the loopback, opened through FFI and
 * non-blocking, so that a test drives them synchronously between turns of
 * orzo's event loop and sees exactly what the kernel saw (end of file,
 * resets) as return values, with no Deno resource in between.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { ERRNO, errno } from "../../ffi/errno.ts";
import {
  AF_INET,
  AF_INET6,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SHUT_WR,
  SO_LINGER,
  SO_RCVBUF,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../../ffi/layout.ts";

/** Loopback as a sockaddr: 127.0.0.1 or ::1, with a port. */
function loopbackSockaddr(v6: boolean, port: number): Uint8Array<ArrayBuffer> {
  const sa = new Uint8Array(v6 ? 28 : 16);
  sa[0] = v6 ? AF_INET6 : AF_INET;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  if (v6) sa[23] = 1;
  else sa.set([127, 0, 0, 1], 4);
  return sa;
}

/** Port of a bound socket. */
function localPort(fd: number): number {
  const sa = new Uint8Array(28);
  const len = new Uint8Array(new Uint32Array([28]).buffer);
  if (libc.symbols.getsockname(fd, sa, len) < 0) {
    throw new Error(`Cannot read the socket's address: errno ${errno()}`);
  }
  return (sa[2]! << 8) | sa[3]!;
}

function tcpSocket(v6: boolean): number {
  const fd = libc.symbols.socket(
    v6 ? AF_INET6 : AF_INET,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) throw new Error(`Cannot open a TCP socket: errno ${errno()}`);
  return fd;
}

/** A listening socket on 127.0.0.1 or ::1. */
export class HostListener {
  /** the socket */
  readonly fd: number;
  /** the port it listens on */
  readonly port: number;
  /** IPv6 (::1) or IPv4 (127.0.0.1) */
  readonly v6: boolean;
  /** connections accepted, closed with the listener */
  readonly accepted: HostConn[] = [];

  /**
   * Opens a listener on an ephemeral port.
   * @param v6 listen on ::1 instead of 127.0.0.1
   * @param backlog listen() backlog (0 makes a queue of one connection)
   * @throws Error when the socket cannot be set up
   */
  constructor(v6: boolean, backlog = 16) {
    this.v6 = v6;
    this.fd = tcpSocket(v6);
    const sa = loopbackSockaddr(v6, 0);
    if (
      libc.symbols.bind(this.fd, sa, sa.length) < 0 || libc.symbols.listen(this.fd, backlog) < 0
    ) {
      const e = errno();
      libc.symbols.close(this.fd);
      throw new Error(`Cannot listen on the loopback: errno ${e}`);
    }
    this.port = localPort(this.fd);
  }

  /**
   * Accepts one queued connection, without blocking.
   * @returns the connection, or null when none is queued
   */
  accept(): HostConn | null {
    const sa = new Uint8Array(28);
    const len = new Uint8Array(new Uint32Array([28]).buffer);
    const fd = libc.symbols.accept4(this.fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return null;
    const conn = new HostConn(fd);
    this.accepted.push(conn);
    return conn;
  }

  /** Closes the listener and every connection it accepted. */
  close(): void {
    for (const c of this.accepted) c.close();
    if (this.fd >= 0) libc.symbols.close(this.fd);
  }
}

/**
 * A port on the loopback where nothing listens (it was free a moment ago).
 * @param v6 IPv6 (::1) or IPv4 (127.0.0.1)
 * @returns the port
 */
export function closedPort(v6: boolean): number {
  const l = new HostListener(v6);
  l.close();
  return l.port;
}

/**
 * A free TCP port on 127.0.0.1 (bound and released through Deno, whose
 * SO_REUSEADDR makes the kernel pick another port each time, unlike
 * {@linkcode closedPort}, which may return the same one twice in a row).
 * @returns the port
 */
export function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** One end of a TCP connection on the host. */
export class HostConn {
  /** the socket, -1 once closed */
  fd: number;
  /** end of file seen */
  eof = false;
  /** errno of the read that failed (ECONNRESET...), 0 when none */
  error = 0;
  #chunks: Uint8Array[] = [];
  #len = 0;
  readonly #buf = new Uint8Array(1 << 16);

  /**
   * Wraps a connected (or connecting) socket.
   * @param fd the socket
   */
  constructor(fd: number) {
    this.fd = fd;
  }

  /**
   * Starts a non-blocking connection to the loopback.
   * @param v6 to ::1 instead of 127.0.0.1
   * @param port destination port
   * @returns the connection (its connect may still be in progress)
   * @throws Error when connect fails at once
   */
  static connect(v6: boolean, port: number): HostConn {
    const fd = tcpSocket(v6);
    const sa = loopbackSockaddr(v6, port);
    if (libc.symbols.connect(fd, sa, sa.length) < 0 && errno() !== ERRNO.EINPROGRESS) {
      const e = errno();
      libc.symbols.close(fd);
      throw new Error(`Cannot connect to port ${port}: errno ${e}`);
    }
    return new HostConn(fd);
  }

  /**
   * The local port of the connection.
   * @returns the port
   */
  port(): number {
    return localPort(this.fd);
  }

  /**
   * Reads everything available now, without blocking: data goes to
   * `received()`, end of file sets `eof`, a failure sets `error`.
   * @returns this, for chaining in conditions
   */
  poll(): this {
    while (this.fd >= 0 && !this.eof && this.error === 0) {
      const n = libc.symbols.recv(this.fd, this.#buf, this.#buf.length, MSG_DONTWAIT);
      if (n < 0) {
        const e = errno();
        if (e !== ERRNO.EAGAIN) this.error = e;
        break;
      }
      if (n === 0) {
        this.eof = true;
        break;
      }
      this.#chunks.push(this.#buf.slice(0, n));
      this.#len += n;
    }
    return this;
  }

  /**
   * Everything read so far.
   * @returns the bytes, in order
   */
  received(): Uint8Array {
    if (this.#chunks.length !== 1) {
      const all = new Uint8Array(this.#len);
      let off = 0;
      for (const c of this.#chunks) {
        all.set(c, off);
        off += c.length;
      }
      this.#chunks = [all];
    }
    return this.#chunks[0] ?? new Uint8Array(0);
  }

  /**
   * Number of bytes read so far.
   * @returns the count
   */
  receivedLen(): number {
    return this.#len;
  }

  /**
   * Writes without blocking.
   * @param data bytes to send
   * @returns bytes accepted by the socket, or -errno
   */
  send(data: Uint8Array<ArrayBuffer>): number {
    const n = libc.symbols.send(this.fd, data, data.length, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -errno() : n;
  }

  /**
   * Sets the receive buffer size (before data arrives).
   * @param bytes SO_RCVBUF value
   */
  setRcvBuf(bytes: number): void {
    const v = new Uint8Array(new Int32Array([bytes]).buffer);
    libc.symbols.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, v, 4);
  }

  /** Shuts down the write side: the peer reads end of file. */
  shutdownWrite(): void {
    libc.symbols.shutdown(this.fd, SHUT_WR);
  }

  /** Closes with SO_LINGER 0: the peer sees a reset. */
  reset(): void {
    if (this.fd < 0) return;
    const linger = new Uint8Array(new Int32Array([1, 0]).buffer);
    libc.symbols.setsockopt(this.fd, SOL_SOCKET, SO_LINGER, linger, 8);
    this.close();
  }

  /** Closes the socket (again is fine). */
  close(): void {
    if (this.fd < 0) return;
    libc.symbols.close(this.fd);
    this.fd = -1;
  }
}
