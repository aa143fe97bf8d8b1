import assert from "node:assert/strict";
import {
  TCP_ACK,
  TCP_HLEN,
  TCP_SYN,
  tcpAck,
  tcpCheckLen,
  tcpChecksum,
  tcpChecksumOk4,
  tcpChecksumOk6,
  tcpDstPort,
  tcpFillChecksum4,
  tcpFillChecksum6,
  tcpFlags,
  tcpHeaderLen,
  TcpOpts,
  tcpOptsParse,
  tcpOptWriteMss,
  tcpOptWriteSackOk,
  tcpOptWriteTs,
  tcpOptWriteWscale,
  tcpSeq,
  tcpSetAck,
  tcpSetDstPort,
  tcpSetFlags,
  tcpSetHeaderLen,
  tcpSetSeq,
  tcpSetSrcPort,
  tcpSetUrgent,
  tcpSetWindow,
  tcpSrcPort,
  tcpUrgent,
  tcpWindow,
} from "./tcp.ts";
import { assertTruncation, hex, placed, prng } from "./_hex.ts";

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

Deno.test("tcp accessors deconstruct the fixture", () => {
  const { buf, dv } = placed(PACKET, 14);
  const l4 = 14 + L4;
  assert.ok(tcpCheckLen(dv, l4, 40));
  assert.equal(tcpSrcPort(dv, l4), 36232);
  assert.equal(tcpDstPort(dv, l4), 8080);
  assert.equal(tcpSeq(dv, l4), 0x418c8b1e);
  assert.equal(tcpAck(dv, l4), 0);
  assert.equal(tcpHeaderLen(dv, l4), 40);
  assert.equal(tcpFlags(dv, l4), TCP_SYN);
  assert.equal(tcpWindow(dv, l4), 64240);
  assert.equal(tcpChecksum(dv, l4), 0x4d41);
  assert.equal(tcpUrgent(dv, l4), 0);
  assert.ok(tcpChecksumOk4(buf, 14, l4, 40));
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

Deno.test("tcp setters and option writers construct the SYN-ACK over garbage", () => {
  const buf = SYNACK6.slice();
  buf.fill(0xa5, 40);
  const dv = new DataView(buf.buffer);
  const l4 = 40;
  tcpSetSrcPort(dv, l4, 8080);
  tcpSetDstPort(dv, l4, 36232);
  tcpSetSeq(dv, l4, 1);
  tcpSetAck(dv, l4, 0x418c8b1e + 1);
  tcpSetHeaderLen(dv, l4, 44);
  tcpSetFlags(dv, l4, TCP_SYN | TCP_ACK);
  tcpSetWindow(dv, l4, 65535);
  tcpSetUrgent(dv, l4, 0);
  let p = l4 + TCP_HLEN;
  p += tcpOptWriteMss(dv, p, 65476);
  p += tcpOptWriteWscale(dv, p, 7);
  p += tcpOptWriteSackOk(dv, p);
  p += tcpOptWriteTs(dv, p, 42, 0xe82a19d9);
  assert.equal(p, buf.length);
  tcpFillChecksum6(buf, 0, l4, 44);
  assert.deepEqual(buf, SYNACK6);
  assert.ok(tcpChecksumOk6(buf, 0, l4, 44));
});

Deno.test("tcp round trip: written options parse back", () => {
  const o = new TcpOpts();
  assert.ok(tcpOptsParse(new DataView(SYNACK6.buffer), 40, o));
  assert.deepEqual([o.mss, o.wscale, o.sackOk, o.tsVal, o.tsEcr], [65476, 7, true, 42, 0xe82a19d9]);
});

Deno.test("tcpFillChecksum4() reproduces the full checksum", () => {
  const b = PACKET.slice();
  b[L4 + 16] = 0x84;
  b[L4 + 17] = 0x32;
  tcpFillChecksum4(b, 0, L4, 40);
  assert.deepEqual(b, PACKET);
});

Deno.test("tcpCheckLen() rejects every truncation and bad data offsets without throwing", () => {
  assertTruncation(tcpCheckLen, PACKET.subarray(L4));
  for (const doff of [0, 4, 11, 15]) {
    const b = PACKET.slice(L4);
    b[12] = doff << 4;
    assert.equal(tcpCheckLen(new DataView(b.buffer), 0, b.length), false, `doff ${doff}`);
  }
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
