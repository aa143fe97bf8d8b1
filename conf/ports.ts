/**
 * ports.ts - the port forwarding SPEC of -t, -u, -T and -U.
 *
 * Theory of operation. Grammar (passt(1)):
 *
 *     SPEC   := "none" | [ADDR[%IF]/ | *[%IF]/ | %IF/] CHUNK{,CHUNK}
 *     CHUNK  := FIRST[-LAST][:TARGET]     include range
 *             | ~FIRST[-LAST]             exclude range
 *             | all[:TOADDR]              all unbound non-ephemeral ports
 *             | auto                      (pasta only) forward when bound
 *     TARGET := TOADDR/TOFIRST[-TOLAST] | TOADDR | TOFIRST[-TOLAST]
 *
 * Addresses may be in brackets (`[::1]/80`). One SPEC becomes a list of
 * rules, as in passt's forwarding table: each include range minus the
 * excluded ports, or, when the SPEC has no include range at all (only `all`,
 * `auto` or excludes), every port from 1 to 65535 that is neither excluded nor
 * ephemeral, as a "weak" rule (bind failures are tolerated). `auto` marks the
 * rules of its SPEC "scan": a port is forwarded only while something listens
 * on it on the other side. As in passt, `all` next to an include range adds
 * nothing, and `auto` next to include ranges restricts scanning to them.
 *
 * Repeated options accumulate into one {@link FwdSpec}. A rule may not
 * overlap an earlier one whose listening address can match the same
 * connections (no address matches everything; 0.0.0.0 every IPv4 and ::
 * every IPv6 address), `none` is refused after rules were added, and `auto`
 * twice, `auto` with `all`, or `all` with a listed port overlap and are
 * refused for that reason, as passt does.
 *
 * The rules are the exact result. The bitmaps and the delta table summarise
 * them for the common case of one listening address; a port that two rules
 * (for different addresses) send to different target ports cannot be
 * summarised and is refused.
 *
 * @module
 */

import {
  formatIp,
  ip4IsBroadcast,
  ip4IsMulticast,
  ip4IsUnspecified,
  ip6IsMulticast,
  ip6IsUnspecified,
  type IpAddr,
  ipUnmap,
  parseIp4,
  parseIp6,
} from "./addr.ts";
import { ConfError } from "./errors.ts";

/** Number of port numbers (0..65535). */
export const NUM_PORTS = 65536;
/** Size in bytes of a bitmap with one bit per port. */
export const PORT_BITMAP_SIZE = NUM_PORTS / 8;
/** Longest interface name plus terminator, as IFNAMSIZ. */
const IFNAMSIZ = 16;

/**
 * What a FwdSpec does overall:
 * - "none": nothing is forwarded;
 * - "auto": some rules forward only ports found bound on the other side;
 * - "all": some rules cover all non-ephemeral ports (`all`, or excludes only);
 * - "spec": only listed ports.
 */
export type FwdMode = "none" | "auto" | "all" | "spec";

/** One forwarding rule: a port range on one listening address. */
export interface FwdRule {
  /** listening address (canonical text); undefined means any IPv4 and IPv6 address */
  addr?: string;
  /** listening interface (SO_BINDTODEVICE), if any */
  ifname?: string;
  /** first port of the range */
  first: number;
  /** last port of the range, inclusive */
  last: number;
  /** target port for `first`; port p goes to to + (p - first) */
  to: number;
  /** target address (canonical text); undefined means the guest's own address */
  toAddr?: string;
  /** part of an `all` or excludes-only set: failing to bind some ports is fine */
  weak: boolean;
  /** from `auto`: forward only while the port is bound on the other side */
  scan: boolean;
  /** the option that made this rule, for messages, for example "-t 80-90" */
  source: string;
}

/** The accumulated result of all -t (or -u, -T, -U) options. */
export interface FwdSpec {
  /** overall kind, see {@link FwdMode} */
  mode: FwdMode;
  /** bit p set (byte p >> 3, bit p & 7) when port p is forwarded (a candidate, for "auto") */
  map: Uint8Array;
  /** bit p set when port p was excluded with `~` */
  excluded: Uint8Array;
  /** destination port = (p + delta[p]) & 0xffff */
  delta: Uint16Array;
  /** listening address, when every rule has the same one */
  addr?: string;
  /** listening interface, when every rule has the same one */
  ifname?: string;
  /** the exact rules, in the order given */
  rules: FwdRule[];
}

/** The host's ephemeral port range (ports never forwarded by `all`). */
export interface EphemeralRange {
  /** first ephemeral port */
  min: number;
  /** last ephemeral port */
  max: number;
}

