/**
 * netlink_io.ts - rtnetlink operations: read links, addresses and routes, find
 * the host's upstream interface, configure the namespace side.
 *
 * Every function takes a socket from `nlOpen()`; the namespace it acts on is
 * the one that socket was opened in. Setup-time code: it allocates, blocks,
 * and throws `NlError` (a SysError named after the request, such as
 * "RTM_NEWADDR: EEXIST") when the kernel refuses something.
 *
 * Upstream selection and the copy of addresses and routes follow pasta
 * (conf.c, netlink.c):
 * - the upstream interface of a family is the one of its default route; when
 *   there are several, the lowest metric wins (the kernel lists them by
 *   metric, and passt takes the first); with no default route, the interface
 *   of the first other route (routes to link-local prefixes do not count);
 *   with no route at all there is none (pasta then drops the family, and
 *   runs in local mode when both are gone);
 * - addresses: deprecated ones are left out; pasta's pick comes first: the
 *   IPv4 address with the longest prefix, the IPv6 global-scope address with
 *   the longest prefix;
 * - copies: addresses of the upstream interface except link-local and
 *   deprecated ones, made permanent and with IFA_F_NODAD; main-table unicast
 *   routes that use only the upstream interface, minus preferred source and
 *   nexthop-object id; direct routes go first, and routes whose gateway is not
 *   reachable yet are retried after the others, for as long as that adds any.
 *
 * @module
 */

import { AF_INET6 } from "./layout.ts";
import {
  ETH_ALEN,
  IFA_ADDRESS,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_FLAGS,
  ifAddrMsg,
  IFF_UP,
  type NlAddr,
  nlAddrCopyMsg,
  nlAddrLen,
  nlAddrToString,
  type NlLink,
  NLM_F_ACK,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  nlMessage,
  type NlMsg,
  nlParseAddr,
  nlParseLink,
  nlParseRoute,
  nlReqAddr,
  nlReqDumpAddrs,
  nlReqDumpLinks,
  nlReqDumpRoutes,
  nlReqGetLink,
  nlReqGetLinkByName,
  nlReqRoute,
  nlReqSetLink,
  type NlRoute,
  nlRouteCopyMsg,
  nlRouteToString,
  prefixMask,
  type RouteOptions,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  rtAttr,
  rtAttrU32,
  RTM_F_CLONED,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
} from "./netlink.ts";
import { nlDo, nlDump, nlErrorIs } from "./netlink_sock.ts";

export { nlClose, nlOpen } from "./netlink_sock.ts";

/* ------------------------------------------------------------------ queries */

/**
 * Lists all links.
 * @param fd netlink socket
 * @returns the links, in kernel order
 */
export function nlLinks(fd: number): NlLink[] {
  return nlDump(fd, nlReqDumpLinks())
    .filter((m) => m.type === RTM_NEWLINK)
    .map(nlParseLink);
}

function oneLink(msgs: NlMsg[], what: string): NlLink {
  const m = msgs.find((x) => x.type === RTM_NEWLINK);
  if (m === undefined) throw new Error(`No RTM_NEWLINK in the reply for ${what}`);
  return nlParseLink(m);
}

/**
 * Reads one link.
 * @param fd netlink socket
 * @param ifindex interface index
 * @returns name, MTU, MAC, flags...
 * @throws NlError "RTM_GETLINK: ENODEV" when there is no such interface
 */
export function nlLink(fd: number, ifindex: number): NlLink {
  return oneLink(nlDo(fd, nlReqGetLink(ifindex)), `interface ${ifindex}`);
}

/**
 * Reads one link by name.
 * @param fd netlink socket
 * @param name interface name
 * @returns name, MTU, MAC, flags...
 * @throws NlError "RTM_GETLINK: ENODEV" when there is no such interface
 */
export function nlLinkByName(fd: number, name: string): NlLink {
  return oneLink(nlDo(fd, nlReqGetLinkByName(name)), `interface "${name}"`);
}

