/**
 * tcp_frames.ts - TCP segments for state-machine tests: a builder for frames
 * from the guest (a complete `Seg` value, usually a template overridden with
 * spread, as smoltcp's `SEND_TEMPL`), and a parser with composable checkers
 * for the frames orzo writes to the tap (as gVisor's `checker` package:
 * `expectTcp(frame, flags(SYN | ACK), ackNum(1001))`).
 *
 * Frames built here carry no checksums: orzo trusts what the guest's kernel
 * sends. Frames parsed here are checked for what any frame from orzo must
 * be: Ethernet type, IP version and lengths, and a virtio-net header whose
 * partial checksum completes to a valid TCP checksum.
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatIp4, formatIp6, parseIp4, parseIp6 } from "../../conf/addr.ts";
import { csumFinish, csumPartial } from "../../wire/checksum.ts";
import { ipv4ChecksumOk } from "../../wire/ipv4.ts";
import { ETH_P_IP, ETH_P_IPV6 } from "../../wire/eth.ts";
import { tcpChecksumOk4, tcpChecksumOk6, TcpOpts, tcpOptsParse } from "../../wire/tcp.ts";

export { TcpOpts };

/** TCP flag FIN. */
export const FIN = 0x01;
/** TCP flag SYN. */
export const SYN = 0x02;
/** TCP flag RST. */
export const RST = 0x04;
/** TCP flag PSH. */
export const PSH = 0x08;
/** TCP flag ACK. */
export const ACK = 0x10;

/** Options of a segment from the guest; an absent field is not written. */
export interface SegOpts {
  /** MSS option */
  mss?: number;
  /** window scale option (shift) */
  wscale?: number;
  /** SACK-permitted option */
  sackOk?: boolean;
  /** raw option bytes, written after the others (padded with NOPs to 4) */
  raw?: number[];
}

/** A segment from the guest, as a complete value. */
export interface Seg {
  /** IPv6 or IPv4 */
  v6: boolean;
  /** source address (the guest's) */
  src: string;
  /** destination address */
  dst: string;
  /** source port */
  sport: number;
  /** destination port */
  dport: number;
  /** sequence number */
  seq: number;
  /** acknowledgment number */
  ack: number;
  /** flags (SYN, ACK...) */
  flags: number;
  /** window field, as sent (unscaled) */
  win: number;
  /** options */
  opts: SegOpts;
  /** payload */
  payload: Uint8Array;
  /** data offset field in 32-bit words; computed from the options when absent */
  doff?: number;
  /** bytes of TCP header and payload that the IP header announces and the
   * frame holds; all of them when absent (smaller values truncate) */
  l4Len?: number;
}

const EMPTY = new Uint8Array(0);

/** Template of a SYN from the guest (10.0.2.15:40000 to 10.0.2.2, port to fill). */
export const SYN_TEMPL: Readonly<Seg> = {
  v6: false,
  src: "10.0.2.15",
  dst: "10.0.2.2",
  sport: 40000,
  dport: 0,
  seq: 1000,
  ack: 0,
  flags: SYN,
  win: 65535,
  opts: { mss: 1460, wscale: 7 },
  payload: EMPTY,
};

/** Template of a segment of an established connection (seq, ack, port to fill). */
export const SEND_TEMPL: Readonly<Seg> = {
  ...SYN_TEMPL,
  seq: 1001,
  flags: ACK,
  opts: {},
};

/** Overrides that turn a template into IPv6 (fd00::15 to fd00::2). */
export const V6: Readonly<Pick<Seg, "v6" | "src" | "dst">> = {
  v6: true,
  src: "fd00::15",
  dst: "fd00::2",
};

function addrBytes(s: string, v6: boolean): Uint8Array {
  const a = v6 ? parseIp6(s) : parseIp4(s);
  if (a === null) throw new TypeError(`Cannot parse address "${s}"`);
  return a;
}

