/**
 * ns_conf.ts - configuring the guest's side over rtnetlink, as pasta does.
 *
 * Always: loopback up, the tap's MAC set (--ns-mac-addr) or read. With
 * --config-net: MTU, link up, the addresses and routes of the host's upstream
 * interface copied onto the tap (or the ones given with -a/-g, or the
 * link-local ones of local mode). IPv6 duplicate address detection is dodged
 * as pasta does: the link comes up with NOARP, link-local addresses get NODAD,
 * then NOARP is cleared.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import type { Ctx } from "../ctx.ts";
import { AF_INET, AF_INET6 } from "../ffi/layout.ts";
import { IFF_NOARP, IFF_UP } from "../ffi/netlink.ts";
import {
  nlAddAddr,
  nlAddRoute,
  nlCopyAddrs,
  nlCopyRoutes,
  nlLinkByName,
  nlLinkSetFlags,
  nlSetLinkLocalNodad,
  nlSetMac,
  nlSetMtu,
  type Upstream,
} from "../ffi/netlink_io.ts";
import { SysError } from "../ffi/errno.ts";
import { ConfError } from "../conf/errors.ts";
import { debug, warn } from "../log.ts";

/** Netlink sockets and what was learned of the host, for nsConfigure(). */
export interface NsConfInput {
  /** netlink socket in the host's namespace */
  hostNl: number;
  /** netlink socket in the guest's namespace */
  nsNl: number;
  /** name of the tap in the guest's namespace */
  tapName: string;
  /** the host's IPv4 upstream, or null */
  up4: Upstream | null;
  /** the host's IPv6 upstream, or null */
  up6: Upstream | null;
  /** whether pasta's local mode is on (no upstream at all) */
  local: boolean;
}

/** Rethrows a failure with pasta's wording of what could not be done. */
function fail(what: string, e: unknown): never {
  if (e instanceof SysError) throw new SysError(what, e.errno);
  throw new ConfError(`${what}: ${e instanceof Error ? e.message : e}`);
}

/**
 * Brings the guest's loopback interface up (all that --splice-only needs).
 * @param nsNl netlink socket in the guest's namespace
 */
export function nsLoopbackUp(nsNl: number): void {
  try {
    nlLinkSetFlags(nsNl, 1, IFF_UP, IFF_UP);
  } catch (e) {
    fail("Couldn't bring up loopback interface in namespace", e);
  }
}

/**
 * Brings loopback up in the guest's namespace and learns (or sets, with
 * --ns-mac-addr) the tap's MAC address: what orzo needs before its
 * protocols start (listeners on the guest's loopback). The guest has no
 * route through the tap yet: {@linkcode nsAddrsConfigure} gives it one.
 * @param c execution context (guest MAC is filled in)
 * @param conf the configuration
 * @param io sockets and the host's upstream interfaces
 * @returns the tap's interface index in the guest's namespace
 */
export function nsLinkPrepare(c: Ctx, conf: Config, io: NsConfInput): number {
  const { nsNl } = io;
  nsLoopbackUp(nsNl);
  const link = nlLinkByName(nsNl, io.tapName);
  const idx = link.index;
  if (conf.nsMac !== undefined) {
    try {
      nlSetMac(nsNl, idx, conf.nsMac);
    } catch (e) {
      fail("Couldn't set MAC address in namespace", e);
    }
    c.guestMac.set(conf.nsMac);
  } else if (link.mac !== null) c.guestMac.set(link.mac);
  return idx;
}

/**
 * With --config-net, sets the tap's MTU, brings it up and gives it the
 * addresses and routes: from here on the guest sends through it, so orzo
 * does it last, once its loop can answer (a guest that pings as soon as its
 * route appears would otherwise wait for the protocols' set-up).
 * @param c execution context
 * @param conf the configuration
 * @param io sockets and the host's upstream interfaces
 * @param idx the tap's interface index (from nsLinkPrepare())
 */
export function nsAddrsConfigure(c: Ctx, conf: Config, io: NsConfInput, idx: number): void {
  const { nsNl, hostNl } = io;
  if (!conf.configNet) return;

  if (c.mtu !== 0) nlSetMtu(nsNl, idx, c.mtu);
  const noarp = c.ip6.enabled ? IFF_NOARP : 0;
  nlLinkSetFlags(nsNl, idx, IFF_UP | noarp, IFF_UP | noarp);

  if (c.ip4.enabled) {
    try {
      if (io.local || io.up4 === null || conf.addr4 !== undefined || conf.noCopyAddrs) {
        nlAddAddr(nsNl, AF_INET, idx, c.ip4.addr, c.ip4.prefixLen);
      } else {
        nlCopyAddrs(hostNl, io.up4.ifindex, nsNl, idx, AF_INET);
      }
    } catch (e) {
      fail("Couldn't set IPv4 address(es) in namespace", e);
    }
    try {
      if (io.local || io.up4 === null || conf.gateway4 !== undefined || conf.noCopyRoutes) {
        if (c.ip4.gateway.some((b) => b !== 0)) {
          nlAddRoute(nsNl, AF_INET, idx, new Uint8Array(4), 0, c.ip4.gateway);
        }
      } else {
        const r = nlCopyRoutes(hostNl, io.up4.ifindex, nsNl, idx, AF_INET);
        for (const s of r.skipped) debug(`IPv4 route ${s.what} not copied: ${s.reason}`);
      }
    } catch (e) {
      fail("Couldn't set IPv4 route(s) in guest", e);
    }
  }

  if (c.ip6.enabled) {
    try {
      nlSetLinkLocalNodad(nsNl, idx);
    } catch (e) {
      warn(`Can't set nodad for LL in namespace: ${e instanceof Error ? e.message : e}`);
    }
    nlLinkSetFlags(nsNl, idx, 0, IFF_NOARP);
    try {
      if (io.local || io.up6 === null || conf.addr6 !== undefined || conf.noCopyAddrs) {
        if (c.ip6.addr.some((b) => b !== 0)) {
          nlAddAddr(nsNl, AF_INET6, idx, c.ip6.addr, c.ip6.prefixLen);
        }
      } else {
        nlCopyAddrs(hostNl, io.up6.ifindex, nsNl, idx, AF_INET6);
      }
    } catch (e) {
      fail("Couldn't set IPv6 address(es) in namespace", e);
    }
    try {
      if (io.local || io.up6 === null || conf.gateway6 !== undefined || conf.noCopyRoutes) {
        if (c.ip6.gateway.some((b) => b !== 0)) {
          nlAddRoute(nsNl, AF_INET6, idx, new Uint8Array(16), 0, c.ip6.gateway);
        }
      } else {
        const r = nlCopyRoutes(hostNl, io.up6.ifindex, nsNl, idx, AF_INET6);
        for (const s of r.skipped) debug(`IPv6 route ${s.what} not copied: ${s.reason}`);
      }
    } catch (e) {
      fail("Couldn't set IPv6 route(s) in guest", e);
    }
  }
}
