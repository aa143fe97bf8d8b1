/**
 * listen_ns.ts - outbound forwarding from the guest's loopback (-T).
 *
 * For each port of the -T spec orzo listens on the guest's loopback
 * (127.0.0.1 and ::1, in the guest's namespace) and splices accepted
 * connections to the same port (or the translated one) on the host's
 * loopback (splice.ts). With `auto` (pasta's default) the ports are those
 * the host listens on, listed about once a second;
 * ports that orzo itself forwards inbound (-t) are left out, so that the two
 * directions never chase each other.
 *
 * Epoll data of these listeners: NS_REF | port << 1 | v6.
 *
 * @module
 */

import type { FwdSpec } from "../conf/ports.ts";
import { portIsSet } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { debug } from "../log.ts";
import type { NsSocketFn } from "./splice.ts";
import { listenOn } from "./listen.ts";

/** Epoll data bit marking a listener in the guest's namespace. */
export const NS_REF = 0x20000000;

const LOOPBACK4 = new Uint8Array([127, 0, 0, 1]);
const LOOPBACK6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** Listeners on the guest's loopback, by port and family. */
export class TcpNsListeners {
  /**
   * listening fd + 1 by port * 2 + v6, 0 when none (so that the pages of
   * ports never forwarded stay untouched zero pages)
   */
  readonly #fd1 = new Int32Array(65536 * 2);
  /** destination port on the host = (port + delta[port]) & 0xffff */
  readonly delta: Uint16Array;
  readonly #static = new Uint8Array(8192);
  readonly #auto = new Uint8Array(8192);
  readonly #bound = new Uint8Array(8192);
  readonly #nsSocket: NsSocketFn;
  readonly #families: { v4: boolean; v6: boolean };
  readonly #add: (fd: number, data: number) => void;
  readonly #exclude: () => Uint8Array | null;
  readonly #read: (out: Uint8Array) => number;

  /**
   * @param spec the -T spec
   * @param nsSocket creates sockets in the guest's namespace
   * @param families enabled families
   * @param add called with each new listening fd and its epoll data
   * @param exclude ports to leave out of `auto` (those forwarded inbound)
   * @param read fills a bitmap with the host's listening TCP ports; returns
   *   the count, or a negative number on failure
   */
  constructor(
    spec: FwdSpec,
    nsSocket: NsSocketFn,
    families: { v4: boolean; v6: boolean },
    add: (fd: number, data: number) => void,
    exclude: () => Uint8Array | null,
    read: (out: Uint8Array) => number,
  ) {
    for (const r of spec.rules) {
      const map = r.scan ? this.#auto : this.#static;
      for (let p = r.first; p <= r.last; p++) {
        if (portIsSet(spec.excluded, p)) continue;
        map[p >> 3] = map[p >> 3]! | (1 << (p & 7));
      }
    }
    this.delta = spec.delta;
    this.#nsSocket = nsSocket;
    this.#families = families;
    this.#add = add;
    this.#exclude = exclude;
    this.#read = read;
  }

  #listen(port: number, v6: number): number {
    const lo = v6 === 1 ? LOOPBACK6 : LOOPBACK4;
    return listenOn(v6 === 1, lo, port, undefined, false, this.#nsSocket);
  }

  /**
   * Opens the listeners of explicit ports, and those of `auto` for the ports
   * the host listens on now.
   * @returns the number of listeners open
   */
  start(): number {
    return this.#apply(true);
  }

  /**
   * Re-reads the host's ports for `auto` and opens or closes listeners.
   * @returns the number of listeners open
   */
  scan(): number {
    return this.#apply(false);
  }

  #apply(first: boolean): number {
    const anyAuto = this.#auto.some((b) => b !== 0);
    if (anyAuto) {
      if (this.#read(this.#bound) < 0) this.#bound.fill(0);
      const ex = this.#exclude();
      if (ex !== null) {
        for (let i = 0; i < 8192; i++) this.#bound[i] = this.#bound[i]! & ~ex[i]!;
      }
    } else if (!first) return this.#count();
    for (let byte = 0; byte < 8192; byte++) {
      const st = this.#static[byte]!;
      const au = this.#auto[byte]! & this.#bound[byte]!;
      if (!first && st === 0 && au === 0 && !this.#anyOpen(byte)) continue;
      for (let bit = 0; bit < 8; bit++) {
        const port = byte * 8 + bit;
        const isStatic = (st & (1 << bit)) !== 0;
        const on = isStatic || (au & (1 << bit)) !== 0;
        for (let v6 = 0; v6 < 2; v6++) {
          if (v6 === 0 ? !this.#families.v4 : !this.#families.v6) continue;
          const i = port * 2 + v6;
          if (on && this.#fd1[i] === 0) {
            if (isStatic && !first) continue;
            const fd = this.#listen(port, v6);
            if (fd < 0) continue;
            this.#fd1[i] = fd + 1;
            this.#add(fd, NS_REF | (port << 1) | v6);
            debug(`namespace forwarding: TCP port ${port} (${v6 ? "IPv6" : "IPv4"})`);
          } else if (!on && this.#fd1[i] !== 0) {
            libc.symbols.close(this.#fd1[i]! - 1);
            this.#fd1[i] = 0;
          }
        }
      }
    }
    return this.#count();
  }

  #anyOpen(byte: number): boolean {
    for (let i = byte * 16; i < byte * 16 + 16; i++) if (this.#fd1[i] !== 0) return true;
    return false;
  }

  #count(): number {
    let n = 0;
    for (let i = 0; i < this.#fd1.length; i++) if (this.#fd1[i] !== 0) n++;
    return n;
  }
}
