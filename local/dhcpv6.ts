/**
 * dhcpv6.ts - the guest's DHCPv6 server (RFC 8415), as passt's dhcpv6.c:
 * one client, one address (c.ip6.addr) with infinite lifetimes.
 *
 * Messages from the guest to ff02::1:2, port 547:
 * - SOLICIT (no server identifier): ADVERTISE, or REPLY with the rapid
 *   commit option when the client asks for it (RFC 8415 §18.3.1).
 * - REQUEST, RENEW (our server identifier), REBIND (none, or ours): REPLY.
 * - CONFIRM (no server identifier): REPLY with status Success, or NotOnLink
 *   when an address in its IA_NA is not the guest's.
 * - INFORMATION-REQUEST (no IA; server identifier absent or ours): REPLY
 *   with the configuration only.
 * - RELEASE, DECLINE (our server identifier): REPLY with status Success.
 * Messages naming another server are not for us; other types are not for a
 * server.
 *
 * A REPLY or ADVERTISE holds our server identifier (DUID-LL from our MAC
 * address, RFC 8415 §11.4), the client's identifier, and, when the client
 * sent an IA_NA, an IA_NA with its IAID, T1 and T2 infinite, and the
 * guest's address with infinite lifetimes; or, when an address the client
 * asks for is not the guest's, the IA_NA with status NotOnLink (passt does
 * the same); or, when we have no address to give, status NoAddrsAvail.
 * Then DNS servers (23, c.dns6: empty unless announced), the domain list
 * (24, c.dnsSearch, uncompressed) and the client FQDN (39, RFC 4704:
 * c.fqdn, the O flag set when the client asked to update it itself, as
 * passt). Options that do not fit in 1232 bytes (the IPv6 minimum MTU) are
 * left out. The reply goes from c.ip6.ourLinkLocal to the request's source
 * address and MAC address, port 546; its UDP checksum is computed here. The
 * request's checksum is not verified (a guest's kernel with offloads may
 * hand over a partial one).
 *
 * Everything in the message is untrusted: option headers and lengths are
 * checked against the message's end, nested IA options against their IA,
 * fixed-size options against their size; messages over DHCPV6_MSG_MAX
 * bytes, truncated ones and those with options running past the end are
 * dropped and counted in c.stats.dhcpMalformed (and c.stats.malformed),
 * messages we do not answer in c.stats.unhandled. The reply is built in
 * `out`, which must not overlap the request. Allocates nothing.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { ViewCache } from "../wire/view_cache.ts";
import { ETH_HLEN, ETH_P_IPV6, ETH_SRC, ethCheckLen, ethType } from "../wire/eth.ts";
import { macCopy, macWrite } from "../wire/mac.ts";
import {
  IPV6_DST,
  IPV6_HLEN,
  IPV6_SRC,
  ipv6IsValid,
  ipv6L4,
  ipv6L4Off,
  ipv6L4Proto,
  ipv6PayloadLen,
} from "../wire/ipv6.ts";
import { IPPROTO_UDP } from "../wire/ip_proto.ts";
import { UDP_HLEN, udpCheckLen, udpDstPort, udpFillChecksum6, udpLen } from "../wire/udp.ts";
import { dnsNameWrite } from "../wire/dns_name.ts";

/** UDP port of DHCPv6 servers and relays. */
export const DHCPV6_SERVER_PORT = 547;
/** UDP port of DHCPv6 clients. */
export const DHCPV6_CLIENT_PORT = 546;

/** Message types (RFC 8415 §7.3). */
export const DHCPV6_SOLICIT = 1;
/** ADVERTISE */
export const DHCPV6_ADVERTISE = 2;
/** REQUEST */
export const DHCPV6_REQUEST = 3;
/** CONFIRM */
export const DHCPV6_CONFIRM = 4;
/** RENEW */
export const DHCPV6_RENEW = 5;
/** REBIND */
export const DHCPV6_REBIND = 6;
/** REPLY */
export const DHCPV6_REPLY = 7;
/** RELEASE */
export const DHCPV6_RELEASE = 8;
/** DECLINE */
export const DHCPV6_DECLINE = 9;
/** INFORMATION-REQUEST */
export const DHCPV6_INFORMATION_REQUEST = 11;