/** Option bytes of a segment, padded to a multiple of 4. */
function optBytes(o: SegOpts): number[] {
  const b: number[] = [];
  if (o.mss !== undefined) b.push(2, 4, o.mss >> 8, o.mss & 0xff);
  if (o.wscale !== undefined) b.push(1, 3, 3, o.wscale);
  if (o.sackOk) b.push(1, 1, 4, 2);
  if (o.raw !== undefined) b.push(...o.raw);
  while (b.length % 4 !== 0) b.push(1);
  return b;
}

/**
 * Builds an Ethernet frame holding a TCP segment from the guest.
 * @param s the segment
 * @returns the frame (Ethernet header at 0, IP header at 14), no checksums
 */
export function segment(s: Seg): Uint8Array<ArrayBuffer> {
  const opt = optBytes(s.opts);
  const hlen = 20 + opt.length;
  const full = hlen + s.payload.length;
  const l4Len = s.l4Len ?? full;
  const ipLen = s.v6 ? 40 : 20;
  const f = new Uint8Array(14 + ipLen + Math.max(full, l4Len));
  const dv = new DataView(f.buffer);
  f.set([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, 0x02, 0, 0, 0, 0, 0x15], 0);
  dv.setUint16(12, s.v6 ? 0x86dd : 0x0800);
  const ip = 14;
  if (!s.v6) {
    dv.setUint32(ip, 0x45000000 | (20 + l4Len));
    dv.setUint32(ip + 4, 0x00004000);
    dv.setUint32(ip + 8, (64 << 24) | (6 << 16));
    f.set(addrBytes(s.src, false), ip + 12);
    f.set(addrBytes(s.dst, false), ip + 16);
  } else {
    dv.setUint32(ip, 0x60000000);
    dv.setUint16(ip + 4, l4Len);
    f[ip + 6] = 6;
    f[ip + 7] = 64;
    f.set(addrBytes(s.src, true), ip + 8);
    f.set(addrBytes(s.dst, true), ip + 24);
  }
  const l4 = ip + ipLen;
  dv.setUint16(l4, s.sport);
  dv.setUint16(l4 + 2, s.dport);
  dv.setUint32(l4 + 4, s.seq >>> 0);
  dv.setUint32(l4 + 8, s.ack >>> 0);
  f[l4 + 12] = (s.doff ?? hlen / 4) << 4;
  f[l4 + 13] = s.flags;
  dv.setUint16(l4 + 14, s.win);
  f.set(opt, l4 + 20);
  f.set(s.payload, l4 + hlen);
  return f.slice(0, 14 + ipLen + l4Len);
}

/** A TCP segment orzo wrote to the tap, parsed. */
export interface TcpSeg {
  /** IPv6 or IPv4 */
  v6: boolean;
  /** source address, as text */
  src: string;
  /** destination address, as text */
  dst: string;
  /** source port */
  sport: number;
  /** destination port */
  dport: number;
  /** sequence number */
  seq: number;
  /** acknowledgment number */
  ack: number;
  /** flags */
  flags: number;
  /** window field (unscaled) */
  win: number;
  /** header length in bytes */
  hlen: number;
  /** options found */
  opts: TcpOpts;
  /** payload */
  payload: Uint8Array;
}

/**
 * Names of TCP flags, for messages.
 * @param f flags
 * @returns text such as "SYN|ACK", or "none"
 */
export function flagNames(f: number): string {
  const n: string[] = [];
  const names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
  for (let i = 0; i < 8; i++) if (f & (1 << i)) n.push(names[i]!);
  return n.length === 0 ? "none" : n.join("|");
}

/**
 * Describes a parsed segment in one line, for messages.
 * @param s the segment
 * @returns text such as "10.0.2.2:80 > 10.0.2.15:40000 [SYN|ACK] seq 1 ack 1001 win 65535 len 0"
 */
export function describeSeg(s: TcpSeg): string {
  return `${s.src}:${s.sport} > ${s.dst}:${s.dport} [${flagNames(s.flags)}] seq ${s.seq} ` +
    `ack ${s.ack} win ${s.win} len ${s.payload.length}`;
}

