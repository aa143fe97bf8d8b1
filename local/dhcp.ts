/**
 * dhcp.ts - the guest's DHCP server (RFC 2131, options RFC 2132), as
 * passt's dhcp.c: one client, one address, an infinite lease.
 *
 * What the guest gets: c.ip4.addr with the mask of c.ip4.prefixLen, the
 * router c.ip4.gateway (also our server identifier and the replies' source;
 * when the gateway lies outside the guest's subnet, a classless static
 * route to it, option 121, as passt), the resolvers c.dns4 (option 6: empty
 * unless announced, see fwd/dns.ts), the search list c.dnsSearch (option
 * 119, RFC 3397, compressed), the MTU (26, unless c.mtu is 0), the host
 * name c.hostname (12) and the FQDN c.fqdn (81, RFC 4702, flags E only, as
 * passt), and a lease time of 0xffffffff (infinite; 51).
 *
 * Messages: DISCOVER gets an OFFER (an ACK with option 80 when the client
 * asks for rapid commit, RFC 4039), REQUEST an ACK, or a NAK when the
 * address it asks for (option 50, else ciaddr) is not the guest's; a
 * REQUEST naming another server (54) selected that server and gets nothing.
 * INFORM gets an ACK without yiaddr nor lease time; a message without type
 * (BOOTP) an ACK, as passt. RELEASE and DECLINE need no answer. Options
 * go in this order: message type, then those the client asked for (55) in
 * its order, then the others we have, each skipped when it does not fit
 * within the client's maximum message size (57; 576 bytes by default).
 *
 * Replies go where RFC 2131 §4.1 says: to ciaddr when the client has one,
 * else broadcast when it sets the broadcast flag (and always for a NAK),
 * else to yiaddr; at the link layer to the request's source MAC address, or
 * to ff:ff:ff:ff:ff:ff when broadcast. The UDP checksum is computed here.
 * The request's UDP checksum is not verified: with the tap's offloads the
 * guest's kernel may hand over a frame whose checksum is still partial.
 *
 * Everything in the message is untrusted: lengths are checked against the
 * UDP and IP lengths, every option against the message's end, fixed-size
 * options against their size; messages over DHCP_MSG_MAX bytes, truncated
 * ones and those that are not BOOTREQUESTs with the magic cookie are
 * dropped and counted in c.stats.dhcpMalformed (and c.stats.malformed).
 * Messages we do not answer count in c.stats.unhandled. The reply is built
 * in `out`, which must not overlap the request. Allocates nothing.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { ViewCache } from "../wire/view_cache.ts";
import { ETH_HLEN, ETH_P_IP, ETH_SRC, ethCheckLen, ethType } from "../wire/eth.ts";
import { macCopy, macWrite } from "../wire/mac.ts";
import {
  IPV4_DST,
  IPV4_HLEN,
  IPV4_SRC,
  ipv4FillChecksum,
  ipv4HeaderLen,
  ipv4IsFragment,
  ipv4IsValid,
  ipv4Proto,
  ipv4TotalLen,
} from "../wire/ipv4.ts";
import { IPPROTO_UDP } from "../wire/ip_proto.ts";
import { UDP_HLEN, udpCheckLen, udpDstPort, udpFillChecksum4, udpLen } from "../wire/udp.ts";
import { dnsNameWrite, dnsNameWriteCompressed } from "../wire/dns_name.ts";

/** UDP port of DHCP servers. */
export const DHCP_SERVER_PORT = 67;
/** UDP port of DHCP clients. */
export const DHCP_CLIENT_PORT = 68;

/** BOOTP field offsets within the message (RFC 2131 §2). */
export const DHCP_OP = 0;
/** hardware address type */
export const DHCP_HTYPE = 1;
/** hardware address length */
export const DHCP_HLEN = 2;
/** transaction ID */
export const DHCP_XID = 4;
/** flags (broadcast bit) */
export const DHCP_FLAGS = 10;
/** client address */
export const DHCP_CIADDR = 12;
/** "your" (client) address */
export const DHCP_YIADDR = 16;
/** next server address */
export const DHCP_SIADDR = 20;
/** relay agent address */
export const DHCP_GIADDR = 24;
/** client hardware address, 16 bytes */
export const DHCP_CHADDR = 28;
/** magic cookie */
export const DHCP_MAGIC_OFF = 236;
/** first option */
export const DHCP_OPTIONS = 240;
/** The magic cookie, 99.130.83.99. */
export const DHCP_MAGIC = 0x63825363;
/** Flags: the client wants broadcast replies. */
export const DHCP_FLAG_BROADCAST = 0x8000;

