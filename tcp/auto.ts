/**
 * auto.ts - automatic inbound forwarding (`-t auto`, pasta's default).
 *
 * About once a second the guest's listening TCP ports are listed (over
 * sock_diag, fwd/diag.ts, or from procfs as a fallback); for each one that the auto rules allow,
 * orzo listens on the same port on the host (any address, IPv4 and IPv6),
 * and stops listening once the guest does. A port the host already uses is
 * skipped, and tried again at the next scan. Listeners opened here carry
 * AUTO_REF in their epoll reference, with the port and family.
 *
 * @module
 */

import type { FwdSpec } from "../conf/ports.ts";
import { portIsSet } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { listenOn } from "./listen.ts";
import { debug } from "../log.ts";

/** Epoll data bit marking an automatic listener: data = AUTO_REF | port << 1 | v6. */
export const AUTO_REF = 0x40000000;

/** Automatic listeners, by port and family. */
export class TcpAuto {
  /**
   * listening fd + 1 by port * 2 + v6, 0 when none (so that the pages of
   * ports never forwarded stay untouched zero pages); see fdOf()
   */
  readonly #fd1 = new Int32Array(65536 * 2);
  readonly #allowed = new Uint8Array(8192);
  readonly #bound = new Uint8Array(8192);
  /** ports that forwards added at run time hold (fwd/runtime.ts): never scanned in */
  readonly #held = new Uint8Array(8192);
  readonly #read: (out: Uint8Array) => number;
  readonly #families: { v4: boolean; v6: boolean };
  readonly #add: (fd: number, data: number) => void;
  /** destination port = (port + delta[port]) & 0xffff */
  readonly delta: Uint16Array;

  /**
   * @param spec the -t spec (its rules with `scan` set are used)
   * @param read fills a bitmap with the guest's listening TCP ports (not
   *   loopback-only ones); returns the count, or a negative number on failure
   * @param families enabled families
   * @param add called with each new listening fd and its epoll data
   */
  constructor(
    spec: FwdSpec,
    read: (out: Uint8Array) => number,
    families: { v4: boolean; v6: boolean },
    add: (fd: number, data: number) => void,
  ) {
    for (const r of spec.rules) {
      if (!r.scan) continue;
      for (let p = r.first; p <= r.last; p++) {
        if (portIsSet(spec.excluded, p)) continue;
        this.#allowed[p >> 3] = this.#allowed[p >> 3]! | (1 << (p & 7));
      }
    }
    this.delta = spec.delta;
    this.#read = read;
    this.#families = families;
    this.#add = add;
  }

  /**
   * The listening socket of a port and family.
   * @param i port * 2 + v6
   * @returns its fd, or -1 when none
   */
  fdOf(i: number): number {
    return this.#fd1[i]! - 1;
  }

  /** Closes every listener (tests, and an end without the process's exit). */
  closeAll(): void {
    const fd1 = this.#fd1;
    for (let i = 0; i < fd1.length; i++) {
      if (fd1[i] === 0) continue;
      libc.symbols.close(fd1[i]! - 1);
      fd1[i] = 0;
    }
  }

  /**
   * The ports forwarded right now.
   * @returns a bitmap (8192 bytes) of the ports with a listener
   */
  ports(): Uint8Array {
    const out = new Uint8Array(8192);
    for (let p = 0; p < 65536; p++) {
      if (this.#fd1[p * 2] !== 0 || this.#fd1[p * 2 + 1] !== 0) {
        out[p >> 3] = out[p >> 3]! | (1 << (p & 7));
      }
    }
    return out;
  }

  /**
   * Takes a port away from scanning while a forward added at run time has
   * it, closing this object's listeners of the port now, or gives it back
   * (the next scan opens them again if the guest still listens).
   * @param port the port
   * @param held true to take it, false to give it back
   */
  hold(port: number, held: boolean): void {
    const m = 1 << (port & 7);
    this.#held[port >> 3] = held ? this.#held[port >> 3]! | m : this.#held[port >> 3]! & ~m;
    if (!held) return;
    for (let v6 = 0; v6 < 2; v6++) {
      const fd = this.fdOf(port * 2 + v6);
      if (fd < 0) continue;
      libc.symbols.close(fd);
      this.#fd1[port * 2 + v6] = 0;
    }
  }

  /**
   * Reads the guest's listening ports and opens or closes host listeners.
   * @returns false when the guest's namespace can no longer be read
   */
  scan(): boolean {
    if (this.#read(this.#bound) < 0) return false;
    for (let byte = 0; byte < 8192; byte++) {
      const want = this.#bound[byte]! & this.#allowed[byte]! & ~this.#held[byte]!;
      for (let bit = 0; bit < 8; bit++) {
        const port = byte * 8 + bit;
        const on = (want & (1 << bit)) !== 0;
        for (let v6 = 0; v6 < 2; v6++) {
          if (v6 === 0 ? !this.#families.v4 : !this.#families.v6) continue;
          const i = port * 2 + v6;
          const fd = this.fdOf(i);
          if (on && fd < 0) {
            const nfd = listenOn(v6 === 1, null, port, undefined, false);
            if (nfd < 0) continue;
            this.#fd1[i] = nfd + 1;
            this.#add(nfd, AUTO_REF | (port << 1) | v6);
            debug(`auto forwarding: TCP port ${port} (${v6 ? "IPv6" : "IPv4"})`);
          } else if (!on && fd >= 0) {
            libc.symbols.close(fd);
            this.#fd1[i] = 0;
            debug(`auto forwarding: TCP port ${port} (${v6 ? "IPv6" : "IPv4"}) closed`);
          }
        }
      }
    }
    return true;
  }
}
