/**
 * siphash.ts - SipHash-2-4 (Aumasson and Bernstein, 2012) on 32-bit halves,
 * and the keyed hash of a flow's lookup key.
 *
 * The flow table's hash must be keyed: with a guessable hash, a guest could
 * send flows that all land in one bucket and turn every lookup into a scan of
 * the table. SipHash-2-4 with a random 128-bit key per process (as passt's
 * `hash_secret`) makes bucket positions unpredictable from outside.
 *
 * No BigInt: each 64-bit SipHash word is a pair of signed 32-bit locals
 * (`hi`, `lo`), additions propagate the carry by hand (branch-free: the carry
 * out of `a + b` is the top bit of `(a & b) | ((a | b) & ~sum)`) and
 * rotations mix the halves. Message words are read little-endian, as the reference does, so
 * {@linkcode siphash24} gives the published test vectors. Nothing here
 * allocates after module load, except {@linkcode siphash24} the first time it
 * sees a message longer than any before, and {@linkcode siphashKeyFromBytes}.
 *
 * @module
 */

/**
 * The process's random 128-bit key: little-endian 32-bit words k0.lo, k0.hi,
 * k1.lo, k1.hi (k0 = key bytes 0..7, k1 = bytes 8..15, as in the reference).
 * Drawn once from `crypto.getRandomValues()` at module load.
 */
export const SIPHASH_KEY: Uint32Array = crypto.getRandomValues(new Uint32Array(4));

/** Length in bytes of the message hashed by {@linkcode siphashFlow}. */
export const FLOW_KEY_LEN = 38;

/** Message words (lo, hi per 64-bit word), little-endian, length byte placed. */
let msg = new Int32Array(16);

/** The high half of the last result of {@linkcode siphashCore}. */
let lastHi = 0;

/** Scratch for {@linkcode siphashFlow}: the 38-byte key as five 64-bit words. */
const flowMsg = new Int32Array(10);

/**
 * Runs SipHash-2-4 over message words already laid out in `m`: `nw` 64-bit
 * words as (lo, hi) pairs, the last one carrying the tail bytes and the
 * length byte. The four state words are kept in eight int32 locals.
 * @param k key as four little-endian 32-bit words
 * @param m message words
 * @param nw number of 64-bit words in `m`, the final one included
 * @returns the low 32 bits of the hash (signed); the high half is in `lastHi`
 */