/** Option codes (RFC 8415 §21, RFC 3646, RFC 4704). */
export const OPT6_CLIENTID = 1;
/** server identifier */
export const OPT6_SERVERID = 2;
/** identity association for non-temporary addresses */
export const OPT6_IA_NA = 3;
/** identity association for temporary addresses */
export const OPT6_IA_TA = 4;
/** IA address */
export const OPT6_IAADDR = 5;
/** status code */
export const OPT6_STATUS_CODE = 13;
/** rapid commit */
export const OPT6_RAPID_COMMIT = 14;
/** DNS recursive name servers */
export const OPT6_DNS_SERVERS = 23;
/** domain search list */
export const OPT6_DOMAIN_LIST = 24;
/** client FQDN */
export const OPT6_CLIENT_FQDN = 39;

/** Status code: success. */
export const STATUS_SUCCESS = 0;
/** Status code: no addresses available. */
export const STATUS_NOADDRSAVAIL = 2;
/** Status code: the address is not appropriate for the link. */
export const STATUS_NOTONLINK = 4;

/** Length of our DUID (DUID-LL, Ethernet). */
export const DHCPV6_DUID_LEN = 10;
/** Longest DUID (RFC 8415 §11.1: 128 octets plus the type). */
const DUID_MAX = 130;
/** Largest DHCPv6 message (UDP payload) accepted from the guest. */
export const DHCPV6_MSG_MAX = 1500 - IPV6_HLEN - UDP_HLEN;
/** Largest reply message: fits the IPv6 minimum MTU. */
export const DHCPV6_REPLY_MAX = 1280 - IPV6_HLEN - UDP_HLEN;
/** Longest reply frame we build. */
export const DHCPV6_REPLY_FRAME_MAX: number = ETH_HLEN + 1280;

/* ff02::1:2, All_DHCP_Relay_Agents_and_Servers */
const ALL_SERVERS = [0xff020000, 0, 0, 0x00010002];

const inView = new ViewCache();
const outView = new ViewCache();
/* offset of each option (header) in the request, codes below 64; -1 when absent */
const optAt = new Int32Array(64);

/**
 * Tells whether an IPv6 packet from the guest is for our DHCPv6 server: UDP
 * to ff02::1:2, port 547. Packets too short to tell are not.
 * @param c execution context
 * @param dv view over the buffer
 * @param ip where the IPv6 header starts
 * @param len bytes from `ip` to the end of the frame
 * @returns true when dhcpv6Handle() should have the frame
 */
export function dhcpv6Match(c: Ctx, dv: DataView, ip: number, len: number): boolean {
  if (!c.ip6.enabled || !ipv6IsValid(dv, ip, len)) return false;
  for (let i = 0; i < 4; i++) {
    if (dv.getUint32(ip + IPV6_DST + 4 * i) !== ALL_SERVERS[i]) return false;
  }
  const r = ipv6L4(dv, ip, len);
  if (r < 0 || ipv6L4Proto(r) !== IPPROTO_UDP) return false;
  const l4 = ipv6L4Off(r);
  if (IPV6_HLEN + ipv6PayloadLen(dv, ip) < l4 + UDP_HLEN) return false;
  return udpDstPort(dv, ip + l4) === DHCPV6_SERVER_PORT;
}

/**
 * Answers a DHCPv6 message from the guest.
 * @param c execution context
 * @param frame buffer holding the frame
 * @param off where the Ethernet header starts in `frame`
 * @param len frame length
 * @param out buffer for the reply frame (at its start; not overlapping the
 *   request; DHCPV6_REPLY_FRAME_MAX bytes are always enough)
 * @returns length of the reply written to `out`, 0 when there is none
 */
