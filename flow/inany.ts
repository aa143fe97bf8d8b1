/**
 * inany.ts - IPv4 or IPv6 addresses kept as 16-byte IPv4-mapped IPv6
 * addresses, so that both families share one code path.
 *
 * An "inany" is 16 bytes in network order inside a caller-provided
 * Uint8Array, at a caller-given offset: an IPv6 address as is, an IPv4
 * address a.b.c.d as `::ffff:a.b.c.d` (ten zero bytes, two 0xff bytes, then
 * the four IPv4 bytes), as in RFC 4291 section 2.5.5.2. Every helper takes
 * `(buffer, offset)` pairs and none of them allocates, except the text
 * conversions ({@linkcode inanyFormat}, {@linkcode inanyParse}), which are for
 * configuration, logs and tests only.
 *
 * The text forms are conf/addr.ts's, the one home of address parsing and
 * formatting.
 *
 * @module
 */

import { formatIp4, formatIp6, parseIp } from "../conf/addr.ts";

/** Length of an inany address in bytes. */
export const INANY_LEN = 16;

/** Offset of the IPv4 address inside an IPv4-mapped inany. */
export const INANY_V4_OFF = 12;

/**
 * Stores an IPv4 address as an IPv4-mapped inany.
 * @param dst buffer receiving the inany
 * @param off where the inany starts in `dst`
 * @param a4 buffer holding the IPv4 address (4 bytes, network order)
 * @param a4off where the IPv4 address starts in `a4`
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { inanyFrom4, inanyFormat } from "./inany.ts";
 * const a = new Uint8Array(16);
 * inanyFrom4(a, 0, new Uint8Array([192, 0, 2, 1]), 0);
 * assert.equal(inanyFormat(a, 0), "192.0.2.1");
 * ```
 */
export function inanyFrom4(dst: Uint8Array, off: number, a4: Uint8Array, a4off: number): void {
  // Read first: `a4` may be the last four bytes of `dst` itself.
  const b0 = a4[a4off]!;
  const b1 = a4[a4off + 1]!;
  const b2 = a4[a4off + 2]!;
  const b3 = a4[a4off + 3]!;
  for (let i = 0; i < 10; i++) dst[off + i] = 0;
  dst[off + 10] = 0xff;
  dst[off + 11] = 0xff;
  dst[off + 12] = b0;
  dst[off + 13] = b1;
  dst[off + 14] = b2;
  dst[off + 15] = b3;
}

/**
 * Stores an IPv4 address given as a number as an IPv4-mapped inany, for
 * callers that read addresses with `DataView.getUint32()` (big-endian).
 * @param dst buffer receiving the inany
 * @param off where the inany starts in `dst`
 * @param a4 IPv4 address as a 32-bit number, a.b.c.d = a << 24 | ... | d
 */
export function inanyFrom4Num(dst: Uint8Array, off: number, a4: number): void {
  for (let i = 0; i < 10; i++) dst[off + i] = 0;
  dst[off + 10] = 0xff;
  dst[off + 11] = 0xff;
  dst[off + 12] = a4 >>> 24;
  dst[off + 13] = (a4 >>> 16) & 0xff;
  dst[off + 14] = (a4 >>> 8) & 0xff;
  dst[off + 15] = a4 & 0xff;
}

/**
 * Stores an IPv6 address (16 bytes, network order) as an inany: a plain copy.
 * Overlapping source and destination in the same buffer are handled.
 * @param dst buffer receiving the inany
 * @param off where the inany starts in `dst`
 * @param a6 buffer holding the IPv6 address
 * @param a6off where the IPv6 address starts in `a6`
 */
export function inanyFrom6(dst: Uint8Array, off: number, a6: Uint8Array, a6off: number): void {
  if (dst === a6 && off > a6off) {
    for (let i = INANY_LEN - 1; i >= 0; i--) dst[off + i] = a6[a6off + i]!;
  } else {
    for (let i = 0; i < INANY_LEN; i++) dst[off + i] = a6[a6off + i]!;
  }
}

/**
 * Copies an inany (same as {@linkcode inanyFrom6}, named for intent).
 * @param dst buffer receiving the copy
 * @param off where the copy starts in `dst`
 * @param src buffer holding the inany
 * @param srcOff where the inany starts in `src`
 */
export function inanyCopy(dst: Uint8Array, off: number, src: Uint8Array, srcOff: number): void {
  inanyFrom6(dst, off, src, srcOff);
}

