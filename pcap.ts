/**
 * pcap.ts - packet capture of the frames on the tap, in the classic libpcap
 * file format (pcap-savefile(5)): LINKTYPE_ETHERNET, microsecond timestamps
 * from CLOCK_REALTIME, as passt's pcap.c.
 *
 * The file is written through libc (orzo runs with --allow-ffi only):
 * pcapOpen() creates or truncates it and writes the global header once;
 * pcapFrame() writes one record with a single writev() of two iovecs, the
 * preallocated 16-byte record header and the frame where it lies. Nothing is
 * allocated per frame: the header, the iovec array and the timespec are
 * module scratch, and the address of the frame's buffer is taken once per
 * buffer (cached by ArrayBuffer identity, a handful per run). Frames longer
 * than PCAP_SNAPLEN are cut there, their original length recorded. Write
 * errors are counted (pcapErrors()) and logged at debug level, never thrown.
 *
 * @module
 */

import { libc } from "./ffi/libc.ts";
import { check, errno } from "./ffi/errno.ts";
import { cString, writeAll } from "./ffi/mem.ts";
import { O_CLOEXEC, O_CREAT, O_TRUNC, O_WRONLY } from "./ffi/layout.ts";
import { debug, info, LOG_DEBUG, logLevel } from "./log.ts";

/** Magic number of the microsecond-resolution format. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** Format version, major. */
export const PCAP_VERSION_MAJOR = 2;
/** Format version, minor. */
export const PCAP_VERSION_MINOR = 4;
/** Link type: Ethernet. */
export const PCAP_LINKTYPE_ETHERNET = 1;
/**
 * Snapshot length: libpcap's maximum, above the 64 KiB GSO frames a tap
 * with offloads delivers (passt uses ETH_MAX_MTU, 65535).
 */
export const PCAP_SNAPLEN = 262144;
/** Length of the global header. */
export const PCAP_GLOBAL_HDR_LEN = 24;
/** Length of a record header. */
export const PCAP_RECORD_HDR_LEN = 16;

const CLOCK_REALTIME = 0;
const EINTR = 4;
const TWO32 = 4294967296;

/** Whether a capture file is open: check before calling pcapFrame(). */
export let pcapOn = false;
let fd = -1;
let errors = 0;

/* per-frame scratch, allocated once */
/* (ArrayBuffers of their own: small typed arrays may live on V8's moving heap) */
const recHdr = new Uint8Array(new ArrayBuffer(PCAP_RECORD_HDR_LEN));
const recHdr32 = new Uint32Array(recHdr.buffer);
const iov = new Uint8Array(new ArrayBuffer(32));
const iov32 = new Uint32Array(iov.buffer);
const ts = new Uint8Array(new ArrayBuffer(16));
const ts32 = new Int32Array(ts.buffer);
let recHdrAddr = -1;
let lastBuf: ArrayBufferLike | null = null;
let lastBase = 0;

/**
 * Returns the address of a buffer's first byte as a number.
 * @param a any view on the buffer
 * @returns the address of `a.buffer` at byte 0
 */
function bufferBase(a: Uint8Array): number {
  const p = Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>);
  return Number(Deno.UnsafePointer.value(p)) - a.byteOffset;
}

/**
 * Writes an address and a length into iovec slot `i`.
 * @param i slot (0 or 1)
 * @param addr address as a number
 * @param len length in bytes
 */
function iovSet(i: number, addr: number, len: number): void {
  const w = i * 4;
  iov32[w] = addr % TWO32;
  iov32[w + 1] = Math.floor(addr / TWO32);
  iov32[w + 2] = len;
  iov32[w + 3] = 0;
}

/**
 * Opens (creating or truncating) a capture file and writes its global header.
 * A file already open is closed first.
 * @param path file to write
 * @throws SysError when the file cannot be opened or written
 */
export function pcapOpen(path: string): void {
  pcapClose();
  const f = check(
    libc.symbols.open(cString(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600),
    `open pcap file ${path}`,
  );
  /* host byte order, as the records: readers tell the order from the magic */
  const g32 = new Uint32Array(PCAP_GLOBAL_HDR_LEN / 4);
  const g = new Uint8Array(g32.buffer);
  g32[0] = PCAP_MAGIC;
  new Uint16Array(g32.buffer, 4, 2).set([PCAP_VERSION_MAJOR, PCAP_VERSION_MINOR]);
  g32[2] = 0; /* thiszone: UTC */
  g32[3] = 0; /* sigfigs */
  g32[4] = PCAP_SNAPLEN;
  g32[5] = PCAP_LINKTYPE_ETHERNET;
  try {
    writeAll(f, g, `write pcap header to ${path}`);
  } catch (e) {
    libc.symbols.close(f);
    throw e;
  }
  if (recHdrAddr < 0) recHdrAddr = bufferBase(recHdr);
  fd = f;
  errors = 0;
  pcapOn = true;
  info(`Saving packet capture to ${path}`);
}

/**
 * Captures one frame, timestamped now. Does nothing when no file is open or
 * the range is not within `frame`.
 * @param frame buffer holding the frame
 * @param off where the Ethernet header starts in `frame`
 * @param len frame length
 */
export function pcapFrame(frame: Uint8Array, off: number, len: number): void {
  if (fd < 0 || off < 0 || len <= 0 || off + len > frame.length) return;
  const buf = frame.buffer;
  if (buf !== lastBuf) {
    lastBase = bufferBase(frame);
    lastBuf = buf;
  }
  const cap = len > PCAP_SNAPLEN ? PCAP_SNAPLEN : len;
  libc.symbols.clock_gettime(CLOCK_REALTIME, ts);
  recHdr32[0] = ts32[0]!;
  recHdr32[1] = (ts32[2]! / 1000) | 0;
  recHdr32[2] = cap;
  recHdr32[3] = len;
  iovSet(0, recHdrAddr, PCAP_RECORD_HDR_LEN);
  iovSet(1, lastBase + frame.byteOffset + off, cap);
  let left = PCAP_RECORD_HDR_LEN + cap;
  for (;;) {
    const n = libc.symbols.writev(fd, iov, 2);
    if (n < 0) {
      if (errno() === EINTR) continue;
      pcapError(errno());
      return;
    }
    left -= n;
    if (left <= 0) return;
    if (n === 0) {
      pcapError(0);
      return;
    }
    pcapAdvance(n);
  }
}

/** Moves the iovecs past `n` written bytes after a short write. */
function pcapAdvance(n: number): void {
  for (let i = 0; i < 2 && n > 0; i++) {
    const w = i * 4;
    const l = iov32[w + 2]!;
    const step = n < l ? n : l;
    iovSet(i, iov32[w]! + iov32[w + 1]! * TWO32 + step, l - step);
    n -= step;
  }
}

function pcapError(e: number): void {
  errors++;
  if (logLevel >= LOG_DEBUG) debug(`Cannot log packet: errno ${e}`);
}

/**
 * Tells how many frames could not be written to the capture file.
 * @returns the count since pcapOpen()
 */
export function pcapErrors(): number {
  return errors;
}

/** Closes the capture file, if open. */
export function pcapClose(): void {
  if (fd >= 0) libc.symbols.close(fd);
  fd = -1;
  pcapOn = false;
  lastBuf = null;
}
