/**
 * siphash_test.ts - SipHash-2-4 against the published vectors and an
 * independent BigInt implementation, and the flow key hash.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  FLOW_KEY_LEN,
  siphash24,
  SIPHASH_KEY,
  siphashFlow,
  siphashFlowKey,
  siphashKeyFromBytes,
} from "./siphash.ts";

const REF_KEY_BYTES = new Uint8Array([...Array(16).keys()]);
const REF_KEY = siphashKeyFromBytes(REF_KEY_BYTES, 0);

/**
 * SipHash-2-4 outputs from the reference implementation's vectors (key
 * 00..0f, message 00..len-1), as 64-bit values: the published bytes are their
 * little-endian encoding. Length 15 is the paper's example (appendix A).
 */
const PUBLISHED: [number, bigint][] = [
  [0, 0x726fdb47dd0e0e31n],
  [1, 0x74f839c593dc67fdn],
  [2, 0x0d6c8009d9a94f5an],
  [3, 0x85676696d7fb7e2dn],
  [4, 0xcf2794e0277187b7n],
  [5, 0x18765564cd99a68dn],
  [6, 0xcbc9466e58fee3cen],
  [7, 0xab0200f58b01d137n],
  [8, 0x93f5f5799a932462n],
  [9, 0x9e0082df0ba9e4b0n],
  [10, 0x7a5dbbc594ddb9f3n],
  [11, 0xf4b32f46226bada7n],
  [12, 0x751e8fbc860ee5fbn],
  [15, 0xa129ca6149be45e5n],
];

const MASK64 = (1n << 64n) - 1n;

/** 64-bit left rotation (test reference). */
function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

/** Little-endian 64-bit read (test reference). */
function le64(b: Uint8Array, o: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i]!);
  return v;
}

/** SipHash-2-4 written from the paper with BigInt: the independent reference. */
function refSiphash(key: Uint8Array, m: Uint8Array): bigint {
  const k0 = le64(key, 0);
  const k1 = le64(key, 8);
  const v = [
    0x736f6d6570736575n ^ k0,
    0x646f72616e646f6dn ^ k1,
    0x6c7967656e657261n ^ k0,
    0x7465646279746573n ^ k1,
  ];
  const round = () => {
    v[0] = (v[0]! + v[1]!) & MASK64;
    v[1] = rotl(v[1]!, 13n) ^ v[0]!;
    v[0] = rotl(v[0]!, 32n);
    v[2] = (v[2]! + v[3]!) & MASK64;
    v[3] = rotl(v[3]!, 16n) ^ v[2]!;
    v[0] = (v[0]! + v[3]!) & MASK64;
    v[3] = rotl(v[3]!, 21n) ^ v[0]!;
    v[2] = (v[2]! + v[1]!) & MASK64;
    v[1] = rotl(v[1]!, 17n) ^ v[2]!;
    v[2] = rotl(v[2]!, 32n);
  };
  const compress = (w: bigint) => {
    v[3]! ^= w;
    round();
    round();
    v[0]! ^= w;
  };
  const full = m.length - (m.length % 8);
  for (let i = 0; i < full; i += 8) compress(le64(m, i));
  let last = BigInt(m.length & 0xff) << 56n;
  for (let i = full; i < m.length; i++) last |= BigInt(m[i]!) << BigInt(8 * (i - full));
  compress(last);
  v[2]! ^= 0xffn;
  for (let i = 0; i < 4; i++) round();
  return v[0]! ^ v[1]! ^ v[2]! ^ v[3]!;
}

/** Runs siphash24() and joins the halves into a BigInt. */
function ours(key: Uint32Array, data: Uint8Array, off: number, len: number): bigint {
  const out = new Uint32Array(2);
  siphash24(key, data, off, len, out);
  return (BigInt(out[1]!) << 32n) | BigInt(out[0]!);
}

Deno.test("siphash24() matches the published SipHash-2-4 vectors", () => {
  const msg = new Uint8Array([...Array(64).keys()]);
  for (const [len, want] of PUBLISHED) {
    assert.equal(ours(REF_KEY, msg, 0, len), want, "length " + len);
  }
});

Deno.test("refSiphash() (the test's BigInt reference) matches the published vectors", () => {
  const msg = new Uint8Array([...Array(64).keys()]);
  for (const [len, want] of PUBLISHED) {
    assert.equal(refSiphash(REF_KEY_BYTES, msg.subarray(0, len)), want, "length " + len);
  }
});