/**
 * Parses a frame orzo wrote to the tap (tap header first), and checks what
 * holds for every frame: Ethernet type, IP version, lengths, a valid IPv4
 * header checksum, and a virtio-net header (when hdrLen is 12) asking to
 * complete a TCP checksum that then verifies.
 * @param frame the frame, tap header included
 * @param hdrLen tap header length (12: virtio-net, 0: none)
 * @returns the segment
 * @throws AssertionError when the frame is not a well-formed TCP frame
 */
export function parseTcp(frame: Uint8Array, hdrLen = 12): TcpSeg {
  const f = frame.slice(hdrLen);
  const dv = new DataView(f.buffer);
  assert.ok(f.length >= 14, `frame of ${f.length} bytes has no Ethernet header`);
  const type = dv.getUint16(12);
  const v6 = type === ETH_P_IPV6;
  assert.ok(type === ETH_P_IP || v6, `Ethernet type 0x${type.toString(16)} is not IP`);
  const ip = 14;
  let l4: number;
  let l4Len: number;
  let src: string;
  let dst: string;
  if (!v6) {
    assert.equal(f[ip]! >> 4, 4, "IP version");
    const ihl = (f[ip]! & 0x0f) * 4;
    assert.equal(dv.getUint16(ip + 2), f.length - ip, "IPv4 total length against frame length");
    assert.equal(f[ip + 9], 6, "IPv4 protocol");
    assert.ok(ipv4ChecksumOk(f, ip), "IPv4 header checksum");
    l4 = ip + ihl;
    l4Len = f.length - l4;
    src = formatIp4(f.subarray(ip + 12, ip + 16));
    dst = formatIp4(f.subarray(ip + 16, ip + 20));
  } else {
    assert.equal(f[ip]! >> 4, 6, "IP version");
    assert.equal(dv.getUint16(ip + 4), f.length - ip - 40, "IPv6 payload length against frame");
    assert.equal(f[ip + 6], 6, "IPv6 next header");
    l4 = ip + 40;
    l4Len = f.length - l4;
    src = formatIp6(f.subarray(ip + 8, ip + 24));
    dst = formatIp6(f.subarray(ip + 24, ip + 40));
  }
  assert.ok(l4Len >= 20, `TCP segment of ${l4Len} bytes`);
  const hlen = (f[l4 + 12]! >> 4) * 4;
  assert.ok(hlen >= 20 && hlen <= l4Len, `TCP header length ${hlen} of ${l4Len}`);
  if (hdrLen === 12) {
    const h = new DataView(frame.buffer, frame.byteOffset, 12);
    assert.equal(h.getUint8(0), 1, "virtio-net NEEDS_CSUM");
    assert.equal(h.getUint16(6, true), l4, "virtio-net csum_start");
    assert.equal(h.getUint16(8, true), 16, "virtio-net csum_offset");
    /* complete the checksum as the guest's kernel would, then verify it */
    const done = csumFinish(csumPartial(f, l4, l4Len, 0));
    dv.setUint16(l4 + 16, done);
  }
  const ok = v6 ? tcpChecksumOk6(f, ip, l4, l4Len) : tcpChecksumOk4(f, ip, l4, l4Len);
  assert.ok(ok, "TCP checksum");
  const opts = new TcpOpts();
  assert.ok(tcpOptsParse(dv, l4, opts), "TCP options well-formed");
  return {
    v6,
    src,
    dst,
    sport: dv.getUint16(l4),
    dport: dv.getUint16(l4 + 2),
    seq: dv.getUint32(l4 + 4),
    ack: dv.getUint32(l4 + 8),
    flags: f[l4 + 13]!,
    win: dv.getUint16(l4 + 14),
    hlen,
    opts,
    payload: f.slice(l4 + hlen),
  };
}

/** A check on a parsed segment: throws (an AssertionError) when it fails. */
export type TcpChecker = (s: TcpSeg) => void;

/**
 * Parses a frame and runs checkers on it; all of them run, and one error
 * lists every failure with the segment.
 * @param frame the frame (tap header included), or null when none came
 * @param checks the checkers
 * @returns the parsed segment
 * @throws AssertionError when the frame is missing, malformed, or a check fails
 */
