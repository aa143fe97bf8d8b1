/**
 * netlink_build.ts - rtnetlink requests: family headers, attributes, messages.
 *
 * Pure functions returning new byte arrays. Messages leave sequence number and
 * port id 0; the sender stamps them (nlStamp). Attributes are padded to 4
 * bytes (RTA_ALIGN), and every length is written explicitly.
 *
 * @module
 */

import { AF_INET } from "./layout.ts";
import {
  ETH_ALEN,
  IFA_ADDRESS,
  IFA_FLAGS,
  IFA_LOCAL,
  IFADDRMSG_SIZE,
  IFINFOMSG_SIZE,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_MTU,
  nlAddrLen,
  nlAlign,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_HDRLEN,
  RTA_OIF,
  RTA_PRIORITY,
  RTA_TABLE,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELADDR,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTMSG_SIZE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_BOOT,
} from "./netlink_const.ts";

const encoder = new TextEncoder();

function checkAddr(addr: Uint8Array, family: number, what: string): void {
  if (addr.length !== nlAddrLen(family)) {
    throw new RangeError(`Invalid ${what}: ${addr.length} bytes for family ${family}`);
  }
}

function checkPrefix(len: number, family: number): void {
  if (!Number.isInteger(len) || len < 0 || len > nlAddrLen(family) * 8) {
    throw new RangeError(`Invalid prefix length ${len} for family ${family}`);
  }
}

/**
 * Builds one attribute, padded to 4 bytes.
 * @param type rta_type
 * @param data payload
 * @returns the encoded attribute
 */
export function rtAttr(type: number, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const len = RTA_HDRLEN + data.length;
  if (len > 0xffff) throw new RangeError(`Attribute ${type} too long: ${data.length} bytes`);
  const out = new Uint8Array(nlAlign(len));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, len, true);
  dv.setUint16(2, type, true);
  out.set(data, RTA_HDRLEN);
  return out;
}

/**
 * Builds a u32 attribute.
 * @param type rta_type
 * @param value the value
 * @returns the encoded attribute
 */
export function rtAttrU32(type: number, value: number): Uint8Array<ArrayBuffer> {
  const d = new Uint8Array(4);
  new DataView(d.buffer).setUint32(0, value >>> 0, true);
  return rtAttr(type, d);
}

/**
 * Builds a NUL-terminated string attribute.
 * @param type rta_type
 * @param s the string
 * @returns the encoded attribute
 */
export function rtAttrString(type: number, s: string): Uint8Array<ArrayBuffer> {
  const b = encoder.encode(s);
  const d = new Uint8Array(b.length + 1);
  d.set(b);
  return rtAttr(type, d);
}

/** Fields of struct ifinfomsg. */
export interface IfInfoFields {
  /** ifi_family (AF_UNSPEC by default) */
  family?: number;
  /** ifi_type (ARPHRD_*), 0 in requests */
  type?: number;
  /** interface index (0: look up by IFLA_IFNAME) */
  index: number;
  /** flag values to set */
  flags?: number;
  /** mask of the flags to change */
  change?: number;
}

/**
 * Encodes struct ifinfomsg.
 * @param f the fields
 * @returns 16 bytes
 */
export function ifInfoMsg(f: IfInfoFields): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(IFINFOMSG_SIZE);
  const dv = new DataView(b.buffer);
  b[0] = f.family ?? 0;
  dv.setUint16(2, f.type ?? 0, true);
  dv.setInt32(4, f.index, true);
  dv.setUint32(8, (f.flags ?? 0) >>> 0, true);
  dv.setUint32(12, (f.change ?? 0) >>> 0, true);
  return b;
}

/** Fields of struct ifaddrmsg. */
export interface IfAddrFields {
  /** AF_INET, AF_INET6 or AF_UNSPEC */
  family: number;
  /** prefix length */
  prefixLen?: number;
  /** low 8 bits of the IFA_F_* flags */
  flags?: number;
  /** RT_SCOPE_* */
  scope?: number;
  /** interface index (0: all, in dumps) */
  index: number;
}

/**
 * Encodes struct ifaddrmsg.
 * @param f the fields
 * @returns 8 bytes
 */
export function ifAddrMsg(f: IfAddrFields): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(IFADDRMSG_SIZE);
  b[0] = f.family;
  b[1] = f.prefixLen ?? 0;
  b[2] = (f.flags ?? 0) & 0xff;
  b[3] = f.scope ?? 0;
  new DataView(b.buffer).setUint32(4, f.index >>> 0, true);
  return b;
}

/** Fields of struct rtmsg. */
export interface RtMsgFields {
  /** AF_INET or AF_INET6 */
  family: number;
  /** destination prefix length */
  dstLen?: number;
  /** source prefix length */
  srcLen?: number;
  /** type of service */
  tos?: number;
  /** RT_TABLE_* (low 8 bits; RTA_TABLE carries larger ids) */
  table?: number;
  /** RTPROT_* */
  protocol?: number;
  /** RT_SCOPE_* */
  scope?: number;
  /** RTN_* */
  type?: number;
  /** RTM_F_* / RTNH_F_* flags */
  flags?: number;
}