/**
 * Lists addresses.
 * @param fd netlink socket
 * @param family AF_INET, AF_INET6, or AF_UNSPEC (0) for both
 * @param ifindex only this interface (0: all)
 * @returns the addresses, in kernel order
 */
export function nlAddrs(fd: number, family: number, ifindex = 0): NlAddr[] {
  const out: NlAddr[] = [];
  for (const m of nlDump(fd, nlReqDumpAddrs(family, ifindex))) {
    if (m.type !== RTM_NEWADDR) continue;
    const a = nlParseAddr(m);
    if (family !== 0 && a.family !== family) continue;
    if (ifindex !== 0 && a.index !== ifindex) continue;
    out.push(a);
  }
  return out;
}

/**
 * Lists the routes of one table (cached clones left out).
 * @param fd netlink socket
 * @param family AF_INET or AF_INET6
 * @param table routing table (main by default)
 * @returns the routes, in kernel order
 */
export function nlRoutes(fd: number, family: number, table = RT_TABLE_MAIN): NlRoute[] {
  const out: NlRoute[] = [];
  try {
    for (const m of nlDump(fd, nlReqDumpRoutes(family, { table }))) {
      if (m.type !== RTM_NEWROUTE) continue;
      const r = nlParseRoute(m);
      if (r.family !== family || r.table !== table || r.flags & RTM_F_CLONED) continue;
      out.push(r);
    }
  } catch (e) {
    /* a namespace that never had a route has no table to dump */
    if (!nlErrorIs(e, "ENOENT")) throw e;
  }
  return out;
}

/* ------------------------------------------------------------ configuration */

/**
 * Sets or clears link flags (RTM_NEWLINK with ifi_flags/ifi_change).
 * @param fd netlink socket
 * @param ifindex interface index
 * @param flags values of the IFF_* flags in `change`
 * @param change mask of the flags to change
 */
export function nlLinkSetFlags(fd: number, ifindex: number, flags: number, change: number): void {
  nlDo(fd, nlReqSetLink(ifindex, { flags, change }));
}

/**
 * Brings a link up, optionally setting its MTU in the same request.
 * @param fd netlink socket
 * @param ifindex interface index
 * @param mtu new MTU, if any
 */
export function nlLinkUp(fd: number, ifindex: number, mtu?: number): void {
  nlDo(fd, nlReqSetLink(ifindex, { flags: IFF_UP, change: IFF_UP, ...(mtu ? { mtu } : {}) }));
}

/**
 * Sets the MTU of a link.
 * @param fd netlink socket
 * @param ifindex interface index
 * @param mtu new MTU
 */
export function nlSetMtu(fd: number, ifindex: number, mtu: number): void {
  nlDo(fd, nlReqSetLink(ifindex, { mtu }));
}

/**
 * Sets the MAC address of a link.
 * @param fd netlink socket
 * @param ifindex interface index
 * @param mac 6 bytes
 */
export function nlSetMac(fd: number, ifindex: number, mac: Uint8Array): void {
  nlDo(fd, nlReqSetLink(ifindex, { mac }));
}

/**
 * Adds an address (CREATE|EXCL: an existing one fails with EEXIST). IPv6
 * addresses get IFA_F_NODAD unless `flags` is given, so they are usable at
 * once, as pasta does.
 * @param fd netlink socket
 * @param family AF_INET or AF_INET6
 * @param ifindex interface index
 * @param addr the address
 * @param prefixLen prefix length
 * @param flags IFA_F_* flags
 */
export function nlAddAddr(
  fd: number,
  family: number,
  ifindex: number,
  addr: Uint8Array,
  prefixLen: number,
  flags: number = family === AF_INET6 ? IFA_F_NODAD : 0,
): void {
  nlDo(fd, nlReqAddr(family, ifindex, addr, prefixLen, flags));
}

/**
 * Removes an address.
 * @param fd netlink socket
 * @param family AF_INET or AF_INET6
 * @param ifindex interface index
 * @param addr the address
 * @param prefixLen prefix length
 * @throws NlError "RTM_DELADDR: EADDRNOTAVAIL" when it is not there
 */
