/**
 * sockaddr.ts - struct sockaddr_in/in6 to and from 16-byte inany addresses,
 * in caller-provided buffers (no allocation).
 *
 * @module
 */

import { AF_INET, AF_INET6, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from "./layout.ts";

/**
 * Whether an inany address is IPv4-mapped.
 * @param a buffer
 * @param off offset of the 16-byte address
 * @returns true for IPv4
 */
export function inanyIsV4(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/**
 * Writes a sockaddr for an inany address and port.
 * @param sa buffer of at least SOCKADDR_IN6_SIZE bytes
 * @param a buffer holding the address
 * @param off offset of the 16-byte address
 * @param port port number
 * @param v6 whether to write sockaddr_in6 (else sockaddr_in)
 * @returns the sockaddr length
 */
export function sockaddrFromInany(
  sa: Uint8Array,
  a: Uint8Array,
  off: number,
  port: number,
  v6: boolean,
): number {
  sa.fill(0, 0, SOCKADDR_IN6_SIZE);
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  if (!v6) {
    sa[0] = AF_INET;
    for (let i = 0; i < 4; i++) sa[4 + i] = a[off + 12 + i]!;
    return SOCKADDR_IN_SIZE;
  }
  sa[0] = AF_INET6;
  for (let i = 0; i < 16; i++) sa[8 + i] = a[off + i]!;
  return SOCKADDR_IN6_SIZE;
}

/**
 * Reads a sockaddr_in/in6 into an inany address.
 * @param sa the sockaddr
 * @param a buffer for the address
 * @param off offset of the 16-byte address
 * @returns the port, or -1 for another address family
 */
export function sockaddrToInany(sa: Uint8Array, a: Uint8Array, off: number): number {
  const family = sa[0]! | (sa[1]! << 8);
  if (family === AF_INET) {
    for (let i = 0; i < 10; i++) a[off + i] = 0;
    a[off + 10] = 0xff;
    a[off + 11] = 0xff;
    for (let i = 0; i < 4; i++) a[off + 12 + i] = sa[4 + i]!;
  } else if (family === AF_INET6) {
    for (let i = 0; i < 16; i++) a[off + i] = sa[8 + i]!;
  } else return -1;
  return (sa[2]! << 8) | sa[3]!;
}
