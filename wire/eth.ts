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

/** Ethernet header length. */
export const ETH_HLEN = 14;
/** Offset of the destination address. */
export const ETH_DST = 0;
/** Offset of the source address. */
export const ETH_SRC = 6;
/** Offset of the EtherType. */
const ETH_TYPE = 12;

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
