/**
 * checksum.ts - the Internet checksum (RFC 1071): partial sums, folding,
 * the IPv4 header checksum and the TCP/UDP/ICMPv6 pseudo-header sums.
 *
 * Sums are "partial": `csumPartial()` returns the one's-complement sum of a
 * byte range added to a running sum, folded to 16 bits but not inverted, so
 * that a pseudo-header sum, a header and a payload can be summed in pieces.
 * `csumFinish()` inverts a sum into the value stored in a header. Every range
 * is read as big-endian 16-bit words starting at its first byte, whatever its
 * alignment; an odd trailing byte is padded with zero. To chain a range that
 * starts at an odd position of the checksummed data, add `csumSwap()` of its
 * sum instead (RFC 1071 §2(B)).
 *
 * Fast path (FFI-NOTES §4): `csumPartial()` sums ranges of at least
 * CSUM_WASM_MIN bytes that live in the WebAssembly module's memory there,
 * with SIMD and without a copy (about 40 GB/s against 5 GB/s for the
 * TypeScript loop); buffers handed out by `csumWasmAlloc()` at setup are such
 * memory, so frame and segment buffers should come from it. Everything else,
 * and everything when WebAssembly is unavailable, goes through the
 * TypeScript loop: `csumPartial()` never allocates. `csumPartialWasm()`
 * also takes ranges from ordinary buffers, copying them into a 64 KiB scratch
 * area of the wasm memory first (about twice as fast as TypeScript from 512
 * bytes, but JS has no ranged copy without a view, so it creates one
 * typed-array view per 64 KiB: keep it off the per-packet path).
 *
 * @module
 */

import { csumWasmBytes } from "./csum_wasm.ts";

/** Zero-copy WebAssembly path from this many bytes (smaller ranges: TypeScript). */
export const CSUM_WASM_MIN = 64;
/** Size of the WebAssembly memory, fixed at load (never grown afterwards). */
export const CSUM_WASM_MEM_BYTES = 64 << 20;
/** Copy-in scratch area at the start of the WebAssembly memory. */
const SCRATCH_BYTES = 65536;
/** TypeScript loop: bytes per run before the accumulators are folded. */
const TS_CHUNK = 1 << 22;

let wasmSum: ((p: number, n: number) => number) | null = null;
let wasmBuf: ArrayBufferLike | null = null;
let wasmU8: Uint8Array<ArrayBuffer> = new Uint8Array(0);
let arenaNext = SCRATCH_BYTES;

/** Instantiates csum.wasm and sizes its memory once; leaves the fast path off on failure. */
function wasmInit(): void {
  try {
    const bytes = csumWasmBytes();
    if (!WebAssembly.validate(bytes)) return;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    const mem = inst.exports.memory as WebAssembly.Memory;
    const pages = CSUM_WASM_MEM_BYTES / 65536;
    const have = mem.buffer.byteLength / 65536;
    if (have < pages) mem.grow(pages - have);
    wasmU8 = new Uint8Array(mem.buffer as ArrayBuffer);
    wasmBuf = mem.buffer;
    wasmSum = inst.exports.sum as (p: number, n: number) => number;
  } catch {
    wasmSum = null;
  }
}
wasmInit();

/**
 * Tells whether the WebAssembly SIMD path is available.
 * @returns true when csum.wasm was instantiated
 */
export function csumWasmOn(): boolean {
  return wasmSum !== null;
}

/**
 * Hands out a range of the WebAssembly memory, for buffers whose checksums
 * should take the zero-copy path (frames read from the tap, segment buffers).
 * Setup only: a bump allocator over a fixed arena; nothing is ever freed.
 * @param n bytes wanted
 * @param align alignment of the returned range within the memory (power of two)
 * @returns a view of `n` bytes of wasm memory, or null when WebAssembly is
 *   unavailable or the arena is exhausted (use an ordinary Uint8Array then)
 * @example Usage
 * ```ts
 * import { csumWasmAlloc } from "./checksum.ts";
 * const buf = csumWasmAlloc(65536) ?? new Uint8Array(65536);
 * ```
 */
export function csumWasmAlloc(n: number, align = 64): Uint8Array<ArrayBuffer> | null {
  if (wasmSum === null || n < 0) return null;
  const start = (arenaNext + align - 1) & ~(align - 1);
  if (start + n > wasmU8.length) return null;
  arenaNext = start + n;
  return new Uint8Array(wasmU8.buffer, start, n);
}

