/**
 * conf.ts - pasta/passt-compatible command line to Config.
 *
 * Theory of operation, following passt's conf():
 * 1. Mode. `--pasta` anywhere among the options (orzo's own flag), or a
 *    program name containing "pasta", selects pasta mode; otherwise passt
 *    mode. `--vhost-user` is also noted up front, because --repair-path and
 *    the migration options depend on it wherever it appears.
 * 2. One in-order pass over the options, as getopt_long() delivers them, with
 *    passt's per-option checks, including the refusal of options that belong
 *    to the other mode. --help, --version and --print-capabilities end the
 *    pass at once (passt prints and exits there), so later options are not
 *    looked at. Port options are only collected.
 * 3. Checks between options (--splice-only, --no-copy-*, --host-lo-to-ns-lo,
 *    --stats) and the effects options imply on each other.
 * 4. Port options, in order, now that -4/-6 and --no-tcp/--no-udp are known.
 * 5. Non-option arguments: pasta takes a PID or a command; passt takes none.
 * 6. pasta's defaults: `auto` for each of -t, -u, -T, -U not given.
 *
 * @module
 */

import { parseIp4 } from "./addr.ts";
import {
  confAddress,
  confDns,
  confDnsForward,
  confDnsHost,
  confGateway,
  confNat,
  confOutbound,
  confSearch,
  type PrefixState,
} from "./_addr_opts.ts";
import { parseMac } from "./addr.ts";
import {
  checkDomainName,
  checkIfname,
  checkPath,
  parseFd,
  parseLogSize,
  parseMtu,
  parseNetmask,
  parseNumberArg,
  parseRunas,
  UNIX_PATH_MAX,
} from "./_values.ts";
import { type Config, configDefaults } from "./config.ts";
import { ConfError } from "./errors.ts";
import { Getopt, type GetoptResult } from "./getopt.ts";
import { LONG_OPTIONS, OPTSTRING, SHORT_NAMES } from "./options.ts";
import { confPorts, type EphemeralRange, type PortsOptname } from "./ports.ts";

export type { Config, RunAs } from "./config.ts";
export { USAGE_TEXT, VERSION } from "./usage.ts";

/** Where a namespace NAME given to --netns lives. */
export const NETNS_RUN_DIR = "/run/netns";
/** Smallest MTU IPv4 can work with. */
const IPV4_MIN_MTU = 68;
/** Smallest MTU IPv6 can work with. */
const IPV6_MIN_MTU = 1280;

/** What confParse() needs besides argv. */
export interface ConfParseOptions {
  /** the program was started under a name containing "pasta" */
  argv0Pasta: boolean;
  /** the host's ephemeral port range (see probeEphemeralRange()); RFC 6335's if absent */
  ephemeral?: EphemeralRange;
}

/** Scanning state that is not part of Config. */
interface ScanState extends PrefixState {
  vhostUser: boolean;
  netnsOnly: boolean;
  ports: { optname: PortsOptname; arg: string }[];
}

/** Finds --pasta and --vhost-user among the options, ignoring any error (passt's conf_mode()). */
function scanMode(argv: readonly string[]): { pasta: boolean; vhostUser: boolean } {
  const found = { pasta: false, vhostUser: false };
  const g = new Getopt(argv, OPTSTRING, LONG_OPTIONS);
  try {
    for (let o = g.next(); o !== null; o = g.next()) {
      if (o.val === "pasta") found.pasta = true;
      if (o.val === "vhost-user") found.vhostUser = true;
    }
  } catch {
    // The in-order pass reports the error, in its place among the options.
  }
  return found;
}

/** Refuses an option outside pasta mode. */
function pastaOnly(c: Config, o: GetoptResult): void {
  if (c.mode !== "pasta") throw new ConfError(`${o.opt} is for pasta mode only`);
}

/** Refuses an option in pasta mode. */
function passtOnly(c: Config, o: GetoptResult): void {
  if (c.mode === "pasta") throw new ConfError(`${o.opt} is for passt mode only`);
}

/** Refuses an option outside vhost-user mode. */
function vhostUserOnly(st: ScanState, o: GetoptResult): void {
  if (!st.vhostUser) throw new ConfError(`${o.opt} is for vhost-user mode only`);
}

/**
 * Applies one option.
 * @returns true when the pass must stop (--help, --version, --print-capabilities)
 */
