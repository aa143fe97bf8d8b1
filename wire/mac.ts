/**
 * mac.ts - Ethernet (EUI-48) addresses: text form, and reads, writes and
 * tests on addresses inside a buffer.
 *
 * Addresses in the context (`c.ourMac`, `c.guestMac`) are 6-byte
 * Uint8Arrays; addresses in frames are read in place through a DataView.
 *
 * @module
 */

/** Length of an Ethernet address. */
export const MAC_LEN = 6;

const HEX = "0123456789abcdef";

/**
 * Parses a MAC address written as six colon-separated hex pairs.
 * @param s text such as "9a:55:9a:55:9a:55"
 * @returns the 6 bytes, or null when `s` is not a MAC address
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { macParse } from "./mac.ts";
 * assert.deepEqual(macParse("02:00:00:00:00:01"), new Uint8Array([2, 0, 0, 0, 0, 1]));
 * assert.equal(macParse("02:00:00:00:00"), null);
 * ```
 */
export function macParse(s: string): Uint8Array | null {
  if (s.length !== 17) return null;
  const out = new Uint8Array(MAC_LEN);
  for (let i = 0; i < MAC_LEN; i++) {
    const p = i * 3;
    if (i > 0 && s[p - 1] !== ":") return null;
    const hi = HEX.indexOf(s[p]!.toLowerCase());
    const lo = HEX.indexOf(s[p + 1]!.toLowerCase());
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/**
 * Formats a MAC address (slow path: logs, tests).
 * @param mac buffer holding the address
 * @param off where the address starts in `mac`
 * @returns text such as "9a:55:9a:55:9a:55"
 */
export function macFormat(mac: Uint8Array, off = 0): string {
  let s = "";
  for (let i = 0; i < MAC_LEN; i++) {
    const b = mac[off + i]!;
    if (i > 0) s += ":";
    s += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return s;
}

/**
 * Copies a MAC address out of a buffer.
 * @param dv view over the buffer
 * @param off where the address starts
 * @param to destination (6 bytes from `toOff`)
 * @param toOff where to write in `to`
 */
export function macRead(dv: DataView, off: number, to: Uint8Array, toOff = 0): void {
  for (let i = 0; i < MAC_LEN; i++) to[toOff + i] = dv.getUint8(off + i);
}

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
 * Compares a MAC address in a buffer with another.
 * @param dv view over the buffer
 * @param off where the address starts
 * @param mac the other address (6 bytes)
 * @returns true when they are equal
 */
export function macEqual(dv: DataView, off: number, mac: Uint8Array): boolean {
  for (let i = 0; i < MAC_LEN; i++) if (dv.getUint8(off + i) !== mac[i]) return false;
  return true;
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

/**
 * Tells whether a MAC address is the broadcast address ff:ff:ff:ff:ff:ff.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for broadcast
 */
export function macIsBroadcast(dv: DataView, off: number): boolean {
  return dv.getUint32(off) === 0xffffffff && dv.getUint16(off + 4) === 0xffff;
}

/**
 * Tells whether a MAC address is all zeroes.
 * @param dv view over the buffer
 * @param off where the address starts
 * @returns true for 00:00:00:00:00:00
 */
export function macIsZero(dv: DataView, off: number): boolean {
  return dv.getUint32(off) === 0 && dv.getUint16(off + 4) === 0;
}
