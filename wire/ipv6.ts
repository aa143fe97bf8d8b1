/**
 * ipv6.ts - IPv6 header view (RFC 8200) and a bounded walk over extension
 * headers to the upper-layer header.
 *
 * ```
 *  0       4               12                      24              32
 * +-------+---------------+-----------------------------------------+
 * |version| traffic class |               flow label                |
 * +-------+---------------+---------------+---------------+---------+
 * |        payload length                 |  next header  |hop limit|
 * +---------------------------------------+---------------+---------+
 * |                 source address (16 bytes)                       |
 * |               destination address (16 bytes)                    |
 * ```
 *
 * @module
 */

import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HIP,
  IPPROTO_HOPOPTS,
  IPPROTO_MH,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPPROTO_SHIM6,
} from "./ip_proto.ts";

/** Length of the IPv6 header. */
export const IPV6_HLEN = 40;
/** Offset of the payload length. */
const IPV6_PLEN = 4;
/** Offset of the next header. */
const IPV6_NXT = 6;
/** Offset of the hop limit. */
const IPV6_HOPS = 7;
/** Offset of the source address. */
export const IPV6_SRC = 8;
/** Offset of the destination address. */
export const IPV6_DST = 24;

/** Most extension headers ipv6L4() walks before giving up. */
export const IPV6_EXT_MAX = 16;

/** Bit of an ipv6L4() result: the packet is a (first) fragment. */
const L4_FRAGMENT = 1 << 29;

/**
 * Checks that an IPv6 header and the payload it announces fit.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param len bytes available from `off`
 * @returns true when 40 + payload length <= `len` (within the view)
 */
function ipv6CheckLen(dv: DataView, off: number, len: number): boolean {
  if (off < 0 || len < IPV6_HLEN || off + len > dv.byteLength) return false;
  return IPV6_HLEN + dv.getUint16(off + IPV6_PLEN) <= len;
}

/**
 * Checks lengths (ipv6CheckLen()) and that the version is 6.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param len bytes available from `off`
 * @returns true for a well-formed IPv6 header
 */
export function ipv6IsValid(dv: DataView, off: number, len: number): boolean {
  return ipv6CheckLen(dv, off, len) && dv.getUint8(off) >> 4 === 6;
}

/**
 * Reads the payload length.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @returns bytes after the fixed header (extension headers included)
 */
export function ipv6PayloadLen(dv: DataView, off: number): number {
  return dv.getUint16(off + IPV6_PLEN);
}

/**
 * Reads the hop limit.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @returns the hop limit
 */
export function ipv6HopLimit(dv: DataView, off: number): number {
  return dv.getUint8(off + IPV6_HOPS);
}

/**
 * Writes version 6, the traffic class and the flow label.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param tc traffic class
 * @param flow flow label (20 bits)
 */
export function ipv6SetVersionTcFlow(dv: DataView, off: number, tc: number, flow: number): void {
  dv.setUint32(off, ((0x600 | (tc & 0xff)) << 20 | (flow & 0xfffff)) >>> 0);
}

/**
 * Writes the payload length.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param plen bytes after the fixed header
 */
export function ipv6SetPayloadLen(dv: DataView, off: number, plen: number): void {
  dv.setUint16(off + IPV6_PLEN, plen);
}

/**
 * Writes the next header.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param nh the protocol number
 */
export function ipv6SetNextHeader(dv: DataView, off: number, nh: number): void {
  dv.setUint8(off + IPV6_NXT, nh);
}

/**
 * Writes the hop limit.
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param hops the hop limit
 */
export function ipv6SetHopLimit(dv: DataView, off: number, hops: number): void {
  dv.setUint8(off + IPV6_HOPS, hops);
}

/**
 * Finds the upper-layer header, walking at most IPV6_EXT_MAX extension
 * headers (hop-by-hop, routing, destination options, mobility, HIP, shim6,
 * experimental 253/254: (len + 1) * 8 bytes; authentication: (len + 2) * 4
 * bytes; fragment: 8 bytes). ESP ends the walk and is returned as the
 * protocol, since what follows is encrypted. Call after ipv6CheckLen().
 * @param dv view over the buffer
 * @param off where the IPv6 header starts
 * @param len bytes available from `off`
 * @returns -1 when there is no upper-layer header in the packet (no next
 *   header, a non-first fragment, an extension header overrunning the
 *   payload, too many headers); otherwise a packed value: read it with
 *   ipv6L4Proto(), ipv6L4Off() and ipv6L4IsFragment() (a first fragment
 *   holds only the start of the upper-layer packet)
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ipv6L4, ipv6L4Off, ipv6L4Proto } from "./ipv6.ts";
 * const p = new Uint8Array(48);
 * p[0] = 0x60; p[5] = 8; p[6] = 17; // payload 8 bytes, next header UDP
 * const r = ipv6L4(new DataView(p.buffer), 0, 48);
 * assert.equal(ipv6L4Proto(r), 17);
 * assert.equal(ipv6L4Off(r), 40);
 * ```
 */
export function ipv6L4(dv: DataView, off: number, len: number): number {
  if (off < 0 || len < IPV6_HLEN || off + len > dv.byteLength) return -1;
  const end = IPV6_HLEN + dv.getUint16(off + IPV6_PLEN);
  if (end > len) return -1;
  let nh = dv.getUint8(off + IPV6_NXT);
  let pos = IPV6_HLEN;
  let frag = 0;
  for (let n = 0; n <= IPV6_EXT_MAX; n++) {
    let hlen: number;
    switch (nh) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS:
      case IPPROTO_MH:
      case IPPROTO_HIP:
      case IPPROTO_SHIM6:
      case 253:
      case 254:
        if (pos + 2 > end) return -1;
        hlen = (dv.getUint8(off + pos + 1) + 1) * 8;
        break;
      case IPPROTO_AH:
        if (pos + 2 > end) return -1;
        hlen = (dv.getUint8(off + pos + 1) + 2) * 4;
        break;
      case IPPROTO_FRAGMENT:
        if (pos + 8 > end) return -1;
        /* only the first fragment holds the upper-layer header */
        if ((dv.getUint16(off + pos + 2) & 0xfff8) !== 0) return -1;
        frag = L4_FRAGMENT;
        hlen = 8;
        break;
      case IPPROTO_NONE:
        return -1;
      default:
        return frag | (pos * 256 + nh);
    }
    if (pos + hlen > end) return -1;
    nh = dv.getUint8(off + pos);
    pos += hlen;
  }
  return -1;
}

/**
 * Extracts the protocol from an ipv6L4() result.
 * @param r a non-negative ipv6L4() result
 * @returns the upper-layer protocol number
 */
export function ipv6L4Proto(r: number): number {
  return r & 0xff;
}

/**
 * Extracts the upper-layer header's offset from an ipv6L4() result.
 * @param r a non-negative ipv6L4() result
 * @returns its offset from the start of the IPv6 header; the upper-layer
 *   length is 40 + payload length - this offset
 */
export function ipv6L4Off(r: number): number {
  return (r >>> 8) & 0x1ffff;
}

/**
 * Tells whether an ipv6L4() result is a first fragment: its upper-layer
 * header is there, the rest of the upper-layer packet is not.
 * @param r a non-negative ipv6L4() result
 * @returns true for a packet with a fragment header
 */
export function ipv6L4IsFragment(r: number): boolean {
  return (r & L4_FRAGMENT) !== 0;
}