/** BOOTP operation: request. */
export const BOOTREQUEST = 1;
/** BOOTP operation: reply. */
export const BOOTREPLY = 2;

/** DHCP message types (option 53). */
export const DHCPDISCOVER = 1;
/** DHCPOFFER */
export const DHCPOFFER = 2;
/** DHCPREQUEST */
export const DHCPREQUEST = 3;
/** DHCPDECLINE */
export const DHCPDECLINE = 4;
/** DHCPACK */
export const DHCPACK = 5;
/** DHCPNAK */
export const DHCPNAK = 6;
/** DHCPRELEASE */
export const DHCPRELEASE = 7;
/** DHCPINFORM */
export const DHCPINFORM = 8;

/** Option codes we read or write. */
export const OPT_PAD = 0;
/** subnet mask */
export const OPT_MASK = 1;
/** router */
export const OPT_ROUTER = 3;
/** domain name servers */
export const OPT_DNS = 6;
/** host name */
export const OPT_HOSTNAME = 12;
/** interface MTU */
export const OPT_MTU = 26;
/** requested address */
export const OPT_REQUESTED = 50;
/** lease time */
export const OPT_LEASE = 51;
/** message type */
export const OPT_TYPE = 53;
/** server identifier */
export const OPT_SERVER_ID = 54;
/** parameter request list */
export const OPT_PRL = 55;
/** maximum message size */
export const OPT_MAX_SIZE = 57;
/** rapid commit (RFC 4039) */
export const OPT_RAPID_COMMIT = 80;
/** client FQDN (RFC 4702) */
export const OPT_FQDN = 81;
/** domain search (RFC 3397) */
export const OPT_SEARCH = 119;
/** classless static routes (RFC 3442) */
export const OPT_ROUTES = 121;
/** end of options */
export const OPT_END = 255;

/** Largest DHCP message (UDP payload) accepted from the guest. */
export const DHCP_MSG_MAX = 1500 - IPV4_HLEN - UDP_HLEN;
/** Smallest maximum message size a client may state, IP and UDP headers included. */
const DHCP_MIN_MAX_SIZE = 576;
/** Bytes of IP, UDP and BOOTP header before the options. */
const HEADERS_BEFORE_OPTS = IPV4_HLEN + UDP_HLEN + DHCP_OPTIONS;
/** BOOTP's minimum vendor area (RFC 951): replies are padded to it. */
const OPT_MIN = 64 - 4;
/** Longest reply frame we build. */
export const DHCP_REPLY_FRAME_MAX: number = ETH_HLEN + 1500;

/** Options we send when we have them, after those the client asked for. */
const OUR_OPTIONS = [
  OPT_MASK,
  OPT_ROUTER,
  OPT_DNS,
  OPT_HOSTNAME,
  OPT_MTU,
  OPT_LEASE,
  OPT_SERVER_ID,
  OPT_RAPID_COMMIT,
  OPT_FQDN,
  OPT_SEARCH,
  OPT_ROUTES,
];

const inView = new ViewCache();
const outView = new ViewCache();
/* offset of each option's data in the request (first occurrence), -1 when absent */
const optAt = new Int32Array(256);
const optLen = new Uint8Array(256);
/* options already written to the reply */
const sent = new Uint8Array(256);

/* state of the reply being built */
let replyType = 0;
let o8: Uint8Array = new Uint8Array(0);
let pos = 0;
let limit = 0;

/**
 * Tells whether an IPv4 packet from the guest is for our DHCP server: UDP
 * to port 67, from 0.0.0.0 or the guest's address, to 255.255.255.255 or
 * our address (the gateway). Packets too short to tell are not.
 * @param c execution context
 * @param dv view over the buffer
 * @param ip where the IPv4 header starts
 * @param len bytes from `ip` to the end of the frame
 * @returns true when dhcpHandle() should have the frame
 */
