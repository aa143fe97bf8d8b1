import assert from "node:assert/strict";
import { type Ctx, ctxNew } from "../ctx.ts";
import {
  DHCP_MSG_MAX,
  DHCP_REPLY_FRAME_MAX,
  DHCPACK,
  DHCPDISCOVER,
  dhcpHandle,
  DHCPINFORM,
  dhcpMatch,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
} from "./dhcp.ts";
import { parseIp4 } from "../conf/addr.ts";
import { csumL4v4, csumPartialTs } from "../wire/checksum.ts";
import { hex, prng } from "../wire/_hex.ts";

/* Frames captured from real clients on orzo's tap (guest MAC 7e:57:e3:79:5a:f6), and
 * from systemd-networkd on a veth (02:00:00:00:00:0b). */
/* busybox 1.35 udhcpc -n -q: DISCOVER (options 53, 57, 55, 60, 61) */
const UDHCPC_DISCOVER = hex(`
  ff ff ff ff ff ff 7e 57 e3 79 5a f6 08 00 45 00
  01 48 00 00 00 00 40 11 79 a6 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 34 d7 c1 01 01 06 00 6d 2e
  6f 62 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 7e 57 e3 79 5a f6 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 01 39 02 02
  40 37 07 01 03 06 0c 0f 1c 2a 3c 0c 75 64 68 63
  70 20 31 2e 33 35 2e 30 3d 07 01 7e 57 e3 79 5a
  f6 ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00
`);

/* busybox udhcpc: REQUEST selecting 198.51.100.2 from 198.51.100.1 (options 53, 50, 54, 57, 55, 60, 61) */
const UDHCPC_REQUEST = hex(`
  ff ff ff ff ff ff 7e 57 e3 79 5a f6 08 00 45 00
  01 48 00 00 00 00 40 11 79 a6 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 34 62 05 01 01 06 00 6d 2e
  6f 62 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 7e 57 e3 79 5a f6 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 03 32 04 c6
  33 64 02 36 04 c6 33 64 01 39 02 02 40 37 07 01
  03 06 0c 0f 1c 2a 3c 0c 75 64 68 63 70 20 31 2e
  33 35 2e 30 3d 07 01 7e 57 e3 79 5a f6 ff 00 00
  00 00 00 00 00 00
`);

/* ISC dhclient 4.4.3 -4: DISCOVER (options 53, 12, 55) */
const DHCLIENT_DISCOVER = hex(`
  ff ff ff ff ff ff 7e 57 e3 79 5a f6 08 00 45 10
  01 48 00 00 00 00 80 11 39 96 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 34 3f ea 01 01 06 00 58 85
  5e 2c 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 7e 57 e3 79 5a f6 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 01 0c 02 76
  6d 37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a
  ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00
`);

/* ISC dhclient -4: REQUEST selecting (options 53, 54, 50, 12, 55) */
const DHCLIENT_REQUEST = hex(`
  ff ff ff ff ff ff 7e 57 e3 79 5a f6 08 00 45 10
  01 48 00 00 00 00 80 11 39 96 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 34 ca 2d 01 01 06 00 58 85
  5e 2c 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 7e 57 e3 79 5a f6 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 03 36 04 c6
  33 64 01 32 04 c6 33 64 02 0c 02 76 6d 37 0d 01
  1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a ff 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00
`);

/* ISC dhclient -4 with a lease file: INIT-REBOOT REQUEST (option 50, no 54) */
const DHCLIENT_REBOOT = hex(`
  ff ff ff ff ff ff aa ed 57 57 0e 6e 08 00 45 10
  01 48 00 00 00 00 80 11 39 96 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 34 df eb 01 01 06 00 85 04
  01 64 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 aa ed 57 57 0e 6e 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 03 32 04 c6
  33 64 02 0c 02 76 6d 37 0d 01 1c 02 03 0f 06 77
  0c 2c 2f 1a 79 2a ff 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00
`);

/* systemd-networkd 252: DISCOVER (options 53, 61, 55, 57, 12) */
const NETWORKD_DISCOVER = hex(`
  ff ff ff ff ff ff 02 00 00 00 00 0b 08 00 45 c0
  01 38 00 00 00 00 40 11 78 f6 00 00 00 00 ff ff
  ff ff 00 44 00 43 01 24 c8 7d 01 01 06 00 a2 77
  b0 ec 00 01 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 02 00 00 00 00 0b 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 63 82 53 63 35 01 01 3d 13 ff
  1c 9c 1b 42 00 02 00 00 ab 11 00 33 bd eb f9 5e
  19 2c 37 09 01 03 06 0c 0f 21 2a 78 79 39 02 05
  c0 0c 02 76 6d ff
`);

