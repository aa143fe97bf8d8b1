/**
 * guard.ts - which flows from the guest may open a host socket, and where to.
 *
 * Theory of operation: a guest can write any frame it likes onto its
 * interface (a raw socket needs no help from its kernel's routing), so the
 * addresses and ports of a frame from the tap are untrusted input. Before
 * TCP, UDP or ICMP opens a host socket for a new flow from the guest,
 * fwdTapTarget() classifies the frame's addresses and refuses:
 *
 * - any IPv6 frame whose source or destination is IPv4-mapped
 *   (::ffff:0:0/96): orzo keeps addresses as inany values, where such an
 *   address would pass for IPv4 (an IPv6 frame to ::ffff:127.0.0.1 would
 *   otherwise reach the host's 127.0.0.1), so this is decided on the L3
 *   family of the frame, first;
 * - a source that is not a unicast address the guest could own: unspecified,
 *   loopback, multicast, broadcast (limited, or the directed broadcast of the
 *   guest's IPv4 prefix);
 * - port 0 on either side (TCP, UDP);
 * - a destination that is loopback (127.0.0.0/8, ::1), unspecified
 *   (0.0.0.0, ::), multicast (224.0.0.0/4, ff00::/8) or broadcast, unless a
 *   configured mapping (fwdNatFromTap(): the host-loopback mapping, which is
 *   the gateway by default, --map-guest-addr, --dns-forward) sends it there
 *   on purpose: the class is checked on the translated destination only when
 *   no mapping applied.
 *
 * Everything here reads caller-provided buffers and allocates nothing,
 * except fwdRefusalLog(), which formats only at debug level.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { inanyFormat, inanyIs4 } from "../flow/inany.ts";
import { debug, LOG_DEBUG, logLevel } from "../log.ts";
import { fwdNatFromTap, NAT_NONE } from "./nat.ts";

/** Classification: an address a flow may use. */
export const ADDR_UNICAST = 0;
/** Classification: unspecified (0.0.0.0, ::). */
export const ADDR_UNSPECIFIED = 1;
/** Classification: loopback (127.0.0.0/8, ::1). */
export const ADDR_LOOPBACK = 2;
/** Classification: multicast (224.0.0.0/4, ff00::/8). */
export const ADDR_MULTICAST = 3;
/** Classification: IPv4 broadcast (255.255.255.255, or the guest prefix's directed one). */
export const ADDR_BROADCAST = 4;

/** Verdict: the flow may be opened. */
export const FWD_OK = 0;
/** Refusal: an IPv6 frame with an IPv4-mapped source or destination. */
export const REFUSE_V4MAPPED = 1;
/** Refusal: the source is not a unicast address. */
export const REFUSE_SOURCE = 2;
/** Refusal: source or destination port 0. */
export const REFUSE_PORT0 = 3;
/** Refusal: the destination is unspecified. */
export const REFUSE_DST_UNSPECIFIED = 4;
/** Refusal: the destination is loopback. */
export const REFUSE_DST_LOOPBACK = 5;
/** Refusal: the destination is multicast. */
export const REFUSE_DST_MULTICAST = 6;
/** Refusal: the destination is a broadcast address. */
export const REFUSE_DST_BROADCAST = 7;

/** What each verdict means, for logs (index: FWD_OK, REFUSE_*). */
export const REFUSAL_NAMES: readonly string[] = [
  "allowed",
  "IPv4-mapped address in an IPv6 packet",
  "source address not unicast",
  "port 0",
  "unspecified destination",
  "loopback destination",
  "multicast destination",
  "broadcast destination",
];

/**
 * Tells whether an IPv4 inany is the limited broadcast 255.255.255.255 or
 * the directed broadcast of the guest's prefix (prefixes up to /30).
 * @param c execution context (the guest's IPv4 address and prefix)
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns true for a broadcast address
 */
export function inanyIsBroadcast4(c: Ctx, a: Uint8Array, off: number): boolean {
  if (!inanyIs4(a, off)) return false;
  const x = ((a[off + 12]! << 24) | (a[off + 13]! << 16) | (a[off + 14]! << 8) | a[off + 15]!) >>>
    0;
  if (x === 0xffffffff) return true;
  const p = c.ip4.prefixLen;
  if (p <= 0 || p >= 31) return false;
  const m = (0xffffffff << (32 - p)) >>> 0;
  const g = c.ip4.addr;
  const ga = ((g[0]! << 24) | (g[1]! << 16) | (g[2]! << 8) | g[3]!) >>> 0;
  return ((x & m) >>> 0) === ((ga & m) >>> 0) && ((x | m) >>> 0) === 0xffffffff;
}