export function dhcpMatch(c: Ctx, dv: DataView, ip: number, len: number): boolean {
  if (!c.ip4.enabled || !ipv4IsValid(dv, ip, len) || ipv4Proto(dv, ip) !== IPPROTO_UDP) {
    return false;
  }
  const hl = ipv4HeaderLen(dv, ip);
  if (ipv4TotalLen(dv, ip) < hl + UDP_HLEN) return false;
  if (udpDstPort(dv, ip + hl) !== DHCP_SERVER_PORT) return false;
  const src = dv.getUint32(ip + IPV4_SRC);
  if (src !== 0 && src !== be32(c.ip4.addr) && src !== be32(c.ip4.addrSeen)) return false;
  const dst = dv.getUint32(ip + IPV4_DST);
  return dst === 0xffffffff || (dst !== 0 && dst === be32(c.ip4.gateway));
}

/**
 * Answers a DHCP message from the guest.
 * @param c execution context
 * @param frame buffer holding the frame
 * @param off where the Ethernet header starts in `frame`
 * @param len frame length
 * @param out buffer for the reply frame (at its start; not overlapping the
 *   request; DHCP_REPLY_FRAME_MAX bytes are always enough)
 * @returns length of the reply written to `out`, 0 when there is none
 */
export function dhcpHandle(
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
  if (!ethCheckLen(dv, base, len) || ethType(dv, base) !== ETH_P_IP) return malformed(c);
  const ip = base + ETH_HLEN;
  if (!ipv4IsValid(dv, ip, len - ETH_HLEN) || ipv4IsFragment(dv, ip)) return malformed(c);
  if (ipv4Proto(dv, ip) !== IPPROTO_UDP) return malformed(c);
  const hl = ipv4HeaderLen(dv, ip);
  const u = ip + hl;
  if (!udpCheckLen(dv, u, ipv4TotalLen(dv, ip) - hl)) return malformed(c);
  if (udpDstPort(dv, u) !== DHCP_SERVER_PORT) return unhandled(c);
  if (c.noDhcp || !c.ip4.enabled) return unhandled(c);

  const m = u + UDP_HLEN;
  const mlen = udpLen(dv, u) - UDP_HLEN;
  if (mlen < DHCP_OPTIONS || mlen > DHCP_MSG_MAX) return malformed(c);
  if (
    u8[m + DHCP_OP] !== BOOTREQUEST || u8[m + DHCP_HLEN]! > 16 ||
    dv.getUint32(m + DHCP_MAGIC_OFF) !== DHCP_MAGIC
  ) return malformed(c);

  /* options: pad, end, and code-length-value within the message */
  optAt.fill(-1);
  const end = m + mlen;
  let p = m + DHCP_OPTIONS;
  while (p < end) {
    const code = u8[p]!;
    if (code === OPT_PAD) {
      p++;
      continue;
    }
    if (code === OPT_END) break;
    if (p + 2 > end) return malformed(c);
    const l = u8[p + 1]!;
    if (p + 2 + l > end) return malformed(c);
    if (optAt[code]! < 0) {
      optAt[code] = p + 2;
      optLen[code] = l;
    }
    p += 2 + l;
  }
  if (
    (optAt[OPT_TYPE]! >= 0 && optLen[OPT_TYPE] !== 1) ||
    (optAt[OPT_REQUESTED]! >= 0 && optLen[OPT_REQUESTED] !== 4) ||
    (optAt[OPT_SERVER_ID]! >= 0 && optLen[OPT_SERVER_ID] !== 4) ||
    (optAt[OPT_MAX_SIZE]! >= 0 && optLen[OPT_MAX_SIZE] !== 2) ||
    (optAt[OPT_RAPID_COMMIT]! >= 0 && optLen[OPT_RAPID_COMMIT] !== 0)
  ) return malformed(c);

  const server = be32(c.ip4.gateway);
  const addr = be32(c.ip4.addr);
  if (server === 0 || addr === 0) return unhandled(c);

  const type = optAt[OPT_TYPE]! >= 0 ? u8[optAt[OPT_TYPE]!]! : 0;
  const ciaddr = dv.getUint32(m + DHCP_CIADDR);
  let rapid = false;
  switch (type) {
    case DHCPDISCOVER:
      rapid = optAt[OPT_RAPID_COMMIT]! >= 0;
      replyType = rapid ? DHCPACK : DHCPOFFER;
      break;
    case DHCPREQUEST: {
      /* the client chose another server's offer */
      if (optAt[OPT_SERVER_ID]! >= 0 && dv.getUint32(optAt[OPT_SERVER_ID]!) !== server) {
        return unhandled(c);
      }
      const req = optAt[OPT_REQUESTED]! >= 0 ? dv.getUint32(optAt[OPT_REQUESTED]!) : ciaddr;
      replyType = req !== 0 && req !== addr ? DHCPNAK : DHCPACK;
      break;
    }
    case 0: /* BOOTP: passt acknowledges it */
      replyType = DHCPACK;
      break;
    case DHCPINFORM:
      replyType = DHCPINFORM;
      break;
    default: /* RELEASE, DECLINE: nothing to say; anything else is not for a server */
      return unhandled(c);
  }
  if (out.length < ETH_HLEN + HEADERS_BEFORE_OPTS + OPT_MIN) return 0;

  /* the reply: BOOTP header */
  const o = outView.use(out);
  const odv = outView.dv;
  o8 = outView.u8;
  const oip = o + ETH_HLEN;
  const ou = oip + IPV4_HLEN;
  const om = ou + UDP_HLEN;
  const nak = replyType === DHCPNAK;
  const inform = replyType === DHCPINFORM;
  o8.fill(0, om, om + DHCP_OPTIONS);
  o8[om + DHCP_OP] = BOOTREPLY;
  o8[om + DHCP_HTYPE] = u8[m + DHCP_HTYPE]!;
  o8[om + DHCP_HLEN] = u8[m + DHCP_HLEN]!;
  odv.setUint32(om + DHCP_XID, dv.getUint32(m + DHCP_XID));
  odv.setUint16(om + DHCP_FLAGS, dv.getUint16(m + DHCP_FLAGS));
  if (!nak) odv.setUint32(om + DHCP_CIADDR, ciaddr);
  if (!nak && !inform) odv.setUint32(om + DHCP_YIADDR, addr);
  odv.setUint32(om + DHCP_GIADDR, dv.getUint32(m + DHCP_GIADDR));
  for (let i = 0; i < 16; i++) o8[om + DHCP_CHADDR + i] = u8[m + DHCP_CHADDR + i]!;
  odv.setUint32(om + DHCP_MAGIC_OFF, DHCP_MAGIC);

  /* options, within the client's maximum message size */
  let maxSize = DHCP_MIN_MAX_SIZE;
  if (optAt[OPT_MAX_SIZE]! >= 0) {
    const v = dv.getUint16(optAt[OPT_MAX_SIZE]!);
    if (v > maxSize) maxSize = v > 1500 ? 1500 : v;
  }
  if (maxSize > out.length - ETH_HLEN) maxSize = out.length - ETH_HLEN;
  pos = om + DHCP_OPTIONS;
  limit = oip + maxSize - 1; /* room for the end option */
  sent.fill(0);
  optWrite(c, OPT_TYPE, rapid);
  if (!nak) {
    const prl = optAt[OPT_PRL]!;
    for (let i = 0; prl >= 0 && i < optLen[OPT_PRL]!; i++) optWrite(c, u8[prl + i]!, rapid);
    for (let i = 0; i < OUR_OPTIONS.length; i++) optWrite(c, OUR_OPTIONS[i]!, rapid);
  } else optWrite(c, OPT_SERVER_ID, rapid);
  o8[pos++] = OPT_END;
  while (pos < om + DHCP_OPTIONS + OPT_MIN) o8[pos++] = 0;

  /* where it goes (RFC 2131 §4.1) */
  let dst = addr;
  let bcast = false;
  if (nak) bcast = true;
  else if (ciaddr !== 0) dst = ciaddr;
  else if ((dv.getUint16(m + DHCP_FLAGS) & DHCP_FLAG_BROADCAST) !== 0 || inform) bcast = true;
  if (bcast) {
    dst = 0xffffffff;
    for (let i = 0; i < 6; i++) o8[o + i] = 0xff;
  } else macCopy(dv, base + ETH_SRC, odv, o);
  macWrite(odv, o + ETH_SRC, c.ourMac);
  odv.setUint16(o + 12, ETH_P_IP);

  const ulen = pos - ou;
  odv.setUint32(oip, 0x45000000 | (IPV4_HLEN + ulen)); /* version, IHL, TOS 0, length */
  odv.setUint32(oip + 4, 0); /* ID 0, no DF: the guest may not know its MTU yet */
  odv.setUint32(oip + 8, (64 << 24) | (IPPROTO_UDP << 16)); /* TTL, protocol, checksum 0 */
  odv.setUint32(oip + IPV4_SRC, server);
  odv.setUint32(oip + IPV4_DST, dst);
  ipv4FillChecksum(o8, oip);
  odv.setUint16(ou, DHCP_SERVER_PORT);
  odv.setUint16(ou + 2, DHCP_CLIENT_PORT);
  odv.setUint16(ou + 4, ulen);
  udpFillChecksum4(o8, oip, ou, ulen);
  c.stats.dhcpReplies++;
  return ETH_HLEN + IPV4_HLEN + ulen;
}