/**
 * Tells whether an inany holds an IPv4 address (is IPv4-mapped).
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for `::ffff:a.b.c.d`
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { inanyIs4, inanyParse } from "./inany.ts";
 * const a = new Uint8Array(16);
 * inanyParse("10.0.0.1", a, 0);
 * assert.equal(inanyIs4(a, 0), true);
 * inanyParse("2001:db8::1", a, 0);
 * assert.equal(inanyIs4(a, 0), false);
 * ```
 */
export function inanyIs4(a: Uint8Array, off: number): boolean {
  return (a[off]! | a[off + 1]! | a[off + 2]! | a[off + 3]! | a[off + 4]! |
        a[off + 5]! | a[off + 6]! | a[off + 7]! | a[off + 8]! | a[off + 9]!) === 0 &&
    a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/**
 * Compares two inany addresses.
 * @param a buffer holding the first inany
 * @param aoff where the first inany starts in `a`
 * @param b buffer holding the second inany
 * @param boff where the second inany starts in `b`
 * @returns true if the 16 bytes are equal
 */
export function inanyEq(a: Uint8Array, aoff: number, b: Uint8Array, boff: number): boolean {
  for (let i = 0; i < INANY_LEN; i++) {
    if (a[aoff + i] !== b[boff + i]) return false;
  }
  return true;
}

/**
 * Tells whether an inany is a loopback address: IPv4 127.0.0.0/8 or IPv6 ::1.
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for 127.x.y.z or ::1
 */
export function inanyIsLoopback(a: Uint8Array, off: number): boolean {
  if (inanyIs4(a, off)) return a[off + 12] === 127;
  for (let i = 0; i < 15; i++) {
    if (a[off + i] !== 0) return false;
  }
  return a[off + 15] === 1;
}

/**
 * Tells whether an inany is unspecified: IPv4 0.0.0.0 or IPv6 ::.
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for 0.0.0.0 (`::ffff:0.0.0.0`) or ::
 */
export function inanyIsUnspecified(a: Uint8Array, off: number): boolean {
  if ((a[off + 12]! | a[off + 13]! | a[off + 14]! | a[off + 15]!) !== 0) return false;
  for (let i = 0; i < 10; i++) {
    if (a[off + i] !== 0) return false;
  }
  const m = (a[off + 10]! << 8) | a[off + 11]!;
  return m === 0 || m === 0xffff;
}

/**
 * Tells whether an inany is multicast (IPv6 ff00::/8, IPv4 224.0.0.0/4) or
 * the IPv4 limited broadcast address 255.255.255.255.
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for multicast or broadcast destinations
 */
export function inanyIsMulticast(a: Uint8Array, off: number): boolean {
  if (inanyIs4(a, off)) {
    const b0 = a[off + 12]!;
    return (b0 & 0xf0) === 0xe0 ||
      (b0 & a[off + 13]! & a[off + 14]! & a[off + 15]!) === 0xff;
  }
  return a[off] === 0xff;
}

/**
 * Tells whether an inany is an IPv6 link-local unicast address (fe80::/10).
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for fe80::/10
 */
export function inanyIsLinkLocal6(a: Uint8Array, off: number): boolean {
  return a[off] === 0xfe && (a[off + 1]! & 0xc0) === 0x80;
}

/**
 * Formats an inany for logs: dotted quad for IPv4-mapped addresses, RFC 5952
 * text (lower case, longest run of two or more zero groups as "::") for IPv6.
 * Allocates: logs, configuration and tests only.
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns text such as "192.0.2.1" or "2001:db8::1"
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { inanyFormat, inanyParse } from "./inany.ts";
 * const a = new Uint8Array(16);
 * inanyParse("2001:0db8:0:0:1:0:0:1", a, 0);
 * assert.equal(inanyFormat(a, 0), "2001:db8::1:0:0:1");
 * ```
 */
export function inanyFormat(a: Uint8Array, off: number): string {
  return inanyIs4(a, off)
    ? formatIp4(a.subarray(off + 12, off + 16))
    : formatIp6(a.subarray(off, off + 16));
}

/**
 * Parses an IPv4 (dotted quad) or IPv6 (RFC 4291 text, with "::" and an
 * optional dotted-quad tail; no zone index) address into an inany.
 * Allocates: configuration and tests only.
 * @param s text to parse
 * @param dst buffer receiving the inany
 * @param off where the inany starts in `dst`
 * @returns true on success; on failure `dst` may be partly written
 */
export function inanyParse(s: string, dst: Uint8Array, off: number): boolean {
  const ip = parseIp(s);
  if (ip === null) return false;
  if (ip.family === 4) inanyFrom4(dst, off, ip.bytes, 0);
  else dst.set(ip.bytes, off);
  return true;
}
