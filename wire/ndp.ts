/**
 * ndp.ts - Neighbor Discovery (RFC 4861) message bodies and options: router
 * solicitation and advertisement, neighbour solicitation and advertisement;
 * link-layer address, prefix information, MTU, RDNSS and DNSSL (RFC 8106).
 *
 * Offsets are from the start of the ICMPv6 header (icmpv6.ts), which is the
 * first 4 bytes of every NDP message:
 *
 * ```
 * RS: | type code csum | reserved(4)                          | options @8
 * RA: | type code csum | hops flags lifetime | reachable | retrans | options @16
 * NS: | type code csum | reserved(4) | target(16)            | options @24
 * NA: | type code csum | R S O reserved(4) | target(16)      | options @24
 * option: | type | length (units of 8 bytes, nonzero) | body ... |
 * ```
 *
 * @module
 */

import { IP6_LEN } from "./addr.ts";
import { dnsNameLen } from "./dns_name.ts";

/** Length of a router solicitation without options. */
const NDP_RS_LEN = 8;
/** Length of a router advertisement without options. */
export const NDP_RA_LEN = 16;
/** Length of a neighbour solicitation without options. */
const NDP_NS_LEN = 24;
/** Length of a neighbour advertisement without options. */
export const NDP_NA_LEN = 24;

/** RS: offset of the options. */
export const NDP_RS_OPTS = 8;
/** RA: offset of the current hop limit. */
const NDP_RA_CUR_HOPS = 4;
/** RA: offset of the flags byte. */
const NDP_RA_FLAGS = 5;
/** RA: offset of the router lifetime (seconds). */
const NDP_RA_LIFETIME = 6;
/** RA: offset of the reachable time (ms). */
const NDP_RA_REACHABLE = 8;
/** RA: offset of the retransmission timer (ms). */
const NDP_RA_RETRANS = 12;
/** RA flag: managed address configuration (DHCPv6 addresses). */
export const NDP_RA_M = 0x80;
/** NS and NA: offset of the target address. */
export const NDP_TARGET = 8;
/** NS and NA: offset of the options. */
export const NDP_NS_OPTS = 24;
/** NA: offset of the flags byte. */
const NDP_NA_FLAGS = 4;
/** NA flag: sender is a router. */
export const NDP_NA_R = 0x80;
/** NA flag: sent in response to a solicitation. */
export const NDP_NA_S = 0x40;
/** NA flag: override an existing cache entry. */
export const NDP_NA_O = 0x20;

/** Option: offset of the length (units of 8 bytes). */
const NDP_OPT_LEN = 1;
/** Option type: source link-layer address. */
export const NDP_OPT_SLLA = 1;
/** Option type: target link-layer address. */
export const NDP_OPT_TLLA = 2;
/** Option type: prefix information. */
const NDP_OPT_PREFIX = 3;
/** Option type: MTU. */
const NDP_OPT_MTU = 5;
/** Option type: recursive DNS servers (RFC 8106). */
const NDP_OPT_RDNSS = 25;
/** Option type: DNS search list (RFC 8106). */
const NDP_OPT_DNSSL = 31;

/** Link-layer address option: length for Ethernet. */
const NDP_LLA_LEN = 8;
/** Link-layer address option: offset of the address. */
const NDP_LLA_ADDR = 2;
/** Prefix information option: length. */
const NDP_PI_LEN = 32;
/** Prefix information: offset of the prefix length. */
const NDP_PI_PREFIX_LEN = 2;
/** Prefix information: offset of the flags. */
const NDP_PI_FLAGS = 3;
/** Prefix information: offset of the valid lifetime (seconds). */
const NDP_PI_VALID = 4;
/** Prefix information: offset of the preferred lifetime (seconds). */
const NDP_PI_PREFERRED = 8;
/** Prefix information: offset of the prefix. */
const NDP_PI_PREFIX = 16;
/** Prefix information flag: on-link. */
export const NDP_PI_L = 0x80;
/** Prefix information flag: autonomous address configuration. */
export const NDP_PI_A = 0x40;
/** MTU option: length. */
const NDP_MTU_LEN = 8;
/** MTU option: offset of the MTU. */
const NDP_MTU_VALUE = 4;
/** RDNSS and DNSSL options: offset of the lifetime (seconds). */
const NDP_DNS_LIFETIME = 4;
/** RDNSS option: offset of the first address. */
const NDP_RDNSS_ADDRS = 8;
/** DNSSL option: offset of the first encoded domain. */
const NDP_DNSSL_DOMAINS = 8;
/** Lifetime meaning "infinity". */
export const NDP_INFINITE = 0xffffffff;

