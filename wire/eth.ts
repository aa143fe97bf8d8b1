/**
 * eth.ts - Ethernet II header view: destination and source addresses,
 * EtherType.
 *
 * ```
 *  0                   6                  12      14
 * +-------------------+-------------------+-------+
 * |  destination MAC  |    source MAC     | type  |
 * +-------------------+-------------------+-------+
 * ```
 *
 * @module
 */

import { macCopy, macRead, macWrite } from "./mac.ts";

/** Ethernet header length. */
export const ETH_HLEN = 14;
/** Offset of the destination address. */
export const ETH_DST = 0;
/** Offset of the source address. */
export const ETH_SRC = 6;
/** Offset of the EtherType. */
export const ETH_TYPE = 12;

/** EtherType: IPv4. */
export const ETH_P_IP = 0x0800;
/** EtherType: ARP. */
export const ETH_P_ARP = 0x0806;
/** EtherType: IPv6. */
export const ETH_P_IPV6 = 0x86dd;

/**
 * Checks that an Ethernet header fits.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param len bytes available from `off`
 * @returns true when the header is within `len` and the view
 */
export function ethCheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= ETH_HLEN && off + len <= dv.byteLength;
}

/**
 * Reads the EtherType.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @returns the EtherType
 */
export function ethType(dv: DataView, off: number): number {
  return dv.getUint16(off + ETH_TYPE);
}

/**
 * Writes the EtherType.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param type the EtherType
 */
export function ethSetType(dv: DataView, off: number, type: number): void {
  dv.setUint16(off + ETH_TYPE, type);
}

/**
 * Copies the destination address out.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param to 6-byte destination
 */
export function ethDst(dv: DataView, off: number, to: Uint8Array): void {
  macRead(dv, off + ETH_DST, to);
}

/**
 * Copies the source address out.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param to 6-byte destination
 */
export function ethSrc(dv: DataView, off: number, to: Uint8Array): void {
  macRead(dv, off + ETH_SRC, to);
}

/**
 * Writes the destination address.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param mac the address (6 bytes)
 */
export function ethSetDst(dv: DataView, off: number, mac: Uint8Array): void {
  macWrite(dv, off + ETH_DST, mac);
}

/**
 * Writes the source address.
 * @param dv view over the buffer
 * @param off where the frame starts
 * @param mac the address (6 bytes)
 */
export function ethSetSrc(dv: DataView, off: number, mac: Uint8Array): void {
  macWrite(dv, off + ETH_SRC, mac);
}

/**
 * Writes a whole Ethernet header, the destination copied from another frame's
 * source (as for a reply). `from` and `dv` may be the same view.
 * @param dv view over the buffer to write
 * @param off where the header goes
 * @param from view holding the frame being answered
 * @param fromOff where that frame starts
 * @param src our source address (6 bytes)
 * @param type the EtherType
 */
export function ethReply(
  dv: DataView,
  off: number,
  from: DataView,
  fromOff: number,
  src: Uint8Array,
  type: number,
): void {
  macCopy(from, fromOff + ETH_SRC, dv, off + ETH_DST);
  macWrite(dv, off + ETH_SRC, src);
  dv.setUint16(off + ETH_TYPE, type);
}
