/**
 * l3.ts - IPv4/IPv6 frames from the guest, checked and handed to L4 handlers.
 *
 * Theory of operation: tapInput() passes every IPv4 and IPv6 frame here
 * (NDP has already been taken out). The IP header is validated against the
 * frame (version, header and total lengths; for IPv6 the extension header
 * chain is walked, bounded), Ethernet padding is trimmed by using the IP
 * lengths, fragments are dropped (the guest's kernel does not fragment what
 * it sends through a tap with TSO), and the L4 handler registered for the
 * protocol is called with offsets into the frame. Addresses are read by the
 * handlers from the IP header: IPv4 source at ipOff+12, destination at
 * ipOff+16; IPv6 source at ipOff+8, destination at ipOff+24.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { ipv4IsFragment, ipv4IsValid } from "../wire/ipv4.ts";
import { ipv6L4, ipv6L4IsFragment, ipv6L4Off, ipv6L4Proto } from "../wire/ipv6.ts";

/**
 * An L4 protocol handler for frames from the guest.
 * @param c execution context
 * @param v6 whether the frame is IPv6
 * @param frame buffer holding the frame
 * @param dv DataView over the whole of `frame`'s buffer, same offsets
 * @param ipOff offset of the IP header
 * @param l4Off offset of the L4 header
 * @param l4Len length of the L4 header and payload
 * @param now monotonic time in ms
 */
export type L4Handler = (
  c: Ctx,
  v6: boolean,
  frame: Uint8Array,
  dv: DataView,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  now: number,
) => void;

/** L4 handlers by IP protocol number (TCP 6, UDP 17, ICMP 1, ICMPv6 58). */
export const l4Handlers: (L4Handler | null)[] = new Array(256).fill(null);

/**
 * Registers the handler for an IP protocol.
 * @param proto IP protocol number
 * @param h the handler
 */
export function l4Register(proto: number, h: L4Handler): void {
  l4Handlers[proto] = h;
}

/**
 * Handles an IPv4 frame from the guest.
 * @param c execution context
 * @param frame buffer holding the frame
 * @param dv DataView over `frame`'s buffer, same offsets
 * @param ipOff offset of the IPv4 header
 * @param len bytes from ipOff to the end of the frame
 * @param now monotonic time in ms
 */
export function ip4Input(
  c: Ctx,
  frame: Uint8Array,
  dv: DataView,
  ipOff: number,
  len: number,
  now: number,
): void {
  if (!ipv4IsValid(dv, ipOff, len)) {
    c.stats.malformed++;
    return;
  }
  if (!c.ip4.enabled || ipv4IsFragment(dv, ipOff)) {
    c.stats.unhandled++;
    return;
  }
  const hlen = (frame[ipOff]! & 0x0f) * 4;
  const total = dv.getUint16(ipOff + 2);
  const h = l4Handlers[frame[ipOff + 9]!];
  if (h === null || h === undefined) {
    c.stats.unhandled++;
    return;
  }
  /* Remember the address the guest uses, for inbound traffic */
  const seen = c.ip4.addrSeen;
  if (frame[ipOff + 12] !== 0 || frame[ipOff + 13] !== 0) {
    for (let i = 0; i < 4; i++) seen[i] = frame[ipOff + 12 + i]!;
  }
  h(c, false, frame, dv, ipOff, ipOff + hlen, total - hlen, now);
}

/**
 * Handles an IPv6 frame from the guest (not NDP).
 * @param c execution context
 * @param frame buffer holding the frame
 * @param dv DataView over `frame`'s buffer, same offsets
 * @param ipOff offset of the IPv6 header
 * @param len bytes from ipOff to the end of the frame
 * @param now monotonic time in ms
 */
export function ip6Input(
  c: Ctx,
  frame: Uint8Array,
  dv: DataView,
  ipOff: number,
  len: number,
  now: number,
): void {
  const r = ipv6L4(dv, ipOff, len);
  if (r < 0) {
    c.stats.malformed++;
    return;
  }
  if (!c.ip6.enabled || ipv6L4IsFragment(r)) {
    /* a first fragment, like an IPv4 one: dropped, not half a datagram */
    c.stats.unhandled++;
    return;
  }
  const proto = ipv6L4Proto(r);
  const h = l4Handlers[proto];
  if (h === null || h === undefined) {
    c.stats.unhandled++;
    return;
  }
  const l4Rel = ipv6L4Off(r);
  const end = 40 + dv.getUint16(ipOff + 4);
  /* Remember the addresses the guest uses, for inbound traffic */
  const linkLocal = frame[ipOff + 8] === 0xfe && (frame[ipOff + 9]! & 0xc0) === 0x80;
  const seen = linkLocal ? c.ip6.addrLinkLocalSeen : c.ip6.addrSeen;
  if (frame[ipOff + 8] !== 0 || frame[ipOff + 9] !== 0) {
    for (let i = 0; i < 16; i++) seen[i] = frame[ipOff + 8 + i]!;
  }
  h(c, true, frame, dv, ipOff, ipOff + l4Rel, end - l4Rel, now);
}

/**
 * Reads the source and destination addresses of a frame from the guest as
 * 16-byte inany values (IPv4-mapped for IPv4): source at key[0..16),
 * destination at key[16..32).
 * @param frame buffer holding the frame
 * @param ipOff offset of the IP header
 * @param v6 IPv6 or IPv4
 * @param key buffer of at least 32 bytes
 */
export function l3Addrs(frame: Uint8Array, ipOff: number, v6: boolean, key: Uint8Array): void {
  if (!v6) {
    for (let i = 0; i < 10; i++) {
      key[i] = 0;
      key[16 + i] = 0;
    }
    key[10] = 0xff;
    key[11] = 0xff;
    key[26] = 0xff;
    key[27] = 0xff;
    for (let i = 0; i < 4; i++) {
      key[12 + i] = frame[ipOff + 12 + i]!;
      key[28 + i] = frame[ipOff + 16 + i]!;
    }
  } else {
    for (let i = 0; i < 16; i++) {
      key[i] = frame[ipOff + 8 + i]!;
      key[16 + i] = frame[ipOff + 24 + i]!;
    }
  }
}