/**
 * Folds a sum into 16 bits (end-around carry).
 * @param sum non-negative integer below 2^53
 * @returns the sum folded into 0..0xffff
 */
export function csumFold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/**
 * Turns a running sum into the checksum value stored in a header.
 * @param sum running sum (non-negative integer below 2^53)
 * @returns the one's complement of the folded sum, 0..0xffff
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { csumFinish, csumPartial } from "./checksum.ts";
 * const b = new Uint8Array([0x45, 0x00, 0x00, 0x1c]);
 * assert.equal(csumFinish(csumPartial(b, 0, 4, 0)), 0xbae3);
 * ```
 */
export function csumFinish(sum: number): number {
  return ~csumFold(sum) & 0xffff;
}

/**
 * Byte-swaps a folded sum: the sum of a range that starts at an odd
 * position of the checksummed data, as seen from the data's start.
 * @param sum folded sum (0..0xffff)
 * @returns the swapped sum
 */
export function csumSwap(sum: number): number {
  return ((sum & 0xff) << 8) | (sum >>> 8);
}

/**
 * Sums a byte range with the TypeScript loop only (fallback and reference).
 * @param bytes buffer holding the range
 * @param off start of the range in `bytes`
 * @param len length of the range
 * @param init running sum to add to (non-negative integer below 2^52)
 * @returns the folded sum (0..0xffff)
 */
export function csumPartialTs(bytes: Uint8Array, off: number, len: number, init: number): number {
  let sum = init;
  let i = off;
  const end = off + len;
  while (i < end) {
    /* even-position bytes are high bytes, odd-position ones low bytes */
    let hi = 0;
    let lo = 0;
    const stop = end - i > TS_CHUNK ? i + TS_CHUNK : end;
    const stop8 = i + ((stop - i) & ~7);
    while (i < stop8) {
      hi += bytes[i]! + bytes[i + 2]! + bytes[i + 4]! + bytes[i + 6]!;
      lo += bytes[i + 1]! + bytes[i + 3]! + bytes[i + 5]! + bytes[i + 7]!;
      i += 8;
    }
    while (i + 1 < stop) {
      hi += bytes[i]!;
      lo += bytes[i + 1]!;
      i += 2;
    }
    if (i < stop) {
      hi += bytes[i]!;
      i++;
    }
    sum = csumFold(sum + hi * 256 + lo);
  }
  return csumFold(sum);
}

/**
 * Sums a byte range with WebAssembly whatever its length, copying it into
 * wasm memory when it lives elsewhere (one typed-array view per 64 KiB
 * copied); falls back to TypeScript when WebAssembly is unavailable.
 * @param bytes buffer holding the range
 * @param off start of the range in `bytes`
 * @param len length of the range
 * @param init running sum to add to (non-negative integer below 2^52)
 * @returns the folded sum (0..0xffff)
 */
export function csumPartialWasm(bytes: Uint8Array, off: number, len: number, init: number): number {
  const sum = wasmSum;
  if (sum === null) return csumPartialTs(bytes, off, len, init);
  if (bytes.buffer === wasmBuf) return csumFold(init + sum(bytes.byteOffset + off, len));
  let acc = init;
  let done = 0;
  while (done < len) {
    /* chunks of even length keep every chunk at an even position */
    const n = len - done > SCRATCH_BYTES ? SCRATCH_BYTES : len - done;
    wasmU8.set(bytes.subarray(off + done, off + done + n), 0);
    acc += sum(0, n);
    done += n;
  }
  return csumFold(acc);
}

/**
 * Adds the one's-complement sum of a byte range to a running sum: with
 * WebAssembly SIMD when the range lies in wasm memory and is at least
 * CSUM_WASM_MIN bytes long, with TypeScript otherwise. Allocates nothing.
 * @param bytes buffer holding the range
 * @param off start of the range in `bytes`
 * @param len length of the range (may be odd)
 * @param init running sum to add to (non-negative integer below 2^52)
 * @returns the folded sum (0..0xffff), not inverted
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { csumPartial } from "./checksum.ts";
 * const b = new Uint8Array([0x01, 0x02, 0x03]);
 * assert.equal(csumPartial(b, 0, 3, 0), 0x0102 + 0x0300);
 * ```
 */
