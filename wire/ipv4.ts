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
 * Addresses are read and written as unsigned 32-bit numbers (no allocation);
 * use `addrRead`/`addrEqual` from addr.ts with IPV4_SRC/IPV4_DST for bytes.
 *
 * @module
 */

import { csumIp4Header, csumPartialTs } from "./checksum.ts";

/** Length of an IPv4 header without options. */
export const IPV4_HLEN = 20;
/** Offset of version and IHL. */
export const IPV4_VER_IHL = 0;
/** Offset of DSCP and ECN (type of service). */
export const IPV4_TOS = 1;
/** Offset of the total length. */
export const IPV4_TOTLEN = 2;
/** Offset of the identification. */
export const IPV4_ID = 4;
/** Offset of flags and fragment offset. */
export const IPV4_FRAG = 6;
/** Offset of the time to live. */
export const IPV4_TTL = 8;
/** Offset of the protocol. */
export const IPV4_PROTO = 9;
/** Offset of the header checksum. */
export const IPV4_CSUM = 10;
/** Offset of the source address. */
export const IPV4_SRC = 12;
/** Offset of the destination address. */
export const IPV4_DST = 16;

/** Flag: don't fragment (in the 16-bit flags/fragment word). */
export const IPV4_DF = 0x4000;
/** Flag: more fragments (in the 16-bit flags/fragment word). */
export const IPV4_MF = 0x2000;
/** Mask of the fragment offset (in 8-byte units) in the flags/fragment word. */
export const IPV4_OFFMASK = 0x1fff;

/**
 * Checks that an IPv4 header and the packet it announces fit: at least 20
 * bytes, IHL at least 5, header within the total length, total length within
 * `len`. Does not look at the version (see ipv4IsValid()).
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param len bytes available from `off`
 * @returns true when every accessor may be used
 */
export function ipv4CheckLen(dv: DataView, off: number, len: number): boolean {
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
 * Reads the version.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the version field (4 for IPv4)
 */
export function ipv4Version(dv: DataView, off: number): number {
  return dv.getUint8(off + IPV4_VER_IHL) >> 4;
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
 * Reads the type of service byte (DSCP << 2 | ECN).
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the TOS byte
 */
export function ipv4Tos(dv: DataView, off: number): number {
  return dv.getUint8(off + IPV4_TOS);
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
 * Reads the identification.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the identification
 */
export function ipv4Id(dv: DataView, off: number): number {
  return dv.getUint16(off + IPV4_ID);
}

/**
 * Reads the flags and fragment offset word.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the word: test with IPV4_DF, IPV4_MF, IPV4_OFFMASK
 */
export function ipv4FragWord(dv: DataView, off: number): number {
  return dv.getUint16(off + IPV4_FRAG);
}

/**
 * Reads the fragment offset.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the offset in bytes
 */
export function ipv4FragOffset(dv: DataView, off: number): number {
  return (dv.getUint16(off + IPV4_FRAG) & IPV4_OFFMASK) * 8;
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
 * Reads the time to live.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the TTL
 */
export function ipv4Ttl(dv: DataView, off: number): number {
  return dv.getUint8(off + IPV4_TTL);
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
 * Reads the header checksum.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the stored checksum
 */
export function ipv4Checksum(dv: DataView, off: number): number {
  return dv.getUint16(off + IPV4_CSUM);
}

/**
 * Reads the source address.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the address as an unsigned 32-bit number
 */
export function ipv4Src(dv: DataView, off: number): number {
  return dv.getUint32(off + IPV4_SRC);
}

/**
 * Reads the destination address.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @returns the address as an unsigned 32-bit number
 */
export function ipv4Dst(dv: DataView, off: number): number {
  return dv.getUint32(off + IPV4_DST);
}

/**
 * Writes version 4 and the header length.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param hlen header length in bytes (a multiple of 4, 20..60)
 */
export function ipv4SetVersionHeaderLen(dv: DataView, off: number, hlen: number): void {
  dv.setUint8(off + IPV4_VER_IHL, 0x40 | ((hlen >> 2) & 0x0f));
}

/**
 * Writes the type of service byte.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param tos DSCP << 2 | ECN
 */
export function ipv4SetTos(dv: DataView, off: number, tos: number): void {
  dv.setUint8(off + IPV4_TOS, tos);
}

/**
 * Writes the total length.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param totLen header plus payload, in bytes
 */
export function ipv4SetTotalLen(dv: DataView, off: number, totLen: number): void {
  dv.setUint16(off + IPV4_TOTLEN, totLen);
}

/**
 * Writes the identification.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param id the identification
 */
export function ipv4SetId(dv: DataView, off: number, id: number): void {
  dv.setUint16(off + IPV4_ID, id);
}

/**
 * Writes the flags and fragment offset word.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param word IPV4_DF/IPV4_MF flags ORed with the offset in 8-byte units
 */
export function ipv4SetFragWord(dv: DataView, off: number, word: number): void {
  dv.setUint16(off + IPV4_FRAG, word);
}

/**
 * Writes the time to live.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param ttl the TTL
 */
export function ipv4SetTtl(dv: DataView, off: number, ttl: number): void {
  dv.setUint8(off + IPV4_TTL, ttl);
}

/**
 * Writes the protocol.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param proto the protocol number
 */
export function ipv4SetProto(dv: DataView, off: number, proto: number): void {
  dv.setUint8(off + IPV4_PROTO, proto);
}

/**
 * Writes the header checksum field as given.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param csum the value to store
 */
export function ipv4SetChecksum(dv: DataView, off: number, csum: number): void {
  dv.setUint16(off + IPV4_CSUM, csum);
}

/**
 * Writes the source address.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param addr the address as an unsigned 32-bit number
 */
export function ipv4SetSrc(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off + IPV4_SRC, addr);
}

/**
 * Writes the destination address.
 * @param dv view over the buffer
 * @param off where the IPv4 header starts
 * @param addr the address as an unsigned 32-bit number
 */
export function ipv4SetDst(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off + IPV4_DST, addr);
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