/**
 * Encodes struct rtmsg.
 * @param f the fields
 * @returns 12 bytes
 */
export function rtMsg(f: RtMsgFields): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(RTMSG_SIZE);
  b[0] = f.family;
  b[1] = f.dstLen ?? 0;
  b[2] = f.srcLen ?? 0;
  b[3] = f.tos ?? 0;
  b[4] = f.table ?? 0;
  b[5] = f.protocol ?? 0;
  b[6] = f.scope ?? 0;
  b[7] = f.type ?? 0;
  new DataView(b.buffer).setUint32(8, (f.flags ?? 0) >>> 0, true);
  return b;
}

/**
 * Builds a netlink message: header, then the parts in order. Sequence number
 * and port id are left 0 for the sender to stamp (nlStamp).
 * @param type nlmsg_type
 * @param flags nlmsg_flags
 * @param parts family header and attributes, each a multiple of 4 bytes
 * @returns the message
 */
export function nlMessage(
  type: number,
  flags: number,
  parts: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  let len = NLMSG_HDRLEN;
  for (const p of parts) {
    if (p.length % 4 !== 0) throw new RangeError(`Unaligned message part of ${p.length} bytes`);
    len += p.length;
  }
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  let off = NLMSG_HDRLEN;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Writes sequence number and port id into a message header.
 * @param msg the message
 * @param seq nlmsg_seq
 * @param pid nlmsg_pid (0: the kernel assigns)
 */
export function nlStamp(msg: Uint8Array, seq: number, pid = 0): void {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  dv.setUint32(8, seq >>> 0, true);
  dv.setUint32(12, pid >>> 0, true);
}

/**
 * Request: one link by index (RTM_GETLINK, answered by RTM_NEWLINK then an ACK).
 * @param index interface index
 * @returns the message
 */
export function nlReqGetLink(index: number): Uint8Array<ArrayBuffer> {
  return nlMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, [
    ifInfoMsg({ index }),
    rtAttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS),
  ]);
}

/**
 * Request: one link by name (RTM_GETLINK with IFLA_IFNAME and index 0).
 * @param name interface name, at most 15 bytes
 * @returns the message
 */
export function nlReqGetLinkByName(name: string): Uint8Array<ArrayBuffer> {
  if (name.length === 0 || encoder.encode(name).length > 15) {
    throw new RangeError(`Invalid interface name "${name}"`);
  }
  return nlMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, [
    ifInfoMsg({ index: 0 }),
    rtAttrString(IFLA_IFNAME, name),
    rtAttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS),
  ]);
}

/**
 * Request: dump all links.
 * @returns the message
 */
export function nlReqDumpLinks(): Uint8Array<ArrayBuffer> {
  return nlMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, [
    ifInfoMsg({ index: 0 }),
    rtAttrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS),
  ]);
}

/** Changes to a link (RTM_NEWLINK on an existing index). */
export interface LinkChange {
  /** flag values (IFF_*) */
  flags?: number;
  /** mask of the flags to change */
  change?: number;
  /** new MTU */
  mtu?: number;
  /** new hardware address, 6 bytes */
  mac?: Uint8Array;
}

/**
 * Request: change flags, MTU and/or MAC of a link.
 * @param index interface index
 * @param c what to change
 * @returns the message
 */
export function nlReqSetLink(index: number, c: LinkChange): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [
    ifInfoMsg({ index, flags: c.flags ?? 0, change: c.change ?? 0 }),
  ];
  if (c.mtu !== undefined) {
    if (!Number.isInteger(c.mtu) || c.mtu < 0 || c.mtu > 0xffffffff) {
      throw new RangeError(`Invalid MTU ${c.mtu}`);
    }
    parts.push(rtAttrU32(IFLA_MTU, c.mtu));
  }
  if (c.mac !== undefined) {
    if (c.mac.length !== ETH_ALEN) throw new RangeError(`Invalid MAC: ${c.mac.length} bytes`);
    parts.push(rtAttr(IFLA_ADDRESS, c.mac));
  }
  return nlMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, parts);
}

/**
 * Request: dump addresses of a family, optionally of one interface.
 * With strict checking the kernel filters by index itself.
 * @param family AF_INET, AF_INET6 or AF_UNSPEC
 * @param index interface index, 0 for all
 * @returns the message
 */
export function nlReqDumpAddrs(family: number, index = 0): Uint8Array<ArrayBuffer> {
  return nlMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, [ifAddrMsg({ family, index })]);
}