export function nlDelAddr(
  fd: number,
  family: number,
  ifindex: number,
  addr: Uint8Array,
  prefixLen: number,
): void {
  nlDo(fd, nlReqAddr(family, ifindex, addr, prefixLen, 0, true));
}

/**
 * Adds a route in the main table through an interface (CREATE|EXCL): a
 * default route is `dst` all zeros with `dstLen` 0. The output interface is
 * always set, which a link-local IPv6 gateway requires.
 * @param fd netlink socket
 * @param family AF_INET or AF_INET6
 * @param ifindex output interface
 * @param dst destination
 * @param dstLen destination prefix length
 * @param gateway gateway, or null for a direct (on-link) route
 * @param opts metric, protocol (RTPROT_BOOT by default), onlink, table
 */
export function nlAddRoute(
  fd: number,
  family: number,
  ifindex: number,
  dst: Uint8Array,
  dstLen: number,
  gateway: Uint8Array | null,
  opts: RouteOptions = {},
): void {
  nlDo(fd, nlReqRoute(family, ifindex, dst, dstLen, gateway, opts));
}

/**
 * Removes a route. Fields left open (ifindex 0, gateway null, no metric)
 * match any route.
 * @param fd netlink socket
 * @param family AF_INET or AF_INET6
 * @param ifindex output interface, or 0
 * @param dst destination
 * @param dstLen destination prefix length
 * @param gateway gateway, or null
 * @param opts metric and table to match
 * @throws NlError "RTM_DELROUTE: ESRCH" when no route matches
 */
export function nlDelRoute(
  fd: number,
  family: number,
  ifindex: number,
  dst: Uint8Array,
  dstLen: number,
  gateway: Uint8Array | null = null,
  opts: RouteOptions = {},
): void {
  nlDo(fd, nlReqRoute(family, ifindex, dst, dstLen, gateway, opts, true));
}

/**
 * Sets IFA_F_NODAD on the IPv6 link-local addresses of an interface
 * (pasta's nl_addr_set_ll_nodad), by replacing each with itself.
 * @param fd netlink socket
 * @param ifindex interface index
 * @returns the number of addresses changed
 */
export function nlSetLinkLocalNodad(fd: number, ifindex: number): number {
  let n = 0;
  for (const a of nlAddrs(fd, AF_INET6, ifindex)) {
    if (a.scope !== RT_SCOPE_LINK) continue;
    const flags = a.flags | IFA_F_NODAD;
    const msg = nlMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE, [
      ifAddrMsg({
        family: AF_INET6,
        prefixLen: a.prefixLen,
        flags,
        scope: a.scope,
        index: ifindex,
      }),
      rtAttr(IFA_ADDRESS, a.addr),
      rtAttrU32(IFA_FLAGS, flags),
    ]);
    nlDo(fd, msg);
    n++;
  }
  return n;
}

/* ---------------------------------------------------------------- copying */

/** What nlCopyAddrs / nlCopyRoutes did. */
export interface NlCopyResult {
  /** objects created */
  copied: number;
  /** objects that already existed (EEXIST) */
  existing: number;
  /** objects not copied, with the reason */
  skipped: { what: string; reason: string }[];
}

/** Identity of a route in the kernel's table: destination, TOS, metric. */
function routeKey(r: NlRoute): string {
  const dst = nlAddrToString(prefixMask(r.dst, r.dstLen));
  return `${dst}/${r.dstLen} tos ${r.tos} metric ${r.priority}`;
}

function routeUses(r: NlRoute, ifindex: number): boolean {
  return r.oif === ifindex || r.multipath.some((nh) => nh.ifindex === ifindex);
}

/**
 * Copies the addresses of a host interface onto a namespace interface, as
 * pasta's nl_addr_dup: link-local and deprecated addresses are skipped,
 * copies are permanent and carry IFA_F_NODAD; existing ones are counted,
 * not errors.
 * @param srcFd netlink socket of the namespace to read (the host)
 * @param srcIndex interface to copy from
 * @param dstFd netlink socket of the namespace to configure
 * @param dstIndex interface to copy onto
 * @param family AF_INET or AF_INET6
 * @returns counts and the skipped addresses
 * @throws NlError when an address cannot be added for any reason but EEXIST
 */