/**
 * Checks that a router solicitation fits.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param len ICMPv6 message length available from `off`
 * @returns true when at least 8 bytes are within `len` and the view
 */
export function ndpRsCheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= NDP_RS_LEN && off + len <= dv.byteLength;
}

/**
 * Checks that a neighbour solicitation fits.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param len ICMPv6 message length available from `off`
 * @returns true when at least 24 bytes are within `len` and the view
 */
export function ndpNsCheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= NDP_NS_LEN && off + len <= dv.byteLength;
}

/**
 * Checks an option area: every option has a nonzero length and ends within
 * `end`. The walk is bounded by the area (each option takes 8 bytes or more).
 * @param dv view over the buffer
 * @param off where the first option starts
 * @param end where the message ends (offset in the view)
 * @returns the number of options, or -1 when malformed
 */
export function ndpOptsCheck(dv: DataView, off: number, end: number): number {
  if (off < 0 || end > dv.byteLength) return -1;
  let n = 0;
  while (off < end) {
    if (off + 2 > end) return -1;
    const olen = dv.getUint8(off + NDP_OPT_LEN) * 8;
    if (olen === 0 || off + olen > end) return -1;
    off += olen;
    n++;
  }
  return n;
}

/**
 * Finds the first option of a type in an option area (safe on unchecked
 * areas: stops at a zero length or an overrun).
 * @param dv view over the buffer
 * @param off where the first option starts
 * @param end where the message ends (offset in the view)
 * @param type the option type
 * @returns the option's offset, or -1 when absent
 */
export function ndpOptFind(dv: DataView, off: number, end: number, type: number): number {
  if (off < 0 || end > dv.byteLength) return -1;
  while (off + 2 <= end) {
    const olen = dv.getUint8(off + NDP_OPT_LEN) * 8;
    if (olen === 0 || off + olen > end) return -1;
    if (dv.getUint8(off) === type) return off;
    off += olen;
  }
  return -1;
}

/**
 * RA: writes the body after the ICMPv6 type, code and checksum.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param curHops current hop limit to advertise
 * @param flags NDP_RA_M / NDP_RA_O
 * @param lifetime router lifetime (seconds)
 * @param reachable reachable time (ms)
 * @param retrans retransmission timer (ms)
 */
export function ndpRaSetBody(
  dv: DataView,
  off: number,
  curHops: number,
  flags: number,
  lifetime: number,
  reachable: number,
  retrans: number,
): void {
  dv.setUint8(off + NDP_RA_CUR_HOPS, curHops);
  dv.setUint8(off + NDP_RA_FLAGS, flags);
  dv.setUint16(off + NDP_RA_LIFETIME, lifetime);
  dv.setUint32(off + NDP_RA_REACHABLE, reachable);
  dv.setUint32(off + NDP_RA_RETRANS, retrans);
}

/**
 * NA: writes the flags and clears the reserved bits.
 * @param dv view over the buffer
 * @param off where the ICMPv6 header starts
 * @param flags NDP_NA_R | NDP_NA_S | NDP_NA_O
 */
export function ndpNaSetFlags(dv: DataView, off: number, flags: number): void {
  dv.setUint32(off + NDP_NA_FLAGS, (flags & 0xe0) * 0x1000000);
}

/**
 * Writes a source or target link-layer address option (Ethernet).
 * @param dv view over the buffer
 * @param off where the option goes
 * @param type NDP_OPT_SLLA or NDP_OPT_TLLA
 * @param mac the address (6 bytes)
 * @returns bytes written (8)
 */
export function ndpOptWriteLla(dv: DataView, off: number, type: number, mac: Uint8Array): number {
  dv.setUint8(off, type);
  dv.setUint8(off + 1, 1);
  for (let i = 0; i < 6; i++) dv.setUint8(off + NDP_LLA_ADDR + i, mac[i]!);
  return NDP_LLA_LEN;
}

/**
 * Writes a prefix information option; bits of `prefix` past `prefixLen` are
 * written as zero (RFC 4861 §4.6.2).
 * @param dv view over the buffer
 * @param off where the option goes
 * @param prefix the prefix (16 bytes)
 * @param prefixLen prefix length (0..128)
 * @param flags NDP_PI_L | NDP_PI_A
 * @param valid valid lifetime (seconds; NDP_INFINITE)
 * @param preferred preferred lifetime (seconds; NDP_INFINITE)
 * @returns bytes written (32)
 */
