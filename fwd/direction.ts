/**
 * direction.ts - one direction of port forwarding (-t, -u, -T or -U): its
 * rules' sockets, and the one open-or-close loop over port bitmaps that
 * `auto` runs.
 *
 * Theory of operation. A direction is a protocol (TCP, UDP) and the side
 * its sockets live on: PIF_HOST for -t/-u (any address or the rule's, on the
 * host), PIF_SPLICE for -T/-U (the guest's loopback, 127.0.0.1 and ::1, in
 * its namespace). All its sockets are slots of the one table
 * (fwd/listeners.ts), each with its target port. Explicit rules open their
 * sockets once (openRules(), at start-up or when a forward is added at run
 * time) and close them when removed (closeRule()). `auto` rules allow a set
 * of ports; about once a second scan() reads the ports bound on the other
 * side (sock_diag or procfs, fwd/diag.ts, fwd/scan.ts), leaves out those
 * orzo itself holds there (so that two directions never chase each other)
 * and those a forward added at run time holds (hold()), and opens or closes
 * sockets, family by family, until this side matches. A port this side
 * cannot bind (someone else has it) is tried again at the next scan.
 *
 * @module
 */

import { type FwdRule, type FwdSpec, portIsSet } from "../conf/ports.ts";
import { parseIp4, parseIp6 } from "../conf/addr.ts";
import { SysError } from "../ffi/errno.ts";
import { PIF_SPLICE } from "../flow/pif.ts";
import { debug } from "../log.ts";
import {
  FWD_TCP,
  FWD_UDP,
  type FwdListeners,
  fwdSocket,
  KIND_AUTO,
  KIND_RULE,
  type SocketFn,
} from "./listeners.ts";

/** Bytes of a port bitmap. */
const MAP = 8192;

const ANY4 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
const ANY6 = new Uint8Array(16);
const LOOPBACK4 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
const LOOPBACK6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/**
 * The inany form of an address text, with the family a socket for it has
 * (an IPv4-mapped address is bound as IPv4).
 * @param text canonical address text
 * @returns the address, or null for a bad one
 */
export function addrInany(text: string): { v6: boolean; a: Uint8Array } | null {
  const a4 = parseIp4(text);
  if (a4 !== null) {
    const a = ANY4.slice();
    a.set(a4, 12);
    return { v6: false, a };
  }
  const a6 = parseIp6(text);
  if (a6 === null) return null;
  const mapped = a6.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
  return { v6: !mapped, a: a6 };
}

/** What a {@linkcode FwdDirection} needs. */
export interface FwdDirectionOptions {
  /** FWD_TCP or FWD_UDP */
  proto: number;
  /** PIF_HOST (-t, -u) or PIF_SPLICE (-T, -U) */
  pif: number;
  /** the start-up spec: its `scan` rules allow the `auto` ports, and give their targets */
  spec: FwdSpec;
  /** enabled families */
  v4: boolean;
  /** enabled families */
  v6: boolean;
  /** --freebind (host side only) */
  freebind: boolean;
  /** creates a socket where this direction's sockets live */
  socket: SocketFn;
  /**
   * reads the ports bound on the other side into a bitmap (cleared first),
   * for `auto`; returns their count, or a negative number when that side
   * cannot be read. Null when no rule is `auto`.
   */
  read: ((out: Uint8Array) => number) | null;
  /** ports orzo itself holds on the other side, left out of `auto`; null for none */
  own: (() => Uint8Array | null) | null;
}

/** One direction of forwarding (see the module doc). */
export class FwdDirection {
  /** FWD_TCP or FWD_UDP */
  readonly proto: number;
  /** PIF_HOST or PIF_SPLICE */
  readonly pif: number;
  /** the table the sockets live in */
  readonly table: FwdListeners;
  readonly #o: FwdDirectionOptions;
  /** ports `auto` may forward */
  readonly #allowed = new Uint8Array(MAP);
  /** ports forwards added at run time hold: never scanned in */
  readonly #held = new Uint8Array(MAP);
  /** scratch: the other side's ports */
  readonly #bound = new Uint8Array(MAP);
  /** ports with at least one `auto` socket */
  readonly #have = new Uint8Array(MAP);
  /** ports with an `auto` socket in every family */
  readonly #full = new Uint8Array(MAP);
  /** whether any rule is `auto` (and the other side can still be read) */
  #hasAuto: boolean;