export function dhcpv6Handle(
  c: Ctx,
  frame: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
): number {
  if (off < 0 || len < 0 || off + len > frame.length) return malformed(c);
  const base = inView.use(frame) + off;
  const dv = inView.dv;
  const u8 = inView.u8;
  if (!ethCheckLen(dv, base, len) || ethType(dv, base) !== ETH_P_IPV6) return malformed(c);
  const ip = base + ETH_HLEN;
  if (!ipv6IsValid(dv, ip, len - ETH_HLEN)) return malformed(c);
  const r = ipv6L4(dv, ip, len - ETH_HLEN);
  if (r < 0 || ipv6L4Proto(r) !== IPPROTO_UDP) return malformed(c);
  const u = ip + ipv6L4Off(r);
  if (!udpCheckLen(dv, u, IPV6_HLEN + ipv6PayloadLen(dv, ip) - ipv6L4Off(r))) return malformed(c);
  if (udpDstPort(dv, u) !== DHCPV6_SERVER_PORT) return unhandled(c);
  if (c.noDhcpv6 || !c.ip6.enabled) return unhandled(c);
  for (let i = 0; i < 4; i++) {
    if (dv.getUint32(ip + IPV6_DST + 4 * i) !== ALL_SERVERS[i]) return unhandled(c);
  }
  /* a client speaks from its link-local address; :: or multicast cannot be answered */
  if (u8[ip + IPV6_SRC] === 0xff || isZero(u8, ip + IPV6_SRC)) return malformed(c);

  const m = u + UDP_HLEN;
  const mlen = udpLen(dv, u) - UDP_HLEN;
  if (mlen < 4 || mlen > DHCPV6_MSG_MAX) return malformed(c);
  const end = m + mlen;

  /* options: 4-byte headers, every one within the message */
  optAt.fill(-1);
  for (let p = m + 4; p < end;) {
    if (p + 4 > end) return malformed(c);
    const code = dv.getUint16(p);
    const l = dv.getUint16(p + 2);
    if (p + 4 + l > end) return malformed(c);
    if (code < 64 && optAt[code]! < 0) optAt[code] = p;
    p += 4 + l;
  }
  const cid = optAt[OPT6_CLIENTID]!;
  const sid = optAt[OPT6_SERVERID]!;
  const ia = optAt[OPT6_IA_NA]!;
  const fq = optAt[OPT6_CLIENT_FQDN]!;
  if (
    (cid >= 0 && (optLen(dv, cid) < 2 || optLen(dv, cid) > DUID_MAX)) ||
    (sid >= 0 && (optLen(dv, sid) < 2 || optLen(dv, sid) > DUID_MAX)) ||
    (ia >= 0 && optLen(dv, ia) < 12) ||
    (optAt[OPT6_IA_TA]! >= 0 && optLen(dv, optAt[OPT6_IA_TA]!) < 4) ||
    (optAt[OPT6_RAPID_COMMIT]! >= 0 && optLen(dv, optAt[OPT6_RAPID_COMMIT]!) !== 0) ||
    (fq >= 0 && optLen(dv, fq) < 1)
  ) return malformed(c);

  /* addresses in the client's IA_NA: each must be the guest's */
  let notOnLink = false;
  let iaAddrs = 0;
  if (ia >= 0) {
    const iaEnd = ia + 4 + optLen(dv, ia);
    for (let p = ia + 16; p < iaEnd;) {
      if (p + 4 > iaEnd) return malformed(c);
      const code = dv.getUint16(p);
      const l = dv.getUint16(p + 2);
      if (p + 4 + l > iaEnd) return malformed(c);
      if (code === OPT6_IAADDR) {
        if (l < 24) return malformed(c);
        iaAddrs++;
        if (!sameBytes(u8, p + 4, c.ip6.addr)) notOnLink = true;
      }
      p += 4 + l;
    }
  }

  const type = u8[m]!;
  const ours = sid >= 0 && serverIdIsOurs(c, dv, u8, sid);
  let replyType = DHCPV6_REPLY;
  let status = -1; /* top-level status code, -1 for none */
  let withIa = true; /* an IA_NA in the reply (when the client sent one) */
  let withConfig = true; /* DNS, domains, FQDN */
  switch (type) {
    case DHCPV6_SOLICIT:
      if (sid >= 0 || cid < 0) return malformed(c);
      if (optAt[OPT6_RAPID_COMMIT]! < 0) replyType = DHCPV6_ADVERTISE;
      notOnLink = false; /* a hint: we give the guest's address whatever it asked for */
      break;
    case DHCPV6_REQUEST:
    case DHCPV6_RENEW:
      if (cid < 0) return malformed(c);
      if (!ours) return unhandled(c);
      break;
    case DHCPV6_REBIND:
      if (cid < 0) return malformed(c);
      if (sid >= 0 && !ours) return unhandled(c);
      break;
    case DHCPV6_CONFIRM:
      if (sid >= 0 || cid < 0) return malformed(c);
      if (iaAddrs === 0) return unhandled(c); /* nothing to confirm: no reply (§18.3.3) */
      status = notOnLink ? STATUS_NOTONLINK : STATUS_SUCCESS;
      withIa = false;
      withConfig = false;
      break;
    case DHCPV6_INFORMATION_REQUEST:
      if (ia >= 0 || optAt[OPT6_IA_TA]! >= 0) return malformed(c);
      if (sid >= 0 && !ours) return unhandled(c);
      break;
    case DHCPV6_RELEASE:
    case DHCPV6_DECLINE:
      if (cid < 0) return malformed(c);
      if (!ours) return unhandled(c);
      status = STATUS_SUCCESS;
      withIa = false;
      withConfig = false;
      break;
    default:
      return unhandled(c);
  }
  if (out.length < ETH_HLEN + IPV6_HLEN + UDP_HLEN + 256) return 0; /* fixed part: < 210 */

  /* the reply */
  const o = outView.use(out);
  const odv = outView.dv;
  const o8 = outView.u8;
  const oip = o + ETH_HLEN;
  const ou = oip + IPV6_HLEN;
  const om = ou + UDP_HLEN;
  let room = out.length - ETH_HLEN - IPV6_HLEN - UDP_HLEN;
  if (room > DHCPV6_REPLY_MAX) room = DHCPV6_REPLY_MAX;
  const lim = om + room;
  o8[om] = replyType;
  o8[om + 1] = u8[m + 1]!;
  o8[om + 2] = u8[m + 2]!;
  o8[om + 3] = u8[m + 3]!;
  let p = om + 4;

  /* server identifier: DUID-LL, hardware type Ethernet */
  odv.setUint32(p, (OPT6_SERVERID << 16) | (4 + 6));
  odv.setUint32(p + 4, 0x00030001);
  macWrite(odv, p + 8, c.ourMac);
  p += 4 + DHCPV6_DUID_LEN;
  if (cid >= 0) {
    const n = 4 + optLen(dv, cid);
    for (let i = 0; i < n; i++) o8[p + i] = u8[cid + i]!;
    p += n;
  }
  if (replyType === DHCPV6_REPLY && type === DHCPV6_SOLICIT) {
    odv.setUint32(p, OPT6_RAPID_COMMIT << 16);
    p += 4;
  }
  const haveAddr = !isZero(c.ip6.addr, 0);
  if (withIa && ia >= 0 && !haveAddr) status = STATUS_NOADDRSAVAIL;
  else if (withIa && ia >= 0) {
    /* IA_NA: IAID, T1, T2, then the address or the status */
    const inner = notOnLink ? 6 : 4 + 24;
    odv.setUint32(p, (OPT6_IA_NA << 16) | (12 + inner));
    odv.setUint32(p + 4, dv.getUint32(ia + 4));
    odv.setUint32(p + 8, 0xffffffff);
    odv.setUint32(p + 12, 0xffffffff);
    p += 16;
    if (notOnLink) {
      odv.setUint32(p, (OPT6_STATUS_CODE << 16) | 2);
      odv.setUint16(p + 4, STATUS_NOTONLINK);
      p += 6;
    } else {
      odv.setUint32(p, (OPT6_IAADDR << 16) | 24);
      for (let i = 0; i < 16; i++) o8[p + 4 + i] = c.ip6.addr[i]!;
      odv.setUint32(p + 20, 0xffffffff); /* preferred lifetime */
      odv.setUint32(p + 24, 0xffffffff); /* valid lifetime */
      p += 28;
    }
  }
  if (status >= 0) {
    odv.setUint32(p, (OPT6_STATUS_CODE << 16) | 2);
    odv.setUint16(p + 4, status);
    p += 6;
  }

  if (withConfig) {
    const n = c.dns6.length;
    if (n > 0 && p + 4 + 16 * n <= lim) {
      odv.setUint32(p, (OPT6_DNS_SERVERS << 16) | (16 * n));
      for (let k = 0; k < n; k++) {
        const a = c.dns6[k]!;
        for (let i = 0; i < 16; i++) o8[p + 4 + 16 * k + i] = a[i]!;
      }
      p += 4 + 16 * n;
    }
    let q = p + 4;
    for (let k = 0; k < c.dnsSearch.length; k++) {
      q += dnsNameWrite(o8, q, c.dnsSearch[k]!, lim - q);
    }
    if (q > p + 4) {
      odv.setUint32(p, (OPT6_DOMAIN_LIST << 16) | (q - p - 4));
      p = q;
    }
    if (c.fqdn !== "" && p + 5 < lim) {
      const w = dnsNameWrite(o8, p + 5, c.fqdn, lim - p - 5);
      if (w > 0) {
        odv.setUint32(p, (OPT6_CLIENT_FQDN << 16) | (1 + w));
        /* S from the client: it wanted to update its AAAA itself; we do not (O) */
        o8[p + 4] = fq >= 0 && (u8[fq + 4]! & 0x01) !== 0 ? 0x02 : 0x00;
        p += 5 + w;
      }
    }
  }

  /* headers: to the client's address and MAC, from our link-local address */
  const ulen = p - ou;
  macCopy(dv, base + ETH_SRC, odv, o);
  macWrite(odv, o + ETH_SRC, c.ourMac);
  odv.setUint16(o + 12, ETH_P_IPV6);
  odv.setUint32(oip, 0x60000000);
  odv.setUint16(oip + 4, ulen);
  o8[oip + 6] = IPPROTO_UDP;
  o8[oip + 7] = 255;
  for (let i = 0; i < 16; i++) {
    o8[oip + IPV6_SRC + i] = c.ip6.ourLinkLocal[i]!;
    o8[oip + IPV6_DST + i] = u8[ip + IPV6_SRC + i]!;
  }
  odv.setUint16(ou, DHCPV6_SERVER_PORT);
  odv.setUint16(ou + 2, DHCPV6_CLIENT_PORT);
  odv.setUint16(ou + 4, ulen);
  udpFillChecksum6(o8, oip, ou, ulen);

  /* what the guest uses, for inbound traffic (as ip6Input() would have noted) */
  if (u8[ip + IPV6_SRC] === 0xfe && (u8[ip + IPV6_SRC + 1]! & 0xc0) === 0x80) {
    for (let i = 0; i < 16; i++) c.ip6.addrLinkLocalSeen[i] = u8[ip + IPV6_SRC + i]!;
  }
  c.stats.dhcpv6Replies++;
  return ETH_HLEN + IPV6_HLEN + ulen;
}

/** Whether the server identifier option at `sid` is our DUID. */
function serverIdIsOurs(c: Ctx, dv: DataView, u8: Uint8Array, sid: number): boolean {
  if (optLen(dv, sid) !== DHCPV6_DUID_LEN || dv.getUint32(sid + 4) !== 0x00030001) return false;
  for (let i = 0; i < 6; i++) if (u8[sid + 8 + i] !== c.ourMac[i]) return false;
  return true;
}

function optLen(dv: DataView, opt: number): number {
  return dv.getUint16(opt + 2);
}

function sameBytes(u8: Uint8Array, at: number, a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (u8[at + i] !== a[i]) return false;
  return true;
}

function isZero(u8: Uint8Array, at: number): boolean {
  for (let i = 0; i < 16; i++) if (u8[at + i] !== 0) return false;
  return true;
}

function malformed(c: Ctx): number {
  c.stats.malformed++;
  c.stats.dhcpMalformed++;
  return 0;
}

function unhandled(c: Ctx): number {
  c.stats.unhandled++;
  return 0;
}