function confOption(c: Config, st: ScanState, name: string, o: GetoptResult): boolean {
  const arg = o.arg ?? "";
  switch (name) {
    case "pasta":
      break;
    case "debug":
      c.debug = true;
      c.quiet = false;
      break;
    case "trace":
      c.trace = c.debug = true;
      c.quiet = false;
      break;
    case "quiet":
      c.quiet = true;
      c.debug = c.trace = false;
      break;
    case "foreground":
      c.foreground = true;
      break;
    case "stderr":
      c.warnings.push("--stderr has no effect and will be dropped");
      break;
    case "stats":
      c.stats = parseNumberArg(arg, "--stats delay");
      break;
    case "log-file":
      c.logFile = checkPath(arg, o.opt, "log file");
      break;
    case "log-size":
      c.logSize = parseLogSize(arg);
      break;
    case "runas":
      c.runas = parseRunas(arg);
      break;
    case "conf-path":
      c.confPath = checkPath(arg, o.opt, "configuration socket path", UNIX_PATH_MAX);
      break;
    case "help":
      c.help = true;
      return true;
    case "version":
      c.version = true;
      return true;
    case "print-capabilities":
      c.printCapabilities = true;
      return true;
    case "socket":
      if (c.mode === "pasta") throw new ConfError(`${o.opt} is for passt / vhost-user mode only`);
      c.socketPath = checkPath(arg, o.opt, "socket path", UNIX_PATH_MAX);
      delete c.fd;
      break;
    case "vhost-user":
      passtOnly(c, o);
      c.vhostUser = true;
      break;
    case "repair-path":
      if (arg !== "none") vhostUserOnly(st, o);
      c.repairPath = checkPath(arg, o.opt, "passt-repair path", UNIX_PATH_MAX);
      break;
    case "migrate-exit":
      vhostUserOnly(st, o);
      c.migrateExit = true;
      break;
    case "migrate-no-linger":
      vhostUserOnly(st, o);
      c.migrateNoLinger = true;
      break;
    case "fd":
      c.fd = parseFd(arg);
      c.oneOff = true;
      delete c.socketPath;
      break;
    case "one-off":
      passtOnly(c, o);
      c.oneOff = true;
      break;
    case "pcap":
      c.pcap = checkPath(arg, o.opt, "pcap path");
      break;
    case "pid":
      c.pidFile = checkPath(arg, o.opt, "PID file");
      break;
    case "mtu":
      c.mtu = parseMtu(arg);
      break;
    case "address":
      confAddress(c, arg, st);
      break;
    case "netmask":
      if (st.cidr) throw new ConfError(`Redundant prefix length "${arg}": -a gave one already`);
      c.netmask = c.prefixLen4 = st.optN = parseNetmask(arg, parseIp4);
      break;
    case "mac-addr":
      c.ourMac = macArg(arg);
      break;
    case "gateway":
      confGateway(c, arg);
      break;
    case "interface":
      c.ifname = checkIfname(arg, o.opt);
      break;
    case "outbound":
      confOutbound(c, arg);
      break;
    case "outbound-if4":
      c.outboundIf4 = checkIfname(arg, o.opt);
      break;
    case "outbound-if6":
      c.outboundIf6 = checkIfname(arg, o.opt);
      break;
    case "dns":
      confDns(c, arg);
      break;
    case "dns-forward":
      confDnsForward(c, arg);
      break;
    case "dns-host":
      confDnsHost(c, arg);
      break;
    case "search":
      confSearch(c, arg);
      break;
    case "hostname":
      c.hostname = checkDomainName(arg, o.opt);
      break;
    case "fqdn":
      c.fqdn = checkDomainName(arg, o.opt);
      break;
    case "no-dhcp-dns":
      passtOnly(c, o);
      c.dhcpDns = false;
      break;
    case "no-dhcp-search":
      passtOnly(c, o);
      c.dhcpSearch = false;
      break;
    case "dhcp-dns":
      pastaOnly(c, o);
      c.dhcpDns = true;
      break;
    case "dhcp-search":
      pastaOnly(c, o);
      c.dhcpSearch = true;
      break;
    case "map-host-loopback":
      confNat(c, arg, "host-loopback");
      break;
    case "map-guest-addr":
      confNat(c, arg, "guest-addr");
      break;
    case "ipv4-only":
      c.ipv4Only = true;
      c.ipv6Only = false;
      break;
    case "ipv6-only":
      c.ipv6Only = true;
      c.ipv4Only = false;
      break;
    case "tcp-ns":
    case "udp-ns":
      pastaOnly(c, o);
      st.ports.push({ optname: name === "tcp-ns" ? "T" : "U", arg });
      break;
    case "tcp-ports":
    case "udp-ports":
      st.ports.push({ optname: name === "tcp-ports" ? "t" : "u", arg });
      break;
    default:
      if (!confPastaOption(c, st, name, o)) confFlag(c, name);
  }
  return false;
}

