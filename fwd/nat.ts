/**
 * nat.ts - the address translations pasta makes, in both directions.
 *
 * Theory of operation: orzo avoids translation wherever it can; the guest
 * shares the host's addresses, so only a few addresses need mapping:
 *
 * - From the guest (fwdNatFromTap): a destination equal to
 *   `mapHostLoopback` (the gateway by default, unless --no-map-gw or
 *   --map-host-loopback none) reaches the host's loopback (127.0.0.1 / ::1);
 *   one equal to `mapGuestAddr` reaches the host's own address (the guest's
 *   address, which the guest itself shadows); DNS to `dnsMatch` port 53 goes
 *   to `dnsHost`. Anything else keeps its destination.
 * - Towards the guest (fwdNatFromHost): a loopback source appears as
 *   `mapHostLoopback` (or, without one, the gateway); the host's own address
 *   (the guest's) appears as `mapGuestAddr` when set, else as the gateway;
 *   anything else keeps its source.
 *
 * Addresses are 16-byte inany values (IPv4-mapped for IPv4), read from and
 * written to caller-provided buffers: nothing here allocates.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";

const V4MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function is4(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** Whether inany `a` at `off` equals the plain address `b` (4 or 16 bytes). */
function eq(a: Uint8Array, off: number, b: Uint8Array): boolean {
  if (b.length === 4) {
    if (!is4(a, off)) return false;
    return a[off + 12] === b[0] && a[off + 13] === b[1] && a[off + 14] === b[2] &&
      a[off + 15] === b[3];
  }
  for (let i = 0; i < 16; i++) if (a[off + i] !== b[i]) return false;
  return true;
}

/** Writes plain address `b` (4 or 16 bytes) as inany into `a` at `off`. */
function put(a: Uint8Array, off: number, b: Uint8Array): void {
  if (b.length === 4) {
    for (let i = 0; i < 12; i++) a[off + i] = V4MAPPED[i]!;
    for (let i = 0; i < 4; i++) a[off + 12 + i] = b[i]!;
  } else {
    for (let i = 0; i < 16; i++) a[off + i] = b[i]!;
  }
}

/**
 * Whether an inany address is loopback (127.0.0.0/8 or ::1).
 * @param a buffer
 * @param off offset of the 16-byte address
 * @returns true for loopback
 */
export function inanyLoopback(a: Uint8Array, off: number): boolean {
  if (is4(a, off)) return a[off + 12] === 127;
  for (let i = 0; i < 15; i++) if (a[off + i] !== 0) return false;
  return a[off + 15] === 1;
}

/** Translation result: the address was rewritten to the host's loopback. */
export const NAT_LOOPBACK = 1;
/** Translation result: rewritten to the guest's own address on the host. */
export const NAT_GUEST_ADDR = 2;
/** Translation result: DNS redirected to the host's resolver. */
export const NAT_DNS = 3;
/** Translation result: unchanged. */
export const NAT_NONE = 0;

/**
 * Maps the destination of a flow the guest starts to where the host socket
 * must connect.
 * @param c execution context
 * @param dst buffer holding the guest's destination (inany), rewritten in place
 * @param off offset of the address
 * @param dport destination port
 * @returns NAT_* telling what was done
 */
export function fwdNatFromTap(c: Ctx, dst: Uint8Array, off: number, dport: number): number {
  const v4 = is4(dst, off);
  const ip = v4 ? c.ip4 : c.ip6;
  if (dport === 53 && !isZero(ip.dnsMatch) && eq(dst, off, ip.dnsMatch)) {
    put(dst, off, ip.dnsHost);
    return NAT_DNS;
  }
  if (!isZero(ip.mapHostLoopback) && eq(dst, off, ip.mapHostLoopback)) {
    if (v4) {
      put(dst, off, LOOPBACK4);
    } else {
      put(dst, off, LOOPBACK6);
    }
    return NAT_LOOPBACK;
  }
  if (!isZero(ip.mapGuestAddr) && eq(dst, off, ip.mapGuestAddr)) {
    put(dst, off, ip.addr);
    return NAT_GUEST_ADDR;
  }
  return NAT_NONE;
}

const LOOPBACK4 = new Uint8Array([127, 0, 0, 1]);
const LOOPBACK6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/**
 * Maps the source of a flow from the host to what the guest sees.
 * @param c execution context
 * @param src buffer holding the host-side source (inany), rewritten in place
 * @param off offset of the address
 * @returns NAT_* telling what was done
 */
export function fwdNatFromHost(c: Ctx, src: Uint8Array, off: number): number {
  const v4 = is4(src, off);
  const ip = v4 ? c.ip4 : c.ip6;
  if (inanyLoopback(src, off)) {
    put(src, off, isZero(ip.mapHostLoopback) ? ip.gateway : ip.mapHostLoopback);
    return NAT_LOOPBACK;
  }
  if (eq(src, off, ip.addr)) {
    put(src, off, isZero(ip.mapGuestAddr) ? ip.gateway : ip.mapGuestAddr);
    return NAT_GUEST_ADDR;
  }
  return NAT_NONE;
}

/**
 * Fills the guest-side destination of an inbound flow: the address the guest
 * last used (or was given).
 * @param c execution context
 * @param v6 IPv6 or IPv4
 * @param dst buffer for the inany address
 * @param off offset in dst
 */
export function fwdGuestAddr(c: Ctx, v6: boolean, dst: Uint8Array, off: number): void {
  if (!v6) {
    put(dst, off, isZero(c.ip4.addrSeen) ? c.ip4.addr : c.ip4.addrSeen);
  } else {
    put(dst, off, isZero(c.ip6.addrSeen) ? c.ip6.addr : c.ip6.addrSeen);
  }
}