/** RFC 6335's ephemeral range, used when the host's cannot be read. */
export const EPHEMERAL_DEFAULT: EphemeralRange = { min: 49152, max: 65535 };

/** What a SPEC may use, from the mode and the other options. */
export interface PortsOptions {
  /** pasta mode: `auto` is allowed */
  pasta: boolean;
  /** IPv4 is enabled (false with -6) */
  ipv4: boolean;
  /** IPv6 is enabled (false with -4) */
  ipv6: boolean;
  /** the ephemeral range; {@link EPHEMERAL_DEFAULT} if not given */
  ephemeral?: EphemeralRange;
}

/** The option letters that take a SPEC. */
export type PortsOptname = "t" | "u" | "T" | "U";

/**
 * Makes an empty FwdSpec (mode "none").
 * @returns a spec with no rules
 */
export function fwdSpecNew(): FwdSpec {
  return {
    mode: "none",
    map: new Uint8Array(PORT_BITMAP_SIZE),
    excluded: new Uint8Array(PORT_BITMAP_SIZE),
    delta: new Uint16Array(NUM_PORTS),
    rules: [],
  };
}

/**
 * Tells whether a port's bit is set in a port bitmap.
 * @param map the bitmap
 * @param port the port number
 * @returns true if set
 */
export function portIsSet(map: Uint8Array, port: number): boolean {
  return (map[port >> 3]! & (1 << (port & 7))) !== 0;
}

/**
 * Sets a port's bit in a port bitmap.
 * @param map the bitmap
 * @param port the port number
 */
export function portSet(map: Uint8Array, port: number): void {
  map[port >> 3]! |= 1 << (port & 7);
}

/**
 * Reads the host's ephemeral port range from procfs.
 * @param path the sysctl file, "min<TAB>max"
 * @returns the range, or {@link EPHEMERAL_DEFAULT} if it cannot be read
 */
export function probeEphemeralRange(
  path = "/proc/sys/net/ipv4/ip_local_port_range",
): EphemeralRange {
  try {
    const m = /^([0-9]+)\s+([0-9]+)\s*$/.exec(Deno.readTextFileSync(path));
    if (m === null) return EPHEMERAL_DEFAULT;
    const min = Number(m[1]);
    const max = Number(m[2]);
    if (min >= NUM_PORTS || max >= NUM_PORTS) return EPHEMERAL_DEFAULT;
    return { min, max };
  } catch {
    return EPHEMERAL_DEFAULT;
  }
}

/** A port range as parsed. */
interface Range {
  first: number;
  last: number;
}

/** One parsed CHUNK. */
type Chunk =
  | { kind: "all"; toAddr: IpAddr | undefined }
  | { kind: "auto" }
  | { kind: "exclude"; range: Range }
  | { kind: "include"; range: Range; toAddr: IpAddr | undefined; toRange: Range };

/** A small cursor parser over one SPEC; failures throw with the SPEC quoted. */
class SpecParser {
  #s: string;
  #arg: string;
  pos = 0;

  constructor(s: string, arg: string) {
    this.#s = s;
    this.#arg = arg;
  }

  fail(detail: string): never {
    throw new ConfError(`Invalid port specifier "${this.#arg}": ${detail}`);
  }

  get rest(): string {
    return this.#s.slice(this.pos);
  }