export function expectTcp(frame: Uint8Array | null, ...checks: TcpChecker[]): TcpSeg {
  assert.ok(frame !== null, "expected a TCP frame, got none");
  const s = parseTcp(frame);
  const failed: string[] = [];
  for (const check of checks) {
    try {
      check(s);
    } catch (e) {
      failed.push(e instanceof Error ? e.message : String(e));
    }
  }
  if (failed.length > 0) assert.fail(`${describeSeg(s)}:\n  ${failed.join("\n  ")}`);
  return s;
}

/**
 * Checks the flags, exactly.
 * @param f expected flags
 * @returns the checker
 */
export function flags(f: number): TcpChecker {
  return (s) => assert.equal(flagNames(s.flags), flagNames(f), "flags");
}

/**
 * Checks the flags, ignoring PSH (which orzo sets on the last segment of a read).
 * @param f expected flags, without PSH
 * @returns the checker
 */
export function flagsNoPsh(f: number): TcpChecker {
  return (s) => assert.equal(flagNames(s.flags & ~PSH), flagNames(f), "flags (PSH ignored)");
}

/**
 * Checks the sequence number.
 * @param n expected value (taken mod 2^32)
 * @returns the checker
 */
export function seqNum(n: number): TcpChecker {
  return (s) => assert.equal(s.seq, n >>> 0, "sequence number");
}

/**
 * Checks the acknowledgment number.
 * @param n expected value (taken mod 2^32)
 * @returns the checker
 */
export function ackNum(n: number): TcpChecker {
  return (s) => assert.equal(s.ack, n >>> 0, "acknowledgment number");
}

/**
 * Checks the window field (unscaled, as sent).
 * @param w expected value
 * @returns the checker
 */
export function window(w: number): TcpChecker {
  return (s) => assert.equal(s.win, w, "window");
}

/**
 * Checks that the window field is not zero.
 * @returns the checker
 */
export function windowOpen(): TcpChecker {
  return (s) => assert.ok(s.win > 0, "window is zero");
}

/**
 * Checks the source address and port.
 * @param addr address as text
 * @param port port
 * @returns the checker
 */
export function srcAddr(addr: string, port: number): TcpChecker {
  return (s) => assert.equal(`${s.src} ${s.sport}`, `${addr} ${port}`, "source address and port");
}

/**
 * Checks the destination address and port.
 * @param addr address as text
 * @param port port
 * @returns the checker
 */
export function dstAddr(addr: string, port: number): TcpChecker {
  return (s) =>
    assert.equal(`${s.dst} ${s.dport}`, `${addr} ${port}`, "destination address and port");
}

/**
 * Checks the MSS option.
 * @param mss expected value, or -1 for none
 * @returns the checker
 */
export function optMss(mss: number): TcpChecker {
  return (s) => assert.equal(s.opts.mss, mss, "MSS option");
}

/**
 * Checks the window scale option.
 * @param shift expected shift, or -1 for none
 * @returns the checker
 */
export function optWscale(shift: number): TcpChecker {
  return (s) => assert.equal(s.opts.wscale, shift, "window scale option");
}

/**
 * Checks the payload length.
 * @param n expected length
 * @returns the checker
 */
export function payloadLen(n: number): TcpChecker {
  return (s) => assert.equal(s.payload.length, n, "payload length");
}

/**
 * Checks that the payload is not empty and at most `n` bytes.
 * @param n largest length allowed
 * @returns the checker
 */
export function payloadAtMost(n: number): TcpChecker {
  return (s) =>
    assert.ok(
      s.payload.length > 0 && s.payload.length <= n,
      `payload of ${s.payload.length} bytes, expected 1 to ${n}`,
    );
}

/**
 * Checks the payload bytes.
 * @param b expected payload
 * @returns the checker
 */
export function payload(b: Uint8Array): TcpChecker {
  return (s) => assert.deepEqual(s.payload, b, "payload");
}
