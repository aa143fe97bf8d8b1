import assert from "node:assert/strict";
import { ConfError } from "./errors.ts";
import {
  confPorts,
  EPHEMERAL_DEFAULT,
  type FwdSpec,
  fwdSpecNew,
  parsePortSpec,
  portIsSet,
  type PortsOptions,
  type PortsOptname,
  probeEphemeralRange,
} from "./ports.ts";

const PASTA: PortsOptions = { pasta: true, ipv4: true, ipv6: true };
const PASST: PortsOptions = { pasta: false, ipv4: true, ipv6: true };

/** Ports set in a bitmap, as a list. */
function ports(map: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < 65536; p++) if (portIsSet(map, p)) out.push(p);
  return out;
}

/** Number of ports set in a bitmap. */
function count(map: Uint8Array): number {
  let n = 0;
  for (const b of map) for (let x = b; x; x &= x - 1) n++;
  return n;
}

/** Where port p goes. */
function dest(fwd: FwdSpec, p: number): number {
  return (p + fwd.delta[p]!) & 0xffff;
}

/** Applies several specs of one option to a fresh FwdSpec. */
function many(optname: PortsOptname, specs: string[], opts = PASTA): FwdSpec {
  const fwd = fwdSpecNew();
  for (const s of specs) confPorts(fwd, optname, s, opts);
  return fwd;
}

/** Asserts that fn throws a ConfError whose message matches re. */
function throwsConf(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfError, String(e));
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("fwdSpecNew() starts with nothing forwarded", () => {
  const f = fwdSpecNew();
  assert.equal(f.mode, "none");
  assert.equal(f.map.length, 8192);
  assert.equal(f.excluded.length, 8192);
  assert.equal(f.delta.length, 65536);
  assert.equal(count(f.map), 0);
  assert.deepEqual(f.rules, []);
});

Deno.test("parsePortSpec() forwards a single port to itself", () => {
  const f = parsePortSpec("t", "22", PASST);
  assert.equal(f.mode, "spec");
  assert.deepEqual(ports(f.map), [22]);
  assert.equal(dest(f, 22), 22);
  assert.deepEqual(f.rules, [{
    first: 22,
    last: 22,
    to: 22,
    weak: false,
    scan: false,
    source: "-t 22",
  }]);
});

Deno.test("parsePortSpec() forwards a range", () => {
  const f = parsePortSpec("t", "22-25", PASST);
  assert.deepEqual(ports(f.map), [22, 23, 24, 25]);
});

Deno.test("parsePortSpec() forwards a comma-separated list", () => {
  const f = parsePortSpec("u", "22,25,30-31", PASST);
  assert.deepEqual(ports(f.map), [22, 25, 30, 31]);
});

Deno.test("parsePortSpec() translates a port", () => {
  const f = parsePortSpec("t", "8080:80", PASST);
  assert.deepEqual(ports(f.map), [8080]);
  assert.equal(dest(f, 8080), 80);
});

Deno.test("parsePortSpec() translates a range onto a range of the same size", () => {
  const f = parsePortSpec("t", "22-80:32-90", PASST);
  assert.equal(dest(f, 22), 32);
  assert.equal(dest(f, 80), 90);
});

Deno.test("parsePortSpec() keeps delta arithmetic modulo 65536", () => {
  const f = parsePortSpec("t", "65535:1", PASST);
  assert.equal(dest(f, 65535), 1);
  assert.equal(parsePortSpec("t", "1:65535", PASST).delta[1], 65534);
});

