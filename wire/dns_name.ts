/**
 * dns_name.ts - domain names in DNS wire format (RFC 1035 §3.1), for the
 * options that carry them: NDP DNSSL, DHCP search list (119, RFC 3397, with
 * RFC 1035 §4.1.4 compression) and client FQDN (81, RFC 4702), DHCPv6
 * domain list (24) and client FQDN (39, RFC 4704; never compressed).
 *
 * Names are strings of ASCII labels separated by dots, a trailing dot
 * ignored; a name with an empty or over-long label, a character outside
 * printable ASCII, or an encoding over 255 bytes cannot be encoded, and the
 * writers skip it. Nothing here allocates.
 *
 * @module
 */

/** Longest label (RFC 1035). */
const DNS_LABEL_MAX = 63;
/** Longest encoded name, length bytes and root label included (RFC 1035). */
const DNS_NAME_MAX = 255;

/**
 * Measures the wire encoding of a domain name.
 * @param name the domain, such as "example.com" or "example.com."
 * @returns encoded length including the root label, or 0 when the name
 *   cannot be encoded
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { dnsNameLen } from "./dns_name.ts";
 *
 * assert.equal(dnsNameLen("example.com"), 13);
 * assert.equal(dnsNameLen("a..b"), 0);
 * ```
 */
export function dnsNameLen(name: string): number {
  let n = name.length;
  if (n > 0 && name.charCodeAt(n - 1) === 0x2e) n--;
  if (n === 0) return 0;
  let label = 0;
  for (let i = 0; i < n; i++) {
    const ch = name.charCodeAt(i);
    if (ch === 0x2e) {
      if (label === 0) return 0;
      label = 0;
    } else if (ch <= 0x20 || ch >= 0x7f || ++label > DNS_LABEL_MAX) return 0;
  }
  if (label === 0) return 0;
  const total = n + 2;
  return total > DNS_NAME_MAX ? 0 : total;
}

/**
 * Writes a name, uncompressed, with its root label.
 * @param buf destination
 * @param off where the name goes
 * @param name the domain
 * @param room bytes available at `off`
 * @returns bytes written, 0 when the name cannot be encoded or does not fit
 */
export function dnsNameWrite(buf: Uint8Array, off: number, name: string, room: number): number {
  const elen = dnsNameLen(name);
  if (elen === 0 || elen > room) return 0;
  labelsWrite(buf, off, name, elen - 2);
  buf[off + elen - 1] = 0;
  return elen;
}

/**
 * Writes the labels of the first `n` characters of `name` (length bytes
 * included, no root label): n + 1 bytes.
 */
function labelsWrite(buf: Uint8Array, off: number, name: string, n: number): void {
  let lenAt = off;
  let p = off + 1;
  let label = 0;
  for (let i = 0; i < n; i++) {
    const ch = name.charCodeAt(i);
    if (ch === 0x2e) {
      buf[lenAt] = label;
      lenAt = p++;
      label = 0;
    } else {
      buf[p++] = ch;
      label++;
    }
  }
  buf[lenAt] = label;
}

/**
 * Whether the encoded suffix of `name` starting at character `from` (a label
 * start; `n` characters in all, trailing dot excluded) is encoded at `at`,
 * uncompressed, up to the root label.
 */
function suffixAt(buf: Uint8Array, at: number, end: number, name: string, from: number, n: number) {
  let p = at;
  let i = from;
  while (i < n) {
    let j = i;
    while (j < n && name.charCodeAt(j) !== 0x2e) j++;
    const l = j - i;
    if (p + 1 + l > end || buf[p] !== l) return false;
    for (let k = 0; k < l; k++) {
      if (buf[p + 1 + k] !== name.charCodeAt(i + k)) return false;
    }
    p += 1 + l;
    i = j + 1;
  }
  return p < end && buf[p] === 0;
}

/**
 * Finds where an uncompressed encoding of the suffix of `name` from
 * character `from` already stands among the names written at [base, end):
 * only label starts of names in that area are considered.
 * @returns offset relative to `base`, or -1
 */
function suffixFind(
  buf: Uint8Array,
  base: number,
  end: number,
  name: string,
  from: number,
  n: number,
): number {
  let p = base;
  while (p < end) {
    /* walk one name: labels until the root label or a pointer */
    while (p < end) {
      const l = buf[p]!;
      if (l === 0) {
        p++;
        break;
      }
      if ((l & 0xc0) === 0xc0) {
        p += 2;
        break;
      }
      if (suffixAt(buf, p, end, name, from, n)) return p - base;
      p += 1 + l;
    }
  }
  return -1;
}

/**
 * Appends a name to a list of names (DHCP option 119, RFC 3397), replacing
 * the longest suffix already present in the list with a compression pointer
 * (RFC 1035 §4.1.4), offsets counted from `base`.
 * @param buf the buffer holding the list
 * @param base where the list starts (the option's data)
 * @param off where this name goes (the list's current end)
 * @param name the domain
 * @param room bytes available at `off`
 * @returns bytes written, 0 when the name cannot be encoded or does not fit
 */
export function dnsNameWriteCompressed(
  buf: Uint8Array,
  base: number,
  off: number,
  name: string,
  room: number,
): number {
  const elen = dnsNameLen(name);
  if (elen === 0) return 0;
  const n = elen - 2;
  /* label starts, from the whole name to its last label */
  for (let from = 0; from < n;) {
    const at = suffixFind(buf, base, off, name, from, n);
    if (at >= 0 && at < 0x4000) {
      const len = from === 0 ? 2 : from + 2;
      if (len > room) return 0;
      if (from > 0) labelsWrite(buf, off, name, from - 1);
      buf[off + len - 2] = 0xc0 | (at >> 8);
      buf[off + len - 1] = at & 0xff;
      return len;
    }
    while (from < n && name.charCodeAt(from) !== 0x2e) from++;
    from++;
  }
  return dnsNameWrite(buf, off, name, room);
}
