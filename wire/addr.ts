/**
 * addr.ts - IPv4 and IPv6 addresses: text forms, and copies, comparisons
 * and classification of addresses inside a buffer.
 *
 * Addresses in the context are 4- or 16-byte Uint8Arrays in network order;
 * addresses in packets are read in place through a DataView. Parsing and
 * formatting allocate (setup, logs, tests); everything else does not.
 *
 * @module
 */

/** Length of an IPv4 address. */
export const IP4_LEN = 4;
/** Length of an IPv6 address. */
export const IP6_LEN = 16;

/**
 * Parses a dotted-quad IPv4 address.
 * @param s text such as "192.0.2.1"
 * @returns the 4 bytes, or null when `s` is not an IPv4 address
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ip4Parse } from "./addr.ts";
 * assert.deepEqual(ip4Parse("192.0.2.1"), new Uint8Array([192, 0, 2, 1]));
 * assert.equal(ip4Parse("192.0.2.256"), null);
 * ```
 */
export function ip4Parse(s: string): Uint8Array | null {
  const out = new Uint8Array(IP4_LEN);
  return ip4ParseInto(s, out, 0) ? out : null;
}

function ip4ParseInto(s: string, out: Uint8Array, off: number): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const v = Number(p);
    if (v > 255) return false;
    out[off + i] = v;
  }
  return true;
}

/**
 * Formats an IPv4 address (slow path: logs, tests).
 * @param a buffer holding the address
 * @param off where it starts in `a`
 * @returns text such as "192.0.2.1"
 */
export function ip4Format(a: Uint8Array, off = 0): string {
  return `${a[off]}.${a[off + 1]}.${a[off + 2]}.${a[off + 3]}`;
}

/**
 * Parses an IPv6 address (RFC 4291 §2.2 text forms, including "::" and a
 * trailing dotted quad; no zone index).
 * @param s text such as "2001:db8::1"
 * @returns the 16 bytes, or null when `s` is not an IPv6 address
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ip6Parse } from "./addr.ts";
 * assert.equal(ip6Parse("fe80::1")![15], 1);
 * assert.equal(ip6Parse("fe80::1::2"), null);
 * ```
 */
export function ip6Parse(s: string): Uint8Array | null {
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return null;
  const head = ip6Groups(dbl < 0 ? s : s.slice(0, dbl), dbl < 0);
  const tail = dbl < 0 ? [] : ip6Groups(s.slice(dbl + 2), true);
  if (head === null || tail === null) return null;
  if (dbl < 0 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const out = new Uint8Array(IP6_LEN);
  for (let i = 0; i < head.length; i++) {
    out[2 * i] = head[i]! >> 8;
    out[2 * i + 1] = head[i]! & 0xff;
  }
  for (let i = 0; i < tail.length; i++) {
    const j = 8 - tail.length + i;
    out[2 * j] = tail[i]! >> 8;
    out[2 * j + 1] = tail[i]! & 0xff;
  }
  return out;
}

/** Parses colon-separated 16-bit groups, the last one possibly a dotted quad. */
function ip6Groups(s: string, v4Last: boolean): number[] | null {
  const words: number[] = [];
  if (s === "") return words;
  const groups = s.split(":");
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (v4Last && i === groups.length - 1 && g.includes(".")) {
      const q = new Uint8Array(4);
      if (!ip4ParseInto(g, q, 0)) return null;
      words.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
      words.push(parseInt(g, 16));
    } else {
      return null;
    }
  }
  return words;
}

/**
 * Formats an IPv6 address in the RFC 5952 form (slow path: logs, tests).
 * @param a buffer holding the address
 * @param off where it starts in `a`
 * @returns text such as "2001:db8::1" or "::ffff:192.0.2.1"
 */
export function ip6Format(a: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!);
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return "::ffff:" + ip4Format(a, off + 12);
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (best < 0) return w.map(hex).join(":");
  return w.slice(0, best).map(hex).join(":") + "::" + w.slice(best + bestLen).map(hex).join(":");
}