export function ndpOptWritePrefix(
  dv: DataView,
  off: number,
  prefix: Uint8Array,
  prefixLen: number,
  flags: number,
  valid: number,
  preferred: number,
): number {
  dv.setUint8(off, NDP_OPT_PREFIX);
  dv.setUint8(off + 1, NDP_PI_LEN / 8);
  dv.setUint8(off + NDP_PI_PREFIX_LEN, prefixLen);
  dv.setUint8(off + NDP_PI_FLAGS, flags);
  dv.setUint32(off + NDP_PI_VALID, valid >>> 0);
  dv.setUint32(off + NDP_PI_PREFERRED, preferred >>> 0);
  dv.setUint32(off + 12, 0);
  for (let i = 0; i < IP6_LEN; i++) {
    const bits = prefixLen - i * 8;
    const mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff00 >> bits) & 0xff;
    dv.setUint8(off + NDP_PI_PREFIX + i, prefix[i]! & mask);
  }
  return NDP_PI_LEN;
}

/**
 * Writes an MTU option.
 * @param dv view over the buffer
 * @param off where the option goes
 * @param mtu the MTU
 * @returns bytes written (8)
 */
export function ndpOptWriteMtu(dv: DataView, off: number, mtu: number): number {
  dv.setUint8(off, NDP_OPT_MTU);
  dv.setUint8(off + 1, 1);
  dv.setUint16(off + 2, 0);
  dv.setUint32(off + NDP_MTU_VALUE, mtu >>> 0);
  return NDP_MTU_LEN;
}

/**
 * Writes an RDNSS option with the given servers, skipping unspecified (::)
 * entries, as many as fit in `room` bytes and the option's length field.
 * @param dv view over the buffer
 * @param off where the option goes
 * @param lifetime lifetime (seconds; NDP_INFINITE)
 * @param servers DNS server addresses (16 bytes each)
 * @param room bytes available at `off`
 * @returns bytes written, 0 when no server was written
 */
export function ndpOptWriteRdnss(
  dv: DataView,
  off: number,
  lifetime: number,
  servers: readonly Uint8Array[],
  room: number,
): number {
  let n = 0;
  for (let i = 0; i < servers.length; i++) {
    const a = servers[i]!;
    if (a.length < IP6_LEN || ip6BytesUnspecified(a)) continue;
    const at = NDP_RDNSS_ADDRS + n * IP6_LEN;
    if (at + IP6_LEN > room || 1 + 2 * (n + 1) > 255) break;
    for (let j = 0; j < IP6_LEN; j++) dv.setUint8(off + at + j, a[j]!);
    n++;
  }
  if (n === 0) return 0;
  dv.setUint8(off, NDP_OPT_RDNSS);
  dv.setUint8(off + 1, 1 + 2 * n);
  dv.setUint16(off + 2, 0);
  dv.setUint32(off + NDP_DNS_LIFETIME, lifetime >>> 0);
  return NDP_RDNSS_ADDRS + n * IP6_LEN;
}

function ip6BytesUnspecified(a: Uint8Array): boolean {
  for (let i = 0; i < IP6_LEN; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Writes a DNSSL option with the given domains in DNS wire format, skipping
 * names that cannot be encoded and stopping at what fits in `room` bytes and
 * the option's length field; padded with zeroes to a multiple of 8 bytes.
 * Allocates nothing.
 * @param dv view over the buffer
 * @param off where the option goes
 * @param lifetime lifetime (seconds; NDP_INFINITE)
 * @param domains search domains, such as "example.com"
 * @param room bytes available at `off`
 * @returns bytes written, 0 when no domain was written
 */
export function ndpOptWriteDnssl(
  dv: DataView,
  off: number,
  lifetime: number,
  domains: readonly string[],
  room: number,
): number {
  const max = room < 255 * 8 ? room : 255 * 8;
  let p = NDP_DNSSL_DOMAINS;
  for (let d = 0; d < domains.length; d++) {
    const name = domains[d]!;
    const elen = dnsNameLen(name);
    if (elen === 0) continue;
    if (((p + elen + 7) & ~7) > max) break;
    let lenAt = p++;
    let label = 0;
    for (let i = 0; i < elen - 2; i++) {
      const ch = name.charCodeAt(i);
      if (ch === 0x2e) {
        dv.setUint8(off + lenAt, label);
        lenAt = p++;
        label = 0;
      } else {
        dv.setUint8(off + p++, ch);
        label++;
      }
    }
    dv.setUint8(off + lenAt, label);
    dv.setUint8(off + p++, 0);
  }
  if (p === NDP_DNSSL_DOMAINS) return 0;
  while ((p & 7) !== 0) dv.setUint8(off + p++, 0);
  dv.setUint8(off, NDP_OPT_DNSSL);
  dv.setUint8(off + 1, p / 8);
  dv.setUint16(off + 2, 0);
  dv.setUint32(off + NDP_DNS_LIFETIME, lifetime >>> 0);
  return p;
}
