/**
 * ndp.ts - answers the guest's Neighbor Discovery messages (RFC 4861), as
 * passt's ndp.c: we are the router and, by proxy, every neighbour.
 *
 * - Neighbour solicitation, for any target but the guest's own addresses
 *   (c.ip6.addr, and the global and link-local addresses it was seen using):
 *   a neighbour advertisement with the router, solicited and override flags
 *   and our MAC address as target link-layer address, sent from the target
 *   address to the solicitation's source (as the owner of an address does;
 *   passt sends it from its link-local address instead: the guest accepts
 *   either). Solicitations from the unspecified
 *   address are the guest's duplicate address detection and stay unanswered
 *   (passt does the same: an answer would make the guest give up its address).
 * - Router solicitation (unless c.noRa): a router advertisement from
 *   c.ip6.ourLinkLocal to the solicitation's source (all-nodes when that is
 *   unspecified). Like passt's: current hop limit 255, the M flag (addresses
 *   come from our DHCPv6 server) and not O, router lifetime 65535 s (RFC
 *   8319), reachable time and retransmission timer unspecified; options:
 *   prefix information for c.ip6.addr/c.ip6.prefixLen (on-link, autonomous,
 *   infinite lifetimes), our source link-layer address, the MTU (when
 *   c.mtu is nonzero), RDNSS with c.dns6 and, only when RDNSS is present,
 *   DNSSL with c.dnsSearch (infinite lifetimes).
 * - ndpRouterAdvert() builds the same advertisement, unsolicited, to
 *   all-nodes, for the periodic timer (the caller keeps the schedule).
 *
 * Input is validated as RFC 4861 §6.1.1 and §7.1.1 ask: hop limit 255, code
 * 0, valid checksum, message long enough, every option with a nonzero length
 * that stays within the message, target not multicast, no source link-layer
 * option from the unspecified address, which may only solicit a
 * solicited-node address. Failures count in c.stats.malformed; messages we do
 * not answer (advertisements and redirects from the guest, DAD, targets that
 * are the guest's own, NDP off) in c.stats.unhandled. Allocates nothing.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { ViewCache } from "../wire/view_cache.ts";
import { ETH_DST, ETH_HLEN, ETH_P_IPV6, ETH_SRC, ethCheckLen, ethType } from "../wire/eth.ts";
import { macIsMulticast, macWrite } from "../wire/mac.ts";
import {
  addrEqual,
  addrIsUnspecified,
  addrWrite,
  IP6_LEN,
  ip6IsMulticast,
  ip6IsSolicitedNode,
} from "../wire/addr.ts";
import {
  IPV6_DST,
  IPV6_HLEN,
  IPV6_SRC,
  ipv6HopLimit,
  ipv6IsValid,
  ipv6L4,
  ipv6L4Off,
  ipv6L4Proto,
  ipv6PayloadLen,
  ipv6SetHopLimit,
  ipv6SetNextHeader,
  ipv6SetPayloadLen,
  ipv6SetVersionTcFlow,
} from "../wire/ipv6.ts";
import { IPPROTO_ICMPV6 } from "../wire/ip_proto.ts";
import {
  ICMPV6_NEIGH_ADV,
  ICMPV6_NEIGH_SOL,
  ICMPV6_ROUTER_ADV,
  ICMPV6_ROUTER_SOL,
  icmpv6CheckLen,
  icmpv6ChecksumOk,
  icmpv6Code,
  icmpv6FillChecksum,
  icmpv6SetTypeCode,
  icmpv6Type,
} from "../wire/icmpv6.ts";
import {
  NDP_INFINITE,
  NDP_NA_LEN,
  NDP_NA_O,
  NDP_NA_R,
  NDP_NA_S,
  NDP_NS_OPTS,
  NDP_OPT_SLLA,
  NDP_OPT_TLLA,
  NDP_PI_A,
  NDP_PI_L,
  NDP_RA_LEN,
  NDP_RA_M,
  NDP_RS_OPTS,
  NDP_TARGET,
  ndpNaSetFlags,
  ndpNsCheckLen,
  ndpOptFind,
  ndpOptsCheck,
  ndpOptWriteDnssl,
  ndpOptWriteLla,
  ndpOptWriteMtu,
  ndpOptWritePrefix,
  ndpOptWriteRdnss,
  ndpRaSetBody,
  ndpRsCheckLen,
} from "../wire/ndp.ts";

/** Router lifetime we advertise, seconds (passt: RT_LIFETIME, RFC 8319). */
export const NDP_ROUTER_LIFETIME_S = 65535;
/** Current hop limit we advertise (passt sets 255). */
export const NDP_RA_CUR_HOP_LIMIT = 255;
/** Largest router advertisement, ICMPv6 bytes: fits the IPv6 minimum MTU. */
export const NDP_RA_MAX = 1280 - IPV6_HLEN;
/** Length of a neighbour advertisement frame we send. */
export const NDP_NA_FRAME_LEN: number = ETH_HLEN + IPV6_HLEN + NDP_NA_LEN + 8;
/** IPv6 hop limit of every NDP message (RFC 4861). */
const NDP_HOP_LIMIT = 255;

