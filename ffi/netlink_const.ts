/**
 * netlink_const.ts - rtnetlink constants: message types, flags, attributes.
 *
 * Values from linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h and
 * linux/if.h; names as there. A few helpers that belong to them (alignment,
 * address length, message type names).
 *
 * @module
 */

import { AF_INET, AF_INET6 } from "./layout.ts";

/** Netlink protocol for routing messages. */
export const NETLINK_ROUTE = 0;
/** setsockopt level for netlink options. */
export const SOL_NETLINK = 270;
/** Do not echo the request payload in error messages. */
export const NETLINK_CAP_ACK = 10;
/** Extended acknowledgements (error strings). */
export const NETLINK_EXT_ACK = 11;
/** Strict checking of dump requests (kernel-side filtering). */
export const NETLINK_GET_STRICT_CHK = 12;
/** struct sockaddr_nl: u16 family @0, u16 pad, u32 pid @4, u32 groups @8. */
export const SOCKADDR_NL_SIZE = 12;

/** struct nlmsghdr size. */
export const NLMSG_HDRLEN = 16;
/** struct ifinfomsg size. */
export const IFINFOMSG_SIZE = 16;
/** struct ifaddrmsg size. */
export const IFADDRMSG_SIZE = 8;
/** struct rtmsg size. */
export const RTMSG_SIZE = 12;
/** struct rtattr header size. */
export const RTA_HDRLEN = 4;
/** struct rtnexthop size (without its attributes). */
export const RTNH_SIZE = 8;

/** Message type: nothing, skip. */
export const NLMSG_NOOP = 1;
/** Message type: error or (error 0) acknowledgement. */
export const NLMSG_ERROR = 2;
/** Message type: end of a multipart dump. */
export const NLMSG_DONE = 3;
/** Message type: data lost. */
export const NLMSG_OVERRUN = 4;

/** Flag: a request. */
export const NLM_F_REQUEST = 0x1;
/** Flag: part of a multipart reply, ended by NLMSG_DONE. */
export const NLM_F_MULTI = 0x2;
/** Flag: ask for an acknowledgement. */
export const NLM_F_ACK = 0x4;
/** Flag: the dump was interrupted by a change, its content may be inconsistent. */
export const NLM_F_DUMP_INTR = 0x10;
/** Flag: the dump was filtered as requested (strict checking). */
export const NLM_F_DUMP_FILTERED = 0x20;
/** GET flag: return the whole table (NLM_F_ROOT | NLM_F_MATCH). */
export const NLM_F_DUMP = 0x300;
/** NEW flag: replace an existing object. */
export const NLM_F_REPLACE = 0x100;
/** NEW flag: fail with EEXIST if the object exists. */
export const NLM_F_EXCL = 0x200;
/** NEW flag: create the object if it does not exist. */
export const NLM_F_CREATE = 0x400;
/** NEW flag: append to the end of a list. */
export const NLM_F_APPEND = 0x800;
/** ACK flag: the request payload was not echoed. */
export const NLM_F_CAPPED = 0x100;
/** ACK flag: extended-ack TLVs follow the error. */
export const NLM_F_ACK_TLVS = 0x200;
/** Extended-ack attribute: error message string. */
export const NLMSGERR_ATTR_MSG = 1;

/** rtnetlink message type. */
export const RTM_NEWLINK = 16;
/** rtnetlink message type. */
export const RTM_DELLINK = 17;
/** rtnetlink message type. */
export const RTM_GETLINK = 18;
/** rtnetlink message type. */
export const RTM_NEWADDR = 20;
/** rtnetlink message type. */
export const RTM_DELADDR = 21;
/** rtnetlink message type. */
export const RTM_GETADDR = 22;
/** rtnetlink message type. */
export const RTM_NEWROUTE = 24;
/** rtnetlink message type. */
export const RTM_DELROUTE = 25;
/** rtnetlink message type. */
export const RTM_GETROUTE = 26;

/** Names of netlink message types, for errors. */
export const NLMSG_TYPE_NAMES: Readonly<Record<number, string>> = {
  [NLMSG_NOOP]: "NLMSG_NOOP",
  [NLMSG_ERROR]: "NLMSG_ERROR",
  [NLMSG_DONE]: "NLMSG_DONE",
  [NLMSG_OVERRUN]: "NLMSG_OVERRUN",
  [RTM_NEWLINK]: "RTM_NEWLINK",
  [RTM_DELLINK]: "RTM_DELLINK",
  [RTM_GETLINK]: "RTM_GETLINK",
  [RTM_NEWADDR]: "RTM_NEWADDR",
  [RTM_DELADDR]: "RTM_DELADDR",
  [RTM_GETADDR]: "RTM_GETADDR",
  [RTM_NEWROUTE]: "RTM_NEWROUTE",
  [RTM_DELROUTE]: "RTM_DELROUTE",
  [RTM_GETROUTE]: "RTM_GETROUTE",
};

/** Link attribute: hardware address. */
export const IFLA_ADDRESS = 1;
/** Link attribute: hardware broadcast address. */
export const IFLA_BROADCAST = 2;
/** Link attribute: interface name (NUL-terminated). */
export const IFLA_IFNAME = 3;
/** Link attribute: MTU (u32). */
export const IFLA_MTU = 4;
/** Link attribute: index of the lower link (u32). */
export const IFLA_LINK = 5;
/** Link attribute: index of the master device (u32). */
export const IFLA_MASTER = 10;
/** Link attribute: RFC 2863 operational state (u8). */
export const IFLA_OPERSTATE = 16;
/** Link attribute: extended info filter mask (u32, requests only). */
export const IFLA_EXT_MASK = 29;
/** IFLA_EXT_MASK bit: leave statistics out of link replies. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** Link flag (ifi_flags): administratively up. */
export const IFF_UP = 0x1;
/** Link flag: loopback device. */
export const IFF_LOOPBACK = 0x8;
/** Link flag: operationally running. */
export const IFF_RUNNING = 0x40;
/** Link flag: no ARP / neighbour discovery (pasta sets it to skip DAD on link up). */
export const IFF_NOARP = 0x80;
/** Link flag: carrier present. */
export const IFF_LOWER_UP = 0x10000;