/**
 * Classifies an inany address (either family) for forwarding.
 * @param c execution context (for the directed broadcast)
 * @param a buffer holding the inany
 * @param off where the inany starts in `a`
 * @returns ADDR_UNICAST or the ADDR_* class that no flow may use
 */
export function fwdAddrClass(c: Ctx, a: Uint8Array, off: number): number {
  if (inanyIs4(a, off)) {
    const b0 = a[off + 12]!;
    if ((b0 | a[off + 13]! | a[off + 14]! | a[off + 15]!) === 0) return ADDR_UNSPECIFIED;
    if (b0 === 127) return ADDR_LOOPBACK;
    if ((b0 & 0xf0) === 0xe0) return ADDR_MULTICAST;
    if (inanyIsBroadcast4(c, a, off)) return ADDR_BROADCAST;
    return ADDR_UNICAST;
  }
  if (a[off] === 0xff) return ADDR_MULTICAST;
  let high = 0;
  for (let i = 0; i < 15; i++) high |= a[off + i]!;
  if (high === 0) {
    const last = a[off + 15]!;
    if (last === 0) return ADDR_UNSPECIFIED;
    if (last === 1) return ADDR_LOOPBACK;
  }
  return ADDR_UNICAST;
}

/** The refusal for a destination of address class `cls`. */
function dstRefusal(cls: number): number {
  switch (cls) {
    case ADDR_UNSPECIFIED:
      return REFUSE_DST_UNSPECIFIED;
    case ADDR_LOOPBACK:
      return REFUSE_DST_LOOPBACK;
    case ADDR_MULTICAST:
      return REFUSE_DST_MULTICAST;
    case ADDR_BROADCAST:
      return REFUSE_DST_BROADCAST;
    default:
      return FWD_OK;
  }
}

/**
 * Decides whether a new flow from the guest may open a host socket, and
 * where to: the one check that TCP, UDP and ICMP make before opening one.
 * On FWD_OK, `a[off+32..off+48)` holds the target (the destination after
 * fwdNatFromTap()); on a refusal it may hold anything.
 * @param c execution context
 * @param v6 the frame is IPv6 (its L3 family, not the addresses' look)
 * @param a buffer holding the guest's source (inany) at `off` and its
 *   destination at `off + 16`; the target is written at `off + 32`
 * @param off where the source starts in `a`
 * @param sport source port (ICMP: the echo identifier)
 * @param dport destination port (ICMP: 0)
 * @param ports whether the protocol has ports (TCP, UDP), so that 0 is refused
 * @returns FWD_OK or a REFUSE_* reason
 */
export function fwdTapTarget(
  c: Ctx,
  v6: boolean,
  a: Uint8Array,
  off: number,
  sport: number,
  dport: number,
  ports: boolean,
): number {
  if (v6 && (inanyIs4(a, off) || inanyIs4(a, off + 16))) return REFUSE_V4MAPPED;
  if (fwdAddrClass(c, a, off) !== ADDR_UNICAST) return REFUSE_SOURCE;
  if (ports && (sport === 0 || dport === 0)) return REFUSE_PORT0;
  for (let i = 0; i < 16; i++) a[off + 32 + i] = a[off + 16 + i]!;
  if (fwdNatFromTap(c, a, off + 32, dport) !== NAT_NONE) return FWD_OK;
  return dstRefusal(fwdAddrClass(c, a, off + 32));
}

/** An inany and port as text: "[ipv6]:port" in IPv6 frames (mapped ones spelt out). */
function endText(v6: boolean, a: Uint8Array, off: number, port: number): string {
  const s = inanyFormat(a, off);
  if (!v6) return `${s}:${port}`;
  return inanyIs4(a, off) ? `[::ffff:${s}]:${port}` : `[${s}]:${port}`;
}

/**
 * Logs a refused flow at debug level (nothing, and no formatting, otherwise).
 * @param proto protocol name for the line ("TCP", "UDP", "ICMP")
 * @param v6 the frame is IPv6
 * @param why the REFUSE_* reason
 * @param a buffer holding the source (inany) at `off`, the destination at `off + 16`
 * @param off where the source starts in `a`
 * @param sport source port or identifier
 * @param dport destination port
 */
export function fwdRefusalLog(
  proto: string,
  v6: boolean,
  why: number,
  a: Uint8Array,
  off: number,
  sport: number,
  dport: number,
): void {
  if (logLevel < LOG_DEBUG) return;
  debug(
    `${proto}: refused a flow from the guest (${REFUSAL_NAMES[why] ?? why}): ` +
      `${endText(v6, a, off, sport)} -> ${endText(v6, a, off + 16, dport)}`,
  );
}
