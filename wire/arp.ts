/**
 * arp.ts - ARP packet view for Ethernet and IPv4 (RFC 826).
 *
 * ```
 *  0       2       4   5   6       8            14      18           24      28
 * +-------+-------+---+---+-------+------------+-------+------------+-------+
 * | htype | ptype |hln|pln|  op   | sender MAC | s. IP | target MAC | t. IP |
 * +-------+-------+---+---+-------+------------+-------+------------+-------+
 * ```
 *
 * @module
 */

import { macWrite } from "./mac.ts";
import { ETH_P_IP } from "./eth.ts";

/** Length of an ARP packet for Ethernet and IPv4. */
export const ARP_LEN = 28;
/** Offset of the hardware type. */
const ARP_HTYPE = 0;
/** Offset of the protocol type. */
const ARP_PTYPE = 2;
/** Offset of the hardware address length. */
const ARP_HLN = 4;
/** Offset of the protocol address length. */
const ARP_PLN = 5;
/** Offset of the operation. */
const ARP_OP = 6;
/** Offset of the sender hardware address. */
export const ARP_SHA = 8;
/** Offset of the sender protocol address. */
const ARP_SPA = 14;
/** Offset of the target hardware address. */
export const ARP_THA = 18;
/** Offset of the target protocol address. */
export const ARP_TPA = 24;

/** Hardware type: Ethernet. */
const ARP_HTYPE_ETHER = 1;
/** Operation: request. */
export const ARP_OP_REQUEST = 1;
/** Operation: reply. */
export const ARP_OP_REPLY = 2;

/**
 * Checks that an ARP packet for Ethernet and IPv4 fits.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @param len bytes available from `off`
 * @returns true when all 28 bytes are within `len` and the view
 */
export function arpCheckLen(dv: DataView, off: number, len: number): boolean {
  return off >= 0 && len >= ARP_LEN && off + len <= dv.byteLength;
}

/**
 * Tells whether the packet is for Ethernet (hardware type 1, length 6) and
 * IPv4 (protocol type 0x0800, length 4).
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @returns true for Ethernet/IPv4 ARP
 */
export function arpIsEthIp4(dv: DataView, off: number): boolean {
  return dv.getUint16(off + ARP_HTYPE) === ARP_HTYPE_ETHER &&
    dv.getUint16(off + ARP_PTYPE) === ETH_P_IP &&
    dv.getUint8(off + ARP_HLN) === 6 && dv.getUint8(off + ARP_PLN) === 4;
}

/**
 * Reads the operation.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @returns ARP_OP_REQUEST, ARP_OP_REPLY or another value
 */
export function arpOp(dv: DataView, off: number): number {
  return dv.getUint16(off + ARP_OP);
}

/**
 * Reads the sender protocol (IPv4) address.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @returns the address as an unsigned 32-bit number
 */
export function arpSpa(dv: DataView, off: number): number {
  return dv.getUint32(off + ARP_SPA);
}

/**
 * Reads the target protocol (IPv4) address.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @returns the address as an unsigned 32-bit number
 */
export function arpTpa(dv: DataView, off: number): number {
  return dv.getUint32(off + ARP_TPA);
}

/**
 * Writes the fixed part for Ethernet/IPv4 and the operation.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @param op ARP_OP_REQUEST or ARP_OP_REPLY
 */
export function arpSetHeader(dv: DataView, off: number, op: number): void {
  dv.setUint16(off + ARP_HTYPE, ARP_HTYPE_ETHER);
  dv.setUint16(off + ARP_PTYPE, ETH_P_IP);
  dv.setUint8(off + ARP_HLN, 6);
  dv.setUint8(off + ARP_PLN, 4);
  dv.setUint16(off + ARP_OP, op);
}

/**
 * Writes the sender protocol (IPv4) address.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @param addr the address as an unsigned 32-bit number
 */
export function arpSetSpa(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off + ARP_SPA, addr);
}

/**
 * Writes the target protocol (IPv4) address.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @param addr the address as an unsigned 32-bit number
 */
export function arpSetTpa(dv: DataView, off: number, addr: number): void {
  dv.setUint32(off + ARP_TPA, addr);
}

/**
 * Writes the sender hardware address.
 * @param dv view over the buffer
 * @param off where the ARP packet starts
 * @param mac the address (6 bytes)
 */
export function arpSetSha(dv: DataView, off: number, mac: Uint8Array): void {
  macWrite(dv, off + ARP_SHA, mac);
}