Deno.test("parsePortSpec() removes excluded ports from include ranges", () => {
  const f = parsePortSpec("t", "5-25,~10-20", PASST);
  assert.deepEqual(ports(f.map), [5, 6, 7, 8, 9, 21, 22, 23, 24, 25]);
  assert.deepEqual(ports(f.excluded), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  assert.deepEqual(f.rules.map((r) => [r.first, r.last]), [[5, 9], [21, 25]]);
});

Deno.test("parsePortSpec() applies exclusions given before the range", () => {
  const f = parsePortSpec("t", "~22,20-24", PASST);
  assert.deepEqual(ports(f.map), [20, 21, 23, 24]);
});

Deno.test("parsePortSpec() keeps translation across an exclusion hole", () => {
  const f = parsePortSpec("t", "100-110:200-210,~105", PASST);
  assert.equal(dest(f, 104), 204);
  assert.equal(dest(f, 106), 206);
  assert.ok(!portIsSet(f.map, 105));
});

Deno.test("parsePortSpec() treats excludes alone as all other non-ephemeral ports", () => {
  const f = parsePortSpec("t", "~25", PASST);
  assert.equal(f.mode, "all");
  assert.ok(!portIsSet(f.map, 0));
  assert.ok(portIsSet(f.map, 1));
  assert.ok(!portIsSet(f.map, 25));
  assert.ok(portIsSet(f.map, 49151));
  assert.ok(!portIsSet(f.map, 49152));
  assert.equal(count(f.map), 49151 - 1);
  assert.ok(f.rules.every((r) => r.weak && !r.scan));
});

Deno.test("parsePortSpec() uses the ephemeral range it is given", () => {
  const f = parsePortSpec("t", "~25", { ...PASST, ephemeral: { min: 32768, max: 60999 } });
  assert.ok(portIsSet(f.map, 32767));
  assert.ok(!portIsSet(f.map, 32768));
  assert.ok(!portIsSet(f.map, 60999));
  assert.ok(portIsSet(f.map, 61000));
  assert.ok(portIsSet(f.map, 65535));
});

Deno.test("parsePortSpec() forwards all non-ephemeral ports but 0 for 'all'", () => {
  const f = parsePortSpec("t", "all", PASST);
  assert.equal(f.mode, "all");
  assert.equal(count(f.map), 49151);
  assert.ok(!portIsSet(f.map, 0));
  assert.ok(f.rules.every((r) => r.weak));
  assert.deepEqual(f.rules.map((r) => [r.first, r.last]), [[1, 49151]]);
});

Deno.test("parsePortSpec() accepts 'all' in pasta mode too", () => {
  assert.equal(parsePortSpec("t", "all", PASTA).mode, "all");
});

Deno.test("parsePortSpec() ignores 'all' next to an include range, as passt does", () => {
  const f = parsePortSpec("t", "all,80", PASST);
  assert.equal(f.mode, "spec");
  assert.deepEqual(ports(f.map), [80]);
});

Deno.test("parsePortSpec() makes 'auto' scan all non-ephemeral ports in pasta mode", () => {
  const f = parsePortSpec("t", "auto", PASTA);
  assert.equal(f.mode, "auto");
  assert.equal(count(f.map), 49151);
  assert.ok(f.rules.every((r) => r.scan && r.weak));
});

Deno.test("parsePortSpec() restricts 'auto' to the listed ports", () => {
  const f = parsePortSpec("t", "8000-8010,auto", PASTA);
  assert.equal(f.mode, "auto");
  assert.equal(count(f.map), 11);
  assert.deepEqual(f.rules, [{
    first: 8000,
    last: 8010,
    to: 8000,
    weak: false,
    scan: true,
    source: "-t 8000-8010,auto",
  }]);
});

Deno.test("parsePortSpec() refuses 'auto' in passt mode", () => {
  throwsConf(
    () => parsePortSpec("t", "auto", PASST),
    /"auto" port forwarding is only allowed for pasta/,
  );
});

Deno.test("parsePortSpec() leaves 'none' with nothing forwarded", () => {
  const f = parsePortSpec("t", "none", PASST);
  assert.equal(f.mode, "none");
  assert.equal(count(f.map), 0);
});

Deno.test("parsePortSpec() binds to a listening address", () => {
  const f = parsePortSpec("t", "192.0.2.1/22", PASST);
  assert.equal(f.addr, "192.0.2.1");
  assert.equal(f.rules[0]!.addr, "192.0.2.1");
  assert.equal(f.ifname, undefined);
});

Deno.test("parsePortSpec() normalises IPv6 and IPv4-mapped listening addresses", () => {
  assert.equal(parsePortSpec("t", "2001:DB8:0::1/80", PASST).addr, "2001:db8::1");
  assert.equal(parsePortSpec("t", "[::1]/80", PASST).addr, "::1");
  assert.equal(parsePortSpec("t", "::ffff:127.0.0.1/80", PASST).addr, "127.0.0.1");
  assert.equal(parsePortSpec("t", "[127.0.0.1]/80", PASST).addr, "127.0.0.1");
});

Deno.test("parsePortSpec() binds to an address and an interface", () => {
  const f = parsePortSpec("t", "192.0.2.1%eth0/22", PASST);
  assert.equal(f.addr, "192.0.2.1");
  assert.equal(f.ifname, "eth0");
});

Deno.test("parsePortSpec() binds to an interface alone", () => {
  for (const spec of ["%eth0/22", "*%eth0/22"]) {
    const f = parsePortSpec("t", spec, PASST);
    assert.equal(f.addr, undefined, spec);
    assert.equal(f.ifname, "eth0", spec);
    assert.deepEqual(ports(f.map), [22]);
  }
});

Deno.test("parsePortSpec() accepts '*' as any address", () => {
  const f = parsePortSpec("t", "*/22", PASST);
  assert.equal(f.addr, undefined);
  assert.deepEqual(ports(f.map), [22]);
});

Deno.test("parsePortSpec() forwards 'all' from one address", () => {
  const f = parsePortSpec("t", "::1/all", PASST);
  assert.equal(f.mode, "all");
  assert.equal(f.addr, "::1");
});

Deno.test("parsePortSpec() sends to a target address and port", () => {
  const f = parsePortSpec("t", "0.0.0.0/5000:192.0.2.5/6000", PASST);
  assert.equal(dest(f, 5000), 6000);
  assert.equal(f.rules[0]!.toAddr, "192.0.2.5");
  assert.equal(f.addr, "0.0.0.0");
});

Deno.test("parsePortSpec() sends to a target address keeping the port", () => {
  const f = parsePortSpec("t", "[::1]/80:[2001:db8::5]", PASST);
  assert.equal(dest(f, 80), 80);
  assert.equal(f.rules[0]!.toAddr, "2001:db8::5");
});

Deno.test("parsePortSpec() sends 'all' to a target address from a specific address", () => {
  const f = parsePortSpec("t", "127.0.0.6/all:192.0.2.6", PASST);
  assert.ok(f.rules.every((r) => r.toAddr === "192.0.2.6" && r.weak));
});

Deno.test("parsePortSpec() treats an unspecified target address as none", () => {
  const f = parsePortSpec("t", "80:0.0.0.0/8080", PASST);
  assert.equal(f.rules[0]!.toAddr, undefined);
  assert.equal(dest(f, 80), 8080);
});

Deno.test("parsePortSpec() refuses a target address for a forward from any address", () => {
  throwsConf(() => parsePortSpec("t", "80:192.0.2.5", PASST), /use 0\.0\.0\.0\/\.\.\./);
  throwsConf(() => parsePortSpec("t", "all:192.0.2.5", PASST), /from any address/);
});

Deno.test("parsePortSpec() refuses a target address of the other IP version", () => {
  throwsConf(() => parsePortSpec("t", "::1/80:192.0.2.5", PASST), /from IPv6 .* to IPv4/);
});

Deno.test("parsePortSpec() refuses a multicast or broadcast target address", () => {
  throwsConf(
    () => parsePortSpec("t", "0.0.0.0/80:224.0.0.1", PASST),
    /"224\.0\.0\.1" is not unicast/,
  );
  throwsConf(() => parsePortSpec("t", "0.0.0.0/80:255.255.255.255", PASST), /not unicast/);
  throwsConf(() => parsePortSpec("t", "::/80:ff02::1", PASST), /not unicast/);
});

Deno.test("parsePortSpec() refuses a reversed range", () => {
  throwsConf(
    () => parsePortSpec("t", "90-80", PASST),
    /^Invalid port specifier "-t 90-80": range "90-80" is reversed$/,
  );
});

Deno.test("parsePortSpec() refuses port numbers above 65535", () => {
  throwsConf(() => parsePortSpec("t", "65536", PASST), /port "65536" is out of range/);
  throwsConf(() => parsePortSpec("t", "80:99999", PASST), /port "99999" is out of range/);
});

Deno.test("parsePortSpec() refuses to forward from or to port 0", () => {
  throwsConf(() => parsePortSpec("t", "0", PASST), /port 0 cannot be forwarded/);
  throwsConf(() => parsePortSpec("t", "0-5", PASST), /port 0 cannot be forwarded/);
  throwsConf(() => parsePortSpec("t", "80:0", PASST), /cannot forward to port 0/);
});

Deno.test("parsePortSpec() refuses a translation onto a range of another size", () => {
  throwsConf(
    () => parsePortSpec("t", "22-80:32-91", PASST),
    /"22-80:32-91" maps 59 port\(s\) onto 60/,
  );
});

Deno.test("parsePortSpec() refuses malformed specs, quoting them", () => {
  for (
    const spec of [
      "",
      "x",
      "80x",
      "80,",
      ",80",
      "80-",
      "80-x",
      "~",
      "~x",
      "80:",
      "80:x",
      "auto2",
      "none,80",
      "80 ",
      " 80",
      "+80",
      "-80",
      "1.2.3.4/",
      "300.1.1.1/80",
      "80:1.2.3.4/x",
    ]
  ) {
    throwsConf(
      () => parsePortSpec("t", spec, PASTA),
      new RegExp(`^Invalid port specifier "-t ${spec.replace(/[.*+]/g, "\\$&")}"`),
    );
  }
});

Deno.test("parsePortSpec() refuses a bad interface name", () => {
  throwsConf(() => parsePortSpec("t", "%/80", PASST), /missing interface name/);
  throwsConf(
    () => parsePortSpec("t", "%abcdefghijklmnop/80", PASST),
    /"abcdefghijklmnop" is too long/,
  );
  throwsConf(() => parsePortSpec("t", "%../80", PASST), /Invalid interface name "\.\."/);
});

Deno.test("parsePortSpec() refuses a listening address for -T and -U", () => {
  throwsConf(
    () => parsePortSpec("T", "127.0.0.1/80", PASTA),
    /Listening address not allowed for "-T 127\.0\.0\.1\/80"/,
  );
  throwsConf(() => parsePortSpec("U", "%lo/80", PASTA), /Listening address not allowed/);
});

Deno.test("parsePortSpec() binds to one family's wildcard when the other is disabled", () => {
  assert.equal(parsePortSpec("t", "80", { ...PASST, ipv6: false }).addr, "0.0.0.0");
  assert.equal(parsePortSpec("t", "80", { ...PASST, ipv4: false }).addr, "::");
});

Deno.test("parsePortSpec() refuses an address of a disabled IP version", () => {
  throwsConf(
    () => parsePortSpec("t", "127.0.0.1/80", { ...PASST, ipv4: false }),
    /IPv4 is disabled/,
  );
  throwsConf(() => parsePortSpec("t", "::1/80", { ...PASST, ipv6: false }), /IPv6 is disabled/);
});

Deno.test("confPorts() accumulates repeated options", () => {
  const f = many("t", ["22", "80-81", "8080:80"]);
  assert.deepEqual(ports(f.map), [22, 80, 81, 8080]);
  assert.equal(dest(f, 8080), 80);
  assert.deepEqual(f.rules.map((r) => r.source), ["-t 22", "-t 80-81", "-t 8080:80"]);
});

Deno.test("confPorts() accepts 'none' before other options", () => {
  const f = many("t", ["none", "80"]);
  assert.equal(f.mode, "spec");
  assert.deepEqual(ports(f.map), [80]);
  assert.equal(many("t", ["none", "none"]).mode, "none");
});

Deno.test("confPorts() refuses 'none' after ports were forwarded", () => {
  throwsConf(() => many("u", ["80", "none"]), /^"-u none" conflicts with earlier -u options$/);
});

Deno.test("confPorts() refuses the same port twice", () => {
  throwsConf(
    () => many("t", ["80", "80"]),
    /^Conflicting port forwarding: "-t 80" and "-t 80" both forward port 80$/,
  );
  throwsConf(() => many("t", ["80,80"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["70-90", "85-95"]), /"-t 85-95" and "-t 70-90" both forward port 85/);
});

Deno.test("confPorts() refuses 'auto' twice or with a listed port", () => {
  throwsConf(() => many("t", ["auto", "auto"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["auto", "80"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["80", "auto"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["all", "auto"]), /Conflicting port forwarding/);
});

Deno.test("confPorts() accepts 'auto' for other ports than a listed one", () => {
  const f = many("t", ["80", "90,auto"]);
  assert.equal(f.mode, "auto");
  assert.deepEqual(ports(f.map), [80, 90]);
});

Deno.test("confPorts() refuses an address-bound port also forwarded from any address", () => {
  throwsConf(() => many("t", ["127.0.0.1/80", "80"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["0.0.0.0/80", "127.0.0.1/80"]), /Conflicting port forwarding/);
  throwsConf(() => many("t", ["::/80", "::1/80"]), /Conflicting port forwarding/);
});

Deno.test("confPorts() accepts one port on addresses that cannot overlap", () => {
  const f = many("t", ["127.0.0.1/80", "::1/80", "0.0.0.0/443", "::/443"]);
  assert.deepEqual(ports(f.map), [80, 443]);
  assert.equal(f.rules.length, 4);
  assert.equal(f.addr, undefined);
});

Deno.test("confPorts() refuses one port sent to different targets from different addresses", () => {
  throwsConf(
    () => many("t", ["127.0.0.1/80:8080", "::1/80:8081"]),
    /Port 80 is forwarded to different target ports/,
  );
});

Deno.test("confPorts() summarises a listening address shared by every rule", () => {
  const f = many("t", ["127.0.0.1/80", "127.0.0.1/90"]);
  assert.equal(f.addr, "127.0.0.1");
});

Deno.test("confPorts() records excluded ports across options", () => {
  const f = many("t", ["1-10,~5", "20-30,~25"]);
  assert.deepEqual(ports(f.excluded), [5, 25]);
});

Deno.test("confPorts() leaves the spec untouched when an option is bad", () => {
  const f = many("t", ["80"]);
  assert.throws(() => confPorts(f, "t", "90-", PASTA));
  assert.throws(() => confPorts(f, "t", "100,~5,100", PASTA));
  assert.deepEqual(ports(f.map), [80]);
  assert.deepEqual(ports(f.excluded), []);
  assert.equal(f.rules.length, 1);
});

Deno.test("probeEphemeralRange() falls back to RFC 6335's range when the file cannot be read", () => {
  assert.deepEqual(probeEphemeralRange("/nonexistent/ip_local_port_range"), EPHEMERAL_DEFAULT);
  assert.deepEqual(EPHEMERAL_DEFAULT, { min: 49152, max: 65535 });
});