export function csumPartial(bytes: Uint8Array, off: number, len: number, init: number): number {
  if (wasmSum !== null && len >= CSUM_WASM_MIN && bytes.buffer === wasmBuf) {
    return csumFold(init + wasmSum(bytes.byteOffset + off, len));
  }
  return csumPartialTs(bytes, off, len, init);
}

/**
 * Computes the IPv4 header checksum, treating the checksum field as zero.
 * @param bytes buffer holding the header
 * @param off start of the IPv4 header
 * @param hlen header length in bytes (IHL * 4)
 * @returns the value to store in the header's checksum field
 */
export function csumIp4Header(bytes: Uint8Array, off: number, hlen: number): number {
  let sum = csumPartialTs(bytes, off, 10, 0);
  sum = csumPartialTs(bytes, off + 12, hlen - 12, sum);
  return csumFinish(sum);
}

/**
 * Sums an IPv4 pseudo-header (RFC 793, RFC 768).
 * @param src buffer holding the source address
 * @param srcOff offset of the 4-byte source address
 * @param dst buffer holding the destination address
 * @param dstOff offset of the 4-byte destination address
 * @param proto L4 protocol number
 * @param l4len L4 length (header and payload)
 * @returns the unfolded sum (below 2^20), to pass as `init`
 */
export function csumPseudo4(
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  proto: number,
  l4len: number,
): number {
  return ((src[srcOff]! << 8) | src[srcOff + 1]!) + ((src[srcOff + 2]! << 8) | src[srcOff + 3]!) +
    ((dst[dstOff]! << 8) | dst[dstOff + 1]!) + ((dst[dstOff + 2]! << 8) | dst[dstOff + 3]!) +
    proto + l4len;
}

/**
 * Sums an IPv6 pseudo-header (RFC 8200 §8.1).
 * @param src buffer holding the source address
 * @param srcOff offset of the 16-byte source address
 * @param dst buffer holding the destination address
 * @param dstOff offset of the 16-byte destination address
 * @param proto L4 protocol number (next header)
 * @param l4len upper-layer packet length
 * @returns the unfolded sum (below 2^22), to pass as `init`
 */
export function csumPseudo6(
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  proto: number,
  l4len: number,
): number {
  let sum = proto + (l4len >>> 16) + (l4len & 0xffff);
  for (let i = 0; i < 16; i += 2) {
    sum += ((src[srcOff + i]! << 8) | src[srcOff + i + 1]!) +
      ((dst[dstOff + i]! << 8) | dst[dstOff + i + 1]!);
  }
  return sum;
}

/**
 * Computes a TCP or UDP over IPv4 checksum over the pseudo-header
 * (addresses taken from the IPv4 header) and the L4 bytes as they are.
 * To fill: zero the checksum field, store the result (UDP: 0 becomes 0xffff).
 * To verify: the result is 0 for a correct checksum.
 * @param bytes buffer holding the packet
 * @param ipOff start of the IPv4 header
 * @param l4Off start of the L4 header
 * @param l4Len L4 length (header and payload)
 * @param proto L4 protocol number
 * @returns the finished checksum (0..0xffff)
 */
export function csumL4v4(
  bytes: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  proto: number,
): number {
  const init = csumPseudo4(bytes, ipOff + 12, bytes, ipOff + 16, proto, l4Len);
  return csumFinish(csumPartial(bytes, l4Off, l4Len, init));
}

/**
 * Computes a TCP, UDP or ICMPv6 over IPv6 checksum over the pseudo-header
 * (addresses taken from the IPv6 header) and the L4 bytes as they are.
 * To fill: zero the checksum field, store the result (UDP: 0 becomes 0xffff).
 * To verify: the result is 0 for a correct checksum.
 * @param bytes buffer holding the packet
 * @param ipOff start of the IPv6 header
 * @param l4Off start of the L4 header
 * @param l4Len L4 length (header and payload)
 * @param proto L4 protocol number
 * @returns the finished checksum (0..0xffff)
 */
export function csumL4v6(
  bytes: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  proto: number,
): number {
  const init = csumPseudo6(bytes, ipOff + 8, bytes, ipOff + 24, proto, l4Len);
  return csumFinish(csumPartial(bytes, l4Off, l4Len, init));
}
