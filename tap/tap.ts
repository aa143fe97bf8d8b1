/**
 * tap.ts - frames from and to the guest's tap device.
 *
 * Theory of operation: the tap fd is non-blocking and in the epoll set. On
 * each readiness event tapHandler() reads frames until EAGAIN (at most
 * TAP_BATCH per event, so that other fds get their turn), one after the other
 * into one preallocated buffer (at TAP_UNIT boundaries, through views made
 * once), so that the frames of a batch stay valid until the batch ends: a
 * protocol handler may queue what it sends and send it at once (UDP's
 * sendmmsg()) from a flush hook (tapFlushRegister()), which runs when the
 * batch ends or before the buffer wraps. With IFF_VNET_HDR every frame is
 * preceded by a 12-byte virtio-net header (VNET_HDR_LEN); frames we write carry a zeroed
 * one. Each frame is bounds-checked, captured to pcap when asked, its source
 * MAC learned, and handed by EtherType to the protocol handlers: ARP, NDP,
 * DHCP and DHCPv6 are answered here (before the UDP flows see port 67/547), IPv4/IPv6 go to the L4 handlers registered by the
 * protocol modules. Whatever is malformed is dropped and counted in
 * `c.stats.malformed`; nothing that comes from the guest can throw.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { arpHandle } from "../local/arp.ts";
import { ndpHandle } from "../local/ndp.ts";
import { dhcpHandle, dhcpMatch } from "../local/dhcp.ts";
import { dhcpv6Handle, dhcpv6Match } from "../local/dhcpv6.ts";
import { pcapFrame, pcapOn } from "../pcap.ts";
import { LOG_TRACE, logLevel, trace } from "../log.ts";
import { ip4Input, ip6Input } from "./l3.ts";
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6 } from "../wire/eth.ts";
import { IPPROTO_ICMPV6, IPPROTO_UDP } from "../wire/ip_proto.ts";

/** Length of the virtio-net header with IFF_VNET_HDR (virtio_net_hdr_mrg_rxbuf). */
export const VNET_HDR_LEN = 12;
/** Largest frame read from the tap: a 64 KiB GSO frame plus headers. */
export const TAP_FRAME_MAX = 65536 + 14 + VNET_HDR_LEN;
/** Frames read per readiness event at most. */
export const TAP_BATCH = 64;
/** Frames start at multiples of this in the input buffer (a view is made once per unit). */
const TAP_UNIT = 2048;
/** Length of the input buffer: the frames of a batch, and room for the largest one. */
const TAP_IN_LEN = (1 << 20) + TAP_FRAME_MAX;

const ETH_HLEN = 14;

/**
 * Handler for IP frames of one family: returns nothing; counts on its own.
 * `frame` holds the Ethernet frame at `off`, `len` bytes long.
 */
export type L3Handler = (
  c: Ctx,
  frame: Uint8Array,
  view: DataView,
  off: number,
  len: number,
) => void;

/** The tap device and its buffers. */
export interface Tap {
  /** the tap fd, -1 when closed */
  fd: number;
  /** bytes before each frame: the virtio-net header (12, 0 without) or the stream's length (4) */
  vnetHdr: number;
  /** input buffer: the frames of one batch, one after the other */
  inBuf: Uint8Array<ArrayBuffer>;
  /** view over inBuf */
  inView: DataView;
  /** inBuf from each TAP_UNIT boundary on, for read(2) */
  inAt: Uint8Array<ArrayBuffer>[];
  /** output buffer for locally generated replies: header + frame */
  outBuf: Uint8Array<ArrayBuffer>;
  /** the frame part of outBuf (after the virtio-net header, if any) */
  outFrame: Uint8Array;
}

/**
 * Creates the intake state around an open tap fd or stream socket.
 * @param fd the tap fd (non-blocking), or -1 for a stream (tap/stream.ts)
 * @param hdr bytes before each frame: VNET_HDR_LEN with IFF_VNET_HDR, 0
 *   without, 4 on qemu's stream socket
 * @returns the tap state
 */
export function tapNew(fd: number, hdr: number): Tap {
  const inBuf = new Uint8Array(TAP_IN_LEN);
  const outBuf = new Uint8Array(TAP_FRAME_MAX);
  const inAt: Uint8Array<ArrayBuffer>[] = [];
  for (let off = 0; off + TAP_FRAME_MAX <= TAP_IN_LEN; off += TAP_UNIT) {
    inAt.push(inBuf.subarray(off));
  }
  return {
    fd,
    vnetHdr: hdr,
    inBuf,
    inView: new DataView(inBuf.buffer),
    inAt,
    outBuf,
    outFrame: outBuf.subarray(hdr),
  };
}

/**
 * Writes the frame built in `tap.outFrame` to the guest.
 * @param c execution context
 * @param tap the tap
 * @param len frame length (without the virtio-net header)
 * @returns bytes written, or -errno
 */
export function tapSendOut(c: Ctx, tap: Tap, len: number): number {
  if (pcapOn) pcapFrame(tap.outFrame, 0, len);
  const n = c.tap.send(tap.outBuf, len + tap.vnetHdr);
  if (n < 0) return n;
  c.stats.framesOut++;
  return n;
}

/**
 * Processes one frame from the guest.
 * @param c execution context
 * @param tap the tap
 * @param frame buffer holding the frame
 * @param view DataView over the same buffer
 * @param off where the Ethernet header starts
 * @param len frame length
 * @param now monotonic time in ms
 */
