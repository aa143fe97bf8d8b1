/**
 * tcp.ts - TCP header view (RFC 9293) and options: MSS, window scale,
 * SACK-permitted, timestamps.
 *
 * ```
 *  0               16              32
 * +---------------+---------------+
 * |  source port  |   dest port   |
 * +---------------+---------------+
 * |        sequence number        |
 * +-------------------------------+
 * |     acknowledgment number     |
 * +----+----+-----+---------------+
 * |doff|rsvd|flags|    window     |
 * +----+----+-----+---------------+
 * |   checksum    |    urgent     |
 * +---------------+---------------+
 * |   options (doff > 5) ...      |
 * ```
 *
 * Sequence and acknowledgment numbers are unsigned 32-bit numbers.
 *
 * @module
 */

import { csumL4v4, csumL4v6 } from "./checksum.ts";
import { IPPROTO_TCP } from "./ip_proto.ts";

/** Length of the TCP header without options. */
export const TCP_HLEN = 20;
/** Longest TCP header (data offset 15). */
export const TCP_HLEN_MAX = 60;
/** Offset of the source port. */
export const TCP_SPORT = 0;
/** Offset of the destination port. */
export const TCP_DPORT = 2;
/** Offset of the sequence number. */
export const TCP_SEQ = 4;
/** Offset of the acknowledgment number. */
export const TCP_ACKNUM = 8;
/** Offset of the data offset (high nibble). */
export const TCP_DOFF = 12;
/** Offset of the flags byte. */
export const TCP_FLAGS = 13;
/** Offset of the window. */
export const TCP_WIN = 14;
/** Offset of the checksum. */
export const TCP_CSUM = 16;
/** Offset of the urgent pointer. */
export const TCP_URGPTR = 18;
/** Offset of the options. */
export const TCP_OPTS = 20;

/** Flag: FIN. */
export const TCP_FIN = 0x01;
/** Flag: SYN. */
export const TCP_SYN = 0x02;
/** Flag: RST. */
export const TCP_RST = 0x04;
/** Flag: PSH. */
export const TCP_PSH = 0x08;
/** Flag: ACK. */
export const TCP_ACK = 0x10;
/** Flag: URG. */
export const TCP_URG = 0x20;
/** Flag: ECE. */
export const TCP_ECE = 0x40;
/** Flag: CWR. */
export const TCP_CWR = 0x80;

/** Option kind: end of option list. */
export const TCPOPT_EOL = 0;
/** Option kind: no operation. */
export const TCPOPT_NOP = 1;
/** Option kind: maximum segment size (length 4). */
export const TCPOPT_MSS = 2;
/** Option kind: window scale (length 3). */
export const TCPOPT_WS = 3;
/** Option kind: SACK permitted (length 2). */
export const TCPOPT_SACK_PERM = 4;
/** Option kind: SACK blocks. */
export const TCPOPT_SACK = 5;
/** Option kind: timestamps (length 10). */
export const TCPOPT_TS = 8;

/** Largest window scale shift allowed (RFC 7323 §2.3). */
export const TCP_WS_MAX = 14;

/**
 * Checks that a TCP header fits: at least 20 bytes, data offset at least 5,
 * header (with options) within `len`.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param len segment length available from `off`
 * @returns true when every accessor may be used
 */
export function tcpCheckLen(dv: DataView, off: number, len: number): boolean {
  if (off < 0 || len < TCP_HLEN || off + len > dv.byteLength) return false;
  const hlen = (dv.getUint8(off + TCP_DOFF) >> 4) * 4;
  return hlen >= TCP_HLEN && hlen <= len;
}

/**
 * Reads the source port.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the port
 */
export function tcpSrcPort(dv: DataView, off: number): number {
  return dv.getUint16(off + TCP_SPORT);
}

/**
 * Reads the destination port.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the port
 */
export function tcpDstPort(dv: DataView, off: number): number {
  return dv.getUint16(off + TCP_DPORT);
}

/**
 * Reads the sequence number.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the sequence number (unsigned 32-bit)
 */
export function tcpSeq(dv: DataView, off: number): number {
  return dv.getUint32(off + TCP_SEQ);
}

/**
 * Reads the acknowledgment number.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the acknowledgment number (unsigned 32-bit)
 */
export function tcpAck(dv: DataView, off: number): number {
  return dv.getUint32(off + TCP_ACKNUM);
}

/**
 * Reads the header length.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns data offset * 4, in bytes
 */
export function tcpHeaderLen(dv: DataView, off: number): number {
  return (dv.getUint8(off + TCP_DOFF) >> 4) * 4;
}

/**
 * Reads the flags.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the flags byte (TCP_FIN...TCP_CWR)
 */
export function tcpFlags(dv: DataView, off: number): number {
  return dv.getUint8(off + TCP_FLAGS);
}

/**
 * Reads the window.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the unscaled window
 */
export function tcpWindow(dv: DataView, off: number): number {
  return dv.getUint16(off + TCP_WIN);
}

/**
 * Reads the checksum.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the stored checksum
 */
