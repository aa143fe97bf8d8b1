/**
 * dns.ts - which resolvers the guest is told about, and where its DNS
 * queries to the --dns-forward address go.
 *
 * Theory of operation (passt's get_dns() and add_dns_resolv()):
 *
 * - `--dns-forward ADDR` (once per IP version) makes ADDR, port 53, a
 *   stand-in for the host's resolver: fwd/nat.ts rewrites UDP and TCP flows
 *   from the guest to ADDR:53 so that they reach `dnsHost`, and replies come
 *   back from ADDR.
 * - `dnsHost` is `--dns-host`, else the first nameserver of that IP version
 *   in the host's /etc/resolv.conf.
 * - The resolvers announced to the guest (DHCP, NDP RDNSS; pasta announces
 *   them only with --dhcp-dns, passt unless --no-dhcp-dns) are the -D
 *   addresses, else the host's nameservers, at most three per IP version. A
 *   loopback nameserver (127.0.0.53 and the like) cannot be reached as such
 *   from the guest: it is announced as the address mapped to the host's
 *   loopback (the gateway by default), and DNS to that address is forwarded
 *   to the host's resolver (dnsMatch is set to it unless --dns-forward says
 *   otherwise); without such an address it is skipped.
 * - The search list is -S, else the host's `search` line, unless `-S none`.
 *
 * resolv.conf is read through libc (orzo runs with --allow-ffi only).
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import type { Ctx } from "../ctx.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import { readFileText } from "../ffi/mem.ts";
import { debug, warn } from "../log.ts";

/** Resolvers per IP version that are announced at most (glibc's MAXNS). */
export const DNS_MAXNS = 3;
/** Search domains announced at most (passt's array minus its terminator). */
export const DNS_MAXSEARCH = 6;
/** The host's resolver configuration. */
export const RESOLV_CONF = "/etc/resolv.conf";

/** What resolv.conf says, as text. */
export interface ResolvConf {
  /** nameserver addresses in order (IPv6 scope suffixes removed) */
  nameservers: string[];
  /** domains of the first `search` line */
  search: string[];
}

/**
 * Parses resolv.conf text: `nameserver ADDR` lines and the first `search`
 * line (`domain` is ignored, as passt does). Comments start with # or ;.
 * @param text file contents
 * @returns nameservers and search domains, in order
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseResolvConf } from "./dns.ts";
 *
 * const r = parseResolvConf("# x\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\nsearch a.example b\n");
 * assert.deepEqual(r.nameservers, ["192.0.2.1", "fe80::1"]);
 * assert.deepEqual(r.search, ["a.example", "b"]);
 * ```
 */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [] };
  let searchSeen = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const words = line.split(/[ \t]+/);
    if (words[0] === "nameserver" && words[1] !== undefined) {
      out.nameservers.push(words[1].replace(/%.*$/, ""));
    } else if (words[0] === "search" && !searchSeen) {
      searchSeen = true;
      out.search = words.slice(1).filter((w) => w.length > 0);
    }
  }
  return out;
}

function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

function loop4(a: Uint8Array): boolean {
  return a[0] === 127;
}

function loop6(a: Uint8Array): boolean {
  for (let i = 0; i < 15; i++) if (a[i] !== 0) return false;
  return a[15] === 1;
}

/**
 * Fills the context's DNS settings: dnsMatch and dnsHost per IP version, the
 * resolvers and search domains to announce. Call after the addressing
 * (gateway, mapHostLoopback) is known.
 * @param c execution context
 * @param conf the configuration
 * @param readResolv reads the host's resolv.conf; returns null when it
 *   cannot be read (injectable for tests)
 */
export function dnsConf(
  c: Ctx,
  conf: Config,
  readResolv: () => string | null = readHostResolvConf,
): void {
  if (conf.dnsForward4 !== undefined) c.ip4.dnsMatch.set(parseIp4(conf.dnsForward4)!);
  if (conf.dnsForward6 !== undefined) c.ip6.dnsMatch.set(parseIp6(conf.dnsForward6)!);
  if (conf.dnsHost4 !== undefined) c.ip4.dnsHost.set(parseIp4(conf.dnsHost4)!);
  if (conf.dnsHost6 !== undefined) c.ip6.dnsHost.set(parseIp6(conf.dnsHost6)!);

  const text = readResolv();
  const rc = text === null ? { nameservers: [], search: [] } : parseResolvConf(text);
  const dns4: Uint8Array[] = [];
  const dns6: Uint8Array[] = [];
  /* -D addresses, when given, are what is announced */
  for (const d of conf.dnsNone ? [] : conf.dns) {
    const a4 = parseIp4(d);
    if (a4 !== null) {
      if (dns4.length < DNS_MAXNS) dns4.push(a4);
      continue;
    }
    const a6 = parseIp6(d);
    if (a6 !== null && dns6.length < DNS_MAXNS) dns6.push(a6);
  }
  const given4 = dns4.length > 0;
  const given6 = dns6.length > 0;
  for (const ns of rc.nameservers) {
    const a4 = parseIp4(ns);
    if (a4 !== null) {
      if (isZero(c.ip4.dnsHost)) c.ip4.dnsHost.set(a4);
      if (conf.dnsNone || given4 || dns4.length >= DNS_MAXNS) continue;
      if (loop4(a4)) {
        /* the guest reaches the host's loopback only through the mapping */
        if (isZero(c.ip4.mapHostLoopback)) continue;
        if (isZero(c.ip4.dnsMatch)) c.ip4.dnsMatch.set(c.ip4.mapHostLoopback);
        dns4.push(c.ip4.mapHostLoopback.slice());
      } else dns4.push(a4);
      continue;
    }
    const a6 = parseIp6(ns);
    if (a6 === null) continue;
    if (isZero(c.ip6.dnsHost)) c.ip6.dnsHost.set(a6);
    if (conf.dnsNone || given6 || dns6.length >= DNS_MAXNS) continue;
    if (loop6(a6)) {
      if (isZero(c.ip6.mapHostLoopback)) continue;
      if (isZero(c.ip6.dnsMatch)) c.ip6.dnsMatch.set(c.ip6.mapHostLoopback);
      dns6.push(c.ip6.mapHostLoopback.slice());
    } else dns6.push(a6);
  }
  if (!isZero(c.ip4.dnsMatch) && isZero(c.ip4.dnsHost)) {
    warn("No IPv4 nameserver on the host: DNS to the --dns-forward address goes nowhere");
  }
  if (!isZero(c.ip6.dnsMatch) && isZero(c.ip6.dnsHost)) {
    warn("No IPv6 nameserver on the host: DNS to the --dns-forward address goes nowhere");
  }
  if (!conf.dnsNone && dns4.length + dns6.length === 0) {
    debug("Couldn't get any nameserver address");
  }

  /* pasta announces resolvers and search domains only with --dhcp-dns/--dhcp-search */
  c.dns4 = conf.dhcpDns && c.ip4.enabled ? dns4 : [];
  c.dns6 = conf.dhcpDns && c.ip6.enabled ? dns6 : [];
  const search = conf.searchNone
    ? []
    : conf.search.length > 0
    ? conf.search.slice(0, DNS_MAXSEARCH)
    : rc.search.slice(0, DNS_MAXSEARCH);
  c.dnsSearch = conf.dhcpSearch ? search : [];
}

/**
 * Reads the host's /etc/resolv.conf through libc.
 * @returns its text, or null when it cannot be read
 */
export function readHostResolvConf(): string | null {
  try {
    return readFileText(RESOLV_CONF);
  } catch {
    debug(`Cannot read ${RESOLV_CONF}`);
    return null;
  }
}
