/**
 * raw_frames.ts - complete Ethernet frames (IPv4 or IPv6; TCP SYN, UDP
 * datagram or ICMP echo request) with correct IP, TCP, UDP and ICMP
 * checksums, as hex text for tests/helpers/inject.ts: what a guest with a
 * raw socket can write to its interface, whatever its routing says.
 *
 * @module
 */

import { parseIp4, parseIp6 } from "../../conf/addr.ts";
import { csumFinish, csumIp4Header, csumL4v4, csumL4v6, csumPartial } from "../../wire/checksum.ts";

/** orzo's MAC address as the guest sees it, as hex. */
export const ORZO_MAC_HEX = "9a559a559a55";

/** A frame from the guest. */
export interface RawFrame {
  /** "tcp" (a SYN), "udp" (a datagram) or "icmp" (an echo request) */
  proto: "tcp" | "udp" | "icmp";
  /** IPv6 or IPv4 (the L3 family: an IPv6 frame may carry ::ffff:a.b.c.d) */
  v6: boolean;
  /** source address */
  src: string;
  /** destination address */
  dst: string;
  /** source port (ICMP: the echo identifier) */
  sport: number;
  /** destination port (ICMP: ignored) */
  dport: number;
  /** payload (UDP, ICMP) */
  payload?: string;
}

function addr(s: string, v6: boolean): Uint8Array {
  const a = v6 ? parseIp6(s) : parseIp4(s);
  if (a === null) throw new TypeError(`Cannot parse address "${s}"`);
  return a;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * Builds a frame as bytes after the Ethernet addresses (type onwards).
 * @param f the frame
 * @returns Ethernet type, IP header, L4 header and payload
 */
export function rawFrameBody(f: RawFrame): Uint8Array {
  const payload = new TextEncoder().encode(f.payload ?? "");
  const l4Len = f.proto === "tcp" ? 20 : 8 + payload.length;
  const ipLen = f.v6 ? 40 : 20;
  const b = new Uint8Array(2 + ipLen + l4Len);
  const dv = new DataView(b.buffer);
  const ip = 2;
  const l4 = ip + ipLen;
  const proto = f.proto === "tcp" ? 6 : f.proto === "udp" ? 17 : f.v6 ? 58 : 1;
  if (!f.v6) {
    dv.setUint16(0, 0x0800);
    b[ip] = 0x45;
    dv.setUint16(ip + 2, ipLen + l4Len);
    dv.setUint16(ip + 4, 0x1234);
    dv.setUint16(ip + 6, 0x4000); /* DF */
    b[ip + 8] = 64;
    b[ip + 9] = proto;
    b.set(addr(f.src, false), ip + 12);
    b.set(addr(f.dst, false), ip + 16);
    dv.setUint16(ip + 10, csumIp4Header(b, ip, 20));
  } else {
    dv.setUint16(0, 0x86dd);
    b[ip] = 0x60;
    dv.setUint16(ip + 4, l4Len);
    b[ip + 6] = proto;
    b[ip + 7] = 64;
    b.set(addr(f.src, true), ip + 8);
    b.set(addr(f.dst, true), ip + 24);
  }
  if (f.proto === "tcp") {
    dv.setUint16(l4, f.sport);
    dv.setUint16(l4 + 2, f.dport);
    dv.setUint32(l4 + 4, 1000);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = 0x02; /* SYN */
    dv.setUint16(l4 + 14, 64240);
  } else if (f.proto === "udp") {
    dv.setUint16(l4, f.sport);
    dv.setUint16(l4 + 2, f.dport);
    dv.setUint16(l4 + 4, l4Len);
    b.set(payload, l4 + 8);
  } else {
    b[l4] = f.v6 ? 128 : 8; /* echo request */
    dv.setUint16(l4 + 4, f.sport);
    dv.setUint16(l4 + 6, 1);
    b.set(payload, l4 + 8);
  }
  const csumAt = l4 + (f.proto === "tcp" ? 16 : f.proto === "udp" ? 6 : 2);
  let sum: number;
  if (f.proto === "icmp" && !f.v6) sum = csumFinish(csumPartial(b, l4, l4Len, 0));
  else if (f.v6) sum = csumL4v6(b, ip, l4, l4Len, proto);
  else sum = csumL4v4(b, ip, l4, l4Len, proto);
  if (f.proto === "udp" && sum === 0) sum = 0xffff;
  dv.setUint16(csumAt, sum);
  return b;
}

/**
 * A frame to orzo as hex text for inject.ts.
 * @param f the frame
 * @param srcMac the guest's MAC as 12 hex digits, or shell text that expands
 *   to them (such as "${M}": braces, since hex digits follow)
 * @returns the whole frame: orzo's MAC, srcMac, then rawFrameBody()
 */
export function rawFrameHex(f: RawFrame, srcMac: string): string {
  return ORZO_MAC_HEX + srcMac + hex(rawFrameBody(f));
}
