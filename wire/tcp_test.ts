import assert from "node:assert/strict";
import { tcpChecksumOk4, tcpChecksumOk6, TcpOpts, tcpOptsParse } from "./tcp.ts";
import { hex, placed, prng } from "./_hex.ts";

/** Length of the TCP header without options. */
const TCP_HLEN = 20;

/*
 * TCP SYN over IPv4 captured on a veth (socat connect); the capture held the
 * partial checksum of an offloaded send (8432), replaced by the full one
 * (4d41, computed independently).
 */
const PACKET = hex(`
  45 00 00 3c  8e a6 40 00  40 06 28 12             // IPv4: tot 60, TCP
  c0 00 02 01  c0 00 02 02                          // 192.0.2.1 -> 192.0.2.2
  8d 88               // source port 36232
  1f 90               // destination port 8080
  41 8c 8b 1e         // sequence number
  00 00 00 00         // acknowledgment number
  a0                  // data offset 10 (40 bytes)
  02                  // flags: SYN
  fa f0               // window 64240
  4d 41               // checksum
  00 00               // urgent pointer
  02 04 05 b4         // MSS 1460
  04 02               // SACK permitted
  08 0a e8 2a 19 d9 00 00 00 00   // timestamps 0xe82a19d9, 0
  01                  // NOP
  03 03 0a            // window scale 10
`);
const L4 = 20;

/* A SYN-ACK as orzo writes its options (NOP-aligned), over IPv6. */
const SYNACK6 = hex(`
  60 00 00 00  00 2c  06  40
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
  1f 90  8d 88        // ports 8080 -> 36232
  00 00 00 01         // sequence number
  41 8c 8b 1f         // acknowledgment number
  b0  12              // data offset 11 (44 bytes), SYN|ACK
  ff ff               // window
  64 71               // checksum (computed independently)
  00 00               // urgent pointer
  02 04 ff c4         // MSS 65476
  01 03 03 07         // NOP, window scale 7
  01 01 04 02         // NOP, NOP, SACK permitted
  01 01 08 0a 00 00 00 2a e8 2a 19 d9   // NOP, NOP, timestamps 42, 0xe82a19d9
`);

Deno.test("tcpChecksumOk4/6() accept the fixtures, at any offset", () => {
  const { buf } = placed(PACKET, 14);
  assert.ok(tcpChecksumOk4(buf, 14, 14 + L4, 40));
  assert.ok(tcpChecksumOk6(SYNACK6, 0, 40, 44));
});

Deno.test("tcpChecksumOk4/6() refuse a partial (offload) checksum and a changed address", () => {
  const b = PACKET.slice();
  b[L4 + 16] = 0x84;
  b[L4 + 17] = 0x32;
  assert.equal(tcpChecksumOk4(b, 0, L4, 40), false);
  const b6 = SYNACK6.slice();
  b6[23] ^= 1;
  assert.equal(tcpChecksumOk6(b6, 0, 40, 44), false);
});

Deno.test("tcpOptsParse() reads the options of the kernel's SYN", () => {
  const o = new TcpOpts();
  assert.ok(tcpOptsParse(new DataView(PACKET.buffer), L4, o));
  assert.equal(o.mss, 1460);
  assert.equal(o.wscale, 10);
  assert.equal(o.sackOk, true);
  assert.equal(o.tsVal, 0xe82a19d9);
  assert.equal(o.tsEcr, 0);
  assert.equal(o.sackBlocks, 0);
});

Deno.test("tcpOptsParse() reads the options orzo writes (NOP-aligned)", () => {
  const o = new TcpOpts();
  assert.ok(tcpOptsParse(new DataView(SYNACK6.buffer), 40, o));
  assert.deepEqual([o.mss, o.wscale, o.sackOk, o.tsVal, o.tsEcr], [65476, 7, true, 42, 0xe82a19d9]);
});

/** Returns a TCP header with the given option bytes (padded with EOL). */
function withOpts(opts: number[]): DataView {
  const olen = (opts.length + 3) & ~3;
  const b = new Uint8Array(TCP_HLEN + olen);
  b[12] = ((TCP_HLEN + olen) / 4) << 4;
  b.set(opts, TCP_HLEN);
  return new DataView(b.buffer);
}

Deno.test("tcpOptsParse() fails on bad option lengths", () => {
  const o = new TcpOpts();
  for (
    const opts of [
      [2, 0, 0, 0], //              length 0
      [8, 1, 0, 0], //              length 1
      [1, 2, 4, 5], //              MSS overrunning the header end
      [2, 5, 5, 0xb4, 0], //        MSS of length 5
      [3, 4, 7, 0], //              window scale of length 4
      [4, 3, 0, 0], //              SACK permitted of length 3
      [8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], //  timestamps of length 12
      [5, 9, 0, 0, 0, 0, 0, 0, 0], //            SACK blocks not a multiple of 8
      [30, 40, 0, 0], //                         unknown kind past the end
      [1, 1, 1, 2], //                           NOPs then a kind byte without a length
    ]
  ) {
    const dv = withOpts(opts);
    assert.equal(tcpOptsParse(dv, 0, o), false, JSON.stringify(opts));
  }
});

Deno.test("tcpOptsParse() stops at EOL, skips unknown kinds, caps the window scale", () => {
  const o = new TcpOpts();
  assert.ok(tcpOptsParse(withOpts([30, 4, 1, 2, 3, 3, 20, 0, 2, 4, 1, 0]), 0, o));
  assert.equal(o.wscale, 14);
  assert.equal(o.mss, -1, "MSS after EOL is not read");
  assert.ok(tcpOptsParse(withOpts([5, 18, ...new Array(16).fill(1)]), 0, o));
  assert.equal(o.sackBlocks, 2);
});

Deno.test("tcpOptsParse() never throws on random option bytes", () => {
  const r = prng(7);
  const o = new TcpOpts();
  for (let i = 0; i < 5000; i++) {
    const n = r() % 41;
    const opts: number[] = [];
    for (let j = 0; j < n; j++) opts.push(r() & 0xff);
    const dv = withOpts(opts);
    tcpOptsParse(dv, 0, o);
    assert.ok(o.mss < 65536 && o.wscale <= 14);
  }
});