export function nlCopyAddrs(
  srcFd: number,
  srcIndex: number,
  dstFd: number,
  dstIndex: number,
  family: number,
): NlCopyResult {
  const res: NlCopyResult = { copied: 0, existing: 0, skipped: [] };
  for (const m of nlDump(srcFd, nlReqDumpAddrs(family, srcIndex))) {
    if (m.type !== RTM_NEWADDR) continue;
    const a = nlParseAddr(m);
    if (a.family !== family || a.index !== srcIndex) continue;
    const what = `${nlAddrToString(a.addr)}/${a.prefixLen}`;
    const c = nlAddrCopyMsg(m, srcIndex, dstIndex);
    if (c.msg === null) {
      res.skipped.push({ what, reason: c.reason });
      continue;
    }
    try {
      nlDo(dstFd, c.msg);
      res.copied++;
    } catch (e) {
      if (!nlErrorIs(e, "EEXIST")) throw e;
      res.existing++;
    }
  }
  return res;
}

/**
 * Copies the routes of a host interface onto a namespace interface, as
 * pasta's nl_route_dup: main-table unicast routes using only that interface,
 * rewritten by nlRouteCopyMsg. Routes the target interface already has (same
 * destination, TOS and metric, such as the prefix routes of copied
 * addresses) are counted as existing and not sent. Direct routes are added
 * first; a route whose gateway is not reachable yet (ENETUNREACH,
 * EHOSTUNREACH) is retried after the others, as long as a pass adds
 * something, and then reported as skipped. EEXIST counts as existing.
 * @param srcFd netlink socket of the namespace to read (the host)
 * @param srcIndex interface to copy from
 * @param dstFd netlink socket of the namespace to configure
 * @param dstIndex interface to copy onto
 * @param family AF_INET or AF_INET6
 * @returns counts and the skipped routes
 * @throws NlError when a route fails for another reason
 */
export function nlCopyRoutes(
  srcFd: number,
  srcIndex: number,
  dstFd: number,
  dstIndex: number,
  family: number,
): NlCopyResult {
  const res: NlCopyResult = { copied: 0, existing: 0, skipped: [] };
  const filter = { table: RT_TABLE_MAIN, type: RTN_UNICAST, oif: srcIndex };
  const todo: { what: string; direct: boolean; msg: Uint8Array<ArrayBuffer> }[] = [];
  /* Routes the target already has, such as the prefix routes of copied
   * addresses: IPv4 would add a second alias for a prefix route that differs
   * only in its preferred source, so these are not sent at all. */
  const have = new Set(
    nlRoutes(dstFd, family).filter((r) => routeUses(r, dstIndex)).map(routeKey),
  );
  for (const m of nlDump(srcFd, nlReqDumpRoutes(family, filter))) {
    if (m.type !== RTM_NEWROUTE) continue;
    const r = nlParseRoute(m);
    if (r.family !== family || r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST) continue;
    if (r.flags & RTM_F_CLONED || !routeUses(r, srcIndex)) continue;
    if (have.has(routeKey(r))) {
      res.existing++;
      continue;
    }
    const what = nlRouteToString(r);
    const c = nlRouteCopyMsg(m, srcIndex, dstIndex);
    if (c.msg === null) {
      res.skipped.push({ what, reason: c.reason });
      continue;
    }
    const direct = r.gateway === null && r.multipath.every((nh) => nh.gateway === null);
    todo.push({ what, direct, msg: c.msg });
  }
  /* stable: direct routes first, each group in kernel order */
  let pending = [...todo.filter((t) => t.direct), ...todo.filter((t) => !t.direct)];
  while (pending.length > 0) {
    const later: typeof pending = [];
    const reasons: string[] = [];
    for (const t of pending) {
      try {
        nlDo(dstFd, t.msg);
        res.copied++;
      } catch (e) {
        if (nlErrorIs(e, "EEXIST")) res.existing++;
        else if (nlErrorIs(e, "ENETUNREACH") || nlErrorIs(e, "EHOSTUNREACH")) {
          later.push(t);
          reasons.push((e as Error).message);
        } else throw e;
      }
    }
    if (later.length === pending.length) {
      later.forEach((t, i) => res.skipped.push({ what: t.what, reason: reasons[i]! }));
      break;
    }
    pending = later;
  }
  return res;
}

