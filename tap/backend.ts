/**
 * backend.ts - how frames leave for the guest: the tap backend interface.
 *
 * Theory of operation: every protocol module (ARP, NDP, DHCP, TCP, UDP,
 * ICMP) builds a frame behind `c.tapHdrLen` bytes of room and hands the
 * whole (room + Ethernet frame) to `c.tap.send()`. What the room holds and
 * how the bytes travel is the backend's business:
 *
 * - the tap device (pasta mode, {@linkcode tapDeviceBackend}): the room is
 *   the 12-byte virtio-net header the caller filled (l4Finish), one write(2)
 *   per frame, all or nothing;
 * - the stream socket (passt mode, tap/stream.ts): the room is qemu's 4-byte
 *   big-endian length, which the backend writes; a short write keeps the
 *   frame's tail until the socket drains.
 *
 * A third backend (vhost-user: frames copied into the guest's virtqueue
 * buffers in shared memory, the 12-byte virtio-net header in front) fits the
 * same interface: the protocols only ever see `send()` and the header room.
 * Frames from the guest reach the protocols through tapInput() (tap/tap.ts),
 * whoever read them.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";

/** A way to hand frames to the guest. */
export interface TapBackend {
  /** "none" (no guest yet), "tap" (tap device) or "stream" (qemu's UNIX stream socket) */
  readonly kind: "none" | "tap" | "stream";
  /**
   * Sends one frame. `buf[0, hdrLen)` is the header room (c.tapHdrLen), the
   * Ethernet frame follows; the backend never keeps a reference to `buf`.
   * @param buf header room and frame, from offset 0
   * @param len header room plus frame length
   * @returns `len` when the frame is sent (or committed to be), or -errno
   *   when none of it is (-EAGAIN: the guest's side is full, try later)
   */
  send(buf: Uint8Array<ArrayBuffer>, len: number): number;
}

/** ENOTCONN */
const ENOTCONN = 107;

/** The backend of a context with no guest attached: every frame is refused. */
export const TAP_NONE: TapBackend = {
  kind: "none",
  send: () => -ENOTCONN,
};

/**
 * The tap device backend: one write(2) per frame, which the kernel takes
 * whole or not at all.
 * @param fd the tap fd (non-blocking)
 * @returns the backend
 */
export function tapDeviceBackend(fd: number): TapBackend {
  return {
    kind: "tap",
    send(buf: Uint8Array<ArrayBuffer>, len: number): number {
      const n = libc.symbols.write(fd, buf, len);
      return n < 0 ? -errno() : n;
    },
  };
}
