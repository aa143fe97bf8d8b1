/**
 * netlink.ts - rtnetlink messages: constants, request builders, reply parsers.
 *
 * Pure functions over bytes, no I/O (the socket side is netlink_sock.ts, the
 * operations netlink_io.ts). This module gathers:
 * - netlink_const.ts: message types, flags, attribute numbers;
 * - netlink_build.ts: requests (nlReq*), attributes, family headers;
 * - netlink_parse.ts: nlSplit, nlParseAttrs, nlParseLink/Addr/Route, NlReply,
 *   NlError, the EBADMSG errors for malformed replies;
 * - netlink_copy.ts: pasta-style rewriting of host addresses and routes.
 *
 * All multi-byte fields are host order (little-endian on the targets orzo
 * runs on); addresses are network-order `Uint8Array`s of 4 or 16 bytes.
 *
 * Layouts (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h):
 *
 * ```
 * nlmsghdr   { u32 len @0; u16 type @4; u16 flags @6; u32 seq @8; u32 pid @12 }  = 16
 * ifinfomsg  { u8 family @0; u8 pad; u16 type @2; i32 index @4; u32 flags @8; u32 change @12 } = 16
 * ifaddrmsg  { u8 family @0; u8 prefixlen @1; u8 flags @2; u8 scope @3; u32 index @4 } = 8
 * rtmsg      { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags @8 } = 12
 * rtattr     { u16 len @0; u16 type @2; data @4 }, padded to 4
 * rtnexthop  { u16 len @0; u8 flags @2; u8 hops @3; i32 ifindex @4; rtattrs @8 } = 8 + attrs
 * nlmsgerr   { i32 error @0; nlmsghdr msg @4 [payload unless capped]; [ext-ack TLVs] }
 * ```
 *
 * @module
 */

export * from "./netlink_const.ts";
export * from "./netlink_build.ts";
export * from "./netlink_parse.ts";
export * from "./netlink_copy.ts";
