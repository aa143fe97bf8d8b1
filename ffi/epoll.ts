/**
 * epoll.ts - the epoll set, its event buffer, and packed references.
 *
 * A reference packs what an event is about into the 64-bit `data` of the
 * event, read back as two u32 words (no BigInt): the low word holds the type
 * (8 bits) and the fd (24 bits), the high word a per-type value such as a
 * flow index. On x86_64 `struct epoll_event` is packed: 12 bytes.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check, errno } from "./errno.ts";
import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_SIZE,
} from "./layout.ts";

/** Largest fd that fits in a reference. */
export const FD_REF_MAX = (1 << 24) - 1;

/** Events read in one epoll_wait. */
export const EPOLL_EVENTS_MAX = 256;

/** An epoll set with its preallocated event buffer. */
export class Epoll {
  /** the epoll fd */
  readonly fd: number;
  /** raw event buffer filled by wait() */
  readonly events = new Uint8Array(EPOLL_EVENTS_MAX * EPOLL_EVENT_SIZE);
  /** little-endian view of `events` for reading fields */
  readonly view = new DataView(this.events.buffer);
  readonly #ev = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #evView = new DataView(this.#ev.buffer);

  /** Creates the epoll set; throws SysError on failure. */
  constructor() {
    this.fd = check(libc.symbols.epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
  }

  #ctl(op: number, fd: number, events: number, type: number, data: number): number {
    this.#evView.setUint32(0, events >>> 0, true);
    this.#evView.setUint32(4, ((type << 24) | (fd & FD_REF_MAX)) >>> 0, true);
    this.#evView.setUint32(8, data >>> 0, true);
    return libc.symbols.epoll_ctl(this.fd, op, fd, this.#ev) < 0 ? -errno() : 0;
  }

  /**
   * Adds an fd.
   * @param fd file descriptor (at most FD_REF_MAX)
   * @param events EPOLLIN/EPOLLOUT/... mask
   * @param type EPOLL_TYPE_* of the reference
   * @param data per-type value (u32)
   * @returns 0, or -errno
   */
  add(fd: number, events: number, type: number, data = 0): number {
    if (fd > FD_REF_MAX) return -24; /* EMFILE */
    return this.#ctl(EPOLL_CTL_ADD, fd, events, type, data);
  }

  /**
   * Changes the events or reference of an fd already in the set.
   * @param fd file descriptor
   * @param events new event mask
   * @param type EPOLL_TYPE_* of the reference
   * @param data per-type value (u32)
   * @returns 0, or -errno
   */
  mod(fd: number, events: number, type: number, data = 0): number {
    return this.#ctl(EPOLL_CTL_MOD, fd, events, type, data);
  }

  /**
   * Removes an fd from the set.
   * @param fd file descriptor
   * @returns 0, or -errno
   */
  del(fd: number): number {
    return libc.symbols.epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, this.#ev) < 0 ? -errno() : 0;
  }

  /**
   * Waits for events (blocking, on the JS thread).
   * @param timeoutMs timeout in milliseconds, -1 for none
   * @returns the number of events, or -errno (-EINTR when a signal arrived)
   */
  wait(timeoutMs: number): number {
    const n = libc.symbols.epoll_wait(this.fd, this.events, EPOLL_EVENTS_MAX, timeoutMs);
    return n < 0 ? -errno() : n;
  }

  /**
   * Event mask of event i of the last wait().
   * @param i event index
   * @returns EPOLL* bits
   */
  eventsOf(i: number): number {
    return this.view.getUint32(i * EPOLL_EVENT_SIZE, true);
  }

  /**
   * Reference type of event i.
   * @param i event index
   * @returns EPOLL_TYPE_*
   */
  typeOf(i: number): number {
    return this.view.getUint32(i * EPOLL_EVENT_SIZE + 4, true) >>> 24;
  }

  /**
   * File descriptor of event i.
   * @param i event index
   * @returns the fd
   */
  fdOf(i: number): number {
    return this.view.getUint32(i * EPOLL_EVENT_SIZE + 4, true) & FD_REF_MAX;
  }

  /**
   * Per-type value of event i.
   * @param i event index
   * @returns the u32 data
   */
  dataOf(i: number): number {
    return this.view.getUint32(i * EPOLL_EVENT_SIZE + 8, true);
  }

  /** Closes the epoll fd. */
  close(): void {
    libc.symbols.close(this.fd);
  }
}
