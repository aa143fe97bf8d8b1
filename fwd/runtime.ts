/**
 * runtime.ts - forwards (-t, -u, -T, -U) added and removed while orzo runs.
 *
 * Theory of operation. The forwards in force are one list of rules per
 * direction: the explicit rules given at start-up (`auto` rules stay with
 * the scanners) and those added since. Adding a SPEC (pasta's -t/-u/-T/-U
 * grammar, conf/ports.ts) first applies it to a copy of that list, which
 * makes the same checks as at start-up (syntax, conflicts with rules in
 * force), then opens its sockets through the direction's own code
 * (fwd/direction.ts openRules(), the one used at start-up) into the one
 * listener table, with the same epoll references: a forward added now
 * behaves as one given at start-up, the splice path included (-t/-u clients
 * on the host's loopback; -T/-U are the splice path from the guest's
 * loopback to the host's). If an explicit port cannot be bound, the sockets
 * just opened are closed and nothing changes. Removing a SPEC closes the
 * sockets of exactly the rules it names; connections already accepted (TCP)
 * and flows already made (UDP: they hold duplicates of the socket) carry on.
 *
 * The direction's `auto` scanning leaves alone the ports a forward added
 * here holds, closing its own sockets of such a port first (two sockets
 * cannot listen on one port), and takes the port back when the forward
 * goes. The other direction's `auto` sees these ports as orzo's own (the
 * listener table), so it does not forward them back.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import { ConfError } from "../conf/errors.ts";
import {
  confPorts,
  type FwdRule,
  type FwdSpec,
  fwdSpecNew,
  parsePortSpec,
  portSet,
  type PortsOptions,
  type PortsOptname,
  probeEphemeralRange,
} from "../conf/ports.ts";
import type { Ctx } from "../ctx.ts";
import { debug } from "../log.ts";
import type { FwdDirection } from "./direction.ts";

/**
 * The directions whose forwards change at run time: "tcp" and "udp" are
 * -t and -u (host to guest), "tcp-ns" and "udp-ns" are -T and -U (the
 * guest's loopback to the host's), as pasta's --tcp-ports/--tcp-ns.
 */
export type FwdProto = "tcp" | "udp" | "tcp-ns" | "udp-ns";

/** Every {@linkcode FwdProto}, in `list` order. */
export const FWD_PROTOS: readonly FwdProto[] = ["tcp", "udp", "tcp-ns", "udp-ns"];

/** The option letter of each direction. */
const OPTNAME: Record<FwdProto, PortsOptname> = {
  "tcp": "t",
  "udp": "u",
  "tcp-ns": "T",
  "udp-ns": "U",
};

/**
 * The direction a protocol name or option letter names.
 * @param name "tcp", "udp", "tcp-ns", "udp-ns", or -t, -u, -T, -U
 * @returns the direction, or null for an unknown name
 */
export function fwdProtoOf(name: unknown): FwdProto | null {
  if (typeof name !== "string") return null;
  if ((FWD_PROTOS as readonly string[]).includes(name)) return name as FwdProto;
  for (const p of FWD_PROTOS) if (name === `-${OPTNAME[p]}`) return p;
  return null;
}

/** The directions of {@linkcode FwdRuntime}, null when off (--no-tcp, no namespace, ...). */
export type FwdDirections = Record<FwdProto, FwdDirection | null>;

/** One forwarding rule as SPEC text (what `list` shows, and `remove` takes). */
export function ruleText(r: FwdRule): string {
  const bracket = (a: string) => a.includes(":") ? `[${a}]` : a;
  let s = "";
  if (r.addr !== undefined || r.ifname !== undefined) {
    s += r.addr !== undefined ? bracket(r.addr) : "";
    if (r.ifname !== undefined) s += `%${r.ifname}`;
    s += "/";
  }
  s += r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
  const toLast = r.to + (r.last - r.first);
  if (r.to !== r.first || r.toAddr !== undefined) {
    s += ":";
    if (r.toAddr !== undefined) s += `${bracket(r.toAddr)}/`;
    s += r.to === toLast ? `${r.to}` : `${r.to}-${toLast}`;
  }
  return s;
}

function sameRule(a: FwdRule, b: FwdRule): boolean {
  return a.first === b.first && a.last === b.last && a.to === b.to && a.addr === b.addr &&
    a.ifname === b.ifname && a.toAddr === b.toAddr;
}

/** A spec holding the given rules (map and delta rebuilt from them). */
function specOf(rules: FwdRule[]): FwdSpec {
  const s = fwdSpecNew();
  for (const r of rules) {
    for (let p = r.first; p <= r.last; p++) {
      portSet(s.map, p);
      s.delta[p] = (r.to - r.first) & 0xffff;
    }
  }
  s.rules = rules;
  s.mode = rules.length === 0 ? "none" : "spec";
  return s;
}

/** Forwards added and removed while the loop runs (see the module doc). */
export class FwdRuntime {
  readonly #c: Ctx;
  readonly #pasta: boolean;
  readonly #dirs: FwdDirections;
  /** rules in force by direction (not `auto` ones) */
  readonly #live: Record<FwdProto, FwdSpec>;