/* ----------------------------------------------------------------- upstream */

/** An address of the upstream interface. */
export interface UpstreamAddr {
  /** the address */
  addr: Uint8Array;
  /** prefix length */
  prefixLen: number;
  /** RT_SCOPE_* */
  scope: number;
  /** IFA_F_* flags */
  flags: number;
}

/** The host's upstream interface for one family (what pasta copies). */
export interface Upstream {
  /** AF_INET or AF_INET6 */
  family: number;
  /** interface index (in the socket's namespace) */
  ifindex: number;
  /** interface name */
  ifname: string;
  /** MTU */
  mtu: number;
  /** MAC address, or null when the link has none */
  mac: Uint8Array | null;
  /** IFF_* flags */
  flags: number;
  /**
   * Addresses of the family, deprecated ones left out; pasta's choice first
   * (IPv4: longest prefix; IPv6: global scope, longest prefix), then the others
   * in kernel order. May be empty.
   */
  addrs: UpstreamAddr[];
  /** IPv6: the link-local address with the longest prefix, else null */
  linkLocal: Uint8Array | null;
  /** gateway of the interface's default route, null when it has none */
  gateway: Uint8Array | null;
  /** whether the interface was chosen for (or has) a default route */
  hasDefaultRoute: boolean;
  /** main-table routes of the family through the interface */
  routes: NlRoute[];
}

function linkLocalPrefix(dst: Uint8Array, len: number): boolean {
  if (dst.length === 4) return len >= 16 && dst[0] === 169 && dst[1] === 254;
  return len >= 10 && dst[0] === 0xfe && (dst[1]! & 0xc0) === 0x80;
}

function routeIfindex(r: NlRoute): number {
  return r.oif || r.multipath[0]?.ifindex || 0;
}

function candidate(r: NlRoute, family: number): boolean {
  return r.family === family && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST &&
    !(r.flags & RTM_F_CLONED);
}

/**
 * Chooses the upstream interface from a route list, as pasta's
 * nl_get_ext_if: the interface of the default route with the lowest metric
 * (the first of equals), else the interface of the first other route, not
 * counting routes to link-local prefixes or without an interface. Only
 * main-table unicast routes count.
 * @param routes routes of the family (nlRoutes)
 * @param family AF_INET or AF_INET6
 * @returns the interface and its default route (null if chosen without one),
 *   or null when no route qualifies
 */
export function nlPickUpstream(
  routes: readonly NlRoute[],
  family: number,
): { ifindex: number; route: NlRoute | null } | null {
  let best: NlRoute | null = null;
  let any = 0;
  for (const r of routes) {
    if (!candidate(r, family)) continue;
    const ifi = routeIfindex(r);
    if (ifi === 0 || linkLocalPrefix(r.dst, r.dstLen)) continue;
    if (r.dstLen === 0) {
      if (best === null || r.priority < best.priority) best = r;
    } else if (any === 0) any = ifi;
  }
  if (best !== null) return { ifindex: routeIfindex(best), route: best };
  return any ? { ifindex: any, route: null } : null;
}

/**
 * Finds the gateway of an interface's default route, as pasta's
 * nl_route_get_def: the lowest-metric default route through the interface
 * that has a gateway; for a multipath route, the gateway of the nexthop on that
 * interface with the highest weight (the last of equals, as passt).
 * @param routes routes of the family (nlRoutes)
 * @param family AF_INET or AF_INET6
 * @param ifindex the interface
 * @returns the gateway, or null
 */
