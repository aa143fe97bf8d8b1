/**
 * mac.ts - Ethernet (EUI-48) addresses inside a buffer: writes, copies and
 * the multicast test. The text form has its one home in conf/addr.ts.
 *
 * Addresses in the context (`c.ourMac`, `c.guestMac`) are 6-byte
 * Uint8Arrays; addresses in frames are read in place through a DataView.
 *
 * @module
 */

/** Length of an Ethernet address. */
const MAC_LEN = 6;

/**
 * Writes a MAC address into a buffer.
 * @param dv view over the buffer
 * @param off where the address goes
 * @param mac the address (6 bytes)
 */
export function macWrite(dv: DataView, off: number, mac: Uint8Array): void {
  for (let i = 0; i < MAC_LEN; i++) dv.setUint8(off + i, mac[i]!);
}

/**
 * Copies a MAC address within buffers (source and destination may be the same view).
 * @param dv view holding the address to copy
 * @param off where it starts
 * @param to view to copy into
 * @param toOff where it goes
 */
export function macCopy(dv: DataView, off: number, to: DataView, toOff: number): void {
  const a = dv.getUint32(off);
  const b = dv.getUint16(off + 4);
  to.setUint32(toOff, a);
  to.setUint16(toOff + 4, b);
}

/**
 * Tells whether a MAC address is a group (multicast or broadcast) address.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true when the I/G bit is set
 */
export function macIsMulticast(dv: DataView, off: number): boolean {
  return (dv.getUint8(off) & 1) !== 0;
}