  /**
   * @param c execution context (families)
   * @param conf the configuration (start-up rules, mode)
   * @param dirs the directions, null for those that are off
   */
  constructor(c: Ctx, conf: Config, dirs: FwdDirections) {
    this.#c = c;
    this.#pasta = conf.mode === "pasta";
    this.#dirs = dirs;
    const explicit = (s: FwdSpec) => specOf(s.rules.filter((r) => !r.scan));
    this.#live = {
      "tcp": explicit(conf.tcp),
      "udp": explicit(conf.udp),
      "tcp-ns": explicit(conf.tcpNs),
      "udp-ns": explicit(conf.udpNs),
    };
  }

  #opts(): PortsOptions {
    return {
      pasta: this.#pasta,
      ipv4: this.#c.ip4.enabled,
      ipv6: this.#c.ip6.enabled,
      ephemeral: probeEphemeralRange(),
    };
  }

  #dir(proto: FwdProto): FwdDirection {
    if (fwdProtoOf(proto) !== proto) {
      throw new ConfError(`Unknown protocol "${proto}": ${FWD_PROTOS.join(", ")}`);
    }
    const d = this.#dirs[proto];
    if (d === null) {
      const what = proto.startsWith("tcp") ? "TCP" : "UDP";
      throw new ConfError(
        proto.endsWith("-ns")
          ? `${what} forwarding from the namespace is not available (no namespace, --no-splice or --no-${what.toLowerCase()})`
          : `${what} is disabled`,
      );
    }
    return d;
  }

  /** Parses a SPEC for run-time use: no `auto`, no `none`. */
  #parse(proto: FwdProto, spec: string): FwdSpec {
    if (typeof spec !== "string" || spec.length === 0 || spec.length > 1024) {
      throw new ConfError("A SPEC of 1 to 1024 characters is needed");
    }
    const fresh = parsePortSpec(OPTNAME[proto], spec, this.#opts());
    if (fresh.rules.length === 0) throw new ConfError(`"${spec}" forwards nothing`);
    if (fresh.rules.some((r) => r.scan)) {
      throw new ConfError(`"auto" forwarding is set at start-up only`);
    }
    return fresh;
  }

  /**
   * Adds a forward, as `-t SPEC`, `-u SPEC`, `-T SPEC` or `-U SPEC` would at
   * start-up.
   * @param proto "tcp", "udp", "tcp-ns" or "udp-ns"
   * @param spec pasta's SPEC, for example "8080:80" or "127.0.0.1/5353"
   * @throws ConfError for a bad SPEC or one conflicting with a rule in force;
   *   SysError when an explicit port cannot be bound (nothing changed then)
   */
  add(proto: FwdProto, spec: string): void {
    const dir = this.#dir(proto);
    const fresh = this.#parse(proto, spec);
    const live = this.#live[proto];
    /* the checks of start-up, against the rules in force, on a copy */
    const work = specOf([...live.rules]);
    confPorts(work, OPTNAME[proto], spec, this.#opts());
    const added = work.rules.slice(live.rules.length);
    for (const r of added) this.#hold(dir, r, true);
    try {
      dir.openRules(added, fresh.excluded, true);
    } catch (e) {
      for (const r of added) dir.closeRule(r);
      for (const r of added) this.#hold(dir, r, false, live.rules);
      throw e;
    }
    this.#live[proto] = specOf(work.rules);
    debug(`forward added: ${proto} ${spec}`);
  }

  /**
   * Removes forwards: each rule of the SPEC must be one in force (as `list`
   * shows it). Their sockets close; established connections stay.
   * @param proto "tcp", "udp", "tcp-ns" or "udp-ns"
   * @param spec the SPEC of rules in force
   * @returns the number of rules removed
   * @throws ConfError when a rule of the SPEC is not in force
   */
  remove(proto: FwdProto, spec: string): number {
    const dir = this.#dir(proto);
    const fresh = this.#parse(proto, spec);
    const live = this.#live[proto];
    const gone: FwdRule[] = [];
    for (const r of fresh.rules) {
      const m = live.rules.find((x) => sameRule(x, r) && !gone.includes(x));
      if (m === undefined) {
        throw new ConfError(`No ${proto} forward "${ruleText(r)}" in force`);
      }
      gone.push(m);
    }
    const rest = live.rules.filter((r) => !gone.includes(r));
    for (const r of gone) dir.closeRule(r);
    this.#live[proto] = specOf(rest);
    for (const r of gone) this.#hold(dir, r, false, rest);
    debug(`forward removed: ${proto} ${spec}`);
    return gone.length;
  }

  /**
   * The rules in force (not `auto` ones), as SPEC text.
   * @returns the rules by direction
   */
  list(): Record<FwdProto, string[]> {
    const out = {} as Record<FwdProto, string[]>;
    for (const p of FWD_PROTOS) {
      out[p] = this.#dirs[p] === null ? [] : this.#live[p].rules.map(ruleText);
    }
    return out;
  }

  /** Takes a rule's ports from `auto`, or gives back those no other rule holds. */
  #hold(dir: FwdDirection, r: FwdRule, held: boolean, others: FwdRule[] = []): void {
    if (!dir.hasAuto) return;
    for (let p = r.first; p <= r.last; p++) {
      if (!held && others.some((o) => o.first <= p && p <= o.last)) continue;
      dir.hold(p, held);
    }
  }
}