export function tapInput(
  c: Ctx,
  tap: Tap,
  frame: Uint8Array,
  view: DataView,
  off: number,
  len: number,
  now: number,
): void {
  c.stats.framesIn++;
  if (pcapOn) pcapFrame(frame, off, len);
  if (len < ETH_HLEN) {
    c.stats.malformed++;
    return;
  }
  /* Learn the guest's MAC from unicast sources */
  if ((frame[off + 6]! & 1) === 0) {
    const m = c.guestMac;
    for (let i = 0; i < 6; i++) m[i] = frame[off + 6 + i]!;
  }
  const type = view.getUint16(off + 12);
  let reply = 0;
  switch (type) {
    case ETH_P_ARP:
      reply = arpHandle(c, frame, off, len, tap.outFrame);
      break;
    case ETH_P_IP: {
      if (len < ETH_HLEN + 20) {
        c.stats.malformed++;
        return;
      }
      /* DHCP (UDP to port 67) is ours: a cheap look first, the UDP flows are hot */
      const l4 = off + ETH_HLEN + (frame[off + ETH_HLEN]! & 0x0f) * 4;
      if (
        frame[off + ETH_HLEN + 9] === IPPROTO_UDP && frame[l4 + 3] === 67 &&
        frame[l4 + 2] === 0 && dhcpMatch(c, view, off + ETH_HLEN, len - ETH_HLEN)
      ) {
        reply = dhcpHandle(c, frame, off, len, tap.outFrame);
        break;
      }
      ip4Input(c, frame, view, off + ETH_HLEN, len - ETH_HLEN, now);
      return;
    }
    case ETH_P_IPV6: {
      if (len < ETH_HLEN + 40) {
        c.stats.malformed++;
        return;
      }
      /* NDP is ours; everything else goes to the IPv6 handler */
      if (frame[off + ETH_HLEN + 6] === IPPROTO_ICMPV6) {
        const t = len >= ETH_HLEN + 41 ? frame[off + ETH_HLEN + 40]! : 0;
        if (t >= 133 && t <= 137) {
          reply = ndpHandle(c, frame, off, len, tap.outFrame);
          break;
        }
      }
      /* DHCPv6 to ff02::1:2 is ours too */
      if (
        frame[off + ETH_HLEN + 24] === 0xff &&
        dhcpv6Match(c, view, off + ETH_HLEN, len - ETH_HLEN)
      ) {
        reply = dhcpv6Handle(c, frame, off, len, tap.outFrame);
        break;
      }
      ip6Input(c, frame, view, off + ETH_HLEN, len - ETH_HLEN, now);
      return;
    }
    default:
      c.stats.unhandled++;
      return;
  }
  if (reply > 0) tapSendOut(c, tap, reply);
}

/** A flush hook: sends what a protocol queued while the batch's frames were valid. */
export type TapFlush = (c: Ctx) => void;

const flushHooks: TapFlush[] = [];

/**
 * Whether tapHandler() is inside a batch: frames handed to the protocol handlers stay valid until
 * the flush hooks run. Outside a batch (a frame fed directly), handlers send at once.
 */
export const tapBatch = { active: false };

/**
 * Registers a flush hook (once per hook: registering it again does nothing).
 * @param f the hook
 */
export function tapFlushRegister(f: TapFlush): void {
  if (!flushHooks.includes(f)) flushHooks.push(f);
}

/**
 * Runs the flush hooks: the frames read so far may be overwritten after this.
 * @param c execution context
 */
function tapFlush(c: Ctx): void {
  for (let i = 0; i < flushHooks.length; i++) flushHooks[i]!(c);
}

/**
 * Epoll handler for the tap: reads and processes frames until EAGAIN.
 * @param c execution context
 * @param tap the tap
 * @param now monotonic time in ms
 * @returns false when the tap is gone (EOF or a fatal error), true otherwise
 */
export function tapHandler(c: Ctx, tap: Tap, now: number): boolean {
  tapBatch.active = true;
  try {
    return tapRead(c, tap, now);
  } finally {
    tapBatch.active = false;
    tapFlush(c);
  }
}

/**
 * Reads and processes up to TAP_BATCH frames, one after the other in tap.inBuf.
 * @param c execution context
 * @param tap the tap
 * @param now monotonic time in ms
 * @returns false when the tap is gone
 */
function tapRead(c: Ctx, tap: Tap, now: number): boolean {
  const buf = tap.inBuf;
  const at = tap.inAt;
  const hdr = tap.vnetHdr;
  let unit = 0;
  for (let i = 0; i < TAP_BATCH; i++) {
    if (unit >= at.length) {
      tapFlush(c);
      unit = 0;
    }
    const n = libc.symbols.read(tap.fd, at[unit]!, TAP_FRAME_MAX);
    if (n < 0) {
      const e = errno();
      if (e === 11 /* EAGAIN */ || e === 4 /* EINTR */) return true;
      if (logLevel >= LOG_TRACE) trace(`tap read: errno ${e}`);
      return e !== 5 /* EIO: device gone */ && e !== 9 /* EBADF */;
    }
    if (n === 0) return false;
    if (n < hdr) {
      c.stats.malformed++;
      continue;
    }
    tapInput(c, tap, buf, tap.inView, unit * TAP_UNIT + hdr, n - hdr, now);
    unit += ((n + TAP_UNIT - 1) / TAP_UNIT) | 0;
  }
  return true;
}
