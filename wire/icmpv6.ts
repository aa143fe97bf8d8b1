/**
 * icmpv6.ts - ICMPv6 header view (RFC 4443): type, code and checksum, and
 * the types icmp/icmp.ts and local/ndp.ts handle.
 *
 * ```
 *  0       8       16              32
 * +-------+-------+---------------+
 * | type  | code  |   checksum    |
 * +-------+-------+---------------+
 * |     message body ...          |   (echo: identifier, sequence)
 * ```
 *
 * The checksum covers an IPv6 pseudo-header and the whole message
 * (checksum.ts csumL4v6()). NDP message bodies are in ndp.ts.
 *
 * @module
 */

import { csumL4v6 } from "./checksum.ts";
import { IPPROTO_ICMPV6 } from "./ip_proto.ts";

/** Length of the ICMPv6 header, including the first 4 bytes of the body. */
const ICMPV6_HLEN = 8;
/** Offset of the type. */
const ICMPV6_TYPE = 0;
/** Offset of the code. */
const ICMPV6_CODE = 1;
/** Offset of the checksum. */
const ICMPV6_CSUM = 2;
/** Type: echo request. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Type: echo reply. */
export const ICMPV6_ECHO_REPLY = 129;
/** Type: router solicitation (NDP). */
export const ICMPV6_ROUTER_SOL = 133;
/** Type: router advertisement (NDP). */
export const ICMPV6_ROUTER_ADV = 134;
/** Type: neighbour solicitation (NDP). */
export const ICMPV6_NEIGH_SOL = 135;
/** Type: neighbour advertisement (NDP). */
export const ICMPV6_NEIGH_ADV = 136;

/**
 * Checks that an ICMPv6 header fits.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param len ICMPv6 message length available from `off`
 * @returns true when the 8-byte header is within `len` and the view
 */
export function icmpv6CheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= ICMPV6_HLEN && off + len <= dv.byteLength;
}

/**
 * Reads the type.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @returns the type
 */
export function icmpv6Type(dv: DataView, off: number): number {
  return dv.getUint8(off + ICMPV6_TYPE);
}

/**
 * Reads the code.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @returns the code
 */
export function icmpv6Code(dv: DataView, off: number): number {
  return dv.getUint8(off + ICMPV6_CODE);
}

/**
 * Writes the type and code.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param type the type
 * @param code the code
 */
export function icmpv6SetTypeCode(dv: DataView, off: number, type: number, code: number): void {
  dv.setUint8(off + ICMPV6_TYPE, type);
  dv.setUint8(off + ICMPV6_CODE, code);
}

/**
 * Computes and stores the checksum of an ICMPv6 message.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv6 header starts (source and destination are read there)
 * @param off where the ICMPv6 header starts
 * @param len message length (header and body)
 */
export function icmpv6FillChecksum(
  bytes: Uint8Array,
  ipOff: number,
  off: number,
  len: number,
): void {
  bytes[off + ICMPV6_CSUM] = 0;
  bytes[off + ICMPV6_CSUM + 1] = 0;
  const c = csumL4v6(bytes, ipOff, off, len, IPPROTO_ICMPV6);
  bytes[off + ICMPV6_CSUM] = c >> 8;
  bytes[off + ICMPV6_CSUM + 1] = c & 0xff;
}

/**
 * Verifies the checksum of an ICMPv6 message.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv6 header starts
 * @param off where the ICMPv6 header starts
 * @param len message length (header and body)
 * @returns true when the checksum is correct
 */
export function icmpv6ChecksumOk(
  bytes: Uint8Array,
  ipOff: number,
  off: number,
  len: number,
): boolean {
  return csumL4v6(bytes, ipOff, off, len, IPPROTO_ICMPV6) === 0;
}