export function tcpChecksum(dv: DataView, off: number): number {
  return dv.getUint16(off + TCP_CSUM);
}

/**
 * Reads the urgent pointer.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @returns the urgent pointer
 */
export function tcpUrgent(dv: DataView, off: number): number {
  return dv.getUint16(off + TCP_URGPTR);
}

/**
 * Writes the source port.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param port the port
 */
export function tcpSetSrcPort(dv: DataView, off: number, port: number): void {
  dv.setUint16(off + TCP_SPORT, port);
}

/**
 * Writes the destination port.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param port the port
 */
export function tcpSetDstPort(dv: DataView, off: number, port: number): void {
  dv.setUint16(off + TCP_DPORT, port);
}

/**
 * Writes the sequence number.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param seq the sequence number (taken modulo 2^32)
 */
export function tcpSetSeq(dv: DataView, off: number, seq: number): void {
  dv.setUint32(off + TCP_SEQ, seq >>> 0);
}

/**
 * Writes the acknowledgment number.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param ack the acknowledgment number (taken modulo 2^32)
 */
export function tcpSetAck(dv: DataView, off: number, ack: number): void {
  dv.setUint32(off + TCP_ACKNUM, ack >>> 0);
}

/**
 * Writes the header length (data offset); clears the reserved bits.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param hlen header length in bytes (a multiple of 4, 20..60)
 */
export function tcpSetHeaderLen(dv: DataView, off: number, hlen: number): void {
  dv.setUint8(off + TCP_DOFF, (hlen >> 2) << 4);
}

/**
 * Writes the flags.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param flags the flags byte
 */
export function tcpSetFlags(dv: DataView, off: number, flags: number): void {
  dv.setUint8(off + TCP_FLAGS, flags);
}

/**
 * Writes the window.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param win the unscaled window (0..65535)
 */
export function tcpSetWindow(dv: DataView, off: number, win: number): void {
  dv.setUint16(off + TCP_WIN, win);
}

/**
 * Writes the checksum field as given.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param csum the value to store
 */
export function tcpSetChecksum(dv: DataView, off: number, csum: number): void {
  dv.setUint16(off + TCP_CSUM, csum);
}

/**
 * Writes the urgent pointer.
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param urg the urgent pointer
 */
export function tcpSetUrgent(dv: DataView, off: number, urg: number): void {
  dv.setUint16(off + TCP_URGPTR, urg);
}

/**
 * Computes and stores the checksum of a TCP segment over IPv4.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv4 header starts
 * @param off where the TCP header starts
 * @param len segment length (header and payload)
 */
export function tcpFillChecksum4(bytes: Uint8Array, ipOff: number, off: number, len: number): void {
  bytes[off + TCP_CSUM] = 0;
  bytes[off + TCP_CSUM + 1] = 0;
  const c = csumL4v4(bytes, ipOff, off, len, IPPROTO_TCP);
  bytes[off + TCP_CSUM] = c >> 8;
  bytes[off + TCP_CSUM + 1] = c & 0xff;
}

/**
 * Computes and stores the checksum of a TCP segment over IPv6.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv6 header starts
 * @param off where the TCP header starts
 * @param len segment length (header and payload)
 */
export function tcpFillChecksum6(bytes: Uint8Array, ipOff: number, off: number, len: number): void {
  bytes[off + TCP_CSUM] = 0;
  bytes[off + TCP_CSUM + 1] = 0;
  const c = csumL4v6(bytes, ipOff, off, len, IPPROTO_TCP);
  bytes[off + TCP_CSUM] = c >> 8;
  bytes[off + TCP_CSUM + 1] = c & 0xff;
}

/**
 * Verifies the checksum of a TCP segment over IPv4.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv4 header starts
 * @param off where the TCP header starts
 * @param len segment length (header and payload)
 * @returns true when the checksum is correct
 */
export function tcpChecksumOk4(
  bytes: Uint8Array,
  ipOff: number,
  off: number,
  len: number,
): boolean {
  return csumL4v4(bytes, ipOff, off, len, IPPROTO_TCP) === 0;
}

/**
 * Verifies the checksum of a TCP segment over IPv6.
 * @param bytes buffer holding the packet (same offsets as the views)
 * @param ipOff where the IPv6 header starts
 * @param off where the TCP header starts
 * @param len segment length (header and payload)
 * @returns true when the checksum is correct
 */
export function tcpChecksumOk6(
  bytes: Uint8Array,
  ipOff: number,
  off: number,
  len: number,
): boolean {
  return csumL4v6(bytes, ipOff, off, len, IPPROTO_TCP) === 0;
}

/**
 * Options found by tcpOptsParse(). One instance is reused for every segment;
 * a field is -1 (or false) when the option is absent.
 */
export class TcpOpts {
  /** maximum segment size, or -1 */
  mss: number = -1;
  /** window scale shift (capped at TCP_WS_MAX), or -1 */
  wscale: number = -1;
  /** whether SACK-permitted was present */
  sackOk: boolean = false;
  /** timestamp value, or -1 */
  tsVal: number = -1;
  /** timestamp echo reply (meaningful when tsVal >= 0) */
  tsEcr: number = 0;
  /** number of SACK blocks in a SACK option, 0 when none */
  sackBlocks: number = 0;

