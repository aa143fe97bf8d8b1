import assert from "node:assert/strict";
import {
  CSUM_WASM_MIN,
  csumFinish,
  csumFold,
  csumIp4Header,
  csumL4v4,
  csumL4v6,
  csumPartial,
  csumPartialTs,
  csumPartialWasm,
  csumPseudo4,
  csumPseudo6,
  csumSwap,
  csumWasmAlloc,
  csumWasmOn,
} from "./checksum.ts";
import { CSUM_WASM_BASE64, csumWasmBytes } from "./csum_wasm.ts";
import { hex, prng, refSum } from "./_hex.ts";

const LENGTHS = [0, 1, 2, 3, 20, 21, 63, 64, 65, 1499, 1500, 65535];

/** Random bytes from a seeded PRNG. */
function noise(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r() & 0xff;
  return b;
}

/* An IPv4 ICMP echo request captured on a veth (Linux 6.18): Ethernet + IPv4 + ICMP. */
const ECHO4 = hex(`
  02 00 00 00 00 0b  02 00 00 00 00 0a  08 00   // Ethernet
  45 00 00 54  19 72 40 00  40 01 9d 33         // IPv4: tot 84, DF, ttl 64, ICMP, csum 9d33
  c0 00 02 01  c0 00 02 02                      // 192.0.2.1 -> 192.0.2.2
  08 00 7b 1e  21 0b 00 01                      // ICMP echo, csum 7b1e, id 0x210b, seq 1
  e4 48 07 6b 00 00 00 00 a5 4e 0c 00 00 00 00 00
  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
  30 31 32 33 34 35 36 37
`);

/* TCP SYN as sent over veth: the checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL). */
const SYN4 = hex(`
  02 00 00 00 00 0b  02 00 00 00 00 0a  08 00
  45 00 00 3c  8e a6 40 00  40 06 28 12  c0 00 02 01  c0 00 02 02
  8d 88 1f 90  41 8c 8b 1e  00 00 00 00  a0 02 fa f0  84 32 00 00   // csum 8432 (partial)
  02 04 05 b4  04 02  08 0a e8 2a 19 d9 00 00 00 00  01  03 03 0a
`);

/* UDP over IPv6 from the same capture, checksum partial (5b94); full checksum 5e08. */
const UDP6 = hex(`
  02 00 00 00 00 0b  02 00 00 00 00 0a  86 dd
  60 0f bd 60  00 0e  11  40
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
  ed 8f 14 e9  00 0e  5b 94  68 65 6c 6c 6f 0a
`);

/* Neighbour solicitation from the kernel, ICMPv6 checksum 1c1e (complete). */
const NS6 = hex(`
  33 33 ff 00 00 02  02 00 00 00 00 0a  86 dd
  60 00 00 00  00 20  3a  ff
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02
  87 00 1c 1e  00 00 00 00
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
  01 01 02 00 00 00 00 0a
`);

Deno.test("csumWasmOn() is true: Deno runs wasm SIMD", () => {
  assert.ok(csumWasmOn());
});

Deno.test("csum_wasm.ts bytes validate and export memory and sum", () => {
  const bytes = csumWasmBytes();
  assert.ok(WebAssembly.validate(bytes));
  const exp = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name).sort();
  assert.deepEqual(exp, ["memory", "sum"]);
  assert.equal(CSUM_WASM_BASE64.length % 4, 0);
});

Deno.test({
  name: "csum_wasm.ts bytes match csum.wat assembled by $WAT2WASM",
  ignore: Deno.env.get("WAT2WASM") === undefined,
  fn: async () => {
    const out = await Deno.makeTempFile({ suffix: ".wasm" });
    try {
      const wat = new URL("./csum.wat", import.meta.url).pathname;
      const r = await new Deno.Command(Deno.env.get("WAT2WASM")!, { args: [wat, "-o", out] })
        .output();
      assert.equal(r.code, 0);
      assert.deepEqual(await Deno.readFile(out), csumWasmBytes());
    } finally {
      await Deno.remove(out);
    }
  },
});

Deno.test("csumPartial() wasm == TS == byte loop, lengths and offsets 0..3, in wasm memory", () => {
  const src = noise(65535 + 8, 1);
  const w = csumWasmAlloc(65535 + 8)!;
  w.set(src);
  for (const len of LENGTHS) {
    for (let off = 0; off < 4; off++) {
      const ref = refSum(src.subarray(off, off + len));
      assert.equal(csumPartialTs(src, off, len, 0), ref, `ts len ${len} off ${off}`);
      assert.equal(csumPartialWasm(w, off, len, 0), ref, `wasm len ${len} off ${off}`);
      assert.equal(csumPartial(w, off, len, 0), ref, `auto len ${len} off ${off}`);
    }
  }
});

Deno.test("csumPartialWasm() copy-in == csumPartial() == byte loop, lengths and offsets 0..3", () => {
  const src = noise(65535 + 8, 2);
  for (const len of LENGTHS) {
    for (let off = 0; off < 4; off++) {
      const ref = refSum(src.subarray(off, off + len));
      assert.equal(csumPartialWasm(src, off, len, 0), ref, `copy len ${len} off ${off}`);
      assert.equal(csumPartial(src, off, len, 0), ref, `auto len ${len} off ${off}`);
    }
  }
});

