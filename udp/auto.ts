/**
 * auto.ts - automatic UDP forwarding (`-u auto`, `-U auto`: pasta's
 * defaults).
 *
 * About once a second the other side's bound ports are asked of its kernel
 * (fwd/diag.ts, sock_diag, with a socket opened in that namespace; procfs
 * through fwd/scan.ts when sock_diag is not available): for -u the guest's
 * namespace, for -U the host's. As in pasta, a port counts when a UDP socket is
 * bound to it, or when a TCP socket listens on it: some protocols (iperf3)
 * set up a UDP transfer on the port of their TCP control connection, so a
 * forwarded TCP port is forwarded for UDP too unless -u/-U say otherwise.
 * For each such port that the `auto` rules allow, orzo binds it on this side
 * (udp/listen.ts, both families, the same port on the other side) and
 * closes it once the port is gone there. Ports orzo itself binds in the
 * scanned namespace (the other direction's sockets, UDP or TCP) are left
 * out, so that the two directions never chase each other. A port this side
 * cannot bind (someone else has it) is tried again at the next scan.
 *
 * @module
 */

import type { FwdSpec } from "../conf/ports.ts";
import { portIsSet } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { debug } from "../log.ts";
import { PIF_SPLICE } from "../flow/pif.ts";
import { type UdpListeners, type UdpListenOptions, udpListenPort } from "./listen.ts";

/** Bytes of a port bitmap. */
const MAP = 8192;

/** What a UdpAuto needs. */
export interface UdpAutoOptions {
  /** the spec (-u or -U); its `scan` rules say which ports may be forwarded */
  spec: FwdSpec;
  /**
   * reads the scanned namespace's bound UDP ports (udp true) or listening
   * TCP ports into a bitmap (cleared first); returns their count, or a
   * negative value when the namespace cannot be read
   */
  scan: (udp: boolean, out: Uint8Array, skipLoopback: boolean) => number;
  /** leave out sockets bound to loopback addresses only (true for the guest) */
  skipLoopback: boolean;
  /** the listener table */
  listeners: UdpListeners;
  /** how to bind on this side (pif, families, socket factory, epoll) */
  listen: UdpListenOptions;
  /** removes a listener from epoll before it is closed */
  unlisten: (fd: number) => void;
  /** ports orzo itself binds in the scanned namespace (UDP and TCP), or null */
  own: () => Uint8Array | null;
}

/** One direction of automatic UDP forwarding. */
export class UdpAuto {
  readonly #o: UdpAutoOptions;
  readonly #allowed = new Uint8Array(MAP);
  readonly #udp = new Uint8Array(MAP);
  readonly #tcp = new Uint8Array(MAP);
  /** ports that forwards added at run time hold (fwd/runtime.ts): never scanned in */
  readonly #held = new Uint8Array(MAP);
  /** ports bound by this object right now */
  readonly bound = new Uint8Array(MAP);

  /**
   * Prepares the allowed ports from the spec's `auto` rules (binds nothing).
   * @param o options
   */
  constructor(o: UdpAutoOptions) {
    this.#o = o;
    for (const r of o.spec.rules) {
      if (!r.scan) continue;
      for (let p = r.first; p <= r.last; p++) {
        if (portIsSet(o.spec.excluded, p)) continue;
        this.#allowed[p >> 3] = this.#allowed[p >> 3]! | (1 << (p & 7));
      }
    }
  }

  /**
   * Reads the other side's ports and binds or closes ports here to match.
   * @returns false when the namespace's procfs cannot be read
   */
  scan(): boolean {
    const o = this.#o;
    if (o.scan(true, this.#udp, o.skipLoopback) < 0) return false;
    if (o.scan(false, this.#tcp, o.skipLoopback) < 0) this.#tcp.fill(0);
    const own = o.own();
    const L = o.listeners;
    const pif = o.listen.pif;
    for (let byte = 0; byte < MAP; byte++) {
      let want = (this.#udp[byte]! | this.#tcp[byte]!) & this.#allowed[byte]!;
      if (own !== null) want &= ~own[byte]!;
      want &= ~this.#held[byte]!;
      const have = this.bound[byte]!;
      if (want === have) continue;
      for (let bit = 0; bit < 8; bit++) {
        const m = 1 << bit;
        const port = byte * 8 + bit;
        if ((want & m) !== 0 && (have & m) === 0) {
          const target = (port + o.spec.delta[port]!) & 0xffff;
          if (
            udpListenPort(L, o.listen, port, target, undefined, undefined, undefined, true) === 0
          ) {
            this.bound[byte] = this.bound[byte]! | m;
            debug(
              `auto forwarding: UDP port ${port} (${
                pif === PIF_SPLICE ? "namespace to host" : "host to guest"
              })`,
            );
          }
        } else if ((want & m) === 0 && (have & m) !== 0) {
          this.#close(port);
          this.bound[byte] = this.bound[byte]! & ~m;
          debug(`auto forwarding: UDP port ${port} closed`);
        }
      }
    }
    return true;
  }

  /**
   * Takes a port away from scanning while a forward added at run time has
   * it, closing this object's listeners of the port now, or gives it back
   * (the next scan binds it again if the other side still has it).
   * @param port the port
   * @param held true to take it, false to give it back
   */
  hold(port: number, held: boolean): void {
    const m = 1 << (port & 7);
    const b = port >> 3;
    this.#held[b] = held ? this.#held[b]! | m : this.#held[b]! & ~m;
    if (!held || (this.bound[b]! & m) === 0) return;
    this.#close(port);
    this.bound[b] = this.bound[b]! & ~m;
  }

  /** Closes this object's listeners of a port (flows keep their duplicates). */
  #close(port: number): void {
    const L = this.#o.listeners;
    const pif = this.#o.listen.pif;
    for (let i = 0; i < L.count; i++) {
      const fd = L.fd[i]!;
      if (fd < 0 || L.auto[i] !== 1 || L.pif[i] !== pif || L.port[i] !== port) continue;
      this.#o.unlisten(fd);
      libc.symbols.close(fd);
      L.fd[i] = -1;
    }
  }

  /** Closes every listener bound by this object. */
  close(): void {
    for (let p = 1; p < 65536; p++) {
      if ((this.bound[p >> 3]! & (1 << (p & 7))) !== 0) this.#close(p);
    }
    this.bound.fill(0);
  }
}
