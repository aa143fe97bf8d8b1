/**
 * icmp.ts - ICMP for IPv4 header view (RFC 792), with the echo fields.
 *
 * ```
 *  0       8       16              32
 * +-------+-------+---------------+
 * | type  | code  |   checksum    |
 * +-------+-------+---------------+
 * |  identifier   |   sequence    |   (echo request/reply)
 * +---------------+---------------+
 * ```
 *
 * The checksum covers the ICMP message only (no pseudo-header).
 *
 * @module
 */

import { csumFinish, csumPartial } from "./checksum.ts";

/** Length of the ICMP header, including the 4 bytes after the checksum. */
export const ICMP_HLEN = 8;
/** Offset of the type. */
export const ICMP_TYPE = 0;
/** Offset of the code. */
export const ICMP_CODE = 1;
/** Offset of the checksum. */
export const ICMP_CSUM = 2;
/** Offset of the echo identifier. */
export const ICMP_ID = 4;
/** Offset of the echo sequence number. */
export const ICMP_SEQ = 6;

/** Type: echo reply. */
export const ICMP_ECHOREPLY = 0;
/** Type: destination unreachable. */
export const ICMP_DEST_UNREACH = 3;
/** Type: echo request. */
export const ICMP_ECHO = 8;
/** Type: time exceeded. */
export const ICMP_TIME_EXCEEDED = 11;

/**
 * Checks that an ICMP header fits.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @param len ICMP message length available from `off`
 * @returns true when the 8-byte header is within `len` and the view
 */
export function icmpCheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= ICMP_HLEN && off + len <= dv.byteLength;
}

/**
 * Reads the type.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @returns the type
 */
export function icmpType(dv: DataView, off: number): number {
  return dv.getUint8(off + ICMP_TYPE);
}

/**
 * Reads the code.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @returns the code
 */
export function icmpCode(dv: DataView, off: number): number {
  return dv.getUint8(off + ICMP_CODE);
}

/**
 * Reads the checksum.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @returns the stored checksum
 */
export function icmpChecksum(dv: DataView, off: number): number {
  return dv.getUint16(off + ICMP_CSUM);
}

/**
 * Reads the echo identifier.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @returns the identifier
 */
export function icmpId(dv: DataView, off: number): number {
  return dv.getUint16(off + ICMP_ID);
}

/**
 * Reads the echo sequence number.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @returns the sequence number
 */
export function icmpSeq(dv: DataView, off: number): number {
  return dv.getUint16(off + ICMP_SEQ);
}

/**
 * Writes the type and code.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @param type the type
 * @param code the code
 */
export function icmpSetTypeCode(dv: DataView, off: number, type: number, code: number): void {
  dv.setUint8(off + ICMP_TYPE, type);
  dv.setUint8(off + ICMP_CODE, code);
}

/**
 * Writes the checksum field as given.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @param csum the value to store
 */
export function icmpSetChecksum(dv: DataView, off: number, csum: number): void {
  dv.setUint16(off + ICMP_CSUM, csum);
}

/**
 * Writes the echo identifier.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @param id the identifier
 */
export function icmpSetId(dv: DataView, off: number, id: number): void {
  dv.setUint16(off + ICMP_ID, id);
}

/**
 * Writes the echo sequence number.
 * @param dv view over the buffer
 * @param off where the ICMP header starts
 * @param seq the sequence number
 */
export function icmpSetSeq(dv: DataView, off: number, seq: number): void {
  dv.setUint16(off + ICMP_SEQ, seq);
}

/**
 * Computes and stores the checksum of an ICMP message.
 * @param bytes buffer holding the message (same offsets as the views)
 * @param off where the ICMP header starts
 * @param len message length (header and data)
 */
export function icmpFillChecksum(bytes: Uint8Array, off: number, len: number): void {
  bytes[off + ICMP_CSUM] = 0;
  bytes[off + ICMP_CSUM + 1] = 0;
  const c = csumFinish(csumPartial(bytes, off, len, 0));
  bytes[off + ICMP_CSUM] = c >> 8;
  bytes[off + ICMP_CSUM + 1] = c & 0xff;
}

/**
 * Verifies the checksum of an ICMP message.
 * @param bytes buffer holding the message (same offsets as the views)
 * @param off where the ICMP header starts
 * @param len message length (header and data)
 * @returns true when the checksum is correct
 */
export function icmpChecksumOk(bytes: Uint8Array, off: number, len: number): boolean {
  return csumFinish(csumPartial(bytes, off, len, 0)) === 0;
}
