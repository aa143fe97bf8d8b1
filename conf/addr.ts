/**
 * addr.ts - IPv4, IPv6 and MAC address literals: parsing, formatting, classes.
 *
 * Parsing accepts what glibc's inet_pton() accepts, and nothing more:
 * - IPv4: exactly four dotted decimal octets, no leading zeros, each 0..255.
 * - IPv6: up to eight groups of one to four hex digits, at most one `::`
 *   standing for at least one zero group, and an optional dotted IPv4 tail.
 *   Zone identifiers (`fe80::1%eth0`) and brackets are rejected.
 *
 * Formatting follows RFC 5952: lower case, no leading zeros, the longest run of
 * two or more zero groups (the first one on a tie) written as `::`, and
 * IPv4-mapped addresses written as `::ffff:a.b.c.d`.
 *
 * @module
 */

/** An IP address of either family. */
export interface IpAddr {
  /** 4 or 6 */
  family: 4 | 6;
  /** 4 bytes for IPv4, 16 bytes for IPv6, network order */
  bytes: Uint8Array;
}

const DEC_OCTET_REGEXP = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP_REGEXP = /^[0-9a-fA-F]{1,4}$/;
const MAC_REGEXP = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * Parses a dotted-quad IPv4 address.
 * @param s the text, for example "192.0.2.1"
 * @returns 4 bytes in network order, or null if `s` is not an IPv4 literal
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIp4 } from "./addr.ts";
 *
 * assert.deepEqual(parseIp4("192.0.2.1"), new Uint8Array([192, 0, 2, 1]));
 * assert.equal(parseIp4("192.0.2"), null);
 * ```
 */
export function parseIp4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DEC_OCTET_REGEXP.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/**
 * Parses the groups on one side of `::` into 16-bit words.
 * @param s the text on that side (may be empty)
 * @param last whether this side ends the address, so a dotted IPv4 tail is allowed
 * @returns the words, or null on bad syntax
 */
function ip6Words(s: string, last: boolean): number[] | null {
  if (s === "") return [];
  const groups = s.split(":");
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (last && i === groups.length - 1 && g.includes(".")) {
      const v4 = parseIp4(g);
      if (v4 === null) return null;
      words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      continue;
    }
    if (!HEX_GROUP_REGEXP.test(g)) return null;
    words.push(parseInt(g, 16));
  }
  return words;
}

/**
 * Parses an IPv6 address.
 * @param s the text, for example "2001:db8::1" or "::ffff:192.0.2.1"
 * @returns 16 bytes in network order, or null if `s` is not an IPv6 literal
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIp6 } from "./addr.ts";
 *
 * assert.equal(parseIp6("::1")?.[15], 1);
 * assert.equal(parseIp6("fe80::1%eth0"), null);
 * ```
 */
