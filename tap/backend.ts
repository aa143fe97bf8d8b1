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
 * `sendFrames()` hands over several frames of one buffer at once (TCP's data
 * frames of one socket read): the stream backend gathers them into one
 * sendmsg(), the tap device still takes one write per frame. It returns how
 * many of them, from the first, were sent; the caller resends the others.
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
import { addressOf } from "../ffi/mem.ts";

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
  /**
   * Sends several frames of one buffer, in order: frame `i` is
   * `buf[offs[i], offs[i] + lens[i])`, header room first (as for send()).
   * The backend never keeps a reference to `buf`.
   * @param buf the buffer holding every frame
   * @param offs where each frame's header room starts
   * @param lens header room plus frame length, per frame
   * @param count how many frames (the first `count` entries of offs and lens)
   * @returns how many frames, from the first, are sent (or committed to be),
   *   or -errno when none is (-EAGAIN: the guest's side is full, try later)
   */
  sendFrames(
    buf: Uint8Array<ArrayBuffer>,
    offs: Int32Array,
    lens: Int32Array,
    count: number,
  ): number;
}

/** ENOTCONN */
const ENOTCONN = 107;

/** The backend of a context with no guest attached: every frame is refused. */
export const TAP_NONE: TapBackend = {
  kind: "none",
  send: () => -ENOTCONN,
  sendFrames: () => -ENOTCONN,
};

/**
 * The tap device backend: one write(2) per frame, which the kernel takes
 * whole or not at all (for sendFrames(), a writev() of one iovec into the
 * caller's buffer, whose address is cached by identity).
 * @param fd the tap fd (non-blocking)
 * @returns the backend
 */
export function tapDeviceBackend(fd: number): TapBackend {
  const iov = new Uint8Array(16);
  const iovDv = new DataView(iov.buffer);
  let last: Uint8Array | null = null;
  let lastAddr = 0;
  return {
    kind: "tap",
    send(buf: Uint8Array<ArrayBuffer>, len: number): number {
      const n = libc.symbols.write(fd, buf, len);
      return n < 0 ? -errno() : n;
    },
    sendFrames(buf: Uint8Array<ArrayBuffer>, offs: Int32Array, lens: Int32Array, count: number) {
      if (buf !== last) {
        last = buf;
        lastAddr = Number(addressOf(buf));
      }
      for (let i = 0; i < count; i++) {
        const at = lastAddr + offs[i]!;
        iovDv.setUint32(0, at % 4294967296, true);
        iovDv.setUint32(4, Math.floor(at / 4294967296), true);
        iovDv.setUint32(8, lens[i]!, true);
        if (libc.symbols.writev(fd, iov, 1) < 0) return i > 0 ? i : -errno();
      }
      return count;
    },
  };
}