const inView = new ViewCache();
const outView = new ViewCache();
/* copies of request fields, so that out may alias the request */
const srcMac = new Uint8Array(6);
const srcAddr = new Uint8Array(IP6_LEN);
const target = new Uint8Array(IP6_LEN);
const ALL_NODES = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);

/**
 * Answers an NDP message from the guest (RS or NS; other types are dropped).
 * @param c execution context
 * @param frame buffer holding the frame
 * @param off where the Ethernet header starts in `frame`
 * @param len frame length
 * @param out buffer for the reply frame (at its start)
 * @returns length of the reply written to `out`, 0 when there is none
 */
export function ndpHandle(
  c: Ctx,
  frame: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
): number {
  if (off < 0 || len < 0 || off + len > frame.length) {
    c.stats.malformed++;
    return 0;
  }
  if (c.noNdp || !c.ip6.enabled) {
    c.stats.unhandled++;
    return 0;
  }
  const base = inView.use(frame) + off;
  const dv = inView.dv;
  const ip = base + ETH_HLEN;
  if (
    !ethCheckLen(dv, base, len) || ethType(dv, base) !== ETH_P_IPV6 ||
    !ipv6IsValid(dv, ip, len - ETH_HLEN)
  ) {
    c.stats.malformed++;
    return 0;
  }
  const r = ipv6L4(dv, ip, len - ETH_HLEN);
  if (r < 0) {
    c.stats.malformed++;
    return 0;
  }
  if (ipv6L4Proto(r) !== IPPROTO_ICMPV6) {
    c.stats.unhandled++;
    return 0;
  }
  const l4 = ip + ipv6L4Off(r);
  const l4len = IPV6_HLEN + ipv6PayloadLen(dv, ip) - ipv6L4Off(r);
  if (!icmpv6CheckLen(dv, l4, l4len)) {
    c.stats.malformed++;
    return 0;
  }
  const type = icmpv6Type(dv, l4);
  if (type !== ICMPV6_ROUTER_SOL && type !== ICMPV6_NEIGH_SOL) {
    /* RA, NA, redirect from the guest, or not NDP at all: nothing to say */
    c.stats.unhandled++;
    return 0;
  }
  const end = l4 + l4len;
  const srcUnspec = addrIsUnspecified(dv, ip + IPV6_SRC, IP6_LEN);
  if (
    ipv6HopLimit(dv, ip) !== NDP_HOP_LIMIT || icmpv6Code(dv, l4) !== 0 ||
    macIsMulticast(dv, base + ETH_SRC) || ip6IsMulticast(dv, ip + IPV6_SRC) ||
    !icmpv6ChecksumOk(inView.u8, ip, l4, l4len)
  ) {
    c.stats.malformed++;
    return 0;
  }

  if (type === ICMPV6_NEIGH_SOL) {
    if (
      !ndpNsCheckLen(dv, l4, l4len) || ndpOptsCheck(dv, l4 + NDP_NS_OPTS, end) < 0 ||
      ip6IsMulticast(dv, l4 + NDP_TARGET) || addrIsUnspecified(dv, l4 + NDP_TARGET, IP6_LEN) ||
      (srcUnspec &&
        (!ip6IsSolicitedNode(dv, ip + IPV6_DST) ||
          ndpOptFind(dv, l4 + NDP_NS_OPTS, end, NDP_OPT_SLLA) >= 0))
    ) {
      c.stats.malformed++;
      return 0;
    }
    const t = l4 + NDP_TARGET;
    if (
      srcUnspec || addrEqual(dv, t, c.ip6.addr, IP6_LEN) ||
      addrEqual(dv, t, c.ip6.addrSeen, IP6_LEN) ||
      addrEqual(dv, t, c.ip6.addrLinkLocalSeen, IP6_LEN)
    ) {
      c.stats.unhandled++;
      return 0;
    }
    if (out.length < NDP_NA_FRAME_LEN) return 0;
    copyOut(dv, base, ip, t);
    return naBuild(c, out);
  }

  /* router solicitation */
  if (
    !ndpRsCheckLen(dv, l4, l4len) || ndpOptsCheck(dv, l4 + NDP_RS_OPTS, end) < 0 ||
    (srcUnspec && ndpOptFind(dv, l4 + NDP_RS_OPTS, end, NDP_OPT_SLLA) >= 0)
  ) {
    c.stats.malformed++;
    return 0;
  }
  if (c.noRa) {
    c.stats.unhandled++;
    return 0;
  }
  copyOut(dv, base, ip, -1);
  return raBuild(c, out, srcUnspec ? ALL_NODES_MAC : srcMac, srcUnspec ? ALL_NODES : srcAddr);
}

/**
 * Builds an unsolicited router advertisement to all-nodes (ff02::1, MAC
 * 33:33:00:00:00:01), for the periodic timer.
 * @param c execution context
 * @param out buffer for the frame (at its start)
 * @returns length of the frame written to `out`, 0 when router
 *   advertisements are off (c.noNdp, c.noRa, IPv6 disabled) or `out` is too small
 */
