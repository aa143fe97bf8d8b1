/**
 * config.ts - the Config object that confParse() returns, and its defaults.
 *
 * Config holds what the command line says, validated and normalised
 * (addresses in canonical text, MACs as bytes), plus the effects passt derives
 * from options alone (--trace implies --debug, --no-icmp implies --no-ndp,
 * --config-net implies --no-ra, passt mode implies --no-splice, ...). It holds
 * nothing learned from the host: an undefined address means "take it from the
 * host", and main resolves interface and user names.
 *
 * @module
 */

import { type FwdSpec, fwdSpecNew } from "./ports.ts";

/** The --runas target, names not yet looked up. */
export interface RunAs {
  /** user ID, or login name to look up */
  user: number | string;
  /** group ID, or group name to look up; undefined means the user's group */
  group?: number | string;
}

/** The parsed command line. */
export interface Config {
  /** "pasta" (--pasta or started as pasta) or "passt" */
  mode: "pasta" | "passt";
  /** --help was given: print USAGE_TEXT and exit; later options were not read */
  help: boolean;
  /** --version was given: print VERSION and exit; later options were not read */
  version: boolean;
  /** --print-capabilities was given: print them and exit; later options were not read */
  printCapabilities: boolean;

  /** -d: verbose */
  debug: boolean;
  /** --trace: per-packet logging (debug is then true too) */
  trace: boolean;
  /** -q: warnings and errors only */
  quiet: boolean;
  /** -f: stay in the foreground */
  foreground: boolean;
  /** -l: log file path */
  logFile?: string;
  /** --log-size in bytes (default 1 MiB) */
  logSize: number;
  /** --stats: seconds between statistics, undefined when not given */
  stats?: number;
  /** --runas */
  runas?: RunAs;
  /** -c: control socket path */
  confPath?: string;
  /** -p: pcap file */
  pcap?: string;
  /** -P: PID file */
  pidFile?: string;

  /** -m: MTU to announce, 0 to announce none; undefined when not given (65520) */
  mtu?: number;
  /** -a: guest IPv4 address */
  addr4?: string;
  /** IPv4 prefix length: from -a ADDR/LEN, -n, or the class of -a's address */
  prefixLen4?: number;
  /** -a: guest IPv6 address */
  addr6?: string;
  /** IPv6 prefix length from -a ADDR/LEN, else 64 when addr6 is set (passt uses 64 anyway) */
  prefixLen6?: number;
  /** -n: IPv4 netmask as a prefix length */
  netmask?: number;
  /** -M: our MAC as seen by the guest (6 bytes); undefined means 9a:55:9a:55:9a:55 */
  ourMac?: Uint8Array;
  /** --ns-mac-addr: MAC of the namespace's tap device (6 bytes) */
  nsMac?: Uint8Array;
  /** -g: IPv4 gateway */
  gateway4?: string;
  /** -g: IPv6 gateway */
  gateway6?: string;
  /** -i: host interface to take addresses and routes from */
  ifname?: string;
  /** -o: IPv4 source address for outbound sockets */
  outbound4?: string;
  /** -o: IPv6 source address for outbound sockets */
  outbound6?: string;
  /** --outbound-if4 */
  outboundIf4?: string;
  /** --outbound-if6 */
  outboundIf6?: string;

  /** -D: resolvers to announce, in order, at most 3 per IP version */
  dns: string[];
  /** -D none (last -D was none) or --splice-only: announce no resolvers, read none from the host */
  dnsNone: boolean;
  /** --dns-forward, IPv4 */
  dnsForward4?: string;
  /** --dns-forward, IPv6 */
  dnsForward6?: string;
  /** --dns-host, IPv4 */
  dnsHost4?: string;
  /** --dns-host, IPv6 */
  dnsHost6?: string;
  /** -S: search domains, in order, at most 6 */
  search: string[];
  /** -S none or --splice-only: no search list */
  searchNone: boolean;
  /** announce resolvers via DHCP/DHCPv6/NDP (passt: unless --no-dhcp-dns; pasta: with --dhcp-dns) */
  dhcpDns: boolean;
  /** announce search domains (passt: unless --no-dhcp-search; pasta: with --dhcp-search) */
  dhcpSearch: boolean;