/**
 * Writes one option we have a value for, once, if it fits (the reply
 * state: o8, pos, limit, replyType).
 */
function optWrite(c: Ctx, code: number, rapid: boolean): void {
  if (sent[code] !== 0) return;
  sent[code] = 1;
  const at = pos + 2;
  const room = limit - at;
  let l = -1;
  switch (code) {
    case OPT_TYPE:
      if (room >= 1) {
        o8[at] = replyType === DHCPINFORM ? DHCPACK : replyType;
        l = 1;
      }
      break;
    case OPT_MASK:
      if (room >= 4) {
        const plen = c.ip4.prefixLen;
        put32(at, plen <= 0 ? 0 : plen >= 32 ? 0xffffffff : ~(0xffffffff >>> plen));
        l = 4;
      }
      break;
    case OPT_ROUTER:
    case OPT_SERVER_ID:
      if (room >= 4) {
        put32(at, be32(c.ip4.gateway));
        l = 4;
      }
      break;
    case OPT_DNS: {
      const n = c.dns4.length;
      if (n > 0 && room >= 4 * n && 4 * n <= 255) {
        for (let i = 0; i < n; i++) put32(at + 4 * i, be32(c.dns4[i]!));
        l = 4 * n;
      }
      break;
    }
    case OPT_HOSTNAME:
      l = asciiWrite(at, c.hostname, room);
      break;
    case OPT_MTU:
      if (c.mtu > 0 && room >= 2) {
        o8[at] = c.mtu >> 8;
        o8[at + 1] = c.mtu & 0xff;
        l = 2;
      }
      break;
    case OPT_LEASE:
      if (replyType !== DHCPINFORM && room >= 4) {
        put32(at, 0xffffffff);
        l = 4;
      }
      break;
    case OPT_RAPID_COMMIT:
      if (rapid && room >= 0) l = 0;
      break;
    case OPT_FQDN:
      if (c.fqdn !== "" && room >= 3) {
        const n = dnsNameWrite(o8, at + 3, c.fqdn, (room < 255 ? room : 255) - 3);
        if (n > 0) {
          o8[at] = 0x04; /* E: canonical wire format */
          o8[at + 1] = 0xff; /* RCODE1, RCODE2 (RFC 4702 §2.2) */
          o8[at + 2] = 0xff;
          l = 3 + n;
        }
      }
      break;
    case OPT_SEARCH: {
      const max = room < 255 ? room : 255;
      let n = 0;
      for (let i = 0; i < c.dnsSearch.length; i++) {
        n += dnsNameWriteCompressed(o8, at, at + n, c.dnsSearch[i]!, max - n);
      }
      if (n > 0) l = n;
      break;
    }
    case OPT_ROUTES: {
      /* the gateway outside the guest's subnet: a route to it, and the default through it */
      const plen = c.ip4.prefixLen;
      const mask = plen <= 0 ? 0 : plen >= 32 ? 0xffffffff : ~(0xffffffff >>> plen);
      const gw = be32(c.ip4.gateway);
      if (((gw ^ be32(c.ip4.addr)) & mask) !== 0 && room >= 14) {
        o8[at] = 32;
        put32(at + 1, gw);
        put32(at + 5, 0);
        o8[at + 9] = 0;
        put32(at + 10, gw);
        l = 14;
      }
      break;
    }
  }
  if (l < 0) return;
  o8[pos] = code;
  o8[pos + 1] = l;
  pos += 2 + l;
}

/** Writes an ASCII string as option data; -1 when empty, not ASCII or too long. */
function asciiWrite(at: number, s: string, room: number): number {
  const n = s.length;
  if (n === 0 || n > 255 || n > room) return -1;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 0x20 || ch >= 0x7f) return -1;
    o8[at + i] = ch;
  }
  return n;
}

function put32(at: number, v: number): void {
  o8[at] = v >>> 24;
  o8[at + 1] = (v >>> 16) & 0xff;
  o8[at + 2] = (v >>> 8) & 0xff;
  o8[at + 3] = v & 0xff;
}

/** A 4-byte address as a big-endian unsigned number. */
function be32(a: Uint8Array): number {
  return ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0;
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