function siphashCore(k: Uint32Array, m: Int32Array, nw: number): number {
  const k0l = k[0]! | 0;
  const k0h = k[1]! | 0;
  const k1l = k[2]! | 0;
  const k1h = k[3]! | 0;
  // "somepseudorandomlygeneratedbytes"
  let v0l = k0l ^ 0x70736575;
  let v0h = k0h ^ 0x736f6d65;
  let v1l = k1l ^ 0x6e646f6d;
  let v1h = k1h ^ 0x646f7261;
  let v2l = k0l ^ 0x6e657261;
  let v2h = k0h ^ 0x6c796765;
  let v3l = k1l ^ 0x79746573;
  let v3h = k1h ^ 0x74656462;
  let lo = 0;
  let t = 0;
  // Word w < nw: compression (two rounds); w === nw: finalisation (four).
  for (let w = 0; w <= nw; w++) {
    let ml = 0;
    let mh = 0;
    let rounds = 4;
    if (w < nw) {
      ml = m[2 * w]!;
      mh = m[2 * w + 1]!;
      v3l ^= ml;
      v3h ^= mh;
      rounds = 2;
    } else {
      v2l ^= 0xff;
    }
    for (let r = 0; r < rounds; r++) {
      // v0 += v1
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (((v0l & v1l) | ((v0l | v1l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      // v1 = rotl(v1, 13) ^ v0
      t = (v1h << 13) | (v1l >>> 19);
      v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
      v1h = t ^ v0h;
      // v0 = rotl(v0, 32)
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (((v2l & v3l) | ((v2l | v3l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      // v3 = rotl(v3, 16) ^ v2
      t = (v3h << 16) | (v3l >>> 16);
      v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
      v3h = t ^ v2h;
      // v0 += v3
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (((v0l & v3l) | ((v0l | v3l) & ~lo)) >>> 31)) | 0;
      v0l = lo;
      // v3 = rotl(v3, 21) ^ v0
      t = (v3h << 21) | (v3l >>> 11);
      v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
      v3h = t ^ v0h;
      // v2 += v1
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (((v2l & v1l) | ((v2l | v1l) & ~lo)) >>> 31)) | 0;
      v2l = lo;
      // v1 = rotl(v1, 17) ^ v2
      t = (v1h << 17) | (v1l >>> 15);
      v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
      v1h = t ^ v2h;
      // v2 = rotl(v2, 32)
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    if (w < nw) {
      v0l ^= ml;
      v0h ^= mh;
    }
  }
  lastHi = v0h ^ v1h ^ v2h ^ v3h;
  return v0l ^ v1l ^ v2l ^ v3l;
}

/**
 * Reads four bytes as a little-endian 32-bit word.
 * @param b buffer
 * @param o where the word starts in `b`
 * @returns the word, as a signed 32-bit number
 */
function le32(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

/**
 * Computes SipHash-2-4 of a byte string (reference semantics: key bytes
 * 0..7 are k0 and 8..15 are k1, little-endian; the 64-bit result is returned
 * as two 32-bit halves).
 * @param key key as four little-endian 32-bit words (see {@linkcode SIPHASH_KEY})
 * @param data buffer holding the message
 * @param off where the message starts in `data`
 * @param len message length in bytes
 * @param out receives the result: `out[0]` low 32 bits, `out[1]` high 32 bits
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { siphash24, siphashKeyFromBytes } from "./siphash.ts";
 * const key = siphashKeyFromBytes(new Uint8Array([...Array(16).keys()]), 0);
 * const out = new Uint32Array(2);
 * siphash24(key, new Uint8Array(0), 0, 0, out);
 * assert.deepEqual([out[1], out[0]], [0x726fdb47, 0xdd0e0e31]);
 * ```
 */
export function siphash24(
  key: Uint32Array,
  data: Uint8Array,
  off: number,
  len: number,
  out: Uint32Array,
): void {
  const nw = (len >>> 3) + 1;
  if (msg.length < 2 * nw) msg = new Int32Array(2 * nw);
  const m = msg;
  const full = len >>> 3;
  for (let w = 0; w < full; w++) {
    m[2 * w] = le32(data, off + 8 * w);
    m[2 * w + 1] = le32(data, off + 8 * w + 4);
  }
  // Tail: the last len % 8 bytes, then the length's low byte in byte 7.
  let tl = 0;
  let th = (len & 0xff) << 24;
  const base = off + 8 * full;
  const rest = len & 7;
  for (let i = 0; i < rest; i++) {
    const b = data[base + i]!;
    if (i < 4) tl |= b << (8 * i);
    else th |= b << (8 * (i - 4));
  }
  m[2 * full] = tl;
  m[2 * full + 1] = th;
  out[0] = siphashCore(key, m, nw);
  out[1] = lastHi;
}

/**
 * Builds a key for {@linkcode siphash24} and {@linkcode siphashFlow} from 16
 * bytes (tests and reproducible runs; allocates).
 * @param bytes buffer holding the 16 key bytes
 * @param off where the key starts in `bytes`
 * @returns the key as four little-endian 32-bit words
 */
export function siphashKeyFromBytes(bytes: Uint8Array, off: number): Uint32Array {
  const k = new Uint32Array(4);
  for (let i = 0; i < 4; i++) k[i] = le32(bytes, off + 4 * i);
  return k;
}

/**
 * Writes the canonical 38-byte message that {@linkcode siphashFlow} hashes:
 * local address (16 bytes), remote address (16), local port and remote port
 * (16-bit little-endian each), pif (1), protocol (1). Slow path: tests and
 * documentation of the layout; {@linkcode siphashFlow} never builds it.
 * @param dst buffer receiving the message
 * @param off where the message starts in `dst`
 * @param proto IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
 * @param pif interface of this side of the flow
 * @param laddr buffer holding our (local) address of this side, as an inany
 * @param laddrOff where the local address starts in `laddr`
 * @param raddr buffer holding the endpoint (remote) address, as an inany
 * @param raddrOff where the remote address starts in `raddr`
 * @param lport our (local) port
 * @param rport the endpoint's (remote) port
 */
export function siphashFlowKey(
  dst: Uint8Array,
  off: number,
  proto: number,
  pif: number,
  laddr: Uint8Array,
  laddrOff: number,
  raddr: Uint8Array,
  raddrOff: number,
  lport: number,
  rport: number,
): void {
  for (let i = 0; i < 16; i++) {
    dst[off + i] = laddr[laddrOff + i]!;
    dst[off + 16 + i] = raddr[raddrOff + i]!;
  }
  dst[off + 32] = lport & 0xff;
  dst[off + 33] = (lport >>> 8) & 0xff;
  dst[off + 34] = rport & 0xff;
  dst[off + 35] = (rport >>> 8) & 0xff;
  dst[off + 36] = pif;
  dst[off + 37] = proto;
}

/**
 * Hashes one side of a flow for the lookup table: SipHash-2-4 of the
 * 38-byte message described at {@linkcode siphashFlowKey}, computed straight
 * from the arguments (no message buffer is built, nothing is allocated).
 *
 * The result is the low 32 bits of the 64-bit hash as a *signed* 32-bit
 * number: a uint32 above 2^31 would be a heap number in V8, an allocation when
 * returned from a function that is not inlined. Callers take `h & mask`.
 * @param key key as four little-endian 32-bit words (see {@linkcode SIPHASH_KEY})
 * @param proto IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
 * @param pif interface of this side of the flow
 * @param laddr buffer holding our (local) address of this side, as an inany
 * @param laddrOff where the local address starts in `laddr`
 * @param raddr buffer holding the endpoint (remote) address, as an inany
 * @param raddrOff where the remote address starts in `raddr`
 * @param lport our (local) port
 * @param rport the endpoint's (remote) port
 * @returns the hash's low 32 bits, as a signed 32-bit integer
 */
export function siphashFlow(
  key: Uint32Array,
  proto: number,
  pif: number,
  laddr: Uint8Array,
  laddrOff: number,
  raddr: Uint8Array,
  raddrOff: number,
  lport: number,
  rport: number,
): number {
  const m = flowMsg;
  m[0] = le32(laddr, laddrOff);
  m[1] = le32(laddr, laddrOff + 4);
  m[2] = le32(laddr, laddrOff + 8);
  m[3] = le32(laddr, laddrOff + 12);
  m[4] = le32(raddr, raddrOff);
  m[5] = le32(raddr, raddrOff + 4);
  m[6] = le32(raddr, raddrOff + 8);
  m[7] = le32(raddr, raddrOff + 12);
  m[8] = (lport & 0xffff) | ((rport & 0xffff) << 16);
  m[9] = (pif & 0xff) | ((proto & 0xff) << 8) | (FLOW_KEY_LEN << 24);
  return siphashCore(key, m, 5);
}
