/**
 * options.ts - the table of every option orzo accepts, with passt's spellings.
 *
 * One entry per option: its canonical long name (what Config.given holds),
 * short letter, argument, the mode it belongs to and a line of help. The
 * getopt tables and the usage text are derived from it.
 *
 * @module
 */

import type { LongOption } from "./getopt.ts";

/** Which mode an option belongs to: passt mode includes vhost-user. */
export type OptionMode = "both" | "pasta" | "passt" | "vhost-user";

/** One option. */
export interface OptionSpec {
  /** canonical long name, without dashes */
  name: string;
  /** short option letter, if any */
  short?: string;
  /** argument placeholder for help (for example "PATH"); absent when none is taken */
  arg?: string;
  /** other long names meaning the same option */
  aliases?: string[];
  /** the mode it belongs to */
  mode: OptionMode;
  /** one line of help */
  help: string;
  /** help for the default, if any */
  dflt?: string;
}

/** passt's short option string (leading `+`: stop at the first non-option). */
export const OPTSTRING = "+dqfel:hs:c:F:I:p:P:m:a:n:M:g:i:o:D:S:H:461t:u:T:U:";

/** Every option, in the order the usage text lists them. */
export const OPTIONS: readonly OptionSpec[] = [
  { name: "pasta", mode: "both", help: "Run in pasta mode (namespace and tap device)" },
  { name: "debug", short: "d", mode: "both", help: "Verbose logging" },
  { name: "trace", mode: "both", help: "Per-packet logging, implies --debug" },
  {
    name: "stats",
    arg: "DELAY",
    mode: "both",
    help: "Print event statistics, at most every DELAY seconds (needs -f)",
  },
  { name: "quiet", short: "q", mode: "both", help: "Print warnings and errors only" },
  {
    name: "foreground",
    short: "f",
    mode: "both",
    help: "Stay in the foreground",
    dflt: "go to the background",
  },
  { name: "stderr", short: "e", mode: "both", help: "Deprecated, has no effect" },
  { name: "log-file", short: "l", arg: "PATH", mode: "both", help: "Write the log to PATH" },
  {
    name: "log-size",
    arg: "BYTES",
    mode: "both",
    help: "Size limit of the log file",
    dflt: "1048576",
  },
  {
    name: "runas",
    arg: "UID[:GID]",
    mode: "both",
    help: "Switch to this user and group (numbers or names)",
    dflt: "nobody, when started as root",
  },
  {
    name: "conf-path",
    short: "c",
    arg: "PATH",
    mode: "both",
    help: "Control socket for run-time configuration (experimental)",
  },
  { name: "help", short: "h", mode: "both", help: "Print this help and exit" },
  { name: "version", mode: "both", help: "Print the version and exit" },
  {
    name: "socket",
    short: "s",
    arg: "PATH",
    aliases: ["socket-path"],
    mode: "passt",
    help: "UNIX domain socket for the hypervisor",
    dflt: "first free /tmp/passt_N.socket",
  },
  { name: "vhost-user", mode: "passt", help: "Speak vhost-user on the socket" },
  {
    name: "print-capabilities",
    mode: "passt",
    help: "Print vhost-user back-end capabilities as JSON and exit",
  },
  {
    name: "repair-path",
    arg: "PATH|none",
    mode: "vhost-user",
    help: "Socket for passt-repair during migration",
    dflt: "the socket path plus .repair",
  },
  { name: "migrate-exit", mode: "vhost-user", help: "Deprecated: exit after migrating away" },
  {
    name: "migrate-no-linger",
    mode: "vhost-user",
    help: "Deprecated: close sockets after migrating away",
  },
  {
    name: "fd",
    short: "F",
    arg: "FD",
    mode: "both",
    help: "Use the already connected socket FD (implies --one-off)",
  },
  { name: "one-off", short: "1", mode: "passt", help: "Exit once the first client disconnects" },
  {
    name: "pcap",
    short: "p",
    arg: "FILE",
    mode: "both",
    help: "Capture guest-side traffic to a pcap file",
  },
  {
    name: "pid",
    short: "P",
    arg: "FILE",
    mode: "both",
    help: "Write our process ID to FILE once set up",
  },
  {
    name: "mtu",
    short: "m",
    arg: "MTU",
    mode: "both",
    help: "MTU to announce through DHCP and NDP, 0 to announce none",
    dflt: "65520",
  },
  {
    name: "address",
    short: "a",
    arg: "ADDR[/LEN]",
    mode: "both",
    help: "Guest address, once per IP version",
    dflt: "from the host's upstream interface",
  },
  {
    name: "netmask",
    short: "n",
    arg: "MASK",
    mode: "both",
    help: "IPv4 netmask, dotted or prefix length (not with ADDR/LEN)",
  },
  {
    name: "mac-addr",
    short: "M",
    arg: "MAC",
    mode: "both",
    help: "Our MAC address as the guest sees it",
    dflt: "9a:55:9a:55:9a:55",
  },
  {
    name: "gateway",
    short: "g",
    arg: "ADDR",
    mode: "both",
    help: "Gateway to announce, once per IP version",
    dflt: "the host's default gateway",
  },
  {
    name: "interface",
    short: "i",
    arg: "NAME",
    mode: "both",
    help: "Host interface to take addresses and routes from",
  },
  {
    name: "outbound",
    short: "o",
    arg: "ADDR",
    mode: "both",
    help: "Source address for outbound sockets, once per IP version",
  },
  {
    name: "outbound-if4",
    arg: "NAME",
    mode: "both",
    help: "Bind outbound IPv4 sockets to this interface",
  },
  {
    name: "outbound-if6",
    arg: "NAME",
    mode: "both",
    help: "Bind outbound IPv6 sockets to this interface",
  },
  {
    name: "dns",
    short: "D",
    arg: "ADDR|none",
    mode: "both",
    help: "Resolver to announce, repeatable; none for no resolvers",
  },
  {
    name: "dns-forward",
    arg: "ADDR",
    mode: "both",
    help: "Guest-side address whose DNS traffic goes to --dns-host",
  },
  {
    name: "dns-host",
    arg: "ADDR",
    mode: "both",
    help: "Host resolver for --dns-forward",
    dflt: "first one in /etc/resolv.conf",
  },
  {
    name: "search",
    short: "S",
    arg: "LIST|none",
    mode: "both",
    help: "DNS search domains, space separated; none for no list",
  },
  {
    name: "hostname",
    short: "H",
    arg: "NAME",
    mode: "both",
    help: "Host name for the guest (DHCP option 12)",
  },
  {
    name: "fqdn",
    arg: "NAME",
    mode: "both",
    help: "Fully qualified name for the guest (DHCP 81, DHCPv6 39)",
  },
  { name: "no-dhcp-dns", mode: "passt", help: "Do not announce resolvers" },
  { name: "no-dhcp-search", mode: "passt", help: "Do not announce search domains" },
  { name: "dhcp-dns", mode: "pasta", help: "Announce resolvers (off by default in pasta mode)" },
  {
    name: "dhcp-search",
    mode: "pasta",
    help: "Announce search domains (off by default in pasta mode)",
  },
  {
    name: "map-host-loopback",
    arg: "ADDR|none",
    mode: "both",
    help: "Guest address that reaches the host's loopback",
    dflt: "the gateway",
  },
  {
    name: "map-guest-addr",
    arg: "ADDR|none",
    mode: "both",
    help: "Guest address that reaches the guest's own address on the host",
  },
  { name: "no-map-gw", mode: "both", help: "Do not map the gateway address to the host" },
  { name: "no-tcp", mode: "both", help: "Disable TCP" },
  { name: "no-udp", mode: "both", help: "Disable UDP" },
  { name: "no-icmp", mode: "both", help: "Disable ICMP and ICMPv6 (implies --no-ndp)" },
  { name: "no-dhcp", mode: "both", help: "Disable the DHCP server" },
  { name: "no-ndp", mode: "both", help: "Disable NDP answers" },
  { name: "no-dhcpv6", mode: "both", help: "Disable the DHCPv6 server" },
  { name: "no-ra", mode: "both", help: "Disable router advertisements" },
  {
    name: "freebind",
    mode: "both",
    help: "Allow -t/-u listening addresses not configured on the host",
  },
  { name: "chroot-fallback", mode: "both", help: "Fall back to chroot() when pivot_root() fails" },
  { name: "ipv4-only", short: "4", mode: "both", help: "IPv4 only" },
  { name: "ipv6-only", short: "6", mode: "both", help: "IPv6 only" },
  {
    name: "tcp-ports",
    short: "t",
    arg: "SPEC",
    mode: "both",
    help: "Forward host TCP ports to the guest, repeatable",
    dflt: "none (passt), auto (pasta)",
  },
  {
    name: "udp-ports",
    short: "u",
    arg: "SPEC",
    mode: "both",
    help: "Forward host UDP ports to the guest, repeatable",
    dflt: "none (passt), auto (pasta)",
  },
  {
    name: "tcp-ns",
    short: "T",
    arg: "SPEC",
    mode: "pasta",
    help: "Forward namespace TCP ports to the host",
    dflt: "auto",
  },
  {
    name: "udp-ns",
    short: "U",
    arg: "SPEC",
    mode: "pasta",
    help: "Forward namespace UDP ports to the host",
    dflt: "auto",
  },
  {
    name: "ns-ifname",
    short: "I",
    arg: "NAME",
    mode: "pasta",
    help: "Name of the tap device in the namespace",
    dflt: "the host's upstream interface name, else tap0",
  },
  {
    name: "ns-mac-addr",
    arg: "MAC",
    mode: "pasta",
    help: "MAC address of the tap device in the namespace",
  },
  { name: "userns", arg: "PATH", mode: "pasta", help: "User namespace to join" },
  {
    name: "netns",
    arg: "PATH|NAME",
    mode: "pasta",
    help: "Network namespace to join (NAME means /run/netns/NAME)",
  },
  { name: "netns-only", mode: "pasta", help: "Join only the network namespace, no user namespace" },
  {
    name: "no-netns-quit",
    mode: "pasta",
    help: "Keep running when the target namespace goes away",
  },
  { name: "config-net", mode: "pasta", help: "Set up addresses, routes and link in the namespace" },
  {
    name: "no-copy-routes",
    mode: "pasta",
    help: "Deprecated: set up only the default route (needs --config-net)",
  },
  {
    name: "no-copy-addrs",
    mode: "pasta",
    help: "Deprecated: set up only one address (needs --config-net)",
  },
  {
    name: "host-lo-to-ns-lo",
    mode: "pasta",
    help: "Deliver host loopback connections to namespace loopback",
  },
  { name: "no-splice", mode: "pasta", help: "Disable the loopback splice path" },
  { name: "splice-only", mode: "pasta", help: "No tap device: forward loopback traffic only" },
];

/** The getopt long option table: every name and alias, reporting the canonical name. */
export const LONG_OPTIONS: readonly LongOption[] = OPTIONS.flatMap((o) =>
  [o.name, ...(o.aliases ?? [])].map((name) => ({
    name,
    hasArg: o.arg === undefined ? "none" as const : "required" as const,
    val: o.name,
  }))
);

/** Canonical option name by short letter. */
export const SHORT_NAMES: ReadonlyMap<string, string> = new Map(
  OPTIONS.filter((o) => o.short !== undefined).map((o) => [o.short!, o.name]),
);