/**
 * Copies an address out of a buffer.
 * @param dv view over the buffer
 * @param off where the address starts
 * @param to destination
 * @param toOff where to write in `to`
 * @param n address length (IP4_LEN or IP6_LEN)
 */
export function addrRead(
  dv: DataView,
  off: number,
  to: Uint8Array,
  toOff: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) to[toOff + i] = dv.getUint8(off + i);
}

/**
 * Writes an address into a buffer.
 * @param dv view over the buffer
 * @param off where the address goes
 * @param a the address (`n` bytes)
 * @param n address length (IP4_LEN or IP6_LEN)
 */
export function addrWrite(dv: DataView, off: number, a: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++) dv.setUint8(off + i, a[i]!);
}

/**
 * Compares an address in a buffer with another.
 * @param dv view over the buffer
 * @param off where the address starts
 * @param a the other address
 * @param n address length (IP4_LEN or IP6_LEN)
 * @returns true when equal
 */
export function addrEqual(dv: DataView, off: number, a: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (dv.getUint8(off + i) !== a[i]) return false;
  return true;
}

/**
 * Tells whether an address is all zeroes (0.0.0.0 or ::).
 * @param dv view over the buffer
 * @param off where the address starts
 * @param n address length (IP4_LEN or IP6_LEN)
 * @returns true for the unspecified address
 */
export function addrIsUnspecified(dv: DataView, off: number, n: number): boolean {
  for (let i = 0; i < n; i += 4) if (dv.getUint32(off + i) !== 0) return false;
  return true;
}

/**
 * Tells whether an IPv6 address is multicast (ff00::/8).
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for multicast
 */
export function ip6IsMulticast(dv: DataView, off: number): boolean {
  return dv.getUint8(off) === 0xff;
}

/**
 * Tells whether an IPv6 address is link-local unicast (fe80::/10).
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for link-local unicast
 */
export function ip6IsLinkLocal(dv: DataView, off: number): boolean {
  return (dv.getUint16(off) & 0xffc0) === 0xfe80;
}

/**
 * Tells whether an IPv6 address is the loopback address ::1.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for ::1
 */
export function ip6IsLoopback(dv: DataView, off: number): boolean {
  return dv.getUint32(off) === 0 && dv.getUint32(off + 4) === 0 &&
    dv.getUint32(off + 8) === 0 && dv.getUint32(off + 12) === 1;
}

/**
 * Tells whether an IPv6 address is a solicited-node multicast address
 * (ff02::1:ff00:0/104, RFC 4291 §2.7.1).
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for a solicited-node address
 */
export function ip6IsSolicitedNode(dv: DataView, off: number): boolean {
  return dv.getUint32(off) === 0xff020000 && dv.getUint32(off + 4) === 0 &&
    dv.getUint32(off + 8) === 1 && dv.getUint8(off + 12) === 0xff;
}

/**
 * Writes the Ethernet address of an IPv6 multicast group (33:33 and the
 * group's last 32 bits, RFC 2464 §7).
 * @param dv view holding the IPv6 multicast address
 * @param off where that address starts
 * @param to view to write the MAC address into
 * @param toOff where it goes
 */
export function ip6MulticastMac(dv: DataView, off: number, to: DataView, toOff: number): void {
  const low = dv.getUint32(off + 12);
  to.setUint16(toOff, 0x3333);
  to.setUint32(toOff + 2, low);
}

/**
 * Tells whether an IPv4 address is multicast (224.0.0.0/4).
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for multicast
 */
export function ip4IsMulticast(dv: DataView, off: number): boolean {
  return (dv.getUint8(off) & 0xf0) === 0xe0;
}

/**
 * Tells whether an IPv4 address is the limited broadcast 255.255.255.255.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for limited broadcast
 */
export function ip4IsBroadcast(dv: DataView, off: number): boolean {
  return dv.getUint32(off) === 0xffffffff;
}

/**
 * Tells whether an IPv4 address is in the loopback network 127.0.0.0/8.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for loopback
 */
export function ip4IsLoopback(dv: DataView, off: number): boolean {
  return dv.getUint8(off) === 127;
}