  /** Marks every option absent. */
  reset(): void {
    this.mss = -1;
    this.wscale = -1;
    this.sackOk = false;
    this.tsVal = -1;
    this.tsEcr = 0;
    this.sackBlocks = 0;
  }
}

/**
 * Parses the options of a TCP header into `out`. The walk is bounded by the
 * header length (at most 40 bytes of options); an option with a bad length
 * (below 2, past the header, or wrong for its kind) stops it and fails.
 * Call after tcpCheckLen().
 * @param dv view over the buffer
 * @param off where the TCP header starts
 * @param out reused result, reset first
 * @returns true when the options are well-formed (out holds what was found),
 *   false when malformed (out holds what was found before the fault)
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { TcpOpts, tcpOptsParse } from "./tcp.ts";
 * const seg = new Uint8Array(24);
 * seg[12] = 6 << 4; // data offset 6: 4 bytes of options
 * seg.set([2, 4, 0x05, 0xb4], 20); // MSS 1460
 * const o = new TcpOpts();
 * assert.ok(tcpOptsParse(new DataView(seg.buffer), 0, o));
 * assert.equal(o.mss, 1460);
 * ```
 */
export function tcpOptsParse(dv: DataView, off: number, out: TcpOpts): boolean {
  out.reset();
  const end = off + (dv.getUint8(off + TCP_DOFF) >> 4) * 4;
  let p = off + TCP_OPTS;
  while (p < end) {
    const kind = dv.getUint8(p);
    if (kind === TCPOPT_EOL) return true;
    if (kind === TCPOPT_NOP) {
      p++;
      continue;
    }
    if (p + 2 > end) return false;
    const olen = dv.getUint8(p + 1);
    if (olen < 2 || p + olen > end) return false;
    switch (kind) {
      case TCPOPT_MSS:
        if (olen !== 4) return false;
        out.mss = dv.getUint16(p + 2);
        break;
      case TCPOPT_WS: {
        if (olen !== 3) return false;
        const ws = dv.getUint8(p + 2);
        out.wscale = ws > TCP_WS_MAX ? TCP_WS_MAX : ws;
        break;
      }
      case TCPOPT_SACK_PERM:
        if (olen !== 2) return false;
        out.sackOk = true;
        break;
      case TCPOPT_SACK:
        if ((olen - 2) % 8 !== 0) return false;
        out.sackBlocks = (olen - 2) / 8;
        break;
      case TCPOPT_TS:
        if (olen !== 10) return false;
        out.tsVal = dv.getUint32(p + 2);
        out.tsEcr = dv.getUint32(p + 6);
        break;
      default:
        break;
    }
    p += olen;
  }
  return true;
}

/**
 * Writes an MSS option.
 * @param dv view over the buffer
 * @param off where the option goes
 * @param mss the maximum segment size
 * @returns bytes written (4)
 */
export function tcpOptWriteMss(dv: DataView, off: number, mss: number): number {
  dv.setUint8(off, TCPOPT_MSS);
  dv.setUint8(off + 1, 4);
  dv.setUint16(off + 2, mss);
  return 4;
}

/**
 * Writes a NOP and a window scale option (4 bytes, keeps 32-bit alignment).
 * @param dv view over the buffer
 * @param off where the options go
 * @param shift the window scale shift (0..14)
 * @returns bytes written (4)
 */
export function tcpOptWriteWscale(dv: DataView, off: number, shift: number): number {
  dv.setUint8(off, TCPOPT_NOP);
  dv.setUint8(off + 1, TCPOPT_WS);
  dv.setUint8(off + 2, 3);
  dv.setUint8(off + 3, shift);
  return 4;
}

/**
 * Writes two NOPs and a SACK-permitted option (4 bytes, keeps alignment).
 * @param dv view over the buffer
 * @param off where the options go
 * @returns bytes written (4)
 */
export function tcpOptWriteSackOk(dv: DataView, off: number): number {
  dv.setUint8(off, TCPOPT_NOP);
  dv.setUint8(off + 1, TCPOPT_NOP);
  dv.setUint8(off + 2, TCPOPT_SACK_PERM);
  dv.setUint8(off + 3, 2);
  return 4;
}

/**
 * Writes two NOPs and a timestamps option (12 bytes, keeps alignment).
 * @param dv view over the buffer
 * @param off where the options go
 * @param tsVal timestamp value
 * @param tsEcr timestamp echo reply
 * @returns bytes written (12)
 */
export function tcpOptWriteTs(dv: DataView, off: number, tsVal: number, tsEcr: number): number {
  dv.setUint8(off, TCPOPT_NOP);
  dv.setUint8(off + 1, TCPOPT_NOP);
  dv.setUint8(off + 2, TCPOPT_TS);
  dv.setUint8(off + 3, 10);
  dv.setUint32(off + 4, tsVal >>> 0);
  dv.setUint32(off + 8, tsEcr >>> 0);
  return 12;
}
