import assert from "node:assert/strict";
import { type Config, confParse, NETNS_RUN_DIR, USAGE_TEXT, VERSION } from "./conf.ts";
import { ConfError } from "./errors.ts";
import { OPTIONS } from "./options.ts";
import { portIsSet } from "./ports.ts";

/** Parses in pasta mode (started as pasta). */
function pasta(...argv: string[]): Config {
  return confParse(argv, { argv0Pasta: true });
}

/** Parses in passt mode. */
function passt(...argv: string[]): Config {
  return confParse(argv, { argv0Pasta: false });
}

/** Asserts that fn throws a ConfError with a message matching re (a string must match exactly). */
function throwsConf(fn: () => unknown, re: RegExp | string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfError, String(e));
    if (typeof re === "string") assert.equal(e.message, re);
    else assert.match(e.message, re);
    return true;
  });
}

/** One row of the every-option table. */
interface Row {
  /** arguments, starting with the option under test in its long spelling */
  argv: string[];
  /** parse in pasta mode */
  pasta?: boolean;
  /** checks the effect */
  check: (c: Config) => void;
}

const EVERY: Record<string, Row> = {
  "pasta": { argv: ["--pasta"], check: (c) => assert.equal(c.mode, "pasta") },
  "debug": { argv: ["--debug"], check: (c) => assert.ok(c.debug) },
  "trace": { argv: ["--trace"], check: (c) => assert.ok(c.trace && c.debug) },
  "stats": { argv: ["--stats", "5", "-f"], check: (c) => assert.equal(c.stats, 5) },
  "quiet": { argv: ["--quiet"], check: (c) => assert.ok(c.quiet) },
  "foreground": { argv: ["--foreground"], check: (c) => assert.ok(c.foreground) },
  "stderr": { argv: ["--stderr"], check: (c) => assert.match(c.warnings[0]!, /--stderr/) },
  "log-file": {
    argv: ["--log-file", "/tmp/o.log"],
    check: (c) => assert.equal(c.logFile, "/tmp/o.log"),
  },
  "log-size": { argv: ["--log-size", "65536"], check: (c) => assert.equal(c.logSize, 65536) },
  "runas": {
    argv: ["--runas", "1000:100"],
    check: (c) => assert.deepEqual(c.runas, { user: 1000, group: 100 }),
  },
  "conf-path": {
    argv: ["--conf-path", "/run/o.ctl"],
    check: (c) => assert.equal(c.confPath, "/run/o.ctl"),
  },
  "help": { argv: ["--help"], check: (c) => assert.ok(c.help) },
  "version": { argv: ["--version"], check: (c) => assert.ok(c.version) },
  "socket": {
    argv: ["--socket", "/tmp/s.sock"],
    check: (c) => assert.equal(c.socketPath, "/tmp/s.sock"),
  },
  "vhost-user": { argv: ["--vhost-user"], check: (c) => assert.ok(c.vhostUser) },
  "print-capabilities": {
    argv: ["--print-capabilities"],
    check: (c) => assert.ok(c.printCapabilities),
  },
  "repair-path": {
    argv: ["--repair-path", "/tmp/r", "--vhost-user"],
    check: (c) => assert.equal(c.repairPath, "/tmp/r"),
  },
  "migrate-exit": {
    argv: ["--migrate-exit", "--vhost-user"],
    check: (c) => assert.ok(c.migrateExit),
  },
  "migrate-no-linger": {
    argv: ["--migrate-no-linger", "--vhost-user"],
    check: (c) => assert.ok(c.migrateNoLinger),
  },
  "fd": { argv: ["--fd", "5"], check: (c) => assert.ok(c.fd === 5 && c.oneOff) },
  "one-off": { argv: ["--one-off"], check: (c) => assert.ok(c.oneOff) },
  "pcap": { argv: ["--pcap", "/tmp/x.pcap"], check: (c) => assert.equal(c.pcap, "/tmp/x.pcap") },
  "pid": { argv: ["--pid", "/run/x.pid"], check: (c) => assert.equal(c.pidFile, "/run/x.pid") },
  "mtu": { argv: ["--mtu", "1500"], check: (c) => assert.equal(c.mtu, 1500) },
  "address": {
    argv: ["--address", "10.0.2.15/24"],
    check: (c) => assert.deepEqual([c.addr4, c.prefixLen4], ["10.0.2.15", 24]),
  },
  "netmask": {
    argv: ["--netmask", "255.255.255.0"],
    check: (c) => assert.deepEqual([c.netmask, c.prefixLen4], [24, 24]),
  },
  "mac-addr": {
    argv: ["--mac-addr", "52:54:00:12:34:56"],
    check: (c) => assert.deepEqual(c.ourMac, new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
  },
  "gateway": {
    argv: ["--gateway", "10.0.2.2"],
    check: (c) => assert.equal(c.gateway4, "10.0.2.2"),
  },
  "interface": { argv: ["--interface", "eth0"], check: (c) => assert.equal(c.ifname, "eth0") },
  "outbound": {
    argv: ["--outbound", "192.0.2.10"],
    check: (c) => assert.equal(c.outbound4, "192.0.2.10"),
  },
  "outbound-if4": {
    argv: ["--outbound-if4", "eth0"],
    check: (c) => assert.equal(c.outboundIf4, "eth0"),
  },
  "outbound-if6": {
    argv: ["--outbound-if6", "wlan0"],
    check: (c) => assert.equal(c.outboundIf6, "wlan0"),
  },
  "dns": { argv: ["--dns", "192.0.2.53"], check: (c) => assert.deepEqual(c.dns, ["192.0.2.53"]) },
  "dns-forward": {
    argv: ["--dns-forward", "169.254.1.1"],
    check: (c) => assert.equal(c.dnsForward4, "169.254.1.1"),
  },
  "dns-host": {
    argv: ["--dns-host", "192.0.2.53"],
    check: (c) => assert.equal(c.dnsHost4, "192.0.2.53"),
  },
  "search": {
    argv: ["--search", "example.com example.org"],
    check: (c) => assert.deepEqual(c.search, ["example.com", "example.org"]),
  },
  "hostname": { argv: ["--hostname", "guest"], check: (c) => assert.equal(c.hostname, "guest") },
  "fqdn": {
    argv: ["--fqdn", "guest.example.com"],
    check: (c) => assert.equal(c.fqdn, "guest.example.com"),
  },
  "no-dhcp-dns": { argv: ["--no-dhcp-dns"], check: (c) => assert.equal(c.dhcpDns, false) },
  "no-dhcp-search": { argv: ["--no-dhcp-search"], check: (c) => assert.equal(c.dhcpSearch, false) },
  "dhcp-dns": { argv: ["--dhcp-dns"], pasta: true, check: (c) => assert.ok(c.dhcpDns) },
  "dhcp-search": { argv: ["--dhcp-search"], pasta: true, check: (c) => assert.ok(c.dhcpSearch) },
  "map-host-loopback": {
    argv: ["--map-host-loopback", "10.0.2.2"],
    check: (c) => assert.equal(c.mapHostLoopback4, "10.0.2.2"),
  },
  "map-guest-addr": {
    argv: ["--map-guest-addr", "169.254.1.2"],
    check: (c) => assert.equal(c.mapGuestAddr4, "169.254.1.2"),
  },
  "no-map-gw": { argv: ["--no-map-gw"], check: (c) => assert.ok(c.noMapGw) },
  "no-tcp": { argv: ["--no-tcp"], check: (c) => assert.ok(c.noTcp) },
  "no-udp": { argv: ["--no-udp"], check: (c) => assert.ok(c.noUdp) },
  "no-icmp": { argv: ["--no-icmp"], check: (c) => assert.ok(c.noIcmp && c.noNdp) },
  "no-dhcp": { argv: ["--no-dhcp"], check: (c) => assert.ok(c.noDhcp) },
  "no-ndp": { argv: ["--no-ndp"], check: (c) => assert.ok(c.noNdp) },
  "no-dhcpv6": { argv: ["--no-dhcpv6"], check: (c) => assert.ok(c.noDhcpv6) },
  "no-ra": { argv: ["--no-ra"], check: (c) => assert.ok(c.noRa) },
  "freebind": { argv: ["--freebind"], check: (c) => assert.ok(c.freebind) },
  "chroot-fallback": { argv: ["--chroot-fallback"], check: (c) => assert.ok(c.chrootFallback) },
  "ipv4-only": { argv: ["--ipv4-only"], check: (c) => assert.ok(c.ipv4Only && !c.ipv6Only) },
  "ipv6-only": { argv: ["--ipv6-only"], check: (c) => assert.ok(c.ipv6Only && !c.ipv4Only) },
  "tcp-ports": { argv: ["--tcp-ports", "22"], check: (c) => assert.ok(portIsSet(c.tcp.map, 22)) },
  "udp-ports": { argv: ["--udp-ports", "53"], check: (c) => assert.ok(portIsSet(c.udp.map, 53)) },
  "tcp-ns": {
    argv: ["--tcp-ns", "8080"],
    pasta: true,
    check: (c) => assert.ok(c.tcpNs.mode === "spec" && portIsSet(c.tcpNs.map, 8080)),
  },
  "udp-ns": {
    argv: ["--udp-ns", "5353"],
    pasta: true,
    check: (c) => assert.ok(c.udpNs.mode === "spec" && portIsSet(c.udpNs.map, 5353)),
  },
  "ns-ifname": {
    argv: ["--ns-ifname", "eth1"],
    pasta: true,
    check: (c) => assert.equal(c.nsIfname, "eth1"),
  },
  "ns-mac-addr": {
    argv: ["--ns-mac-addr", "02:00:00:00:00:01"],
    pasta: true,
    check: (c) => assert.deepEqual(c.nsMac, new Uint8Array([2, 0, 0, 0, 0, 1])),
  },
  "userns": {
    argv: ["--userns", "/proc/42/ns/user"],
    pasta: true,
    check: (c) => assert.equal(c.userns, "/proc/42/ns/user"),
  },
  "netns": {
    argv: ["--netns", "ctr"],
    pasta: true,
    check: (c) => assert.ok(c.netns === "/run/netns/ctr" && c.netnsOnly),
  },
  "netns-only": { argv: ["--netns-only"], pasta: true, check: (c) => assert.ok(c.netnsOnly) },
  "no-netns-quit": {
    argv: ["--no-netns-quit"],
    pasta: true,
    check: (c) => assert.ok(c.noNetnsQuit),
  },
  "config-net": {
    argv: ["--config-net"],
    pasta: true,
    check: (c) => assert.ok(c.configNet && c.noRa),
  },
  "no-copy-routes": {
    argv: ["--no-copy-routes", "--config-net"],
    pasta: true,
    check: (c) => assert.ok(c.noCopyRoutes),
  },
  "no-copy-addrs": {
    argv: ["--no-copy-addrs", "--config-net"],
    pasta: true,
    check: (c) => assert.ok(c.noCopyAddrs),
  },
  "host-lo-to-ns-lo": {
    argv: ["--host-lo-to-ns-lo"],
    pasta: true,
    check: (c) => assert.ok(c.hostLoToNsLo),
  },
  "no-splice": { argv: ["--no-splice"], pasta: true, check: (c) => assert.ok(c.noSplice) },
  "splice-only": { argv: ["--splice-only"], pasta: true, check: (c) => assert.ok(c.spliceOnly) },
};

Deno.test("confParse() test table covers every option in the option table", () => {
  assert.deepEqual(Object.keys(EVERY).sort(), OPTIONS.map((o) => o.name).sort());
});

for (const o of OPTIONS) {
  const row = EVERY[o.name];
  if (row === undefined) continue;
  const spellings = [row.argv];
  if (o.short !== undefined) spellings.push([`-${o.short}`, ...row.argv.slice(1)]);
  for (const alias of o.aliases ?? []) spellings.push([`--${alias}`, ...row.argv.slice(1)]);
  for (const argv of spellings) {
    Deno.test(`confParse() applies ${argv[0]}${row.pasta ? " in pasta mode" : ""}`, () => {
      const c = confParse(argv, { argv0Pasta: row.pasta ?? false });
      row.check(c);
      assert.ok(c.given.has(o.name), `given lacks ${o.name}`);
    });
  }
}

// --- Real callers ---------------------------------------------------------

const PODMAN = [
  "--config-net",
  "--dns-forward",
  "169.254.1.1",
  "-t",
  "none",
  "-u",
  "none",
  "-T",
  "none",
  "-U",
  "none",
  "--no-map-gw",
  "--quiet",
  "--netns",
  "/run/user/1000/netns/netns-1234",
  "--map-guest-addr",
  "169.254.1.2",
];

Deno.test("confParse() reads Podman's pasta invocation", () => {
  const c = pasta(...PODMAN);
  assert.equal(c.mode, "pasta");
  assert.ok(c.configNet && c.noRa);
  assert.equal(c.dnsForward4, "169.254.1.1");
  for (const f of [c.tcp, c.udp, c.tcpNs, c.udpNs]) assert.equal(f.mode, "none");
  assert.ok(c.noMapGw && c.quiet);
  assert.equal(c.netns, "/run/user/1000/netns/netns-1234");
  assert.ok(c.netnsOnly);
  assert.equal(c.mapGuestAddr4, "169.254.1.2");
  assert.deepEqual(c.command, []);
  assert.equal(c.pid, undefined);
  assert.deepEqual(c.warnings, []);
});

Deno.test("confParse() reads Podman's invocation through --pasta in any position", () => {
  const c = passt(...PODMAN.slice(0, 5), "--pasta", ...PODMAN.slice(5));
  assert.equal(c.mode, "pasta");
  assert.equal(c.netns, "/run/user/1000/netns/netns-1234");
});

Deno.test("confParse() reads Podman's invocation with published ports", () => {
  const c = pasta(
    "--config-net",
    "-t",
    "127.0.0.1/8080-8081:80-81",
    "-u",
    "5353:53",
    "--dns-forward",
    "169.254.1.1",
    "-T",
    "none",
    "-U",
    "none",
    "--no-map-gw",
    "--netns",
    "/run/user/1000/netns/x",
    "--map-guest-addr",
    "169.254.1.2",
  );
  assert.equal(c.tcp.addr, "127.0.0.1");
  assert.equal((8081 + c.tcp.delta[8081]!) & 0xffff, 81);
  assert.equal((5353 + c.udp.delta[5353]!) & 0xffff, 53);
  assert.equal(c.tcpNs.mode, "none");
});

Deno.test("confParse() reads Podman's rootless-netns invocation with --pid", () => {
  const c = pasta(...PODMAN, "--pid", "/run/user/1000/containers/rootless-netns-conn.pid");
  assert.equal(c.pidFile, "/run/user/1000/containers/rootless-netns-conn.pid");
});

Deno.test("confParse() reads libvirt's passt invocation", () => {
  const c = passt(
    "--one-off",
    "--socket",
    "/run/libvirt/qemu/passt/1-vm-net0.socket",
    "--mac-addr",
    "52:54:00:aa:bb:cc",
    "--mtu",
    "1500",
    "--interface",
    "eth0",
    "--log-file",
    "/var/log/libvirt/qemu/vm-passt.log",
    "--address",
    "192.168.122.10",
    "--netmask",
    "24",
    "--address",
    "2001:db8::10",
    "--tcp-ports",
    "192.168.1.5%eth0/2222:22,~2223",
    "--udp-ports",
    "all",
  );
  assert.equal(c.mode, "passt");
  assert.ok(c.oneOff);
  assert.equal(c.socketPath, "/run/libvirt/qemu/passt/1-vm-net0.socket");
  assert.deepEqual(c.ourMac, new Uint8Array([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]));
  assert.equal(c.mtu, 1500);
  assert.equal(c.ifname, "eth0");
  assert.equal(c.logFile, "/var/log/libvirt/qemu/vm-passt.log");
  assert.deepEqual([c.addr4, c.prefixLen4, c.addr6, c.prefixLen6], [
    "192.168.122.10",
    24,
    "2001:db8::10",
    64,
  ]);
  assert.deepEqual([c.tcp.addr, c.tcp.ifname, c.tcp.mode], ["192.168.1.5", "eth0", "spec"]);
  assert.equal((2222 + c.tcp.delta[2222]!) & 0xffff, 22);
  assert.equal(c.udp.mode, "all");
  assert.ok(c.noSplice);
});

Deno.test("confParse() reads a cloud-hypervisor style vhost-user invocation", () => {
  const c = passt(
    "--vhost-user",
    "--foreground",
    "--socket",
    "/tmp/vu.sock",
    "-a",
    "10.0.0.2",
    "-g",
    "10.0.0.1",
    "-D",
    "10.0.0.1",
    "--map-host-loopback",
    "none",
    "--map-guest-addr",
    "none",
    "-t",
    "22",
  );
  assert.ok(c.vhostUser && c.foreground && c.noMapGw);
  assert.deepEqual([c.addr4, c.prefixLen4, c.gateway4, c.dns], ["10.0.0.2", 8, "10.0.0.1", [
    "10.0.0.1",
  ]]);
  assert.equal(c.mapHostLoopback4, undefined);
});

// --- Mode ------------------------------------------------------------------

Deno.test("confParse() picks passt mode by default and pasta mode from argv0", () => {
  assert.equal(passt().mode, "passt");
  assert.equal(pasta().mode, "pasta");
});

Deno.test("confParse() treats --pasta after the command as part of the command", () => {
  assert.deepEqual(pasta("-f", "sh", "--pasta").command, ["sh", "--pasta"]);
  throwsConf(() => passt("-f", "sh", "--pasta"), 'Extra non-option argument "sh"');
});

Deno.test("confParse() accepts an abbreviated --pasta", () => {
  assert.equal(passt("--pas").mode, "pasta");
});

Deno.test("confParse() records canonical names in given", () => {
  const c = passt("-t", "80", "--socket-path", "/tmp/s", "-q");
  assert.deepEqual([...c.given].sort(), ["quiet", "socket", "tcp-ports"]);
});

// --- Options of the other mode ---------------------------------------------

Deno.test("confParse() rejects pasta-only options in passt mode", () => {
  throwsConf(() => passt("--netns", "x"), "--netns is for pasta mode only");
  throwsConf(() => passt("--userns", "/x"), "--userns is for pasta mode only");
  throwsConf(() => passt("--netns-only"), "--netns-only is for pasta mode only");
  throwsConf(() => passt("-I", "eth0"), "-I is for pasta mode only");
  throwsConf(() => passt("--ns-ifname", "eth0"), "--ns-ifname is for pasta mode only");
  throwsConf(() => passt("-T", "80"), "-T is for pasta mode only");
  throwsConf(() => passt("--udp-ns", "80"), "--udp-ns is for pasta mode only");
  throwsConf(
    () => passt("--ns-mac-addr", "02:00:00:00:00:01"),
    "--ns-mac-addr is for pasta mode only",
  );
  throwsConf(() => passt("--dhcp-dns"), "--dhcp-dns is for pasta mode only");
  throwsConf(() => passt("--dhcp-search"), "--dhcp-search is for pasta mode only");
  throwsConf(() => passt("--no-netns-quit"), "--no-netns-quit is for pasta mode only");
  throwsConf(() => passt("--config-net"), "--config-net is for pasta mode only");
  throwsConf(() => passt("--no-copy-routes"), "--no-copy-routes is for pasta mode only");
  throwsConf(() => passt("--no-copy-addrs"), "--no-copy-addrs is for pasta mode only");
  throwsConf(() => passt("--host-lo-to-ns-lo"), "--host-lo-to-ns-lo is for pasta mode only");
});

Deno.test("confParse() rejects --splice-only in passt mode", () => {
  throwsConf(() => passt("--splice-only"), "--splice-only is for pasta mode only");
});

Deno.test("confParse() rejects passt-only options in pasta mode", () => {
  throwsConf(() => pasta("-s", "/tmp/s"), "-s is for passt / vhost-user mode only");
  throwsConf(
    () => pasta("--socket-path", "/tmp/s"),
    "--socket-path is for passt / vhost-user mode only",
  );
  throwsConf(() => pasta("-1"), "-1 is for passt mode only");
  throwsConf(() => pasta("--one-off"), "--one-off is for passt mode only");
  throwsConf(() => pasta("--vhost-user"), "--vhost-user is for passt mode only");
  throwsConf(() => pasta("--no-dhcp-dns"), "--no-dhcp-dns is for passt mode only");
  throwsConf(() => pasta("--no-dhcp-search"), "--no-dhcp-search is for passt mode only");
});

Deno.test("confParse() rejects vhost-user options without --vhost-user", () => {
  throwsConf(() => passt("--repair-path", "/tmp/r"), "--repair-path is for vhost-user mode only");
  throwsConf(() => passt("--migrate-exit"), "--migrate-exit is for vhost-user mode only");
  throwsConf(() => passt("--migrate-no-linger"), "--migrate-no-linger is for vhost-user mode only");
});

Deno.test("confParse() accepts --repair-path none without --vhost-user", () => {
  assert.equal(passt("--repair-path", "none").repairPath, "none");
});

// --- Scanner errors and early exits ---------------------------------------

Deno.test("confParse() rejects an unknown option with glibc's wording", () => {
  throwsConf(() => pasta("--bogus"), "unrecognized option '--bogus'");
  throwsConf(() => pasta("-z"), "invalid option -- 'z'");
});

Deno.test("confParse() rejects an option missing its argument", () => {
  throwsConf(() => pasta("-t"), "option requires an argument -- 't'");
  throwsConf(() => pasta("--netns"), "option '--netns' requires an argument");
});

Deno.test("confParse() rejects an ambiguous abbreviation", () => {
  throwsConf(
    () => pasta("--conf", "x"),
    /^option '--conf' is ambiguous; possibilities: '--conf-path' '--config-net'$/,
  );
});

Deno.test("confParse() accepts unambiguous abbreviations", () => {
  const c = pasta("--config", "--map-g", "169.254.1.2", "--tcp-p=80");
  assert.ok(c.configNet);
  assert.equal(c.mapGuestAddr4, "169.254.1.2");
  assert.ok(portIsSet(c.tcp.map, 80));
});

Deno.test("confParse() clusters short options and attaches arguments", () => {
  const c = passt("-dft80", "-u53");
  assert.ok(c.debug && c.foreground);
  assert.ok(portIsSet(c.tcp.map, 80) && portIsSet(c.udp.map, 53));
});

Deno.test("confParse() stops at --help without reading later options", () => {
  const c = passt("-q", "--help", "--bogus");
  assert.ok(c.help && c.quiet);
  throwsConf(() => passt("--bogus", "--help"), "unrecognized option '--bogus'");
});

Deno.test("confParse() stops at --version and --print-capabilities", () => {
  assert.ok(passt("--version", "--netns", "x").version);
  assert.ok(passt("--print-capabilities", "extra").printCapabilities);
});

Deno.test("USAGE_TEXT lists every option and VERSION is a version", () => {
  for (const o of OPTIONS) {
    assert.ok(USAGE_TEXT.includes(`--${o.name}`), o.name);
    if (o.short !== undefined) assert.ok(USAGE_TEXT.includes(`-${o.short}, --${o.name}`), o.short);
  }
  assert.ok(USAGE_TEXT.split("\n").every((l) => l.length <= 100));
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

// --- Logging ----------------------------------------------------------------

Deno.test("confParse() lets -q cancel an earlier --trace and -d cancel an earlier -q", () => {
  const a = passt("--trace", "-q");
  assert.ok(a.quiet && !a.debug && !a.trace);
  const b = passt("-q", "-d");
  assert.ok(b.debug && !b.quiet);
});

Deno.test("confParse() defaults --log-size to 1 MiB and accepts C notation", () => {
  assert.equal(passt().logSize, 1048576);
  assert.equal(passt("--log-size", "0x100000").logSize, 0x100000);
});

Deno.test("confParse() rejects a --log-size below passt's minimum or malformed", () => {
  throwsConf(() => passt("--log-size", "40959"), /^Invalid --log-size "40959"/);
  assert.equal(passt("--log-size", "40960").logSize, 40960);
  throwsConf(() => passt("--log-size", "1M"), /Invalid --log-size "1M"/);
});

Deno.test("confParse() rejects --stats without -f, in either order accepts it with -f", () => {
  throwsConf(() => passt("--stats", "1"), /running in the foreground/);
  assert.equal(passt("-f", "--stats", "2").stats, 2);
  throwsConf(() => passt("-f", "--stats", "x"), /Invalid --stats delay "x"/);
});

Deno.test("confParse() rejects empty file paths", () => {
  throwsConf(() => passt("-l", ""), /^Invalid log file "" for -l: empty$/);
  throwsConf(() => passt("-p", ""), /Invalid pcap path ""/);
  throwsConf(() => passt("-P", ""), /Invalid PID file ""/);
});

Deno.test("confParse() rejects socket paths too long for a UNIX socket", () => {
  const long = `/tmp/${"x".repeat(103)}`;
  throwsConf(() => passt("-s", long), /longer than 107 bytes/);
  throwsConf(() => passt("-c", long), /Invalid configuration socket path/);
  assert.equal(passt("-s", long.slice(1)).socketPath, long.slice(1));
});

Deno.test("confParse() rejects a path longer than PATH_MAX", () => {
  throwsConf(() => passt("--pcap", "/" + "x".repeat(4095)), /longer than 4095 bytes/);
});

// --- --runas ----------------------------------------------------------------

Deno.test("confParse() parses --runas IDs and names", () => {
  assert.deepEqual(passt("--runas", "1000").runas, { user: 1000 });
  assert.deepEqual(passt("--runas", "0x10:010").runas, { user: 16, group: 8 });
  assert.deepEqual(passt("--runas", "nobody").runas, { user: "nobody" });
  assert.deepEqual(passt("--runas", "alice:users").runas, { user: "alice", group: "users" });
});

Deno.test("confParse() rejects malformed --runas values", () => {
  for (const v of ["", ":100", "alice:", "-1", "1000:-2", "a b", "4294967295"]) {
    throwsConf(() => passt("--runas", v), new RegExp(`^Invalid --runas "${v}"`));
  }
});

// --- -F and -s --------------------------------------------------------------

Deno.test("confParse() makes -F imply --one-off and drop an earlier -s", () => {
  const c = passt("-s", "/tmp/s", "-F", "0x10");
  assert.deepEqual([c.fd, c.oneOff, c.socketPath], [16, true, undefined]);
});

Deno.test("confParse() makes -s drop an earlier -F", () => {
  const c = passt("-F", "5", "-s", "/tmp/s");
  assert.deepEqual([c.fd, c.socketPath], [undefined, "/tmp/s"]);
});

Deno.test("confParse() rejects a bad --fd", () => {
  for (const v of ["x", "2", "-3", "2147483648", ""]) {
    throwsConf(() => passt("--fd", v), new RegExp(`^Invalid --fd "${v}"`));
  }
});

// --- MTU --------------------------------------------------------------------

Deno.test("confParse() leaves the MTU undefined when -m is not given", () => {
  assert.equal(passt().mtu, undefined);
});

Deno.test("confParse() accepts MTU 0 (announce none) up to 65521", () => {
  assert.equal(passt("-m", "0").mtu, 0);
  assert.equal(passt("-m", "65521").mtu, 65521);
  assert.equal(passt("-m", "0x5dc").mtu, 1500);
});

Deno.test("confParse() rejects an MTU above 65521 or malformed", () => {
  throwsConf(() => passt("-m", "65522"), 'Invalid MTU "65522": larger than 65521');
  throwsConf(() => passt("-m", "15oo"), /^Invalid MTU "15oo"/);
  throwsConf(() => passt("-m", "-1"), /^Invalid MTU "-1"/);
});

Deno.test("confParse() warns about an MTU too small for IPv4 or IPv6", () => {
  assert.deepEqual(passt("-m", "1000").warnings, ["MTU 1000 is too small for IPv6 (minimum 1280)"]);
  assert.deepEqual(passt("-m", "1000", "-4").warnings, []);
  assert.equal(passt("-m", "60").warnings.length, 2);
  assert.deepEqual(passt("-m", "0").warnings, []);
});

// --- Addresses --------------------------------------------------------------

Deno.test("confParse() takes one -a per IP version", () => {
  const c = passt("-a", "192.0.2.1", "-a", "2001:DB8::1/56");
  assert.deepEqual([c.addr4, c.prefixLen4, c.addr6, c.prefixLen6], [
    "192.0.2.1",
    24,
    "2001:db8::1",
    56,
  ]);
});

Deno.test("confParse() rejects a second -a of the same IP version", () => {
  throwsConf(
    () => passt("-a", "192.0.2.1", "-a", "192.0.2.2"),
    /^Redundant IPv4 address "192\.0\.2\.2"/,
  );
  throwsConf(() => passt("-a", "2001:db8::1", "-a", "2001:db8::2"), /^Redundant IPv6 address/);
});

Deno.test("confParse() gives -a the class prefix length unless told otherwise", () => {
  assert.equal(passt("-a", "10.1.2.3").prefixLen4, 8);
  assert.equal(passt("-a", "172.16.0.1").prefixLen4, 16);
  assert.equal(passt("-a", "192.168.0.1").prefixLen4, 24);
  assert.equal(passt("-n", "16", "-a", "192.168.0.1").prefixLen4, 16);
  assert.equal(passt("-a", "192.168.0.1", "-n", "255.255.0.0").prefixLen4, 16);
});

Deno.test("confParse() accepts -a in brackets and IPv4-mapped form", () => {
  assert.deepEqual(passt("-a", "[2001:db8::1]/64").addr6, "2001:db8::1");
  const c = passt("-a", "::ffff:10.0.0.5/120");
  assert.deepEqual([c.addr4, c.prefixLen4, c.addr6], ["10.0.0.5", 24, undefined]);
});

Deno.test("confParse() rejects -n together with a CIDR -a, in either order", () => {
  throwsConf(() => passt("-a", "10.0.0.1/24", "-n", "24"), /^Redundant prefix length "24"/);
  throwsConf(
    () => passt("-n", "24", "-a", "10.0.0.1/24"),
    /^Redundant prefix length in "10\.0\.0\.1\/24"/,
  );
});

Deno.test("confParse() rejects guest addresses that are not unicast", () => {
  for (
    const a of ["0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::", "::1", "ff02::1"]
  ) {
    throwsConf(() => passt("-a", a), new RegExp(`^Invalid guest address "${a}"`));
  }
});

Deno.test("confParse() rejects a malformed -a or prefix length", () => {
  throwsConf(() => passt("-a", "10.0.0"), /not an IPv4 or IPv6 address/);
  throwsConf(() => passt("-a", "10.0.0.1/33"), /prefix length "33" is not 0-32/);
  throwsConf(() => passt("-a", "2001:db8::1/129"), /prefix length "129" is not 0-128/);
  throwsConf(() => passt("-a", "10.0.0.1/"), /prefix length ""/);
  throwsConf(() => passt("-a", "10.0.0.1/0x8"), /prefix length "0x8"/);
  throwsConf(() => passt("-a", "::ffff:10.0.0.1/64"), /too short for an IPv4-mapped address/);
});

Deno.test("confParse() parses -n as a dotted mask or a length", () => {
  assert.equal(passt("-n", "255.255.252.0").netmask, 22);
  assert.equal(passt("-n", "0.0.0.0").netmask, 0);
  assert.equal(passt("-n", "255.255.255.255").netmask, 32);
  assert.equal(passt("-n", "0x10").netmask, 16);
});

Deno.test("confParse() rejects a non-contiguous or out-of-range -n", () => {
  throwsConf(
    () => passt("-n", "255.0.255.0"),
    'Invalid netmask "255.0.255.0": ones are not contiguous',
  );
  throwsConf(() => passt("-n", "33"), /^Invalid netmask "33"/);
  throwsConf(() => passt("-n", "x"), /^Invalid netmask "x"/);
});

Deno.test("confParse() rejects a malformed MAC address", () => {
  throwsConf(() => passt("-M", "52:54:00:12:34"), /^Invalid MAC address "52:54:00:12:34"/);
  throwsConf(() => pasta("--ns-mac-addr", "zz:54:00:12:34:56"), /^Invalid MAC address/);
});

Deno.test("confParse() takes one -g per IP version and refuses bad gateways", () => {
  const c = passt("-g", "10.0.2.2", "-g", "fe80::1");
  assert.deepEqual([c.gateway4, c.gateway6], ["10.0.2.2", "fe80::1"]);
  throwsConf(() => passt("-g", "10.0.2.2", "-g", "10.0.2.3"), /^Redundant gateway "10\.0\.2\.3"/);
  for (const g of ["0.0.0.0", "127.0.0.1", "255.255.255.255", "::", "::1", "gw"]) {
    throwsConf(() => passt("-g", g), new RegExp(`^Invalid gateway address "${g}"`));
  }
});

Deno.test("confParse() takes one -o per IP version and refuses bad outbound addresses", () => {
  const c = passt("-o", "127.0.0.1", "-o", "2001:db8::2");
  assert.deepEqual([c.outbound4, c.outbound6], ["127.0.0.1", "2001:db8::2"]);
  throwsConf(() => passt("-o", "192.0.2.1", "-o", "192.0.2.2"), /^Redundant outbound address/);
  for (
    const o of [
      "0.0.0.0",
      "255.255.255.255",
      "224.0.0.1",
      "::1",
      "::ffff:1.2.3.4",
      "::1.2.3.4",
      "ff02::1",
    ]
  ) {
    throwsConf(
      () => passt("-o", o),
      new RegExp(`^Invalid outbound address "${o.replace(/\./g, "\\.")}"`),
    );
  }
});

Deno.test("confParse() validates interface names", () => {
  throwsConf(
    () => passt("-i", "averyveryverylongname"),
    /^Invalid interface name "averyveryverylongname" for -i/,
  );
  throwsConf(
    () => passt("--outbound-if4", ""),
    /Invalid interface name "" for --outbound-if4: empty/,
  );
  throwsConf(() => passt("--outbound-if6", "a/b"), /contains/);
  throwsConf(() => pasta("-I", ".."), /reserved name/);
  assert.equal(pasta("-I", "abcdefghijklmno").nsIfname, "abcdefghijklmno");
});

// --- DNS ----------------------------------------------------------------------

Deno.test("confParse() collects -D addresses in order, at most three per IP version", () => {
  const c = passt(
    "-D",
    "1.1.1.1",
    "-D",
    "2001:4860:4860::8888",
    "-D",
    "8.8.8.8",
    "-D",
    "9.9.9.9",
    "-D",
    "1.0.0.1",
  );
  assert.deepEqual(c.dns, ["1.1.1.1", "2001:4860:4860::8888", "8.8.8.8", "9.9.9.9"]);
  assert.match(c.warnings[0]!, /Ignoring DNS address 1\.0\.0\.1/);
});

Deno.test("confParse() makes -D none drop resolvers and DNS forwarding", () => {
  const c = passt(
    "-D",
    "1.1.1.1",
    "--dns-forward",
    "10.0.2.3",
    "--dns-host",
    "1.1.1.1",
    "-D",
    "none",
  );
  assert.deepEqual([c.dns, c.dnsNone, c.dnsForward4, c.dnsHost4], [[], true, undefined, undefined]);
});

Deno.test("confParse() lets -D after -D none add resolvers again", () => {
  const c = passt("-D", "none", "-D", "::1");
  assert.deepEqual([c.dns, c.dnsNone], [["::1"], false]);
});

Deno.test("confParse() rejects a malformed -D", () => {
  throwsConf(
    () => passt("-D", "dns.example"),
    'Invalid DNS address "dns.example": not an IPv4 or IPv6 address',
  );
});

Deno.test("confParse() keeps one --dns-forward and --dns-host per IP version", () => {
  const c = pasta("--dns-forward", "169.254.1.1", "--dns-forward", "fd00::53", "--dns-host", "::1");
  assert.deepEqual([c.dnsForward4, c.dnsForward6, c.dnsHost6], ["169.254.1.1", "fd00::53", "::1"]);
});

Deno.test("confParse() rejects bad --dns-forward and --dns-host addresses", () => {
  throwsConf(
    () => pasta("--dns-forward", "127.0.0.1"),
    'Invalid DNS forwarding address "127.0.0.1": loopback address',
  );
  throwsConf(() => pasta("--dns-forward", "::"), /unspecified address/);
  throwsConf(
    () => pasta("--dns-host", "255.255.255.255"),
    /^Invalid host nameserver address "255\.255\.255\.255"/,
  );
  throwsConf(() => pasta("--dns-host", "0.0.0.0"), /unspecified/);
});

Deno.test("confParse() splits -S lists and accumulates them, at most six", () => {
  assert.deepEqual(passt("-S", "a.example", "-S", "b.example  c.example").search, [
    "a.example",
    "b.example",
    "c.example",
  ]);
  throwsConf(() => passt("-S", "a b c d e f g"), /^Cannot use DNS search domain "g": at most 6/);
  throwsConf(() => passt("-S", "x".repeat(1025)), /too long/);
  throwsConf(() => passt("-S", " "), /empty/);
});

Deno.test("confParse() makes -S none clear the search list", () => {
  const c = passt("-S", "a.example", "-S", "none");
  assert.deepEqual([c.search, c.searchNone], [[], true]);
  assert.deepEqual(passt("-S", "none.").search, ["none."]);
});

Deno.test("confParse() defaults DHCP DNS announcements per mode", () => {
  assert.deepEqual([passt().dhcpDns, passt().dhcpSearch], [true, true]);
  assert.deepEqual([pasta().dhcpDns, pasta().dhcpSearch], [false, false]);
});

Deno.test("confParse() limits -H and --fqdn to 253 bytes", () => {
  throwsConf(
    () => passt("-H", "h".repeat(254)),
    /^Invalid name "h+" for -H: longer than 253 bytes$/,
  );
  assert.equal(passt("--fqdn", "f".repeat(253)).fqdn?.length, 253);
});

// --- Address mapping ----------------------------------------------------------

Deno.test("confParse() keeps one --map-host-loopback per IP version", () => {
  const c = pasta("--map-host-loopback", "10.0.2.2", "--map-host-loopback", "fd00::2");
  assert.deepEqual([c.mapHostLoopback4, c.mapHostLoopback6, c.noMapGw], [
    "10.0.2.2",
    "fd00::2",
    false,
  ]);
});

Deno.test("confParse() makes --map-host-loopback none imply --no-map-gw", () => {
  const c = pasta("--map-host-loopback", "10.0.2.2", "--map-host-loopback", "none");
  assert.deepEqual([c.mapHostLoopback4, c.noMapGw], [undefined, true]);
});

Deno.test("confParse() makes --map-guest-addr none clear it without --no-map-gw", () => {
  const c = pasta("--map-guest-addr", "169.254.1.2", "--map-guest-addr", "none");
  assert.deepEqual([c.mapGuestAddr4, c.noMapGw], [undefined, false]);
});

Deno.test("confParse() rejects mapping loopback, multicast or unspecified addresses", () => {
  for (const a of ["127.0.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "ff02::1", "x"]) {
    throwsConf(() => pasta("--map-guest-addr", a), new RegExp(`^Invalid address to remap "${a}"`));
  }
});

// --- IP versions --------------------------------------------------------------

Deno.test("confParse() lets the last of -4 and -6 win, as passt does", () => {
  const a = passt("-4", "-6");
  assert.deepEqual([a.ipv4Only, a.ipv6Only], [false, true]);
  const b = passt("-6", "-4");
  assert.deepEqual([b.ipv4Only, b.ipv6Only], [true, false]);
});

Deno.test("confParse() makes -4 bind port forwards to IPv4 only", () => {
  assert.equal(passt("-4", "-t", "80").tcp.addr, "0.0.0.0");
  throwsConf(() => passt("-6", "-t", "127.0.0.1/80"), /IPv4 is disabled/);
});

// --- Port forwarding ----------------------------------------------------------

Deno.test("confParse() defaults every port option to auto in pasta mode", () => {
  const c = pasta();
  for (const f of [c.tcp, c.udp, c.tcpNs, c.udpNs]) assert.equal(f.mode, "auto");
});

Deno.test("confParse() defaults -t and -u to none in passt mode", () => {
  const c = passt();
  for (const f of [c.tcp, c.udp, c.tcpNs, c.udpNs]) assert.equal(f.mode, "none");
});

Deno.test("confParse() does not copy -t ports to UDP: -u keeps its own default", () => {
  const a = pasta("-t", "80");
  assert.deepEqual([a.tcp.mode, a.udp.mode], ["spec", "auto"]);
  const b = passt("-t", "80");
  assert.deepEqual([b.tcp.mode, b.udp.mode], ["spec", "none"]);
});

Deno.test("confParse() accumulates repeated -t options", () => {
  const c = passt("-t", "22", "--tcp-ports", "80,443");
  assert.ok([22, 80, 443].every((p) => portIsSet(c.tcp.map, p)));
});

Deno.test("confParse() rejects conflicting -t options", () => {
  throwsConf(() => pasta("-t", "80", "-t", "none"), '"-t none" conflicts with earlier -t options');
  throwsConf(() => pasta("-t", "auto", "-t", "80"), /^Conflicting port forwarding/);
});

Deno.test("confParse() rejects auto in passt mode", () => {
  throwsConf(() => passt("-t", "auto"), '"auto" port forwarding is only allowed for pasta');
});

Deno.test("confParse() reports port errors after other option errors, as passt does", () => {
  throwsConf(() => passt("-t", "bogus", "--netns", "x"), "--netns is for pasta mode only");
  throwsConf(() => passt("-t", "bogus"), /^Invalid port specifier "-t bogus"/);
});

Deno.test("confParse() skips the default auto for a disabled protocol", () => {
  const c = pasta("--no-tcp");
  assert.deepEqual([c.tcp.mode, c.tcpNs.mode, c.udp.mode], ["none", "none", "auto"]);
  assert.equal(pasta("--no-udp").udpNs.mode, "none");
});

Deno.test("confParse() rejects port forwarding for a disabled protocol", () => {
  throwsConf(
    () => pasta("--no-tcp", "-t", "80"),
    'Cannot use "-t 80": TCP is disabled by --no-tcp',
  );
  throwsConf(
    () => pasta("-U", "53", "--no-udp"),
    'Cannot use "-U 53": UDP is disabled by --no-udp',
  );
  assert.equal(pasta("--no-tcp", "-t", "none").tcp.mode, "none");
});

Deno.test("confParse() takes the ephemeral range for excludes-only specs", () => {
  const c = confParse(["-t", "~22"], { argv0Pasta: false, ephemeral: { min: 32768, max: 60999 } });
  assert.ok(!portIsSet(c.tcp.map, 40000));
  assert.ok(portIsSet(c.tcp.map, 61000));
});

// --- Implied settings and cross-option checks ---------------------------------

Deno.test("confParse() implies --no-splice in passt mode", () => {
  assert.ok(passt().noSplice);
  assert.ok(!pasta().noSplice);
});

Deno.test("confParse() makes --splice-only imply loopback delivery, no ICMP and no DNS", () => {
  const c = pasta("--splice-only");
  assert.ok(c.hostLoToNsLo && c.noIcmp && c.noNdp && c.dnsNone && c.searchNone);
});

Deno.test("confParse() rejects --splice-only with --no-splice", () => {
  throwsConf(
    () => pasta("--splice-only", "--no-splice"),
    "--splice-only is incompatible with --no-splice",
  );
});

Deno.test("confParse() rejects --host-lo-to-ns-lo with --no-splice", () => {
  throwsConf(
    () => pasta("--host-lo-to-ns-lo", "--no-splice"),
    "--host-lo-to-ns-lo is incompatible with --no-splice",
  );
});

Deno.test("confParse() rejects --no-copy-routes and --no-copy-addrs without --config-net", () => {
  throwsConf(() => pasta("--no-copy-routes"), "--no-copy-routes needs --config-net");
  throwsConf(() => pasta("--no-copy-addrs"), "--no-copy-addrs needs --config-net");
});

Deno.test("confParse() warns that --no-copy-routes is deprecated", () => {
  assert.deepEqual(pasta("--config-net", "--no-copy-routes").warnings, [
    "--no-copy-routes is deprecated and will be dropped",
  ]);
});

// --- Namespaces and non-option arguments --------------------------------------

Deno.test("confParse() resolves a --netns NAME under /run/netns and keeps a PATH", () => {
  assert.equal(pasta("--netns", "ctr").netns, `${NETNS_RUN_DIR}/ctr`);
  assert.equal(pasta("--netns", "./ns").netns, "./ns");
  throwsConf(() => pasta("--netns", ""), /Invalid network namespace ""/);
});

Deno.test("confParse() implies --netns-only for --netns without --userns", () => {
  assert.ok(pasta("--netns", "/run/netns/a").netnsOnly);
  const c = pasta("--netns", "/run/netns/a", "--userns", "/proc/1/ns/user");
  assert.deepEqual([c.netnsOnly, c.userns], [false, "/proc/1/ns/user"]);
});

Deno.test("confParse() lets --netns-only drop an earlier --userns and --userns cancel it", () => {
  const a = pasta("--userns", "/u", "--netns-only");
  assert.deepEqual([a.userns, a.netnsOnly], [undefined, true]);
  const b = pasta("--netns-only", "--userns", "/u");
  assert.deepEqual([b.userns, b.netnsOnly], ["/u", false]);
});

Deno.test("confParse() takes a single all-digit argument as a PID", () => {
  const c = pasta("--config-net", "12345");
  assert.deepEqual([c.pid, c.command, c.netns, c.netnsOnly], [12345, [], undefined, false]);
});

Deno.test("confParse() rejects a PID above INT_MAX", () => {
  throwsConf(() => pasta("2147483648"), 'Invalid PID "2147483648"');
});

Deno.test("confParse() takes other arguments as the command to run", () => {
  assert.deepEqual(pasta("-f", "sh", "-c", "echo 1").command, ["sh", "-c", "echo 1"]);
  assert.deepEqual(pasta("--", "-dash", "x").command, ["-dash", "x"]);
  assert.deepEqual(pasta("123", "456").command, ["123", "456"]);
  assert.deepEqual(pasta("12a").command, ["12a"]);
  assert.deepEqual(pasta().command, []);
});

Deno.test("confParse() rejects --netns together with a PID or command", () => {
  throwsConf(() => pasta("--netns", "x", "123"), "Both --netns and PID or command given");
  throwsConf(() => pasta("--netns", "x", "--", "sh"), "Both --netns and PID or command given");
});

Deno.test("confParse() rejects non-option arguments in passt mode", () => {
  throwsConf(() => passt("-f", "123"), 'Extra non-option argument "123"');
});
