/**
 * sockbuf.ts - socket buffer sizes, past the system's maximum where allowed.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE, SOL_SOCKET } from "./layout.ts";

/**
 * Sets a socket's send or receive buffer: SO_SNDBUFFORCE / SO_RCVBUFFORCE
 * (beyond wmem_max / rmem_max, with CAP_NET_ADMIN), else the plain option,
 * which the kernel caps. Set-up only: allocates.
 * @param fd the socket
 * @param dir "snd" for the send buffer, "rcv" for the receive buffer
 * @param bytes the size asked for
 */
export function sockBufSet(fd: number, dir: "snd" | "rcv", bytes: number): void {
  const b = new Uint8Array(new Int32Array([bytes]).buffer);
  const [force, plain] = dir === "snd" ? [SO_SNDBUFFORCE, SO_SNDBUF] : [SO_RCVBUFFORCE, SO_RCVBUF];
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, force, b, 4) < 0) {
    libc.symbols.setsockopt(fd, SOL_SOCKET, plain, b, 4);
  }
}