const GUEST_MAC = "7e:57:e3:79:5a:f6";
const NETWORKD_MAC = "02:00:00:00:00:0b";
const MSG = 14 + 20 + 8; /* the DHCP message in a frame with a 20-byte IPv4 header */

function ctx(): Ctx {
  const c = ctxNew();
  c.ip4.enabled = true;
  c.ip4.addr.set(parseIp4("198.51.100.2")!);
  c.ip4.addrSeen.set(c.ip4.addr);
  c.ip4.prefixLen = 24;
  c.ip4.gateway.set(parseIp4("198.51.100.1")!);
  c.dns4 = [parseIp4("198.51.100.53")!, parseIp4("203.0.113.53")!];
  c.dnsSearch = ["a.example", "b.a.example"];
  c.hostname = "guest";
  c.fqdn = "guest.a.example";
  return c;
}

const mac = (b: Uint8Array, o: number) =>
  Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, "0")).join(":");
const ip4 = (b: Uint8Array, o: number) => Array.from(b.subarray(o, o + 4)).join(".");
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const ascii = (s: string) => Array.from(s, (ch) => ch.charCodeAt(0));

/** A reply frame, checked (lengths, checksums, magic, option framing) and decoded. */
interface Reply {
  ethDst: string;
  ethSrc: string;
  src: string;
  dst: string;
  ports: [number, number];
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: string;
  opts: Map<number, number[]>;
  order: number[];
  ipLen: number;
}

function parse(b: Uint8Array, n: number): Reply {
  assert.equal(u16(b, 12), 0x0800);
  const ipLen = u16(b, 16);
  assert.equal(ipLen, n - 14, "IP length matches the frame");
  assert.equal(b[14], 0x45);
  assert.equal(csumPartialTs(b, 14, 20, 0), 0xffff, "IPv4 header checksum");
  assert.equal(b[23], 17);
  assert.equal(u16(b, 38), ipLen - 20, "UDP length");
  assert.equal(csumL4v4(b, 14, 34, ipLen - 20, 17), 0, "UDP checksum");
  const m = MSG;
  assert.equal(u32(b, m + 236), 0x63825363, "magic cookie");
  assert.ok(ipLen - 28 >= 300, "BOOTP replies are at least 300 bytes");
  const opts = new Map<number, number[]>();
  const order: number[] = [];
  let p = m + 240;
  for (;;) {
    assert.ok(p < n, "options end with the end option");
    const code = b[p]!;
    if (code === 255) break;
    assert.notEqual(code, 0, "no pad before the end");
    const l = b[p + 1]!;
    assert.ok(p + 2 + l < n, `option ${code} within the message`);
    assert.ok(!opts.has(code), `option ${code} once`);
    opts.set(code, Array.from(b.subarray(p + 2, p + 2 + l)));
    order.push(code);
    p += 2 + l;
  }
  for (p++; p < n; p++) assert.equal(b[p], 0, "zero padding after the end option");
  return {
    ethDst: mac(b, 0),
    ethSrc: mac(b, 6),
    src: ip4(b, 26),
    dst: ip4(b, 30),
    ports: [u16(b, 34), u16(b, 36)],
    op: b[m]!,
    xid: u32(b, m + 4),
    flags: u16(b, m + 10),
    ciaddr: ip4(b, m + 12),
    yiaddr: ip4(b, m + 16),
    siaddr: ip4(b, m + 20),
    giaddr: ip4(b, m + 24),
    chaddr: mac(b, m + 28),
    opts,
    order,
    ipLen,
  };
}

/** Runs the server on a frame placed at a nonzero offset; returns the reply (or null). */
function answer(c: Ctx, frame: Uint8Array): Reply | null {
  const buf = new Uint8Array(frame.length + 7).fill(0xa5);
  buf.set(frame, 3);
  const out = new Uint8Array(DHCP_REPLY_FRAME_MAX).fill(0x5a);
  const before = JSON.stringify(c.stats);
  const n = dhcpHandle(c, buf, 3, frame.length, out);
  if (n === 0) {
    assert.notEqual(JSON.stringify(c.stats), before, "a dropped message is counted");
    return null;
  }
  return parse(out, n);
}

