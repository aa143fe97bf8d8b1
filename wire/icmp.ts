/**
 * icmp.ts - ICMP for IPv4 (RFC 792): the echo fields and the checksum,
 * as icmp/icmp.ts uses them.
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

/** Offset of the checksum. */
const ICMP_CSUM = 2;
/** Offset of the echo identifier. */
export const ICMP_ID = 4;
/** Offset of the echo sequence number. */
export const ICMP_SEQ = 6;

/** Type: echo reply. */
export const ICMP_ECHOREPLY = 0;
/** Type: echo request. */
export const ICMP_ECHO = 8;

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