  /** --no-tcp */
  noTcp: boolean;
  /** --no-udp */
  noUdp: boolean;
  /** --no-icmp (or --splice-only) */
  noIcmp: boolean;
  /** --no-dhcp */
  noDhcp: boolean;
  /** --no-ndp, or implied by --no-icmp */
  noNdp: boolean;
  /** --no-dhcpv6 */
  noDhcpv6: boolean;
  /** --no-ra, or implied by --config-net */
  noRa: boolean;
  /** --freebind */
  freebind: boolean;
  /** --chroot-fallback */
  chrootFallback: boolean;
  /** --map-host-loopback, IPv4; undefined: the gateway unless noMapGw */
  mapHostLoopback4?: string;
  /** --map-host-loopback, IPv6; undefined: the gateway unless noMapGw */
  mapHostLoopback6?: string;
  /** --no-map-gw, or --map-host-loopback none */
  noMapGw: boolean;
  /** --map-guest-addr, IPv4 (none clears it) */
  mapGuestAddr4?: string;
  /** --map-guest-addr, IPv6 (none clears it) */
  mapGuestAddr6?: string;
  /** -4 (the later of -4 and -6 wins) */
  ipv4Only: boolean;
  /** -6 (the later of -4 and -6 wins) */
  ipv6Only: boolean;
  /** -H */
  hostname?: string;
  /** --fqdn */
  fqdn?: string;

  /** -t: host to guest TCP */
  tcp: FwdSpec;
  /** -u: host to guest UDP */
  udp: FwdSpec;
  /** -T: namespace to host TCP (pasta) */
  tcpNs: FwdSpec;
  /** -U: namespace to host UDP (pasta) */
  udpNs: FwdSpec;

  /** -s: UNIX socket path (passt) */
  socketPath?: string;
  /** --vhost-user */
  vhostUser: boolean;
  /** --repair-path: a path, or "none" */
  repairPath?: string;
  /** --migrate-exit */
  migrateExit: boolean;
  /** --migrate-no-linger */
  migrateNoLinger: boolean;
  /** -F: connected socket to use */
  fd?: number;
  /** -1, or implied by -F */
  oneOff: boolean;

  /** -I: tap device name in the namespace */
  nsIfname?: string;
  /** --host-lo-to-ns-lo (or --splice-only) */
  hostLoToNsLo: boolean;
  /** --userns PATH */
  userns?: string;
  /** --netns, resolved to a path (NAME means /run/netns/NAME) */
  netns?: string;
  /** join only the network namespace: --netns-only, or --netns without --userns */
  netnsOnly: boolean;
  /** --no-netns-quit */
  noNetnsQuit: boolean;
  /** --config-net */
  configNet: boolean;
  /** --no-copy-routes (deprecated) */
  noCopyRoutes: boolean;
  /** --no-copy-addrs (deprecated) */
  noCopyAddrs: boolean;
  /** --no-splice; always true in passt mode */
  noSplice: boolean;
  /** --splice-only */
  spliceOnly: boolean;
  /** pasta: the PID whose namespaces to join (single all-digit argument) */
  pid?: number;
  /** pasta: the command to run (empty: a shell), when there is no PID or --netns */
  command: string[];

  /** canonical long names of the options given explicitly ("socket" for -s and --socket-path) */
  given: Set<string>;
  /** warnings to log once logging is set up (deprecated options, small MTU) */
  warnings: string[];
}

/** Default --log-size: 1 MiB. */
export const LOG_SIZE_DEFAULT = 1024 * 1024;

/**
 * Makes a Config with passt's defaults for a mode, before any option.
 * @param mode "pasta" or "passt"
 * @returns a fresh Config
 */
export function configDefaults(mode: "pasta" | "passt"): Config {
  return {
    mode,
    help: false,
    version: false,
    printCapabilities: false,
    debug: false,
    trace: false,
    quiet: false,
    foreground: false,
    logSize: LOG_SIZE_DEFAULT,
    dns: [],
    dnsNone: false,
    search: [],
    searchNone: false,
    dhcpDns: mode === "passt",
    dhcpSearch: mode === "passt",
    noTcp: false,
    noUdp: false,
    noIcmp: false,
    noDhcp: false,
    noNdp: false,
    noDhcpv6: false,
    noRa: false,
    freebind: false,
    chrootFallback: false,
    noMapGw: false,
    ipv4Only: false,
    ipv6Only: false,
    tcp: fwdSpecNew(),
    udp: fwdSpecNew(),
    tcpNs: fwdSpecNew(),
    udpNs: fwdSpecNew(),
    vhostUser: false,
    migrateExit: false,
    migrateNoLinger: false,
    oneOff: false,
    hostLoToNsLo: false,
    netnsOnly: false,
    noNetnsQuit: false,
    configNet: false,
    noCopyRoutes: false,
    noCopyAddrs: false,
    noSplice: false,
    spliceOnly: false,
    command: [],
    given: new Set(),
    warnings: [],
  };
}
