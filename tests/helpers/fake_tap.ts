/**
 * fake_tap.ts - a tap device without a namespace, for unit tests of the L4
 * translation.
 *
 * One end of an AF_UNIX SOCK_SEQPACKET socketpair becomes orzo's `c.tapFd`:
 * each write() there is one frame, and the test reads the frames back, one
 * per recv(), from the other end, with their tap header (the 12-byte
 * virtio-net header in pasta mode). Frames from the guest do not go through
 * the pair: tests hand them to ip4Input()/ip6Input() (or tcpTapHandler())
 * directly, as tap/tap.ts would after reading them, or, to test what the tap
 * reader does with a batch of frames, write them with send() for
 * tapHandler() to read from `tapFd`. Both ends are
 * non-blocking, so orzo sees EAGAIN, never a stall, if a test stops reading.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { ERRNO, errno } from "../../ffi/errno.ts";
import { sockBufSet } from "../../ffi/sockbuf.ts";
import { AF_UNIX, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_NONBLOCK } from "../../ffi/layout.ts";

/** SOCK_SEQPACKET: connected, reliable, message boundaries kept. */
export const SOCK_SEQPACKET = 5;
/** Buffer asked for on both ends: room for a few hundred MSS-sized frames. */
const TAP_BUF_BYTES = 4 << 20;
/** Largest frame read back: a 64 KiB IP packet, Ethernet and tap headers. */
const FRAME_MAX = 65536 + 14 + 12 + 64;

/** A socketpair standing in for the tap device. */
export class FakeTap {
  /** orzo's end: put it in `c.tapFd` */
  readonly tapFd: number;
  /** the test's end, where orzo's frames arrive */
  readonly peerFd: number;
  /** bytes of tap header before each frame orzo writes (`c.tapHdrLen`) */
  readonly hdrLen: number;
  readonly #buf = new Uint8Array(FRAME_MAX);

  /**
   * Creates the pair.
   * @param hdrLen the tap header length orzo is told about (12: virtio-net)
   * @throws Error when the socketpair cannot be created
   */
  constructor(hdrLen = 12) {
    const sv = new Int32Array(2);
    const rc = libc.symbols.socketpair(
      AF_UNIX,
      SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
      new Uint8Array(sv.buffer),
    );
    if (rc < 0) throw new Error(`Cannot create the fake tap: socketpair failed: errno ${errno()}`);
    this.tapFd = sv[0]!;
    this.peerFd = sv[1]!;
    this.hdrLen = hdrLen;
    sockBufSet(this.tapFd, "snd", TAP_BUF_BYTES);
    sockBufSet(this.peerFd, "rcv", TAP_BUF_BYTES);
    /* and the other way, for batches of frames from the guest (send()) */
    sockBufSet(this.peerFd, "snd", TAP_BUF_BYTES);
    sockBufSet(this.tapFd, "rcv", TAP_BUF_BYTES);
  }

  /**
   * Reads the next frame orzo wrote, without blocking.
   * @returns a copy of the frame, tap header included, or null when none is queued
   * @throws Error on a read error other than EAGAIN
   */
  recv(): Uint8Array<ArrayBuffer> | null {
    const n = libc.symbols.recv(this.peerFd, this.#buf, this.#buf.length, MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      if (e === ERRNO.EAGAIN) return null;
      throw new Error(`Cannot read from the fake tap: errno ${e}`);
    }
    return this.#buf.slice(0, n);
  }

  /**
   * Reads every frame queued now.
   * @returns the frames, oldest first (empty when none)
   */
  drain(): Uint8Array<ArrayBuffer>[] {
    const out: Uint8Array<ArrayBuffer>[] = [];
    for (let f = this.recv(); f !== null; f = this.recv()) out.push(f);
    return out;
  }

  /**
   * Writes a frame from the guest, for orzo's tap reader (tap.ts: tapHandler())
   * to read from `tapFd`, behind a zeroed tap header of `hdrLen` bytes.
   * @param frame the frame, from its Ethernet header on
   * @throws Error when the socket does not take it whole
   */
  send(frame: Uint8Array): void {
    const out = new Uint8Array(this.hdrLen + frame.length);
    out.set(frame, this.hdrLen);
    const n = libc.symbols.send(this.peerFd, out, out.length, 0);
    if (n !== out.length) {
      throw new Error(`Cannot write to the fake tap: errno ${n < 0 ? errno() : 0}`);
    }
  }

  /** Closes both ends. */
  close(): void {
    libc.symbols.close(this.tapFd);
    libc.symbols.close(this.peerFd);
  }
}