export function nlDefaultGateway(
  routes: readonly NlRoute[],
  family: number,
  ifindex: number,
): Uint8Array | null {
  const defaults = routes
    .filter((r) => candidate(r, family) && r.dstLen === 0 && routeUses(r, ifindex))
    .sort((a, b) => a.priority - b.priority);
  for (const r of defaults) {
    if (r.oif === ifindex && r.gateway !== null) return r.gateway;
    let gw: Uint8Array | null = null;
    let weight = -1;
    for (const nh of r.multipath) {
      if (nh.ifindex !== ifindex || nh.gateway === null || nh.weight < weight) continue;
      weight = nh.weight;
      gw = nh.gateway;
    }
    if (gw !== null) return gw;
  }
  return null;
}

/**
 * Orders addresses as pasta picks them: the chosen one first.
 * @param addrs addresses of one interface and family (nlAddrs)
 * @param family AF_INET or AF_INET6
 * @returns non-deprecated addresses, pasta's choice first, and the IPv6 link-local pick
 */
export function nlOrderUpstreamAddrs(
  addrs: readonly NlAddr[],
  family: number,
): { addrs: UpstreamAddr[]; linkLocal: Uint8Array | null } {
  const usable = addrs.filter((a) => a.family === family && !(a.flags & IFA_F_DEPRECATED));
  let pick: NlAddr | null = null;
  let ll: NlAddr | null = null;
  for (const a of usable) {
    if (family === AF_INET6 && a.scope === RT_SCOPE_LINK) {
      if (ll === null || a.prefixLen > ll.prefixLen) ll = a;
      continue;
    }
    if (family === AF_INET6 && a.scope !== RT_SCOPE_UNIVERSE) continue;
    if (pick === null || a.prefixLen > pick.prefixLen) pick = a;
  }
  const ordered = pick === null ? usable : [pick, ...usable.filter((a) => a !== pick)];
  return {
    addrs: ordered.map((a) => ({
      addr: a.addr,
      prefixLen: a.prefixLen,
      scope: a.scope,
      flags: a.flags,
    })),
    linkLocal: ll === null ? null : ll.addr,
  };
}

/**
 * Finds the host's upstream interface for a family, as pasta does at start:
 * the interface of the lowest-metric default route (or `ifname`), with its
 * name, MTU, MAC, addresses, default gateway and routes.
 *
 * Without a default route pasta still uses the interface of any other route
 * (`hasDefaultRoute` false, `gateway` null); with no usable route at all this
 * returns null, and pasta leaves the family out (or, both gone, runs in local
 * mode). Whether an interface without addresses is usable is the caller's
 * choice (pasta: IPv4 needs an address unless one is configured, IPv6 a
 * global and a link-local one).
 * @param fd netlink socket in the host's namespace
 * @param family AF_INET or AF_INET6
 * @param ifname use this interface instead of choosing one
 * @returns the upstream interface, or null when there is none
 * @throws NlError "RTM_GETLINK: ENODEV" when `ifname` does not exist
 */
export function hostUpstream(fd: number, family: number, ifname?: string): Upstream | null {
  nlAddrLen(family);
  const routes = nlRoutes(fd, family);
  let ifindex: number;
  let link: NlLink;
  if (ifname !== undefined && ifname !== "") {
    link = nlLinkByName(fd, ifname);
    ifindex = link.index;
  } else {
    const pick = nlPickUpstream(routes, family);
    if (pick === null) return null;
    ifindex = pick.ifindex;
    link = nlLink(fd, ifindex);
  }
  const mine = routes.filter((r) => routeUses(r, ifindex));
  const hasDefaultRoute = mine.some((r) => candidate(r, family) && r.dstLen === 0);
  const { addrs, linkLocal } = nlOrderUpstreamAddrs(nlAddrs(fd, family, ifindex), family);
  return {
    family,
    ifindex,
    ifname: link.name,
    mtu: link.mtu,
    mac: link.mac !== null && link.mac.length === ETH_ALEN ? link.mac : null,
    flags: link.flags,
    addrs,
    linkLocal,
    gateway: nlDefaultGateway(routes, family, ifindex),
    hasDefaultRoute,
    routes: mine,
  };
}