  /**
   * Prepares the direction (opens nothing).
   * @param table the listener table
   * @param o options
   */
  constructor(table: FwdListeners, o: FwdDirectionOptions) {
    this.table = table;
    this.proto = o.proto;
    this.pif = o.pif;
    this.#o = o;
    let any = false;
    for (const r of o.spec.rules) {
      if (!r.scan) continue;
      for (let p = r.first; p <= r.last; p++) {
        if (portIsSet(o.spec.excluded, p)) continue;
        this.#allowed[p >> 3] = this.#allowed[p >> 3]! | (1 << (p & 7));
        any = true;
      }
    }
    this.#hasAuto = any && o.read !== null;
  }

  /** Whether this direction scans (any rule is `auto`, and the other side can be read). */
  get hasAuto(): boolean {
    return this.#hasAuto;
  }

  /** Stops `auto` scanning (the other side can no longer be read); its sockets stay. */
  stopScanning(): void {
    this.#hasAuto = false;
  }

  /** The debug line of a port opened or closed by `auto` (v6: -1 for all families). */
  #log(port: number, v6: number, closed: boolean): void {
    if (this.proto === FWD_TCP) {
      const who = this.pif === PIF_SPLICE ? "namespace" : "auto";
      const fam = v6 < 0 ? "" : v6 === 1 ? " (IPv6)" : " (IPv4)";
      debug(`${who} forwarding: TCP port ${port}${fam}${closed ? " closed" : ""}`);
    } else if (closed) debug(`auto forwarding: UDP port ${port} closed`);
    else {
      const way = this.pif === PIF_SPLICE ? "namespace to host" : "host to guest";
      debug(`auto forwarding: UDP port ${port} (${way})`);
    }
  }

  /** The (family, address) pairs a rule's sockets bind. */
  #addrs(rule: FwdRule | null): { v6: boolean; a: Uint8Array }[] {
    const o = this.#o;
    const out: { v6: boolean; a: Uint8Array }[] = [];
    if (this.pif === PIF_SPLICE) {
      if (o.v4) out.push({ v6: false, a: LOOPBACK4 });
      if (o.v6) out.push({ v6: true, a: LOOPBACK6 });
    } else if (rule === null || rule.addr === undefined) {
      if (o.v4) out.push({ v6: false, a: ANY4 });
      if (o.v6) out.push({ v6: true, a: ANY6 });
    } else {
      const x = addrInany(rule.addr);
      if (x !== null) out.push(x);
    }
    return out;
  }

  /**
   * Opens the sockets of explicit rules (`auto` ones are left to scan()).
   * @param rules the rules
   * @param excluded ports left out (`~` of the spec)
   * @param strict whether a port that cannot be bound is an error (rules
   *   from `all` or exclusions, "weak" ones, skip such ports anyway)
   * @throws SysError when an explicit port cannot be bound (the sockets
   *   opened before stay open: the caller closes them with closeRule())
   */
  openRules(rules: readonly FwdRule[], excluded: Uint8Array, strict: boolean): void {
    const o = this.#o;
    const T = this.table;
    const host = this.pif !== PIF_SPLICE;
    for (const rule of rules) {
      if (rule.scan) continue;
      const addrs = this.#addrs(rule);
      const to = rule.toAddr !== undefined ? addrInany(rule.toAddr) : null;
      for (let p = rule.first; p <= rule.last; p++) {
        if (portIsSet(excluded, p)) continue;
        const target = (rule.to + (p - rule.first)) & 0xffff;
        let ok = 0;
        let fail = -22; /* EINVAL: nothing to bind */
        for (const f of addrs) {
          if (
            this.proto === FWD_UDP && (rule.addr === undefined || !host) &&
            T.find(this.proto, this.pif, f.v6, p) >= 0
          ) {
            ok++; /* (UDP sockets with SO_REUSEADDR would bind twice) */
            continue;
          }
          const fd = fwdSocket(
            this.proto,
            f.v6,
            f.a,
            p,
            host ? rule.ifname : undefined,
            host && o.freebind,
            o.socket,
          );
          const i = fd < 0 ? fd : T.add(fd, {
            proto: this.proto,
            pif: this.pif,
            v6: f.v6,
            port: p,
            target,
            kind: KIND_RULE,
            addr: f.a,
            toAddr: to !== null && to.v6 === f.v6 ? to.a : null,
            rule,
          });
          if (i < 0) {
            fail = i;
            if (this.proto === FWD_TCP && strict && !rule.weak) {
              throw new SysError(this.#failText(p, rule), -i);
            }
            continue;
          }
          ok++;
        }
        if (ok === 0 && strict && !rule.weak) throw new SysError(this.#failText(p, rule), -fail);
      }
    }
  }

  #failText(port: number, rule: FwdRule): string {
    const where = this.pif === PIF_SPLICE ? " in the namespace" : "";
    const what = this.proto === FWD_TCP ? "port" : "UDP port";
    return `Failed to bind ${what} ${port}${where} (${rule.source})`;
  }

  /**
   * Closes the sockets of one rule.
   * @param rule the rule (the same object openRules() was given)
   * @returns the number of sockets closed
   */
  closeRule(rule: FwdRule): number {
    const T = this.table;
    let n = 0;
    for (let i = 0; i < T.count; i++) {
      if (T.fd[i]! < 0 || T.rule[i] !== rule) continue;
      T.close(i);
      n++;
    }
    return n;
  }

  /**
   * Takes a port away from `auto` while a forward added at run time has it,
   * closing the `auto` sockets of the port now, or gives it back (the next
   * scan opens them again if the other side still has the port).
   * @param port the port
   * @param held true to take it, false to give it back
   */
  hold(port: number, held: boolean): void {
    const m = 1 << (port & 7);
    const b = port >> 3;
    this.#held[b] = held ? this.#held[b]! | m : this.#held[b]! & ~m;
    if (held) this.#closeAuto(port);
  }

  /** Closes the `auto` sockets of a port. */
  #closeAuto(port: number, log = false): number {
    const m = ~(1 << (port & 7));
    this.#have[port >> 3] = this.#have[port >> 3]! & m;
    this.#full[port >> 3] = this.#full[port >> 3]! & m;
    const T = this.table;
    let n = 0;
    for (let v6 = 0; v6 < 2; v6++) {
      for (;;) {
        const i = T.find(this.proto, this.pif, v6 === 1, port, KIND_AUTO);
        if (i < 0) break;
        T.close(i);
        n++;
        if (log && this.proto === FWD_TCP) this.#log(port, v6, true);
      }
    }
    if (log && n > 0 && this.proto === FWD_UDP) this.#log(port, -1, true);
    return n;
  }

  /**
   * Reads the other side's ports and opens or closes `auto` sockets here to
   * match.
   * @returns false when the other side cannot be read (nothing changes)
   */
  scan(): boolean {
    const o = this.#o;
    if (!this.hasAuto) return true;
    if (o.read!(this.#bound) < 0) return false;
    const own = o.own?.() ?? null;
    const T = this.table;
    const tcp = this.proto === FWD_TCP;
    const addrs = this.#addrs(null);
    for (let byte = 0; byte < MAP; byte++) {
      let want = this.#bound[byte]! & this.#allowed[byte]! & ~this.#held[byte]!;
      if (own !== null) want &= ~own[byte]!;
      const have = this.#have[byte]!;
      if (want === this.#full[byte] && have === want) continue;
      for (let bit = 0; bit < 8; bit++) {
        const m = 1 << bit;
        const port = byte * 8 + bit;
        if ((want & m) === 0) {
          if ((have & m) !== 0) this.#closeAuto(port, true);
          continue;
        }
        if ((this.#full[byte]! & m) !== 0) continue;
        let open = 0;
        for (const f of addrs) {
          if (T.find(this.proto, this.pif, f.v6, port, KIND_AUTO) >= 0) {
            open++;
            continue;
          }
          /* (-U binds loopback: SO_REUSEADDR lets UDP bind twice, check first) */
          if (!tcp && T.find(this.proto, this.pif, f.v6, port) >= 0) continue;
          const fd = fwdSocket(this.proto, f.v6, f.a, port, undefined, false, o.socket);
          if (fd < 0) continue;
          const i = T.add(fd, {
            proto: this.proto,
            pif: this.pif,
            v6: f.v6,
            port,
            target: (port + o.spec.delta[port]!) & 0xffff,
            kind: KIND_AUTO,
            addr: f.a,
            toAddr: null,
            rule: null,
          });
          if (i < 0) continue;
          open++;
          if (tcp) this.#log(port, f.v6 ? 1 : 0, false);
        }
        if (!tcp && open > 0 && (this.#have[byte]! & m) === 0) this.#log(port, -1, false);
        if (open > 0) this.#have[byte] = this.#have[byte]! | m;
        if (open === addrs.length) this.#full[byte] = this.#full[byte]! | m;
      }
    }
    return true;
  }

  /**
   * The ports with an open socket in this direction.
   * @param out a port bitmap (8192 bytes); bits are added, not cleared
   * @returns `out`
   */
  ports(out: Uint8Array = new Uint8Array(MAP)): Uint8Array {
    return this.table.ports(out, this.proto, this.pif);
  }

  /** Closes every socket of this direction. */
  close(): void {
    this.#have.fill(0);
    this.#full.fill(0);
    const T = this.table;
    for (let i = 0; i < T.count; i++) {
      if (T.fd[i]! >= 0 && T.proto[i] === this.proto && T.pif[i] === this.pif) T.close(i);
    }
  }
}
