/**
 * _addr_opts.ts - the address options (-a, -g, -o, -D, --dns-forward,
 * --dns-host, --map-host-loopback, --map-guest-addr) with passt's checks.
 *
 * Each applier updates the Config for one occurrence of its option. As in
 * passt, an IPv6 reading of the text is tried before an IPv4 one (except -D,
 * which tries IPv4 first), and each option refuses the address classes that
 * make no sense for it.
 *
 * @module
 */

import {
  formatIp,
  formatIp4,
  formatIp6,
  ip4IsBroadcast,
  ip4IsLoopback,
  ip4IsMulticast,
  ip4IsUnspecified,
  ip6IsLoopback,
  ip6IsMulticast,
  ip6IsUnspecified,
  ip6IsV4Compat,
  ip6IsV4Mapped,
  type IpAddr,
  ipUnmap,
  parseIp,
  parseIp4,
  parseIp6,
} from "./addr.ts";
import { parseUnsigned } from "./_num.ts";
import type { Config } from "./config.ts";
import { ConfError } from "./errors.ts";

/** Most resolvers per IP version (MAXNS), as passt keeps. */
export const MAXNS = 3;
/** Most search domains (MAXDNSRCH). */
export const MAXDNSRCH = 6;
/** Longest search domain (NS_MAXDNAME minus the terminator). */
const MAXDNAME_SEARCH = 1024;

/** Address classes an option refuses. */
interface Refuse {
  unspecified?: boolean;
  loopback?: boolean;
  multicast?: boolean;
  broadcast?: boolean;
  v4mapped?: boolean;
  v4compat?: boolean;
}

/** Names the first refused class `a` falls in, or returns null when acceptable. */
function refused(a: IpAddr, r: Refuse): string | null {
  const b = a.bytes;
  if (a.family === 4) {
    if (r.unspecified && ip4IsUnspecified(b)) return "unspecified address";
    if (r.broadcast && ip4IsBroadcast(b)) return "broadcast address";
    if (r.loopback && ip4IsLoopback(b)) return "loopback address";
    if (r.multicast && ip4IsMulticast(b)) return "multicast address";
    return null;
  }
  if (r.unspecified && ip6IsUnspecified(b)) return "unspecified address";
  if (r.loopback && ip6IsLoopback(b)) return "loopback address";
  if (r.v4mapped && ip6IsV4Mapped(b)) return "IPv4-mapped address";
  if (r.v4compat && ip6IsV4Compat(b)) return "IPv4-compatible address";
  if (r.multicast && ip6IsMulticast(b)) return "multicast address";
  return null;
}

/**
 * Parses and checks an address argument.
 * @param arg the text
 * @param what the message prefix, for example "Invalid gateway address"
 * @param r classes to refuse
 * @returns the address, as written (IPv6 tried first)
 */
function checkedAddr(arg: string, what: string, r: Refuse): IpAddr {
  const a = parseIp(arg);
  if (a === null) throw new ConfError(`${what} "${arg}": not an IPv4 or IPv6 address`);
  const why = refused(a, r);
  if (why !== null) throw new ConfError(`${what} "${arg}": ${why}`);
  return a;
}

/** The IPv4 class prefix length (A: 8, B: 16, C: 24, else 32). */
function classPrefixLen(a: Uint8Array): number {
  if ((a[0]! & 0x80) === 0) return 8;
  if ((a[0]! & 0xc0) === 0x80) return 16;
  if ((a[0]! & 0xe0) === 0xc0) return 24;
  return 32;
}

/** State shared between -a and -n while scanning. */
export interface PrefixState {
  /** prefix length from -n, if given */
  optN: number | undefined;
  /** some -a had ADDR/LEN */
  cidr: boolean;
}

/**
 * Applies -a ADDR[/LEN].
 * @param c the config
 * @param arg the argument
 * @param st -a/-n state
 */
export function confAddress(c: Config, arg: string, st: PrefixState): void {
  const bad = (why: string) => new ConfError(`Invalid guest address "${arg}": ${why}`);
  const slash = arg.indexOf("/");
  let text = slash < 0 ? arg : arg.slice(0, slash);
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const b6 = parseIp6(text);
  const b4 = b6 === null ? parseIp4(text) : null;
  if (b6 === null && b4 === null) throw bad("not an IPv4 or IPv6 address");
  const written: IpAddr = b6 !== null ? { family: 6, bytes: b6 } : { family: 4, bytes: b4! };
  const a = ipUnmap(written);
  const why = refused(a, { unspecified: true, multicast: true, broadcast: true, loopback: true });
  if (why !== null) throw bad(why);

  let plen: number | undefined;
  if (slash >= 0) {
    const lenText = arg.slice(slash + 1);
    plen = parseUnsigned(lenText, 10) ?? undefined;
    const max = written.family === 4 ? 32 : 128;
    if (plen === undefined || plen > max) throw bad(`prefix length "${lenText}" is not 0-${max}`);
    if (st.optN !== undefined) {
      throw new ConfError(`Redundant prefix length in "${arg}": -n was given too`);
    }
    if (written.family === 6 && a.family === 4) {
      if (plen < 96) throw bad(`prefix length ${plen} is too short for an IPv4-mapped address`);
      plen -= 96;
    }
    st.cidr = true;
  }

  if (a.family === 4) {
    if (c.addr4 !== undefined) {
      throw new ConfError(`Redundant IPv4 address "${arg}": -a was already given for IPv4`);
    }
    c.addr4 = formatIp4(a.bytes);
    c.prefixLen4 = plen ?? st.optN ?? classPrefixLen(a.bytes);
  } else {
    if (c.addr6 !== undefined) {
      throw new ConfError(`Redundant IPv6 address "${arg}": -a was already given for IPv6`);
    }
    c.addr6 = formatIp6(a.bytes);
    c.prefixLen6 = plen ?? 64;
  }
}

