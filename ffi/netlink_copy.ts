/**
 * netlink_copy.ts - rewriting dumped addresses and routes of one interface into
 * requests for another (pasta's nl_addr_dup and nl_route_dup, per message).
 *
 * @module
 */

import {
  IFA_CACHEINFO,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_TENTATIVE,
  IFA_FLAGS,
  IFA_LABEL,
  IFADDRMSG_SIZE,
  nlAlign,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  RT_SCOPE_LINK,
  RT_TABLE_MAIN,
  RTA_CACHEINFO,
  RTA_MULTIPATH,
  RTA_NH_ID,
  RTA_OIF,
  RTA_PREFSRC,
  RTM_F_CLONED,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  RTMSG_SIZE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTNH_SIZE,
} from "./netlink_const.ts";
import { ifAddrMsg, nlMessage, rtAttr, rtAttrU32 } from "./netlink_build.ts";
import {
  nlIsLinkLocal,
  type NlMsg,
  nlParseAddr,
  nlParseAttrs,
  nlParseRoute,
} from "./netlink_parse.ts";

/** A message to send, or why there is none. */
export type NlCopy = { msg: Uint8Array<ArrayBuffer>; reason: null } | {
  msg: null;
  reason: string;
};

/**
 * Rewrites a dumped RTM_NEWADDR of interface `srcIndex` into an RTM_NEWADDR
 * for `dstIndex` (pasta's nl_addr_dup): link-scope and deprecated addresses
 * are not copied; label and lifetimes (IFA_LABEL, IFA_CACHEINFO) are
 * dropped, so the copy is permanent; IFA_F_NODAD is added (so an IPv6
 * address is usable at once). Flags: CREATE (no EXCL), ACK.
 * @param m the dumped message
 * @param srcIndex interface the address must belong to
 * @param dstIndex interface to put it on
 * @returns the request, or the reason it is skipped
 * @throws SysError EBADMSG when the message is malformed
 */
export function nlAddrCopyMsg(m: NlMsg, srcIndex: number, dstIndex: number): NlCopy {
  const a = nlParseAddr(m);
  if (a.index !== srcIndex) return { msg: null, reason: `on interface ${a.index}` };
  if (a.scope === RT_SCOPE_LINK || nlIsLinkLocal(a.addr)) {
    return { msg: null, reason: "link-local" };
  }
  if (a.flags & IFA_F_DEPRECATED) return { msg: null, reason: "deprecated" };
  const flags = (a.flags | IFA_F_NODAD) & ~(IFA_F_TENTATIVE | IFA_F_DADFAILED);
  const parts: Uint8Array[] = [
    ifAddrMsg({ family: a.family, prefixLen: a.prefixLen, flags, scope: a.scope, index: dstIndex }),
  ];
  const start = NLMSG_HDRLEN + IFADDRMSG_SIZE;
  for (const x of nlParseAttrs(m.bytes, start, m.bytes.length)) {
    if (x.type === IFA_LABEL || x.type === IFA_CACHEINFO) continue;
    if (x.type === IFA_FLAGS) parts.push(rtAttrU32(IFA_FLAGS, flags));
    else parts.push(rtAttr(x.type, x.data));
  }
  return {
    msg: nlMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, parts),
    reason: null,
  };
}

/**
 * Rewrites a dumped RTM_NEWROUTE that goes through interface `srcIndex` into
 * an RTM_NEWROUTE through `dstIndex` (pasta's nl_route_dup): RTA_OIF and every
 * multipath nexthop must name `srcIndex` and are changed to `dstIndex`;
 * RTA_PREFSRC (a host address), RTA_NH_ID (a host nexthop object) and
 * RTA_CACHEINFO are dropped; state flags the kernel refuses on input (dead,
 * linkdown) are cleared. Only unicast routes of the main table are copied.
 * Flags: CREATE (no EXCL), ACK.
 * @param m the dumped message
 * @param srcIndex interface the route must use
 * @param dstIndex interface to use instead
 * @returns the request, or the reason it is skipped
 * @throws SysError EBADMSG when the message is malformed
 */
export function nlRouteCopyMsg(m: NlMsg, srcIndex: number, dstIndex: number): NlCopy {
  const r = nlParseRoute(m);
  if (r.table !== RT_TABLE_MAIN) return { msg: null, reason: `in table ${r.table}` };
  if (r.type !== RTN_UNICAST) return { msg: null, reason: `route type ${r.type}` };
  if (r.flags & RTM_F_CLONED) return { msg: null, reason: "cached clone" };
  if (r.srcLen !== 0) return { msg: null, reason: "source-specific" };
  if (r.oif === 0 && r.multipath.length === 0) return { msg: null, reason: "no interface" };
  if (r.oif !== 0 && r.oif !== srcIndex) return { msg: null, reason: `on interface ${r.oif}` };
  for (const nh of r.multipath) {
    if (nh.ifindex !== srcIndex) return { msg: null, reason: `nexthop on interface ${nh.ifindex}` };
  }
  const b = m.bytes;
  const hdr = b.slice(NLMSG_HDRLEN, NLMSG_HDRLEN + RTMSG_SIZE);
  const hdv = new DataView(hdr.buffer);
  hdv.setUint32(8, hdv.getUint32(8, true) & RTNH_F_ONLINK, true);
  const parts: Uint8Array[] = [hdr];
  for (const a of nlParseAttrs(b, NLMSG_HDRLEN + RTMSG_SIZE, b.length)) {
    switch (a.type) {
      case RTA_PREFSRC:
      case RTA_NH_ID:
      case RTA_CACHEINFO:
        break;
      case RTA_OIF:
        parts.push(rtAttrU32(RTA_OIF, dstIndex));
        break;
      case RTA_MULTIPATH: {
        const d = a.data.slice();
        const dv = new DataView(d.buffer);
        for (let off = 0; d.length - off >= RTNH_SIZE;) {
          const len = dv.getUint16(off, true); /* validated by nlParseRoute */
          d[off + 2] = d[off + 2]! & RTNH_F_ONLINK;
          dv.setInt32(off + 4, dstIndex, true);
          off += nlAlign(len);
        }
        parts.push(rtAttr(RTA_MULTIPATH, d));
        break;
      }
      default:
        parts.push(rtAttr(a.type, a.data));
    }
  }
  return {
    msg: nlMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, parts),
    reason: null,
  };
}