/**
 * Request: add (or with `del`, remove) an address. Carries IFA_LOCAL and
 * IFA_ADDRESS, as `ip addr add` does, and IFA_FLAGS when the flags need more
 * than 8 bits.
 * @param family AF_INET or AF_INET6
 * @param index interface index
 * @param addr the address
 * @param prefixLen prefix length
 * @param flags IFA_F_* flags
 * @param del build RTM_DELADDR instead of RTM_NEWADDR (CREATE|EXCL)
 * @returns the message
 */
export function nlReqAddr(
  family: number,
  index: number,
  addr: Uint8Array,
  prefixLen: number,
  flags = 0,
  del = false,
): Uint8Array<ArrayBuffer> {
  checkAddr(addr, family, "address");
  checkPrefix(prefixLen, family);
  const scope = family === AF_INET && addr[0] === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  const parts: Uint8Array[] = [ifAddrMsg({ family, prefixLen, flags, scope, index })];
  parts.push(rtAttr(IFA_LOCAL, addr), rtAttr(IFA_ADDRESS, addr));
  if (flags > 0xff) parts.push(rtAttrU32(IFA_FLAGS, flags));
  return del
    ? nlMessage(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, parts)
    : nlMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, parts);
}

/** Kernel-side filter of a route dump (honoured with NETLINK_GET_STRICT_CHK). */
export interface RouteDumpFilter {
  /** table (RT_TABLE_MAIN by default, 0 for all) */
  table?: number;
  /** route type (RTN_*, 0 for all) */
  type?: number;
  /** output interface (0 for all) */
  oif?: number;
}

/**
 * Request: dump routes of a family.
 * @param family AF_INET or AF_INET6
 * @param f kernel-side filter; callers must still filter replies themselves
 * @returns the message
 */
export function nlReqDumpRoutes(family: number, f: RouteDumpFilter = {}): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [
    rtMsg({ family, table: f.table ?? RT_TABLE_MAIN, type: f.type ?? 0 }),
  ];
  if (f.oif) parts.push(rtAttrU32(RTA_OIF, f.oif));
  return nlMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, parts);
}

/** Options of a route to add or delete. */
export interface RouteOptions {
  /** metric (RTA_PRIORITY); kernel default when absent */
  metric?: number;
  /** RTPROT_* (RTPROT_BOOT, as pasta, by default) */
  protocol?: number;
  /** the gateway is on link even without a route to it */
  onlink?: boolean;
  /** table, RT_TABLE_MAIN by default */
  table?: number;
}

/**
 * Request: add (or with `del`, remove) a unicast route in the main table.
 * A route with a gateway has scope universe, a direct one scope link. The
 * output interface is always given, which an IPv6 link-local gateway needs.
 * @param family AF_INET or AF_INET6
 * @param ifindex output interface (0: none, only for deletion)
 * @param dst destination (ignored bits may be anything; default route: zeros)
 * @param dstLen destination prefix length (0: default route)
 * @param gateway gateway, or null for a direct route
 * @param opts metric, protocol, onlink, table
 * @param del build RTM_DELROUTE instead of RTM_NEWROUTE (CREATE|EXCL)
 * @returns the message
 */
export function nlReqRoute(
  family: number,
  ifindex: number,
  dst: Uint8Array,
  dstLen: number,
  gateway: Uint8Array | null,
  opts: RouteOptions = {},
  del = false,
): Uint8Array<ArrayBuffer> {
  checkAddr(dst, family, "destination");
  checkPrefix(dstLen, family);
  if (gateway !== null) checkAddr(gateway, family, "gateway");
  const table = opts.table ?? RT_TABLE_MAIN;
  const parts: Uint8Array[] = [
    rtMsg({
      family,
      dstLen,
      table: table < 256 ? table : RT_TABLE_MAIN,
      protocol: del ? 0 : opts.protocol ?? RTPROT_BOOT,
      scope: del ? RT_SCOPE_NOWHERE : gateway === null ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
      type: RTN_UNICAST,
      flags: opts.onlink ? RTNH_F_ONLINK : 0,
    }),
  ];
  if (table >= 256) parts.push(rtAttrU32(RTA_TABLE, table));
  if (dstLen > 0) parts.push(rtAttr(RTA_DST, prefixMask(dst, dstLen)));
  if (gateway !== null) parts.push(rtAttr(RTA_GATEWAY, gateway));
  if (ifindex) parts.push(rtAttrU32(RTA_OIF, ifindex));
  if (opts.metric !== undefined) parts.push(rtAttrU32(RTA_PRIORITY, opts.metric));
  return del
    ? nlMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, parts)
    : nlMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, parts);
}

/**
 * Clears the host bits of an address (the kernel rejects IPv4 routes with
 * host bits set).
 * @param addr the address
 * @param len prefix length
 * @returns a masked copy
 */
export function prefixMask(addr: Uint8Array, len: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(addr);
  for (let i = 0; i < out.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    out[i] = keep <= 0 ? 0 : out[i]! & (0xff << (8 - keep));
  }
  return out;
}