Deno.test("csumPartial() handles a view with a byte offset, odd and even", () => {
  const src = noise(3000, 3);
  const w = csumWasmAlloc(3000)!;
  w.set(src);
  for (const base of [1, 2, 7]) {
    for (const len of [20, 65, 1500]) {
      const ref = refSum(src.subarray(base + 3, base + 3 + len));
      assert.equal(csumPartial(src.subarray(base), 3, len, 0), ref);
      assert.equal(csumPartial(w.subarray(base), 3, len, 0), ref);
    }
  }
});

Deno.test("csumPartial() all-0xff data past 1 MiB does not overflow the SIMD lanes", () => {
  const n = 3 * (1 << 20) + 77;
  const w = csumWasmAlloc(n)!;
  w.fill(0xff);
  const ts = csumPartialTs(w, 1, n - 1, 0);
  assert.equal(ts, 0xffff);
  assert.equal(csumPartialWasm(w, 1, n - 1, 0), ts);
  const plain = new Uint8Array(n).fill(0xfe);
  assert.equal(csumPartialWasm(plain, 0, n, 0), csumPartialTs(plain, 0, n, 0));
});

Deno.test("csumPartial() adds the running sum", () => {
  const b = noise(200, 4);
  const whole = csumPartial(b, 0, 200, 0);
  assert.equal(csumPartial(b, 100, 100, csumPartial(b, 0, 100, 0)), whole);
  assert.equal(csumPartial(b, 0, 0, 0x12345), csumFold(0x12345));
});

Deno.test("csumSwap() chains a range that starts at an odd position", () => {
  const b = noise(101, 5);
  const whole = refSum(b);
  const a = csumPartial(b, 0, 51, 0);
  const rest = csumPartial(b, 51, 50, 0);
  assert.equal(csumFold(a + csumSwap(rest)), whole);
});

Deno.test("csumFold() and csumFinish() fold end-around carries", () => {
  assert.equal(csumFold(0), 0);
  assert.equal(csumFold(0xffff), 0xffff);
  assert.equal(csumFold(0x10000), 1);
  assert.equal(csumFold(0x1fffe), 0xffff);
  assert.equal(csumFold(2 ** 52 + 3), csumFold(csumFold(2 ** 52) + 3));
  assert.equal(csumFinish(0xffff), 0);
  assert.equal(csumFinish(0x1234), 0xedcb);
});

Deno.test("csumIp4Header() matches the kernel's checksum", () => {
  assert.equal(csumIp4Header(ECHO4, 14, 20), 0x9d33);
});

Deno.test("csumPseudo4() folds to the kernel's partial TCP checksum", () => {
  const l4len = 0x3c - 20;
  assert.equal(csumFold(csumPseudo4(SYN4, 26, SYN4, 30, 6, l4len)), 0x8432);
});

Deno.test("csumPseudo6() folds to the kernel's partial UDP checksum", () => {
  assert.equal(csumFold(csumPseudo6(UDP6, 22, UDP6, 38, 17, 14)), 0x5b94);
});

Deno.test("csumL4v6() computes the full UDP checksum", () => {
  const b = UDP6.slice();
  b[60] = 0;
  b[61] = 0;
  assert.equal(csumL4v6(b, 14, 54, 14, 17), 0x5e08);
  b[60] = 0x5e;
  b[61] = 0x08;
  assert.equal(csumL4v6(b, 14, 54, 14, 17), 0);
});

Deno.test("csumL4v4() computes the full TCP checksum", () => {
  const b = SYN4.slice();
  b[50] = 0;
  b[51] = 0;
  assert.equal(csumL4v4(b, 14, 34, 40, 6), 0x4d41);
});

Deno.test("csumL4v6() verifies the kernel's ICMPv6 checksum", () => {
  assert.equal(csumL4v6(NS6, 14, 54, 32, 58), 0);
  const bad = NS6.slice();
  bad[70] ^= 1;
  assert.notEqual(csumL4v6(bad, 14, 54, 32, 58), 0);
});

Deno.test("csumPartial() ICMP checksum matches the kernel's", () => {
  assert.equal(csumFinish(csumPartial(ECHO4, 34, 64, 0)), 0);
});

Deno.test("csumWasmAlloc() hands out disjoint aligned views of wasm memory", () => {
  const a = csumWasmAlloc(100)!;
  const b = csumWasmAlloc(10, 4096)!;
  assert.equal(a.buffer, b.buffer);
  assert.equal(b.byteOffset % 4096, 0);
  assert.ok(b.byteOffset >= a.byteOffset + 100);
  assert.equal(csumWasmAlloc(1 << 30), null);
});

Deno.test("csumPartial() takes the zero-copy path only from CSUM_WASM_MIN bytes", () => {
  const w = csumWasmAlloc(CSUM_WASM_MIN + 1)!;
  w.fill(0x5a);
  for (const n of [CSUM_WASM_MIN - 1, CSUM_WASM_MIN, CSUM_WASM_MIN + 1]) {
    assert.equal(csumPartial(w, 0, n, 7), csumPartialTs(w, 0, n, 7));
  }
});