/** The DHCP message of a frame (a copy). */
function msgOf(frame: Uint8Array): Uint8Array {
  return frame.slice(MSG, 14 + u16(frame, 16));
}

/** A frame carrying `msg`, with the Ethernet/IP/UDP headers of `template` (lengths fixed). */
function withMsg(template: Uint8Array, msg: Uint8Array): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(MSG + msg.length);
  f.set(template.subarray(0, MSG));
  f.set(msg, MSG);
  const dv = new DataView(f.buffer);
  dv.setUint16(16, 28 + msg.length);
  dv.setUint16(38, 8 + msg.length);
  return f;
}

/** Options of a message as [code, bytes] in order (pads and end dropped). */
function optsOf(msg: Uint8Array): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (let p = 240; p < msg.length && msg[p] !== 255;) {
    if (msg[p] === 0) {
      p++;
      continue;
    }
    out.push([msg[p]!, Array.from(msg.subarray(p + 2, p + 2 + msg[p + 1]!))]);
    p += 2 + msg[p + 1]!;
  }
  return out;
}

/** `frame` with its options replaced: `set` (code -> bytes, null to remove), others kept. */
function editOpts(frame: Uint8Array, set: Record<number, number[] | null>): Uint8Array {
  const msg = msgOf(frame);
  const opts = optsOf(msg).filter(([code]) => !(code in set));
  for (const [k, v] of Object.entries(set)) if (v !== null) opts.push([Number(k), v]);
  const bytes = [...msg.subarray(0, 240)];
  for (const [code, v] of opts) bytes.push(code, v.length, ...v);
  bytes.push(255);
  while (bytes.length < 300) bytes.push(0);
  return withMsg(frame, new Uint8Array(bytes));
}

const SEARCH = [1, 0x61, 7, ...ascii("example"), 0, 1, 0x62, 0xc0, 0x00];
const FQDN = [4, 0xff, 0xff, 5, ...ascii("guest"), 1, 0x61, 7, ...ascii("example"), 0];

