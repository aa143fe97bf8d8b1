/**
 * ipv4.ts - IPv4 header view (RFC 791).
 *
 * ```
 *  0       4       8               16      19                      32
 * +-------+-------+---------------+-------------------------------+
 * |version|  IHL  |   DSCP/ECN    |         total length          |
 * +-------+-------+---------------+-----+-------------------------+
 * |        identification         |flags|     fragment offset     |
 * +---------------+---------------+-----+-------------------------+
 * |      TTL      |   protocol    |        header checksum        |
 * +---------------+---------------+-------------------------------+
 * |                        source address                         |
 * |                      destination address                      |
 * |                    options (IHL > 5) ...                      |
 * ```
 *
 * What local/dhcp.ts and tap/l3.ts read and write; addresses in place with
 * addr.ts at IPV4_SRC/IPV4_DST.
 *
 * @module
 */

import { csumIp4Header, csumPartialTs } from "./checksum.ts";

/** Length of an IPv4 header without options. */
export const IPV4_HLEN = 20;
/** Offset of version and IHL. */
const IPV4_VER_IHL = 0;
/** Offset of the total length. */
const IPV4_TOTLEN = 2;
/** Offset of flags and fragment offset. */
const IPV4_FRAG = 6;
/** Offset of the protocol. */
const IPV4_PROTO = 9;
/** Offset of the header checksum. */
const IPV4_CSUM = 10;
/** Offset of the source address. */
export const IPV4_SRC = 12;
/** Offset of the destination address. */
export const IPV4_DST = 16;

/** Flag: more fragments (in the 16-bit flags/fragment word). */
const IPV4_MF = 0x2000;
/** Mask of the fragment offset (in 8-byte units) in the flags/fragment word. */
const IPV4_OFFMASK = 0x1fff;

/**
 * Checks that an IPv4 header and the packet it announces fit: at least 20
 * bytes, IHL at least 5, header within the total length, total length within
 * `len`. Does not look at the version (see ipv4IsValid()).
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param len bytes available from `off`
 * @returns true when every accessor may be used
 */
function ipv4CheckLen(dv: DataView, off: number, len: number): boolean {
  if (off < 0 || len < IPV4_HLEN || off + len > dv.byteLength) return false;
  const hlen = (dv.getUint8(off) & 0x0f) * 4;
  const tot = dv.getUint16(off + IPV4_TOTLEN);
  return hlen >= IPV4_HLEN && hlen <= tot && tot <= len;
}

/**
 * Checks lengths (ipv4CheckLen()) and that the version is 4.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param len bytes available from `off`
 * @returns true for a well-formed IPv4 header
 */
export function ipv4IsValid(dv: DataView, off: number, len: number): boolean {
  return ipv4CheckLen(dv, off, len) && dv.getUint8(off) >> 4 === 4;
}

/**
 * Reads the header length.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns IHL * 4, in bytes
 */
export function ipv4HeaderLen(dv: DataView, off: number): number {
  return (dv.getUint8(off + IPV4_VER_IHL) & 0x0f) * 4;
}

/**
 * Reads the total length.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns header plus payload, in bytes
 */
export function ipv4TotalLen(dv: DataView, off: number): number {
  return dv.getUint16(off + IPV4_TOTLEN);
}

/**
 * Tells whether the packet is a fragment (more fragments, or a nonzero offset).
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns true for any fragment
 */
export function ipv4IsFragment(dv: DataView, off: number): boolean {
  return (dv.getUint16(off + IPV4_FRAG) & (IPV4_MF | IPV4_OFFMASK)) !== 0;
}

/**
 * Reads the protocol.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the protocol number (ip_proto.ts)
 */
export function ipv4Proto(dv: DataView, off: number): number {
  return dv.getUint8(off + IPV4_PROTO);
}

/**
 * Computes and stores the header checksum.
 * @param bytes buffer holding the header (same offsets as the views)
 * @param off where the IPv4 header starts
 */
export function ipv4FillChecksum(bytes: Uint8Array, off: number): void {
  const c = csumIp4Header(bytes, off, (bytes[off]! & 0x0f) * 4);
  bytes[off + IPV4_CSUM] = c >> 8;
  bytes[off + IPV4_CSUM + 1] = c & 0xff;
}

/**
 * Verifies the header checksum.
 * @param bytes buffer holding the header (same offsets as the views)
 * @param off where the IPv4 header starts
 * @returns true when the header sums to 0xffff
 */
export function ipv4ChecksumOk(bytes: Uint8Array, off: number): boolean {
  return csumPartialTs(bytes, off, (bytes[off]! & 0x0f) * 4, 0) === 0xffff;
}
