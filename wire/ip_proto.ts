/**
 * ip_proto.ts - IP protocol numbers (IPv4 protocol, IPv6 next header): the one
 * home of every IPPROTO_* in orzo (ffi/layout.ts re-exports the ones that are
 * also socket option levels). EtherTypes live in wire/eth.ts.
 *
 * @module
 */

/** IPv6 hop-by-hop options header. */
export const IPPROTO_HOPOPTS = 0;
/** IPv4 (the socket option level; the same number as IPPROTO_HOPOPTS). */
export const IPPROTO_IP = 0;
/** ICMP for IPv4. */
export const IPPROTO_ICMP = 1;
/** TCP. */
export const IPPROTO_TCP = 6;
/** UDP. */
export const IPPROTO_UDP = 17;
/** IPv6 (the socket option level; as a next header, IPv6 in IP). */
export const IPPROTO_IPV6 = 41;
/** IPv6 routing header. */
export const IPPROTO_ROUTING = 43;
/** IPv6 fragment header. */
export const IPPROTO_FRAGMENT = 44;
/** Authentication header. */
export const IPPROTO_AH = 51;
/** ICMP for IPv6. */
export const IPPROTO_ICMPV6 = 58;
/** IPv6 "no next header". */
export const IPPROTO_NONE = 59;
/** IPv6 destination options header. */
export const IPPROTO_DSTOPTS = 60;
/** IPv6 mobility header. */
export const IPPROTO_MH = 135;
/** Host identity protocol. */
export const IPPROTO_HIP = 139;
/** Shim6. */
export const IPPROTO_SHIM6 = 140;