/**
 * Applies -g ADDR.
 * @param c the config
 * @param arg the argument
 */
export function confGateway(c: Config, arg: string): void {
  const a = checkedAddr(arg, "Invalid gateway address", {
    unspecified: true,
    loopback: true,
    broadcast: true,
  });
  const key = a.family === 4 ? "gateway4" : "gateway6";
  if (c[key] !== undefined) {
    throw new ConfError(`Redundant gateway "${arg}": -g was already given for IPv${a.family}`);
  }
  c[key] = formatIp(a);
}

/**
 * Applies -o ADDR.
 * @param c the config
 * @param arg the argument
 */
export function confOutbound(c: Config, arg: string): void {
  const a = checkedAddr(arg, "Invalid outbound address", {
    unspecified: true,
    broadcast: true,
    multicast: true,
  });
  if (a.family === 6) {
    const why = refused(a, { loopback: true, v4mapped: true, v4compat: true });
    if (why !== null) throw new ConfError(`Invalid outbound address "${arg}": ${why}`);
  }
  const key = a.family === 4 ? "outbound4" : "outbound6";
  if (c[key] !== undefined) {
    throw new ConfError(
      `Redundant outbound address "${arg}": -o was already given for IPv${a.family}`,
    );
  }
  c[key] = formatIp(a);
}

/**
 * Applies -D ADDR|none. Resolvers beyond three per IP version are dropped
 * with a warning, as passt drops them.
 * @param c the config
 * @param arg the argument
 */
export function confDns(c: Config, arg: string): void {
  if (arg === "none") {
    c.dnsNone = true;
    c.dns = [];
    delete c.dnsForward4;
    delete c.dnsForward6;
    delete c.dnsHost4;
    delete c.dnsHost6;
    return;
  }
  c.dnsNone = false;
  const b4 = parseIp4(arg);
  const a: IpAddr | null = b4 !== null ? { family: 4, bytes: b4 } : parseIp(arg);
  if (a === null) throw new ConfError(`Invalid DNS address "${arg}": not an IPv4 or IPv6 address`);
  const text = formatIp(a);
  const same = c.dns.filter((d) => d.includes(":") === (a.family === 6)).length;
  if (same >= MAXNS) {
    c.warnings.push(`Ignoring DNS address ${text}: at most ${MAXNS} per IP version are used`);
    return;
  }
  c.dns.push(text);
}

/**
 * Applies -S LIST|none (space-separated domains; repeated options add up).
 * @param c the config
 * @param arg the argument
 */
export function confSearch(c: Config, arg: string): void {
  if (arg === "none") {
    c.searchNone = true;
    c.search = [];
    return;
  }
  c.searchNone = false;
  const names = arg.split(/\s+/).filter((s) => s !== "");
  if (names.length === 0) throw new ConfError(`Invalid DNS search list "${arg}": empty`);
  for (const n of names) {
    if (n.length > MAXDNAME_SEARCH) {
      throw new ConfError(`Cannot use DNS search domain "${n}": too long`);
    }
    if (c.search.length >= MAXDNSRCH) {
      throw new ConfError(`Cannot use DNS search domain "${n}": at most ${MAXDNSRCH} are allowed`);
    }
    c.search.push(n);
  }
}

/**
 * Applies --dns-forward ADDR.
 * @param c the config
 * @param arg the argument
 */
export function confDnsForward(c: Config, arg: string): void {
  const a = checkedAddr(arg, "Invalid DNS forwarding address", {
    unspecified: true,
    loopback: true,
    broadcast: true,
  });
  if (a.family === 4) c.dnsForward4 = formatIp(a);
  else c.dnsForward6 = formatIp(a);
}

/**
 * Applies --dns-host ADDR.
 * @param c the config
 * @param arg the argument
 */
export function confDnsHost(c: Config, arg: string): void {
  const a = checkedAddr(arg, "Invalid host nameserver address", {
    unspecified: true,
    broadcast: true,
  });
  if (a.family === 4) c.dnsHost4 = formatIp(a);
  else c.dnsHost6 = formatIp(a);
}

/**
 * Applies --map-host-loopback or --map-guest-addr (passt's conf_nat()).
 * `none` clears both families; for --map-host-loopback it also means
 * --no-map-gw.
 * @param c the config
 * @param arg the argument
 * @param which "host-loopback" or "guest-addr"
 */
export function confNat(c: Config, arg: string, which: "host-loopback" | "guest-addr"): void {
  const k4 = which === "host-loopback" ? "mapHostLoopback4" : "mapGuestAddr4";
  const k6 = which === "host-loopback" ? "mapHostLoopback6" : "mapGuestAddr6";
  if (arg === "none") {
    delete c[k4];
    delete c[k6];
    if (which === "host-loopback") c.noMapGw = true;
    return;
  }
  const a = checkedAddr(arg, "Invalid address to remap", {
    unspecified: true,
    loopback: true,
    multicast: true,
  });
  if (a.family === 4) c[k4] = formatIp(a);
  else c[k6] = formatIp(a);
}