export function parseIp6(s: string): Uint8Array | null {
  const dbl = s.indexOf("::");
  let words: number[];
  if (dbl < 0) {
    const w = ip6Words(s, true);
    if (w === null || w.length !== 8) return null;
    words = w;
  } else {
    if (s.indexOf("::", dbl + 1) >= 0) return null;
    const head = ip6Words(s.slice(0, dbl), false);
    const tail = ip6Words(s.slice(dbl + 2), true);
    if (head === null || tail === null) return null;
    const zeros = 8 - head.length - tail.length;
    if (zeros < 1) return null;
    words = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/**
 * Parses an address of either family, trying IPv6 first as passt does.
 * @param s the text
 * @returns the address with its family as written, or null if neither parses
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIp } from "./addr.ts";
 *
 * assert.equal(parseIp("10.0.0.1")?.family, 4);
 * assert.equal(parseIp("::ffff:10.0.0.1")?.family, 6);
 * ```
 */
export function parseIp(s: string): IpAddr | null {
  const b6 = parseIp6(s);
  if (b6 !== null) return { family: 6, bytes: b6 };
  const b4 = parseIp4(s);
  if (b4 !== null) return { family: 4, bytes: b4 };
  return null;
}

/**
 * Formats an IPv4 address as a dotted quad.
 * @param a 4 bytes in network order
 * @returns the text, for example "192.0.2.1"
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp4 } from "./addr.ts";
 *
 * assert.equal(formatIp4(new Uint8Array([10, 0, 2, 15])), "10.0.2.15");
 * ```
 */
export function formatIp4(a: Uint8Array): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

/**
 * Formats an IPv6 address in RFC 5952 canonical form.
 * @param a 16 bytes in network order
 * @returns the text, for example "2001:db8::1"
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp6, parseIp6 } from "./addr.ts";
 *
 * assert.equal(formatIp6(parseIp6("2001:0DB8:0:0:0:0:0:0001")!), "2001:db8::1");
 * ```
 */
export function formatIp6(a: Uint8Array): string {
  if (ip6IsV4Mapped(a)) return `::ffff:${formatIp4(a.subarray(12, 16))}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((a[2 * i]! << 8) | a[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestLen < 2) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/**
 * Formats an address of either family.
 * @param a the address
 * @returns the canonical text
 */
export function formatIp(a: IpAddr): string {
  return a.family === 4 ? formatIp4(a.bytes) : formatIp6(a.bytes);
}

/**
 * Turns an IPv4-mapped IPv6 address (::ffff:a.b.c.d) into its IPv4 address.
 * @param a the address
 * @returns the IPv4 address for a mapped one, otherwise `a` unchanged
 */
export function ipUnmap(a: IpAddr): IpAddr {
  if (a.family === 6 && ip6IsV4Mapped(a.bytes)) return { family: 4, bytes: a.bytes.slice(12) };
  return a;
}

/**
 * Parses an Ethernet MAC address written as six colon-separated hex octets.
 * @param s the text, for example "9a:55:9a:55:9a:55"
 * @returns 6 bytes, or null on bad syntax
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMac } from "./addr.ts";
 *
 * assert.equal(parseMac("02:00:00:00:00:01")?.[5], 1);
 * assert.equal(parseMac("2:0:0:0:0:1"), null);
 * ```
 */
export function parseMac(s: string): Uint8Array | null {
  if (!MAC_REGEXP.test(s)) return null;
  return new Uint8Array(s.split(":").map((o) => parseInt(o, 16)));
}

/**
 * Formats an Ethernet MAC address.
 * @param a 6 bytes
 * @returns lower-case colon-separated text
 */
export function formatMac(a: Uint8Array): string {
  return Array.from(a.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Tells whether an IPv4 address is 0.0.0.0.
 * @param a 4 bytes
 * @returns true for the unspecified address
 */
export function ip4IsUnspecified(a: Uint8Array): boolean {
  return (a[0]! | a[1]! | a[2]! | a[3]!) === 0;
}

/**
 * Tells whether an IPv4 address is in 127.0.0.0/8.
 * @param a 4 bytes
 * @returns true for a loopback address
 */
export function ip4IsLoopback(a: Uint8Array): boolean {
  return a[0] === 127;
}

/**
 * Tells whether an IPv4 address is in 224.0.0.0/4.
 * @param a 4 bytes
 * @returns true for a multicast address
 */
export function ip4IsMulticast(a: Uint8Array): boolean {
  return (a[0]! & 0xf0) === 0xe0;
}

/**
 * Tells whether an IPv4 address is the limited broadcast 255.255.255.255.
 * @param a 4 bytes
 * @returns true for the broadcast address
 */
export function ip4IsBroadcast(a: Uint8Array): boolean {
  return (a[0]! & a[1]! & a[2]! & a[3]!) === 0xff;
}

/**
 * Tells whether an IPv6 address is ::.
 * @param a 16 bytes
 * @returns true for the unspecified address
 */
export function ip6IsUnspecified(a: Uint8Array): boolean {
  return a.subarray(0, 16).every((b) => b === 0);
}

/**
 * Tells whether an IPv6 address is ::1.
 * @param a 16 bytes
 * @returns true for the loopback address
 */
export function ip6IsLoopback(a: Uint8Array): boolean {
  return a.subarray(0, 15).every((b) => b === 0) && a[15] === 1;
}

/**
 * Tells whether an IPv6 address is in ff00::/8.
 * @param a 16 bytes
 * @returns true for a multicast address
 */
export function ip6IsMulticast(a: Uint8Array): boolean {
  return a[0] === 0xff;
}

/**
 * Tells whether an IPv6 address is in fe80::/10.
 * @param a 16 bytes
 * @returns true for a link-local unicast address
 */
export function ip6IsLinkLocal(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

/**
 * Tells whether an IPv6 address is IPv4-mapped (::ffff:0:0/96).
 * @param a 16 bytes
 * @returns true for a mapped address
 */
export function ip6IsV4Mapped(a: Uint8Array): boolean {
  return a.subarray(0, 10).every((b) => b === 0) && a[10] === 0xff && a[11] === 0xff;
}

/**
 * Tells whether an IPv6 address is IPv4-compatible (::a.b.c.d, deprecated),
 * excluding :: and ::1 as the C library's IN6_IS_ADDR_V4COMPAT does.
 * @param a 16 bytes
 * @returns true for an IPv4-compatible address
 */
export function ip6IsV4Compat(a: Uint8Array): boolean {
  if (!a.subarray(0, 12).every((b) => b === 0)) return false;
  const low = ((a[12]! << 24) | (a[13]! << 16) | (a[14]! << 8) | a[15]!) >>> 0;
  return low > 1;
}
