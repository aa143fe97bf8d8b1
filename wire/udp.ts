/**
 * udp.ts - UDP header view (RFC 768).
 *
 * ```
 *  0               16              32
 * +---------------+---------------+
 * |  source port  |   dest port   |
 * +---------------+---------------+
 * |    length     |   checksum    |
 * +---------------+---------------+
 * ```
 *
 * @module
 */

import { csumL4v4, csumL4v6 } from "./checksum.ts";
import { IPPROTO_UDP } from "./ip_proto.ts";

/** Length of the UDP header. */
export const UDP_HLEN = 8;
/** Offset of the destination port. */
const UDP_DPORT = 2;
/** Offset of the length. */
const UDP_LEN = 4;
/** Offset of the checksum. */
const UDP_CSUM = 6;

/**
 * Checks that a UDP header fits and that its length field is sane: at least
 * 8 and within `len`.
 * @param dv view over the buffer
 * @param off where the UDP header starts
 * @param len bytes available from `off` (the IP payload length)
 * @returns true when every accessor may be used
 */
export function udpCheckLen(dv: DataView, off: number, len: number): boolean {
  if (off < 0 || len < UDP_HLEN || off + len > dv.byteLength) return false;
  const ulen = dv.getUint16(off + UDP_LEN);
  return ulen >= UDP_HLEN && ulen <= len;
}

/**
 * Reads the destination port.
 * @param dv view over the buffer
 * @param off where the UDP header starts
 * @returns the port
 */
export function udpDstPort(dv: DataView, off: number): number {
  return dv.getUint16(off + UDP_DPORT);
}

/**
 * Reads the length.
 * @param dv view over the buffer
 * @param off where the UDP header starts
 * @returns header plus payload, in bytes
 */
export function udpLen(dv: DataView, off: number): number {
  return dv.getUint16(off + UDP_LEN);
}

/**
 * Computes and stores the checksum of a UDP datagram over IPv4 (a computed 0
 * is sent as 0xffff).
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv4 header starts
 * @param off where the UDP header starts
 * @param len datagram length (header and payload)
 */
export function udpFillChecksum4(bytes: Uint8Array, ipOff: number, off: number, len: number): void {
  bytes[off + UDP_CSUM] = 0;
  bytes[off + UDP_CSUM + 1] = 0;
  const c = csumL4v4(bytes, ipOff, off, len, IPPROTO_UDP) || 0xffff;
  bytes[off + UDP_CSUM] = c >> 8;
  bytes[off + UDP_CSUM + 1] = c & 0xff;
}

/**
 * Computes and stores the checksum of a UDP datagram over IPv6 (a computed 0
 * is sent as 0xffff).
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv6 header starts
 * @param off where the UDP header starts
 * @param len datagram length (header and payload)
 */
export function udpFillChecksum6(bytes: Uint8Array, ipOff: number, off: number, len: number): void {
  bytes[off + UDP_CSUM] = 0;
  bytes[off + UDP_CSUM + 1] = 0;
  const c = csumL4v6(bytes, ipOff, off, len, IPPROTO_UDP) || 0xffff;
  bytes[off + UDP_CSUM] = c >> 8;
  bytes[off + UDP_CSUM + 1] = c & 0xff;
}