/** Address attribute: the (peer) address; IPv6 uses it for the local address. */
export const IFA_ADDRESS = 1;
/** Address attribute: the local address (IPv4). */
export const IFA_LOCAL = 2;
/** Address attribute: label (IPv4, NUL-terminated). */
export const IFA_LABEL = 3;
/** Address attribute: broadcast address (IPv4). */
export const IFA_BROADCAST = 4;
/** Address attribute: lifetimes (struct ifa_cacheinfo). */
export const IFA_CACHEINFO = 6;
/** Address attribute: 32-bit flags, supersedes ifa_flags. */
export const IFA_FLAGS = 8;

/** Address flag: secondary IPv4 address. */
export const IFA_F_SECONDARY = 0x01;
/** Address flag: no duplicate address detection. */
export const IFA_F_NODAD = 0x02;
/** Address flag: optimistic DAD. */
export const IFA_F_OPTIMISTIC = 0x04;
/** Address flag: DAD failed. */
export const IFA_F_DADFAILED = 0x08;
/** Address flag: preferred lifetime over, do not use for new connections. */
export const IFA_F_DEPRECATED = 0x20;
/** Address flag: DAD still running. */
export const IFA_F_TENTATIVE = 0x40;
/** Address flag: no expiry. */
export const IFA_F_PERMANENT = 0x80;
/** Address flag: no prefix route for this address. */
export const IFA_F_NOPREFIXROUTE = 0x200;

/** Route attribute: destination. */
export const RTA_DST = 1;
/** Route attribute: source prefix. */
export const RTA_SRC = 2;
/** Route attribute: input interface (u32). */
export const RTA_IIF = 3;
/** Route attribute: output interface (u32). */
export const RTA_OIF = 4;
/** Route attribute: gateway. */
export const RTA_GATEWAY = 5;
/** Route attribute: metric (u32). */
export const RTA_PRIORITY = 6;
/** Route attribute: preferred source address. */
export const RTA_PREFSRC = 7;
/** Route attribute: nested RTAX_* metrics. */
export const RTA_METRICS = 8;
/** Route attribute: list of struct rtnexthop. */
export const RTA_MULTIPATH = 9;
/** Route attribute: struct rta_cacheinfo (read-only statistics). */
export const RTA_CACHEINFO = 12;
/** Route attribute: table id (u32), supersedes rtm_table. */
export const RTA_TABLE = 15;
/** Route attribute: IPv6 router preference (u8). */
export const RTA_PREF = 20;
/** Route attribute: expiry (u32, seconds). */
export const RTA_EXPIRES = 23;
/** Route attribute: nexthop object id (u32). */
export const RTA_NH_ID = 30;

/** Nexthop flag: dead. */
export const RTNH_F_DEAD = 0x1;
/** Nexthop flag: gateway is on link even if no route says so. */
export const RTNH_F_ONLINK = 0x4;
/** Nexthop flag: carrier down. */
export const RTNH_F_LINKDOWN = 0x10;
/** Route flag: a cached clone, not a configured route. */
export const RTM_F_CLONED = 0x200;

/** Route type: unspecified. */
export const RTN_UNSPEC = 0;
/** Route type: gateway or direct route. */
export const RTN_UNICAST = 1;
/** Route type: local address. */
export const RTN_LOCAL = 2;
/** Route type: drop silently. */
export const RTN_BLACKHOLE = 6;
/** Route type: destination unreachable. */
export const RTN_UNREACHABLE = 7;

/** Route protocol: kernel (from an address). */
export const RTPROT_KERNEL = 2;
/** Route protocol: boot-time / tool-added (pasta uses it). */
export const RTPROT_BOOT = 3;
/** Route protocol: static (administrator). */
export const RTPROT_STATIC = 4;
/** Route protocol: IPv6 router advertisement. */
export const RTPROT_RA = 9;

/** Scope: global. */
export const RT_SCOPE_UNIVERSE = 0;
/** Scope: on link. */
export const RT_SCOPE_LINK = 253;
/** Scope: this host. */
export const RT_SCOPE_HOST = 254;
/** Scope: no destination (matches any scope on deletion). */
export const RT_SCOPE_NOWHERE = 255;

/** Routing table: main. */
export const RT_TABLE_MAIN = 254;
/** Routing table: local. */
export const RT_TABLE_LOCAL = 255;

/** Ethernet address length. */
export const ETH_ALEN = 6;

/**
 * Rounds a length up to netlink's 4-byte alignment (NLMSG_ALIGN, RTA_ALIGN).
 * @param n length in bytes
 * @returns n rounded up to a multiple of 4
 */
export function nlAlign(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Returns the address length of a family.
 * @param family AF_INET or AF_INET6
 * @returns 4 or 16
 * @throws RangeError for any other family
 */
export function nlAddrLen(family: number): number {
  if (family === AF_INET) return 4;
  if (family === AF_INET6) return 16;
  throw new RangeError(`Unsupported address family ${family}`);
}

/**
 * Returns the name of a message type, such as "RTM_NEWADDR".
 * @param type nlmsg_type
 * @returns its name, or "netlink type N"
 */
export function nlTypeName(type: number): string {
  return NLMSG_TYPE_NAMES[type] ?? `netlink type ${type}`;
}