/** Checks an OFFER or ACK to `client` for the guest's address, with everything we announce. */
function checkLease(r: Reply, type: number, request: Uint8Array, client: string) {
  assert.equal(r.op, 2);
  assert.equal(r.xid, u32(request, MSG + 4));
  assert.equal(r.chaddr, client);
  assert.equal(r.ethSrc, "9a:55:9a:55:9a:55");
  assert.equal(r.src, "198.51.100.1");
  assert.deepEqual(r.ports, [67, 68]);
  assert.equal(r.yiaddr, "198.51.100.2");
  assert.equal(r.siaddr, "0.0.0.0");
  assert.equal(r.giaddr, "0.0.0.0");
  assert.equal(r.order[0], 53, "the message type first");
  assert.deepEqual(r.opts.get(53), [type]);
  assert.deepEqual(r.opts.get(1), [255, 255, 255, 0]);
  assert.deepEqual(r.opts.get(3), [198, 51, 100, 1]);
  assert.deepEqual(r.opts.get(6), [198, 51, 100, 53, 203, 0, 113, 53]);
  assert.deepEqual(r.opts.get(12), ascii("guest"));
  assert.deepEqual(r.opts.get(26), [0xff, 0xf0]);
  assert.deepEqual(r.opts.get(51), [0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual(r.opts.get(54), [198, 51, 100, 1]);
  assert.deepEqual(r.opts.get(81), FQDN);
  assert.deepEqual(r.opts.get(119), SEARCH);
  assert.ok(!r.opts.has(121), "the gateway is on the guest's subnet");
  /* asked-for options in the client's order, right after the type */
  const prl = optsOf(msgOf(request)).find(([code]) => code === 55)![1].filter((o) => r.opts.has(o));
  assert.deepEqual(r.order.slice(1, 1 + prl.length), prl.filter((o) => o !== 53));
}

const CLIENTS: [string, Uint8Array, Uint8Array | null, string][] = [
  ["busybox udhcpc", UDHCPC_DISCOVER, UDHCPC_REQUEST, GUEST_MAC],
  ["ISC dhclient", DHCLIENT_DISCOVER, DHCLIENT_REQUEST, GUEST_MAC],
  ["systemd-networkd", NETWORKD_DISCOVER, null, NETWORKD_MAC],
];

for (const [name, discover, request, client] of CLIENTS) {
  Deno.test(`dhcpHandle() offers the guest's address to ${name}'s DISCOVER, unicast`, () => {
    const c = ctx();
    assert.ok(dhcpMatch(c, new DataView(discover.buffer), 14, discover.length - 14));
    const r = answer(c, discover)!;
    checkLease(r, DHCPOFFER, discover, client);
    assert.equal(r.ethDst, client);
    assert.equal(r.dst, "198.51.100.2");
    assert.equal(r.ciaddr, "0.0.0.0");
    assert.equal(r.flags, 0);
    assert.ok(r.ipLen <= 576);
    assert.equal(c.stats.dhcpReplies, 1);
  });
  if (request === null) continue;
  Deno.test(`dhcpHandle() acknowledges ${name}'s REQUEST`, () => {
    const c = ctx();
    assert.ok(dhcpMatch(c, new DataView(request.buffer), 14, request.length - 14));
    const r = answer(c, request)!;
    checkLease(r, DHCPACK, request, client);
    assert.equal(r.ethDst, client);
    assert.equal(r.dst, "198.51.100.2");
  });
}

Deno.test("dhcpHandle() acknowledges dhclient's INIT-REBOOT REQUEST, and NAKs another address", () => {
  const c = ctx();
  checkLease(answer(c, DHCLIENT_REBOOT)!, DHCPACK, DHCLIENT_REBOOT, mac(DHCLIENT_REBOOT, 6));
  const other = editOpts(DHCLIENT_REBOOT, { 50: [198, 51, 100, 7] });
  const r = answer(c, other)!;
  assert.deepEqual(r.opts.get(53), [DHCPNAK]);
  assert.deepEqual(r.opts.get(54), [198, 51, 100, 1]);
  assert.deepEqual(r.order, [53, 54], "a NAK says nothing else");
  assert.equal(r.yiaddr, "0.0.0.0");
  assert.equal(r.ciaddr, "0.0.0.0");
  assert.equal(r.dst, "255.255.255.255", "NAKs are broadcast");
  assert.equal(r.ethDst, "ff:ff:ff:ff:ff:ff");
  assert.equal(c.stats.dhcpReplies, 2);
});

Deno.test("dhcpHandle() answers a REQUEST with ciaddr (renewing) unicast to ciaddr; NAKs a foreign ciaddr", () => {
  const c = ctx();
  const msg = msgOf(editOpts(UDHCPC_REQUEST, { 50: null, 54: null }));
  msg.set([198, 51, 100, 2], 12);
  const r = answer(c, withMsg(UDHCPC_REQUEST, msg))!;
  checkLease(r, DHCPACK, UDHCPC_REQUEST, GUEST_MAC);
  assert.equal(r.ciaddr, "198.51.100.2");
  assert.equal(r.dst, "198.51.100.2");
  assert.equal(r.ethDst, GUEST_MAC);
  msg.set([10, 0, 0, 9], 12);
  assert.deepEqual(answer(c, withMsg(UDHCPC_REQUEST, msg))!.opts.get(53), [DHCPNAK]);
});

Deno.test("dhcpHandle() stays silent when the REQUEST selects another server", () => {
  const c = ctx();
  const f = editOpts(UDHCPC_REQUEST, { 54: [198, 51, 100, 99] });
  assert.equal(answer(c, f), null);
  assert.equal(c.stats.unhandled, 1);
  assert.equal(c.stats.dhcpReplies, 0);
});

Deno.test("dhcpHandle() broadcasts when the client sets the broadcast flag", () => {
  const c = ctx();
  const msg = msgOf(UDHCPC_DISCOVER);
  msg[10] = 0x80;
  const r = answer(c, withMsg(UDHCPC_DISCOVER, msg))!;
  checkLease(r, DHCPOFFER, UDHCPC_DISCOVER, GUEST_MAC);
  assert.equal(r.flags, 0x8000);
  assert.equal(r.dst, "255.255.255.255");
  assert.equal(r.ethDst, "ff:ff:ff:ff:ff:ff");
});

Deno.test("dhcpHandle() acknowledges a DISCOVER with rapid commit (RFC 4039)", () => {
  const c = ctx();
  const f = editOpts(NETWORKD_DISCOVER, { 80: [] });
  const r = answer(c, f)!;
  checkLease(r, DHCPACK, f, NETWORKD_MAC);
  assert.deepEqual(r.opts.get(80), []);
  assert.ok(!answer(c, NETWORKD_DISCOVER)!.opts.has(80));
});

Deno.test("dhcpHandle() answers INFORM with an ACK without address nor lease, to ciaddr", () => {
  const c = ctx();
  const msg = msgOf(editOpts(UDHCPC_REQUEST, { 53: [DHCPINFORM], 50: null, 54: null }));
  msg.set([198, 51, 100, 2], 12);
  const r = answer(c, withMsg(UDHCPC_REQUEST, msg))!;
  assert.deepEqual(r.opts.get(53), [DHCPACK]);
  assert.equal(r.yiaddr, "0.0.0.0");
  assert.equal(r.ciaddr, "198.51.100.2");
  assert.equal(r.dst, "198.51.100.2");
  assert.ok(!r.opts.has(51), "no lease time in an INFORM ACK");
  assert.deepEqual(r.opts.get(6), [198, 51, 100, 53, 203, 0, 113, 53]);
  assert.deepEqual(r.opts.get(119), SEARCH);
});

Deno.test("dhcpHandle() does not answer RELEASE or DECLINE, nor anything with --no-dhcp", () => {
  const c = ctx();
  assert.equal(answer(c, editOpts(UDHCPC_REQUEST, { 53: [DHCPRELEASE] })), null);
  assert.equal(answer(c, editOpts(UDHCPC_REQUEST, { 53: [4] })), null);
  assert.equal(answer(c, editOpts(UDHCPC_REQUEST, { 53: [DHCPOFFER] })), null);
  assert.equal(c.stats.unhandled, 3);
  c.noDhcp = true;
  assert.equal(answer(c, UDHCPC_DISCOVER), null);
  assert.equal(c.stats.unhandled, 4);
  assert.equal(c.stats.dhcpMalformed, 0);
  assert.equal(c.stats.dhcpReplies, 0);
});

Deno.test("dhcpHandle() leaves out what is not configured, and routes to an off-subnet gateway (121)", () => {
  const c = ctx();
  c.dns4 = [];
  c.dnsSearch = [];
  c.hostname = "";
  c.fqdn = "";
  c.mtu = 0;
  c.ip4.gateway.set(parseIp4("192.0.2.1")!);
  const r = answer(c, DHCLIENT_DISCOVER)!;
  assert.deepEqual([...r.opts.keys()].sort((a, b) => a - b), [1, 3, 51, 53, 54, 121]);
  assert.deepEqual(r.opts.get(121), [32, 192, 0, 2, 1, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
  assert.equal(r.src, "192.0.2.1");
});

Deno.test("dhcpHandle() keeps replies within the client's maximum message size", () => {
  const c = ctx();
  c.hostname = "h".repeat(200);
  c.dnsSearch = Array.from({ length: 6 }, (_, i) => `${"x".repeat(20)}${i}.example`);
  /* udhcpc says 576: the search list (not asked for, last) must give way */
  const small = answer(c, UDHCPC_DISCOVER)!;
  assert.ok(small.ipLen <= 576, `${small.ipLen}`);
  assert.ok(small.opts.has(54) && small.opts.has(51) && small.opts.has(1));
  assert.equal(small.opts.get(12)!.length, 200);
  assert.ok((small.opts.get(119)?.length ?? 0) < 23 + 8 + 5 * 24, "a shorter list");
  /* networkd allows more: all of it fits */
  const big = answer(c, NETWORKD_DISCOVER)!;
  const max = u16(new Uint8Array(optsOf(msgOf(NETWORKD_DISCOVER)).find(([k]) => k === 57)![1]), 0);
  assert.ok(big.ipLen <= max);
  assert.equal(big.opts.get(119)!.length, 23 + 8 + 5 * 24);
});

Deno.test("dhcpMatch() takes UDP to port 67 from 0.0.0.0 or the guest, to broadcast or us", () => {
  const c = ctx();
  const f = UDHCPC_DISCOVER.slice();
  const dv = new DataView(f.buffer);
  const m = () => dhcpMatch(c, dv, 14, f.length - 14);
  assert.ok(m());
  f.set([198, 51, 100, 1], 30); /* to us */
  assert.ok(m());
  f.set([198, 51, 100, 2], 26); /* from the guest */
  assert.ok(m());
  f.set([203, 0, 113, 10], 30); /* to somebody else's server: a UDP flow */
  assert.ok(!m());
  f.set([255, 255, 255, 255], 30);
  f.set([10, 0, 0, 1], 26); /* from an address that is not the guest's */
  assert.ok(!m());
  f.set([0, 0, 0, 0], 26);
  dv.setUint16(36, 53); /* not port 67 */
  assert.ok(!m());
  dv.setUint16(36, 67);
  f[23] = 6; /* not UDP */
  assert.ok(!m());
  f[23] = 17;
  assert.ok(!dhcpMatch(c, dv, 14, 30), "truncated: not ours to judge");
  c.ip4.enabled = false;
  assert.ok(!m());
});

Deno.test("dhcpHandle() drops and counts malformed messages", () => {
  const cases: [string, Uint8Array][] = [];
  const msg = msgOf(UDHCPC_DISCOVER);
  /* an option running past the end of the message */
  const past = msg.slice(0, 240 + 3 + 2);
  past[240 + 3] = 0x3d; /* option 61 ... */
  past[240 + 3 + 1] = 40; /* ... of 40 bytes, none of them there */
  cases.push(["option past the end", withMsg(UDHCPC_DISCOVER, past)]);
  cases.push(["option code without length", withMsg(UDHCPC_DISCOVER, msg.slice(0, 240 + 4))]);
  const big = new Uint8Array(DHCP_MSG_MAX + 1);
  big.set(msg);
  cases.push(["oversized", withMsg(UDHCPC_DISCOVER, big)]);
  cases.push(["truncated header", withMsg(UDHCPC_DISCOVER, msg.slice(0, 239))]);
  const magic = msg.slice();
  magic[236] = 0;
  cases.push(["bad magic cookie", withMsg(UDHCPC_DISCOVER, magic)]);
  const reply = msg.slice();
  reply[0] = 2;
  cases.push(["BOOTREPLY", withMsg(UDHCPC_DISCOVER, reply)]);
  const hlen = msg.slice();
  hlen[2] = 17;
  cases.push(["hardware address over 16 bytes", withMsg(UDHCPC_DISCOVER, hlen)]);
  cases.push(["type of 2 bytes", editOpts(UDHCPC_DISCOVER, { 53: [DHCPDISCOVER, 0] })]);
  cases.push(["requested address of 3 bytes", editOpts(UDHCPC_REQUEST, { 50: [1, 2, 3] })]);
  cases.push(["server identifier of 5 bytes", editOpts(UDHCPC_REQUEST, { 54: [1, 2, 3, 4, 5] })]);
  cases.push(["maximum size of 1 byte", editOpts(UDHCPC_REQUEST, { 57: [2] })]);
  const udpLong = UDHCPC_DISCOVER.slice();
  new DataView(udpLong.buffer).setUint16(38, 1000); /* UDP length beyond the IP packet */
  cases.push(["UDP length past the IP packet", udpLong]);
  const ipLong = UDHCPC_DISCOVER.slice();
  new DataView(ipLong.buffer).setUint16(16, 2000); /* IP length beyond the frame */
  cases.push(["IP length past the frame", ipLong]);
  for (const [what, f] of cases) {
    const c = ctx();
    assert.equal(answer(c, f), null, what);
    assert.equal(c.stats.dhcpMalformed, 1, what);
    assert.equal(c.stats.malformed, 1, what);
  }
});

Deno.test("dhcpHandle() survives every truncation and random corruption of real messages", () => {
  const c = ctx();
  const out = new Uint8Array(DHCP_REPLY_FRAME_MAX);
  for (const f of [UDHCPC_DISCOVER, DHCLIENT_REQUEST, NETWORKD_DISCOVER]) {
    /* the frame cut short: the IP length says more */
    for (let n = 0; n < f.length; n++) assert.equal(dhcpHandle(c, f, 0, n, out), 0);
    /* the message cut short, lengths consistent: an answer or a drop */
    const msg = msgOf(f);
    for (let n = 0; n <= msg.length; n++) {
      const t = withMsg(f, msg.slice(0, n));
      const r = dhcpHandle(c, t, 0, t.length, out);
      if (r > 0) parse(out, r);
      else assert.ok(n < 240 || c.stats.dhcpMalformed > 0);
    }
  }
  const rnd = prng(67);
  for (let i = 0; i < 3000; i++) {
    const f = (i & 1 ? UDHCPC_REQUEST : DHCLIENT_DISCOVER).slice();
    for (let k = 1 + (rnd() % 6); k > 0; k--) {
      f[MSG + 236 + (rnd() % (f.length - MSG - 236))] = rnd() & 0xff;
    }
    const n = dhcpHandle(c, f, 0, f.length, out);
    if (n > 0) parse(out, n);
  }
  assert.ok(c.stats.dhcpMalformed > 0 && c.stats.dhcpReplies > 0);
});
