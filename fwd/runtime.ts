/**
 * runtime.ts - inbound forwards (-t, -u) added and removed while orzo runs.
 *
 * Theory of operation. The forwards in force are one list of rules per
 * protocol: the explicit rules given at start-up (`auto` rules stay with
 * the scanners) and those added since. Adding a SPEC (pasta's -t/-u grammar,
 * conf/ports.ts) first applies it to a copy of that list, which makes the
 * same checks as at start-up (syntax, conflicts with rules in force), then
 * opens its sockets through the start-up code (tcp/listen.ts
 * tcpListenRules(), udp/listen.ts udpListenPort()) into the same listener
 * tables, with the same epoll references: a forward added now behaves as one
 * given at start-up, the splice path for clients on the host's loopback
 * included. If an explicit port cannot be bound, the sockets just opened are
 * closed and nothing changes. Removing a SPEC closes the sockets of exactly
 * the rules it names; connections already accepted (TCP) and flows already
 * made (UDP: they hold duplicates of the socket) carry on.
 *
 * The `auto` scanners (tcp/auto.ts, udp/auto.ts) leave alone the ports a
 * forward added here holds, closing their own listeners of such a port first
 * (two sockets cannot listen on one port), and take the port back when the
 * forward goes. `-T auto` and `-U auto` see these ports as orzo's own (the
 * listener tables), so they do not forward them back.
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
  portIsSet,
  portSet,
  type PortsOptions,
  probeEphemeralRange,
} from "../conf/ports.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import type { Ctx } from "../ctx.ts";
import { EPOLLIN } from "../ffi/layout.ts";
import { errno, SysError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { PIF_HOST } from "../flow/pif.ts";
import { EPOLL_TYPE_TCP_LISTEN, EPOLL_TYPE_UDP_LISTEN, type EventLoop } from "../loop.ts";
import { debug } from "../log.ts";
import type { TcpAuto } from "../tcp/auto.ts";
import { type TcpListeners, tcpListenRules } from "../tcp/listen.ts";
import type { UdpAuto } from "../udp/auto.ts";
import { type UdpListeners, udpListenPort } from "../udp/listen.ts";

/** The protocols whose forwards change at run time. */
export type FwdProto = "tcp" | "udp";

/** The TCP side of {@linkcode FwdRuntime}: its listener table and `-t auto` scanner. */
export interface FwdRuntimeTcp {
  /** the listener table of -t (tcp/listen.ts) */
  listeners: TcpListeners;
  /** the `-t auto` scanner, null when none */
  auto: TcpAuto | null;
}

/** The UDP side of {@linkcode FwdRuntime}. */
export interface FwdRuntimeUdp {
  /** the listener table of -u and -U (udp/listen.ts) */
  listeners: UdpListeners;
  /** the `-u auto` scanner, null when none */
  auto: UdpAuto | null;
}

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