export function ndpRouterAdvert(c: Ctx, out: Uint8Array): number {
  if (c.noNdp || c.noRa || !c.ip6.enabled) return 0;
  return raBuild(c, out, ALL_NODES_MAC, ALL_NODES);
}

/** Copies the requester's MAC and address, and the NS target, to scratch. */
function copyOut(dv: DataView, base: number, ip: number, t: number): void {
  for (let i = 0; i < 6; i++) srcMac[i] = dv.getUint8(base + ETH_SRC + i);
  for (let i = 0; i < IP6_LEN; i++) srcAddr[i] = dv.getUint8(ip + IPV6_SRC + i);
  if (t >= 0) { for (let i = 0; i < IP6_LEN; i++) target[i] = dv.getUint8(t + i); }
}

/** Writes Ethernet and IPv6 headers for an ICMPv6 message; returns the IPv6 offset. */
function headers(
  odv: DataView,
  o: number,
  c: Ctx,
  dstMac: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
  l4len: number,
): number {
  macWrite(odv, o + ETH_DST, dstMac);
  macWrite(odv, o + ETH_SRC, c.ourMac);
  odv.setUint16(o + 12, ETH_P_IPV6);
  const ip = o + ETH_HLEN;
  ipv6SetVersionTcFlow(odv, ip, 0, 0);
  ipv6SetPayloadLen(odv, ip, l4len);
  ipv6SetNextHeader(odv, ip, IPPROTO_ICMPV6);
  ipv6SetHopLimit(odv, ip, NDP_HOP_LIMIT);
  addrWrite(odv, ip + IPV6_SRC, src, IP6_LEN);
  addrWrite(odv, ip + IPV6_DST, dst, IP6_LEN);
  return ip;
}

/** Builds the neighbour advertisement for the solicitation copied to scratch. */
function naBuild(c: Ctx, out: Uint8Array): number {
  const o = outView.use(out);
  const odv = outView.dv;
  const l4len = NDP_NA_LEN + 8;
  const ip = headers(odv, o, c, srcMac, target, srcAddr, l4len);
  const l4 = ip + IPV6_HLEN;
  icmpv6SetTypeCode(odv, l4, ICMPV6_NEIGH_ADV, 0);
  ndpNaSetFlags(odv, l4, NDP_NA_R | NDP_NA_S | NDP_NA_O);
  addrWrite(odv, l4 + NDP_TARGET, target, IP6_LEN);
  ndpOptWriteLla(odv, l4 + NDP_NA_LEN, NDP_OPT_TLLA, c.ourMac);
  icmpv6FillChecksum(outView.u8, ip, l4, l4len);
  c.stats.ndpAdverts++;
  return ETH_HLEN + IPV6_HLEN + l4len;
}

/** Builds a router advertisement to `dst` (MAC `dstMac`). */
function raBuild(c: Ctx, out: Uint8Array, dstMac: Uint8Array, dst: Uint8Array): number {
  if (out.length < ETH_HLEN + IPV6_HLEN + NDP_RA_LEN + 32 + 8 + 8) return 0;
  const o = outView.use(out);
  const odv = outView.dv;
  const l4 = o + ETH_HLEN + IPV6_HLEN;
  let room = out.length - ETH_HLEN - IPV6_HLEN;
  if (room > NDP_RA_MAX) room = NDP_RA_MAX;

  icmpv6SetTypeCode(odv, l4, ICMPV6_ROUTER_ADV, 0);
  ndpRaSetBody(odv, l4, NDP_RA_CUR_HOP_LIMIT, NDP_RA_M, NDP_ROUTER_LIFETIME_S, 0, 0);
  let p = NDP_RA_LEN;
  if (!bytesUnspecified(c.ip6.addr)) {
    p += ndpOptWritePrefix(
      odv,
      l4 + p,
      c.ip6.addr,
      c.ip6.prefixLen,
      NDP_PI_L | NDP_PI_A,
      NDP_INFINITE,
      NDP_INFINITE,
    );
  }
  p += ndpOptWriteLla(odv, l4 + p, NDP_OPT_SLLA, c.ourMac);
  if (c.mtu > 0) p += ndpOptWriteMtu(odv, l4 + p, c.mtu);
  const rdnss = ndpOptWriteRdnss(odv, l4 + p, NDP_INFINITE, c.dns6, room - p);
  p += rdnss;
  if (rdnss > 0) p += ndpOptWriteDnssl(odv, l4 + p, NDP_INFINITE, c.dnsSearch, room - p);

  const ip = headers(odv, o, c, dstMac, c.ip6.ourLinkLocal, dst, p);
  icmpv6FillChecksum(outView.u8, ip, l4, p);
  c.stats.routerAdverts++;
  return ETH_HLEN + IPV6_HLEN + p;
}

function bytesUnspecified(a: Uint8Array): boolean {
  for (let i = 0; i < IP6_LEN; i++) if (a[i] !== 0) return false;
  return true;
}
