/**
 * addr.ts - IPv4 and IPv6 addresses inside a buffer: copies, comparisons
 * and classification, without allocation.
 *
 * Addresses in the context are 4- or 16-byte Uint8Arrays in network order;
 * addresses in packets are read in place through a DataView. The text forms
 * (parsing, formatting) have their one home in conf/addr.ts.
 *
 * @module
 */

/** Length of an IPv4 address. */
export const IP4_LEN = 4;
/** Length of an IPv6 address. */
export const IP6_LEN = 16;

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