/** The inany form of a rule's listening address, null for any address. */
function ruleInany(r: FwdRule): Uint8Array | null {
  if (r.addr === undefined) return null;
  const a4 = parseIp4(r.addr);
  const out = new Uint8Array(16);
  if (a4 !== null) {
    out[10] = out[11] = 0xff;
    out.set(a4, 12);
    return out;
  }
  const a6 = parseIp6(r.addr);
  if (a6 !== null) out.set(a6);
  return out;
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
  readonly #loop: EventLoop;
  readonly #freebind: boolean;
  readonly #pasta: boolean;
  readonly #tcp: FwdRuntimeTcp | null;
  readonly #udp: FwdRuntimeUdp | null;
  /** rules in force by protocol (not `auto` ones) */
  readonly #live: Record<FwdProto, FwdSpec>;

  /**
   * @param c execution context (families)
   * @param loop the event loop (its epoll set)
   * @param conf the configuration (start-up rules, --freebind, mode)
   * @param tcp the TCP tables, null with --no-tcp
   * @param udp the UDP tables, null with --no-udp
   */
  constructor(
    c: Ctx,
    loop: EventLoop,
    conf: Config,
    tcp: FwdRuntimeTcp | null,
    udp: FwdRuntimeUdp | null,
  ) {
    this.#c = c;
    this.#loop = loop;
    this.#freebind = conf.freebind;
    this.#pasta = conf.mode === "pasta";
    this.#tcp = tcp;
    this.#udp = udp;
    this.#live = {
      tcp: specOf(conf.tcp.rules.filter((r) => !r.scan)),
      udp: specOf(conf.udp.rules.filter((r) => !r.scan)),
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

  #enabled(proto: FwdProto): void {
    if (proto !== "tcp" && proto !== "udp") {
      throw new ConfError(`Unknown protocol "${proto}": tcp or udp`);
    }
    if ((proto === "tcp" ? this.#tcp : this.#udp) === null) {
      throw new ConfError(`${proto.toUpperCase()} is disabled`);
    }
  }

  /** Parses a SPEC for run-time use: no `auto`, no `none`. */
  #parse(proto: FwdProto, spec: string): FwdSpec {
    if (typeof spec !== "string" || spec.length === 0 || spec.length > 1024) {
      throw new ConfError("A SPEC of 1 to 1024 characters is needed");
    }
    const opt = proto === "tcp" ? "t" : "u";
    const fresh = parsePortSpec(opt, spec, this.#opts());
    if (fresh.rules.length === 0) throw new ConfError(`"${spec}" forwards nothing`);
    if (fresh.rules.some((r) => r.scan)) {
      throw new ConfError(`"auto" forwarding is set at start-up only`);
    }
    return fresh;
  }

  /**
   * Adds a forward, as `-t SPEC` or `-u SPEC` would at start-up.
   * @param proto "tcp" or "udp"
   * @param spec pasta's SPEC, for example "8080:80" or "127.0.0.1/5353"
   * @throws ConfError for a bad SPEC or one conflicting with a rule in force;
   *   SysError when an explicit port cannot be bound (nothing changed then)
   */
  add(proto: FwdProto, spec: string): void {
    this.#enabled(proto);
    const fresh = this.#parse(proto, spec);
    const live = this.#live[proto];
    /* the checks of start-up, against the rules in force, on a copy */
    const work = specOf([...live.rules]);
    confPorts(work, proto === "tcp" ? "t" : "u", spec, this.#opts());
    const added = work.rules.slice(live.rules.length);
    for (const r of added) this.#hold(proto, r, true);
    try {
      if (proto === "tcp") this.#openTcp(added, fresh.excluded);
      else this.#openUdp(added, fresh.excluded);
    } catch (e) {
      for (const r of added) this.#closeRule(proto, r);
      for (const r of added) this.#hold(proto, r, false, live.rules);
      throw e;
    }
    this.#live[proto] = specOf(work.rules);
    debug(`forward added: ${proto} ${spec}`);
  }

  /**
   * Removes forwards: each rule of the SPEC must be one in force (as `list`
   * shows it). Their sockets close; established connections stay.
   * @param proto "tcp" or "udp"
   * @param spec the SPEC of rules in force
   * @returns the number of rules removed
   * @throws ConfError when a rule of the SPEC is not in force
   */
  remove(proto: FwdProto, spec: string): number {
    this.#enabled(proto);
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
    for (const r of gone) this.#closeRule(proto, r);
    this.#live[proto] = specOf(rest);
    for (const r of gone) this.#hold(proto, r, false, rest);
    debug(`forward removed: ${proto} ${spec}`);
    return gone.length;
  }

  /**
   * The rules in force (not `auto` ones), as SPEC text.
   * @returns the rules by protocol
   */
  list(): Record<FwdProto, string[]> {
    return {
      tcp: this.#tcp === null ? [] : this.#live.tcp.rules.map(ruleText),
      udp: this.#udp === null ? [] : this.#live.udp.rules.map(ruleText),
    };
  }

  /** Takes a rule's ports from the `auto` scanner, or gives back those no other rule holds. */
  #hold(proto: FwdProto, r: FwdRule, held: boolean, others: FwdRule[] = []): void {
    const auto = proto === "tcp" ? this.#tcp?.auto : this.#udp?.auto;
    if (auto === null || auto === undefined) return;
    for (let p = r.first; p <= r.last; p++) {
      if (!held && others.some((o) => o.first <= p && p <= o.last)) continue;
      auto.hold(p, held);
    }
  }

  #openTcp(rules: FwdRule[], excluded: Uint8Array): void {
    const loop = this.#loop;
    tcpListenRules(
      this.#tcp!.listeners,
      rules,
      excluded,
      { v4: this.#c.ip4.enabled, v6: this.#c.ip6.enabled },
      this.#freebind,
      (fd, index) => {
        const r = loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, index);
        if (r < 0) throw new SysError("epoll_ctl (TCP listening socket)", -r);
      },
    );
  }

  #openUdp(rules: FwdRule[], excluded: Uint8Array): void {
    const loop = this.#loop;
    const c = this.#c;
    for (const rule of rules) {
      const o = {
        pif: PIF_HOST,
        v4: c.ip4.enabled,
        v6: c.ip6.enabled,
        freebind: this.#freebind,
        socket: (d: number, t: number, p: number) => {
          const fd = libc.symbols.socket(d, t, p);
          return fd < 0 ? -errno() : fd;
        },
        onSocket: (fd: number, i: number) => {
          const r = loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_UDP_LISTEN, i);
          if (r < 0) throw new SysError("epoll_ctl (UDP listening socket)", -r);
        },
      };
      for (let p = rule.first; p <= rule.last; p++) {
        if (portIsSet(excluded, p)) continue;
        const to = (rule.to + (p - rule.first)) & 0xffff;
        const r = udpListenPort(
          this.#udp!.listeners,
          o,
          p,
          to,
          rule.addr,
          rule.ifname,
          rule.toAddr,
          false,
        );
        if (r < 0 && !rule.weak) {
          throw new SysError(`Failed to bind UDP port ${p} (${ruleText(rule)})`, -r);
        }
      }
    }
  }

  /** Closes the listening sockets of one rule. */
  #closeRule(proto: FwdProto, rule: FwdRule): void {
    const close = (fd: number) => {
      this.#loop.epoll.del(fd);
      libc.symbols.close(fd);
    };
    if (proto === "tcp") {
      this.#tcp!.listeners.drop(rule, close);
      return;
    }
    const L = this.#udp!.listeners;
    const want = ruleInany(rule);
    for (let i = 0; i < L.count; i++) {
      const fd = L.fd[i]!;
      if (fd < 0 || L.pif[i] !== PIF_HOST || L.auto[i] !== 0) continue;
      const p = L.port[i]!;
      if (p < rule.first || p > rule.last) continue;
      if (want !== null && !want.every((b, k) => L.addr[i * 16 + k] === b)) continue;
      close(fd);
      L.fd[i] = -1;
    }
  }
}