Deno.test("siphash24() matches the BigInt reference for all 64 vector lengths", () => {
  const msg = new Uint8Array([...Array(64).keys()]);
  for (let len = 0; len < 64; len++) {
    assert.equal(ours(REF_KEY, msg, 0, len), refSiphash(REF_KEY_BYTES, msg.subarray(0, len)));
  }
});

Deno.test("siphash24() matches the BigInt reference on random keys, offsets, lengths", () => {
  const buf = new Uint8Array(600);
  const keyBytes = new Uint8Array(16);
  for (let n = 0; n < 500; n++) {
    crypto.getRandomValues(buf);
    crypto.getRandomValues(keyBytes);
    const key = siphashKeyFromBytes(keyBytes, 0);
    const off = Math.floor(Math.random() * 40);
    const len = n < 300 ? n % 70 : Math.floor(Math.random() * 550);
    assert.equal(
      ours(key, buf, off, len),
      refSiphash(keyBytes, buf.subarray(off, off + len)),
      "length " + len,
    );
  }
});

Deno.test("siphashKeyFromBytes() reads four little-endian words at the offset", () => {
  const b = new Uint8Array(20);
  b.set(REF_KEY_BYTES, 4);
  assert.deepEqual(
    [...siphashKeyFromBytes(b, 4)],
    [0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c],
  );
});

Deno.test("siphashFlow() is SipHash-2-4 of the 38-byte key from siphashFlowKey()", () => {
  const addrs = new Uint8Array(64);
  const msg = new Uint8Array(FLOW_KEY_LEN + 5);
  const keyBytes = new Uint8Array(16);
  for (let n = 0; n < 300; n++) {
    crypto.getRandomValues(addrs);
    crypto.getRandomValues(keyBytes);
    const key = siphashKeyFromBytes(keyBytes, 0);
    const proto = [1, 6, 17, 58, 255][n % 5]!;
    const pif = n & 0xff;
    const lport = (n * 7919) & 0xffff;
    const rport = n % 3 === 0 ? 0xffff : (n * 104729) & 0xffff;
    siphashFlowKey(msg, 5, proto, pif, addrs, 3, addrs, 40, lport, rport);
    const want = ours(key, msg, 5, FLOW_KEY_LEN);
    const got = siphashFlow(key, proto, pif, addrs, 3, addrs, 40, lport, rport);
    assert.equal(got, Number(want & 0xffffffffn) | 0);
    assert.equal(refSiphash(keyBytes, msg.subarray(5, 5 + FLOW_KEY_LEN)), want);
  }
});

Deno.test("siphashFlow() depends on every field and on the key", () => {
  const a = new Uint8Array(32);
  const k2 = siphashKeyFromBytes(new Uint8Array(16).fill(7), 0);
  const base = siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 80, 40000);
  assert.notEqual(siphashFlow(REF_KEY, 17, 1, a, 0, a, 16, 80, 40000), base);
  assert.notEqual(siphashFlow(REF_KEY, 6, 2, a, 0, a, 16, 80, 40000), base);
  assert.notEqual(siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 81, 40000), base);
  assert.notEqual(siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 80, 40001), base);
  // Swapping ports or addresses gives another key.
  assert.notEqual(siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 40000, 80), base);
  a[31] = 1;
  assert.notEqual(siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 80, 40000), base);
  assert.notEqual(
    siphashFlow(REF_KEY, 6, 1, a, 16, a, 0, 80, 40000),
    siphashFlow(
      REF_KEY,
      6,
      1,
      a,
      0,
      a,
      16,
      80,
      40000,
    ),
  );
  a[31] = 0;
  assert.notEqual(siphashFlow(k2, 6, 1, a, 0, a, 16, 80, 40000), base);
  assert.equal(siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, 80, 40000), base);
});

Deno.test("siphashFlow() returns a signed 32-bit integer", () => {
  const a = new Uint8Array(32);
  let neg = 0;
  for (let p = 0; p < 1000; p++) {
    const h = siphashFlow(REF_KEY, 6, 1, a, 0, a, 16, p, 1);
    assert.equal(h, h | 0);
    if (h < 0) neg++;
  }
  assert.ok(neg > 400 && neg < 600, "sign bit looks uniform: " + neg);
});

Deno.test("SIPHASH_KEY is four random words drawn at load", () => {
  assert.equal(SIPHASH_KEY.length, 4);
  assert.notDeepEqual([...SIPHASH_KEY], [0, 0, 0, 0]);
});
