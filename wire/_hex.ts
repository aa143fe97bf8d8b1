/**
 * _hex.ts - test helper: annotated hex fixtures to bytes, and a seeded PRNG.
 *
 * Private to the tests of wire/ and local/ (not part of the API).
 *
 * @module
 */

/**
 * Turns an annotated hex dump into bytes: everything after `//` on a line is
 * a comment; whitespace is ignored.
 * @param s the fixture text
 * @returns the bytes, in a buffer of their own
 */
export function hex(s: string): Uint8Array<ArrayBuffer> {
  const digits = s.split("\n").map((l) => l.replace(/\/\/.*$/, "")).join("").replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new SyntaxError(`Cannot parse hex fixture`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Returns a view over a copy of `b` placed at offset `at` of a larger buffer
 * filled with `fill`, so that tests exercise nonzero offsets.
 * @param b bytes to place
 * @param at offset of the copy
 * @param extra bytes after the copy
 * @param fill value of the surrounding bytes
 * @returns the buffer and a DataView over all of it
 */
export function placed(
  b: Uint8Array,
  at: number,
  extra = 0,
  fill = 0xa5,
): { buf: Uint8Array<ArrayBuffer>; dv: DataView } {
  const buf = new Uint8Array(at + b.length + extra).fill(fill);
  buf.set(b, at);
  return { buf, dv: new DataView(buf.buffer) };
}

/**
 * A small seeded PRNG (mulberry32) for reproducible garbage.
 * @param seed 32-bit seed
 * @returns a function returning integers in 0..2^32-1
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Computes an RFC 1071 checksum the plain way, as an independent reference.
 * @param b bytes to sum, the checksum field included as it is
 * @returns the folded (not inverted) sum
 */
export function refSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) + (i + 1 < b.length ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** A `xxxCheckLen(dv, off, len)` function. */
export type CheckLen = (dv: DataView, off: number, len: number) => boolean;

/**
 * Asserts a checkLen function's contract on a fixture that needs `need`
 * bytes: true for the whole fixture; false, without throwing, for every
 * shorter length (both as `len` and as the size of the view), for a `len`
 * past the end of the view, and for a negative offset.
 * @param check the function
 * @param b the fixture, starting at the header
 * @param need bytes the header needs (b.length when omitted)
 */
export function assertTruncation(check: CheckLen, b: Uint8Array, need = b.length): void {
  const full = new DataView(b.slice().buffer);
  if (!check(full, 0, b.length)) throw new Error("checkLen rejects the whole fixture");
  for (let n = 0; n < need; n++) {
    const cut = new DataView(b.slice(0, n).buffer);
    if (check(full, 0, n)) throw new Error(`checkLen accepts len ${n} < ${need}`);
    if (check(cut, 0, n)) throw new Error(`checkLen accepts a view of ${n} bytes`);
    if (check(cut, 0, b.length)) throw new Error(`checkLen accepts len past a ${n}-byte view`);
  }
  if (check(full, -1, b.length)) throw new Error("checkLen accepts a negative offset");
  if (check(full, 1, b.length)) throw new Error("checkLen accepts len past the view");
}