/** Applies the pasta-only options with an argument or state; returns false when `name` is not one. */
function confPastaOption(c: Config, st: ScanState, name: string, o: GetoptResult): boolean {
  const arg = o.arg ?? "";
  switch (name) {
    case "ns-ifname":
      pastaOnly(c, o);
      c.nsIfname = checkIfname(arg, o.opt);
      return true;
    case "ns-mac-addr":
      pastaOnly(c, o);
      c.nsMac = macArg(arg);
      return true;
    case "userns":
      pastaOnly(c, o);
      c.userns = checkPath(arg, o.opt, "user namespace path");
      st.netnsOnly = false;
      return true;
    case "netns":
      pastaOnly(c, o);
      checkPath(arg, o.opt, "network namespace");
      c.netns = checkPath(
        arg.includes("/") ? arg : `${NETNS_RUN_DIR}/${arg}`,
        o.opt,
        "network namespace",
      );
      return true;
    case "netns-only":
      pastaOnly(c, o);
      st.netnsOnly = true;
      delete c.userns;
      return true;
    case "no-copy-routes":
    case "no-copy-addrs":
      pastaOnly(c, o);
      c.warnings.push(`${o.opt} is deprecated and will be dropped`);
      if (name === "no-copy-routes") c.noCopyRoutes = true;
      else c.noCopyAddrs = true;
      return true;
  }
  if (PASTA_FLAGS.has(name)) pastaOnly(c, o);
  return false;
}

/** Options without argument that only pasta takes. */
const PASTA_FLAGS = new Set([
  "no-netns-quit",
  "config-net",
  "host-lo-to-ns-lo",
]);

/** Config fields set to true by plain flags. */
const FLAGS: Readonly<Record<string, keyof Config>> = {
  "no-tcp": "noTcp",
  "no-udp": "noUdp",
  "no-icmp": "noIcmp",
  "no-dhcp": "noDhcp",
  "no-dhcpv6": "noDhcpv6",
  "no-ndp": "noNdp",
  "no-ra": "noRa",
  "no-splice": "noSplice",
  "splice-only": "spliceOnly",
  "freebind": "freebind",
  "no-map-gw": "noMapGw",
  "chroot-fallback": "chrootFallback",
  "no-netns-quit": "noNetnsQuit",
  "config-net": "configNet",
  "host-lo-to-ns-lo": "hostLoToNsLo",
};

/** Sets a plain flag. */
function confFlag(c: Config, name: string): void {
  const key = FLAGS[name];
  if (key === undefined) throw new Error(`option table and handlers disagree on "${name}"`);
  (c as unknown as Record<string, boolean>)[key] = true;
}

/** Parses a MAC argument. */
function macArg(arg: string): Uint8Array {
  const m = parseMac(arg);
  if (m === null) {
    throw new ConfError(`Invalid MAC address "${arg}": expected six colon-separated hex bytes`);
  }
  return m;
}

/** Checks between options and the effects options imply on each other (passt's order). */
function confCrossChecks(c: Config): void {
  if (c.mode !== "pasta") {
    c.noSplice = true;
    if (c.spliceOnly) throw new ConfError("--splice-only is for pasta mode only");
  }
  if (c.noSplice && c.hostLoToNsLo) {
    throw new ConfError("--host-lo-to-ns-lo is incompatible with --no-splice");
  }
  if (c.mode === "pasta" && !c.configNet) {
    if (c.noCopyRoutes) throw new ConfError("--no-copy-routes needs --config-net");
    if (c.noCopyAddrs) throw new ConfError("--no-copy-addrs needs --config-net");
  }
  if (c.spliceOnly) {
    if (c.noSplice) throw new ConfError("--splice-only is incompatible with --no-splice");
    c.hostLoToNsLo = true;
    c.noIcmp = true;
    c.dnsNone = true;
    c.searchNone = true;
  }
  if (c.stats !== undefined && !c.foreground) {
    throw new ConfError("Cannot display statistics when not running in the foreground: add -f");
  }
  if (c.mtu !== undefined && c.mtu !== 0) {
    if (!c.ipv6Only && c.mtu < IPV4_MIN_MTU) {
      c.warnings.push(`MTU ${c.mtu} is too small for IPv4 (minimum ${IPV4_MIN_MTU})`);
    }
    if (!c.ipv4Only && c.mtu < IPV6_MIN_MTU) {
      c.warnings.push(`MTU ${c.mtu} is too small for IPv6 (minimum ${IPV6_MIN_MTU})`);
    }
  }
  if (c.noIcmp) c.noNdp = true;
  if (c.configNet) c.noRa = true;
}

