/**
 * tcp.ts - TCP options as tcp/tcp.ts reads them from the guest's SYNs
 * (RFC 9293: MSS, window scale, SACK-permitted, timestamps), and the
 * checksum checks the tests apply to orzo's segments. The header fields
 * themselves are read and written by tcp/tcp.ts in place.
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

/** Offset of the data offset (high nibble). */
const TCP_DOFF = 12;
/** Offset of the options. */
const TCP_OPTS = 20;

/** Option kind: end of option list. */
const TCPOPT_EOL = 0;
/** Option kind: no operation. */
const TCPOPT_NOP = 1;
/** Option kind: maximum segment size (length 4). */
const TCPOPT_MSS = 2;
/** Option kind: window scale (length 3). */
const TCPOPT_WS = 3;
/** Option kind: SACK permitted (length 2). */
const TCPOPT_SACK_PERM = 4;
/** Option kind: SACK blocks. */
const TCPOPT_SACK = 5;
/** Option kind: timestamps (length 10). */
const TCPOPT_TS = 8;

/** Largest window scale shift allowed (RFC 7323 §2.3). */
const TCP_WS_MAX = 14;

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