  literal(lit: string): boolean {
    if (!this.#s.startsWith(lit, this.pos)) return false;
    this.pos += lit.length;
    return true;
  }

  /** An address, bracketed or not, IPv6 tried first; restores pos on failure. */
  address(): IpAddr | undefined {
    const rest = this.rest;
    const bracket = rest.startsWith("[");
    const close = rest.indexOf("]");
    if (bracket) {
      if (close < 0) return undefined;
      const text = rest.slice(1, close);
      const a = parseIp6(text) ?? parseIp4(text);
      if (a === null) return undefined;
      this.pos += close + 1;
      return ipUnmap({ family: a.length === 4 ? 4 : 6, bytes: a });
    }
    const t6 = /^[0-9a-fA-F:.]*/.exec(rest)![0];
    const a6 = parseIp6(t6);
    if (a6 !== null) {
      this.pos += t6.length;
      return ipUnmap({ family: 6, bytes: a6 });
    }
    const t4 = /^[0-9.]*/.exec(rest)![0];
    const a4 = parseIp4(t4);
    if (a4 !== null) {
      this.pos += t4.length;
      return { family: 4, bytes: a4 };
    }
    return undefined;
  }

  /** `%IFNAME`, or nothing; returns "" for nothing. */
  ifspec(): string {
    if (!this.literal("%")) return "";
    const name = /^[^/\s]*/.exec(this.rest)![0];
    if (name.length === 0) this.fail(`missing interface name after "%"`);
    if (name.length >= IFNAMSIZ) this.fail(`interface name "${name}" is too long`);
    this.pos += name.length;
    return name;
  }

  /** A decimal port number, range-checked. */
  port(): number | undefined {
    const digits = /^[0-9]+/.exec(this.rest)?.[0];
    if (digits === undefined) return undefined;
    this.pos += digits.length;
    const v = Number(digits);
    if (v >= NUM_PORTS) this.fail(`port "${digits}" is out of range (0-65535)`);
    return v;
  }

  /** FIRST[-LAST]; undefined (pos restored) when no number is there. */
  range(): Range | undefined {
    const start = this.pos;
    const first = this.port();
    if (first === undefined) return undefined;
    let last = first;
    if (this.literal("-")) {
      const l = this.port();
      if (l === undefined) {
        this.fail(`missing end of range after "${this.#s.slice(start, this.pos)}"`);
      }
      last = l;
    }
    if (last < first) this.fail(`range "${this.#s.slice(start, this.pos)}" is reversed`);
    return { first, last };
  }

  /** One CHUNK. */
  chunk(): Chunk {
    const start = this.pos;
    if (this.literal("all")) {
      let toAddr: IpAddr | undefined;
      if (this.literal(":")) {
        toAddr = this.address();
        if (toAddr === undefined) this.fail(`bad target address after "all:"`);
      }
      return { kind: "all", toAddr };
    }
    if (this.literal("auto")) return { kind: "auto" };
    if (this.literal("~")) {
      const range = this.range();
      if (range === undefined) this.fail(`expected a port or range after "~"`);
      return { kind: "exclude", range };
    }
    const range = this.range();
    if (range === undefined) {
      const bad = /^[^,]*/.exec(this.rest)![0];
      this.fail(bad === "" ? "empty item" : `unexpected "${bad}"`);
    }
    let toAddr: IpAddr | undefined;
    let toRange = range;
    if (this.literal(":")) {
      const at = this.pos;
      toAddr = this.address();
      if (toAddr !== undefined && this.literal("/")) {
        const r = this.range();
        if (r === undefined) {
          this.fail(`expected a target port after "${this.#s.slice(at, this.pos)}"`);
        }
        toRange = r;
      } else if (toAddr === undefined) {
        this.pos = at;
        const r = this.range();
        if (r === undefined) this.fail(`bad target after "${this.#s.slice(start, at)}"`);
        toRange = r;
      }
    }
    const n = range.last - range.first;
    if (toRange.last - toRange.first !== n) {
      this.fail(
        `"${this.#s.slice(start, this.pos)}" maps ${n + 1} port(s) onto ${
          toRange.last - toRange.first + 1
        }`,
      );
    }
    return { kind: "include", range, toAddr, toRange };
  }
}

/** The `[ADDR][%IF]/` prefix of a SPEC. */
interface Prefix {
  addr: IpAddr | undefined;
  ifname: string | undefined;
}

/** Parses the optional listening address and interface prefix. */
function parsePrefix(p: SpecParser): Prefix | undefined {
  const start = p.pos;
  const addr = p.address();
  if (addr !== undefined) {
    const ifname = p.ifspec();
    if (p.literal("/")) return { addr, ifname: ifname || undefined };
  }
  p.pos = start;
  p.literal("*");
  const ifname = p.ifspec();
  if (p.literal("/")) return { addr: undefined, ifname: ifname || undefined };
  p.pos = start;
  return undefined;
}

/** Whether two listening addresses can match the same connection (inany_matches). */
function addrsOverlap(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  const a4 = a.includes(".") && !a.includes(":");
  const b4 = b.includes(".") && !b.includes(":");
  if (a === "0.0.0.0" || a === "::" || b === "0.0.0.0" || b === "::") return a4 === b4;
  return a === b;
}

/** Whether an address may be the target of a forward. */
function targetIsMulticast(a: IpAddr): boolean {
  return a.family === 4
    ? ip4IsMulticast(a.bytes) || ip4IsBroadcast(a.bytes)
    : ip6IsMulticast(a.bytes);
}

/** Whether an address is 0.0.0.0 or ::. */
function isUnspecified(a: IpAddr): boolean {
  return a.family === 4 ? ip4IsUnspecified(a.bytes) : ip6IsUnspecified(a.bytes);
}

/** Adds one rule to the spec after the checks passt's fwd_rule_add() makes. */
function ruleAdd(
  fwd: FwdSpec,
  rule: FwdRule,
  toAddr: IpAddr | undefined,
  listen: IpAddr | undefined,
) {
  if (rule.first === 0) {
    throw new ConfError(`Invalid port specifier "${rule.source}": port 0 cannot be forwarded`);
  }
  if (rule.to === 0) {
    throw new ConfError(`Invalid port specifier "${rule.source}": cannot forward to port 0`);
  }
  if (toAddr !== undefined) {
    const kind = toAddr.family === 4 ? "IPv4" : "IPv6";
    if (targetIsMulticast(toAddr)) {
      throw new ConfError(
        `Invalid port specifier "${rule.source}": target "${rule.toAddr}" is not unicast`,
      );
    }
    if (listen === undefined) {
      const any = toAddr.family === 4 ? "0.0.0.0" : "[::]";
      throw new ConfError(
        `Invalid port specifier "${rule.source}": forwarding from any address to ${kind} address "${rule.toAddr}" is not supported, use ${any}/... to listen on ${kind} only`,
      );
    }
    if (listen.family !== toAddr.family) {
      throw new ConfError(
        `Invalid port specifier "${rule.source}": cannot forward from ${
          listen.family === 4 ? "IPv4" : "IPv6"
        } address "${rule.addr}" to ${kind} address "${rule.toAddr}"`,
      );
    }
  }
  for (const r of fwd.rules) {
    if (r.last < rule.first || rule.last < r.first) continue;
    if (!addrsOverlap(r.addr, rule.addr)) continue;
    const port = Math.max(r.first, rule.first);
    throw new ConfError(
      `Conflicting port forwarding: "${rule.source}" and "${r.source}" both forward port ${port}`,
    );
  }
  const delta = (rule.to - rule.first) & 0xffff;
  for (let port = rule.first; port <= rule.last; port++) {
    if (portIsSet(fwd.map, port) && fwd.delta[port] !== delta) {
      const other = fwd.rules.find((r) => r.first <= port && port <= r.last)!;
      throw new ConfError(
        `Port ${port} is forwarded to different target ports by "${other.source}" and "${rule.source}": not supported`,
      );
    }
  }
  for (let port = rule.first; port <= rule.last; port++) {
    portSet(fwd.map, port);
    fwd.delta[port] = delta;
  }
  fwd.rules.push(rule);
}

/** Adds rules for first..last minus the excluded ports, split at the holes. */
function rangeExcept(
  fwd: FwdSpec,
  base: Omit<FwdRule, "first" | "last" | "to">,
  first: number,
  last: number,
  exclude: Uint8Array,
  toFirst: number,
  toAddr: IpAddr | undefined,
  listen: IpAddr | undefined,
) {
  for (let p = first; p <= last; p++) {
    if (portIsSet(exclude, p)) continue;
    let q = p;
    while (q < last && !portIsSet(exclude, q + 1)) q++;
    ruleAdd(fwd, { ...base, first: p, last: q, to: p + toFirst - first }, toAddr, listen);
    p = q;
  }
}

/** Recomputes the summary fields (mode, addr, ifname) from the rules. */
function summarize(fwd: FwdSpec) {
  const rules = fwd.rules;
  if (rules.length === 0) fwd.mode = "none";
  else if (rules.some((r) => r.scan)) fwd.mode = "auto";
  else if (rules.some((r) => r.weak)) fwd.mode = "all";
  else fwd.mode = "spec";
  const r0 = rules[0];
  const sameAddr = r0 !== undefined && rules.every((r) => r.addr === r0.addr);
  const sameIf = r0 !== undefined && rules.every((r) => r.ifname === r0.ifname);
  if (sameAddr && r0.addr !== undefined) fwd.addr = r0.addr;
  else delete fwd.addr;
  if (sameIf && r0.ifname !== undefined) fwd.ifname = r0.ifname;
  else delete fwd.ifname;
}

/**
 * Applies one -t/-u/-T/-U option to the accumulated spec, as passt's
 * fwd_rule_parse() does.
 * @param fwd the spec to update
 * @param optname the option letter
 * @param optarg the SPEC text
 * @param opts what the mode and other options allow
 * @throws {ConfError} on bad syntax, a disallowed feature or a conflict
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { confPorts, fwdSpecNew, portIsSet } from "./ports.ts";
 *
 * const fwd = fwdSpecNew();
 * confPorts(fwd, "t", "8080:80", { pasta: true, ipv4: true, ipv6: true });
 * assert.equal(fwd.mode, "spec");
 * assert.ok(portIsSet(fwd.map, 8080));
 * assert.equal((8080 + fwd.delta[8080]!) & 0xffff, 80);
 * ```
 */
export function confPorts(
  fwd: FwdSpec,
  optname: PortsOptname,
  optarg: string,
  opts: PortsOptions,
): void {
  const work: FwdSpec = {
    ...fwd,
    map: fwd.map.slice(),
    excluded: fwd.excluded.slice(),
    delta: fwd.delta.slice(),
    rules: [...fwd.rules],
  };
  portsApply(work, optname, optarg, opts);
  fwd.map.set(work.map);
  fwd.excluded.set(work.excluded);
  fwd.delta.set(work.delta);
  fwd.rules = work.rules;
  summarize(fwd);
}

/** The body of confPorts(), working on a copy so that a failure changes nothing. */
function portsApply(fwd: FwdSpec, optname: PortsOptname, optarg: string, opts: PortsOptions) {
  const source = `-${optname} ${optarg}`;
  if (optarg === "none") {
    if (fwd.rules.length > 0) {
      throw new ConfError(`"-${optname} none" conflicts with earlier -${optname} options`);
    }
    return;
  }
  const p = new SpecParser(optarg, source);
  const prefix = parsePrefix(p);
  const ns = optname === "T" || optname === "U";
  if (prefix !== undefined && ns) {
    throw new ConfError(`Listening address not allowed for "${source}"`);
  }
  if (prefix?.ifname === "." || prefix?.ifname === "..") {
    throw new ConfError(`Invalid interface name "${prefix.ifname}" in "${source}"`);
  }
  let listen = prefix?.addr;
  if (listen === undefined && !opts.ipv4) listen = { family: 6, bytes: new Uint8Array(16) };
  else if (listen === undefined && !opts.ipv6) listen = { family: 4, bytes: new Uint8Array(4) };
  if (listen?.family === 4 && !opts.ipv4) {
    throw new ConfError(`Cannot forward "${source}": IPv4 is disabled`);
  }
  if (listen?.family === 6 && !opts.ipv6) {
    throw new ConfError(`Cannot forward "${source}": IPv6 is disabled`);
  }

  const chunks: Chunk[] = [];
  do {
    chunks.push(p.chunk());
  } while (p.literal(","));
  if (p.rest !== "") p.fail(`unexpected "${p.rest}"`);

  const exclude = new Uint8Array(PORT_BITMAP_SIZE);
  let scan = false;
  let allTo: IpAddr | undefined;
  for (const c of chunks) {
    if (c.kind === "auto") {
      if (!opts.pasta) throw new ConfError(`"auto" port forwarding is only allowed for pasta`);
      scan = true;
    } else if (c.kind === "exclude") {
      for (let i = c.range.first; i <= c.range.last; i++) {
        portSet(exclude, i);
        portSet(fwd.excluded, i);
      }
    } else if (c.kind === "all") {
      allTo = c.toAddr;
    }
  }
  const base = {
    ...(listen !== undefined ? { addr: formatIp(listen) } : {}),
    ...(prefix?.ifname !== undefined ? { ifname: prefix.ifname } : {}),
    weak: false,
    scan,
    source,
  };
  const target = (a: IpAddr | undefined) => a === undefined || isUnspecified(a) ? undefined : a;
  let includes = 0;
  for (const c of chunks) {
    if (c.kind !== "include") continue;
    includes++;
    const to = target(c.toAddr);
    const b = to === undefined ? base : { ...base, toAddr: formatIp(to) };
    rangeExcept(fwd, b, c.range.first, c.range.last, exclude, c.toRange.first, to, listen);
  }
  if (includes === 0) {
    const eph = opts.ephemeral ?? EPHEMERAL_DEFAULT;
    for (let i = eph.min; i <= eph.max; i++) portSet(exclude, i);
    const to = target(allTo);
    const b = to === undefined
      ? { ...base, weak: true }
      : { ...base, weak: true, toAddr: formatIp(to) };
    rangeExcept(fwd, b, 1, NUM_PORTS - 1, exclude, 1, to, listen);
  }
}

/**
 * Parses one SPEC into a fresh FwdSpec.
 * @param optname the option letter
 * @param optarg the SPEC text
 * @param opts what the mode and other options allow
 * @returns the spec
 * @throws {ConfError} as {@link confPorts}
 */
export function parsePortSpec(
  optname: PortsOptname,
  optarg: string,
  opts: PortsOptions,
): FwdSpec {
  const fwd = fwdSpecNew();
  confPorts(fwd, optname, optarg, opts);
  return fwd;
}