/** Applies the port options in order, then pasta's `auto` defaults. */
function confAllPorts(c: Config, st: ScanState, ephemeral: EphemeralRange | undefined): void {
  const opts = { pasta: c.mode === "pasta", ipv4: !c.ipv6Only, ipv6: !c.ipv4Only, ephemeral };
  const target = { t: c.tcp, u: c.udp, T: c.tcpNs, U: c.udpNs };
  const given = new Set<PortsOptname>();
  for (const { optname, arg } of st.ports) {
    given.add(optname);
    const tcp = optname === "t" || optname === "T";
    if (arg !== "none" && (tcp ? c.noTcp : c.noUdp)) {
      throw new ConfError(
        `Cannot use "-${optname} ${arg}": ${tcp ? "TCP" : "UDP"} is disabled by --no-${
          tcp ? "tcp" : "udp"
        }`,
      );
    }
    confPorts(target[optname], optname, arg, opts);
  }
  if (c.mode !== "pasta") return;
  for (const optname of ["t", "T", "u", "U"] as const) {
    const tcp = optname === "t" || optname === "T";
    if (given.has(optname) || (tcp ? c.noTcp : c.noUdp)) continue;
    confPorts(target[optname], optname, "auto", opts);
  }
}

/** Handles the non-option arguments (passt's conf_pasta_ns()). */
function confPositional(c: Config, st: ScanState, positional: string[]): void {
  if (c.mode !== "pasta") {
    if (positional.length > 0) {
      throw new ConfError(`Extra non-option argument "${positional[0]}"`);
    }
    return;
  }
  if (c.netns !== undefined && positional.length > 0) {
    throw new ConfError("Both --netns and PID or command given");
  }
  const only = positional[0];
  if (positional.length === 1 && /^[0-9]+$/.test(only!)) {
    const pid = Number(only);
    if (pid > 0x7fffffff) throw new ConfError(`Invalid PID "${only}"`);
    c.pid = pid;
  } else {
    c.command = positional;
  }
  c.netnsOnly = st.netnsOnly || (c.netns !== undefined && c.userns === undefined);
}

/**
 * Parses a pasta or passt command line.
 *
 * @param argv the arguments, without the program name
 * @param opts how the program was started, and the host's ephemeral ports
 * @returns the configuration; with `help`, `version` or `printCapabilities`
 *   set, options after that one were not read
 * @throws {ConfError} for any bad option, argument or combination, with a
 *   one-line message
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { confParse } from "./conf.ts";
 *
 * const c = confParse(["--config-net", "-t", "8080:80", "--", "sh"], { argv0Pasta: true });
 * assert.equal(c.mode, "pasta");
 * assert.equal(c.tcp.mode, "spec");
 * assert.equal(c.udp.mode, "auto");
 * assert.deepEqual(c.command, ["sh"]);
 * ```
 */
export function confParse(argv: readonly string[], opts: ConfParseOptions): Config {
  const mode = scanMode(argv);
  const c = configDefaults(opts.argv0Pasta || mode.pasta ? "pasta" : "passt");
  const st: ScanState = {
    vhostUser: mode.vhostUser,
    netnsOnly: false,
    ports: [],
    optN: undefined,
    cidr: false,
  };
  const g = new Getopt(argv, OPTSTRING, LONG_OPTIONS);
  for (let o = g.next(); o !== null; o = g.next()) {
    const name = SHORT_NAMES.get(o.val) ?? o.val;
    c.given.add(name);
    if (confOption(c, st, name, o)) return c;
  }
  confCrossChecks(c);
  confAllPorts(c, st, opts.ephemeral);
  confPositional(c, st, g.positional);
  return c;
}
