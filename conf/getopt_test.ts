import assert from "node:assert/strict";
import { Getopt, getoptLong, type LongOption } from "./getopt.ts";
import { ConfError } from "./errors.ts";

const OPTSTRING = "+dqft:u:x::";
const LONG: LongOption[] = [
  { name: "debug", hasArg: "none", val: "d" },
  { name: "quiet", hasArg: "none", val: "q" },
  { name: "tcp-ports", hasArg: "required", val: "t" },
  { name: "tcp-ns", hasArg: "required", val: "T" },
  { name: "socket", hasArg: "required", val: "s" },
  { name: "socket-path", hasArg: "required", val: "s" },
  { name: "no-dhcp", hasArg: "none", val: "no-dhcp" },
  { name: "no-dhcpv6", hasArg: "none", val: "no-dhcpv6" },
  { name: "no-dhcp-dns", hasArg: "none", val: "no-dhcp-dns" },
  { name: "level", hasArg: "optional", val: "level" },
];

/** Scans argv with the test tables, returning [val, arg] pairs and the positional arguments. */
function scan(argv: string[], optstring = OPTSTRING) {
  const r = getoptLong(argv, optstring, LONG);
  return { opts: r.options.map((o) => [o.val, o.arg]), rest: r.positional };
}

/** Asserts that scanning argv throws a ConfError with exactly this message. */
function throwsMsg(argv: string[], message: string) {
  assert.throws(() => getoptLong(argv, OPTSTRING, LONG), (e: unknown) => {
    assert.ok(e instanceof ConfError);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("getoptLong() splits clustered short options", () => {
  assert.deepEqual(scan(["-dqf"]).opts, [["d", undefined], ["q", undefined], ["f", undefined]]);
});

Deno.test("getoptLong() takes an attached short option argument", () => {
  assert.deepEqual(scan(["-t80"]).opts, [["t", "80"]]);
});

Deno.test("getoptLong() takes the next word as a short option argument", () => {
  assert.deepEqual(scan(["-t", "80"]).opts, [["t", "80"]]);
});

Deno.test("getoptLong() takes the next word even when it starts with a dash", () => {
  assert.deepEqual(scan(["-t", "-d"]).opts, [["t", "-d"]]);
  assert.deepEqual(scan(["--tcp-ports", "--"]).opts, [["t", "--"]]);
});

Deno.test("getoptLong() gives the rest of a cluster to the option needing an argument", () => {
  assert.deepEqual(scan(["-dt80"]).opts, [["d", undefined], ["t", "80"]]);
  assert.deepEqual(scan(["-dt", "80"]).opts, [["d", undefined], ["t", "80"]]);
});

Deno.test("getoptLong() takes --long=value and --long value", () => {
  assert.deepEqual(scan(["--tcp-ports=80", "--tcp-ports", "90"]).opts, [["t", "80"], ["t", "90"]]);
});

Deno.test("getoptLong() takes an empty --long= value", () => {
  assert.deepEqual(scan(["--tcp-ports="]).opts, [["t", ""]]);
});

Deno.test("getoptLong() accepts an unambiguous long option prefix", () => {
  assert.deepEqual(scan(["--tcp-p", "80", "--deb"]).opts, [["t", "80"], ["d", undefined]]);
});

Deno.test("getoptLong() prefers an exact long name over longer names it prefixes", () => {
  assert.deepEqual(scan(["--no-dhcp"]).opts, [["no-dhcp", undefined]]);
});

Deno.test("getoptLong() accepts a prefix shared only by aliases of one option", () => {
  assert.deepEqual(scan(["--sock", "/tmp/s"]).opts, [["s", "/tmp/s"]]);
});

Deno.test("getoptLong() reports the full name for a long option found by prefix", () => {
  const g = new Getopt(["--tcp-p=1"], OPTSTRING, LONG);
  assert.equal(g.next()?.opt, "--tcp-ports");
  assert.equal(new Getopt(["-t1"], OPTSTRING, LONG).next()?.opt, "-t");
});

Deno.test("getoptLong() rejects an ambiguous prefix, listing the candidates", () => {
  throwsMsg(
    ["--tcp", "80"],
    "option '--tcp' is ambiguous; possibilities: '--tcp-ports' '--tcp-ns'",
  );
  throwsMsg(
    ["--no-dh"],
    "option '--no-dh' is ambiguous; possibilities: '--no-dhcp' '--no-dhcpv6' '--no-dhcp-dns'",
  );
});

Deno.test("getoptLong() rejects an unknown long option as glibc words it", () => {
  throwsMsg(["--foo"], "unrecognized option '--foo'");
  throwsMsg(["--foo=bar"], "unrecognized option '--foo=bar'");
});

Deno.test("getoptLong() rejects an unknown short option as glibc words it", () => {
  throwsMsg(["-dz"], "invalid option -- 'z'");
});

Deno.test("getoptLong() does not take ':' as an option letter", () => {
  throwsMsg(["-:"], "invalid option -- ':'");
});

Deno.test("getoptLong() rejects a short option missing its argument", () => {
  throwsMsg(["-t"], "option requires an argument -- 't'");
});

Deno.test("getoptLong() rejects a long option missing its argument", () => {
  throwsMsg(["--tcp-p"], "option '--tcp-ports' requires an argument");
});

Deno.test("getoptLong() rejects an argument given to a long option that takes none", () => {
  throwsMsg(["--debug=1"], "option '--debug' doesn't allow an argument");
  throwsMsg(["--deb="], "option '--debug' doesn't allow an argument");
});

Deno.test("getoptLong() takes an optional argument only when attached", () => {
  assert.deepEqual(scan(["-x1", "-x", "--level=2", "--level"]).opts, [
    ["x", "1"],
    ["x", undefined],
    ["level", "2"],
    ["level", undefined],
  ]);
});

Deno.test("getoptLong() ends options at --", () => {
  assert.deepEqual(scan(["-d", "--", "-q", "x"]), { opts: [["d", undefined]], rest: ["-q", "x"] });
});

Deno.test("getoptLong() with a leading + stops at the first non-option", () => {
  assert.deepEqual(scan(["-d", "cmd", "-q", "--", "x"]), {
    opts: [["d", undefined]],
    rest: ["cmd", "-q", "--", "x"],
  });
});

Deno.test("getoptLong() treats a lone - as a non-option", () => {
  assert.deepEqual(scan(["-", "-d"]), { opts: [], rest: ["-", "-d"] });
});

Deno.test("getoptLong() without + sets non-options aside and keeps scanning", () => {
  assert.deepEqual(scan(["a", "-d", "b", "--", "-q"], "dq"), {
    opts: [["d", undefined]],
    rest: ["a", "b", "-q"],
  });
});

Deno.test("getoptLong() returns no options for an empty argv", () => {
  assert.deepEqual(scan([]), { opts: [], rest: [] });
});

Deno.test("Getopt.optind points past the options consumed", () => {
  const g = new Getopt(["-t", "80", "cmd"], OPTSTRING, LONG);
  g.next();
  assert.equal(g.optind, 2);
  assert.equal(g.next(), null);
  assert.equal(g.next(), null);
  assert.deepEqual(g.positional, ["cmd"]);
});
