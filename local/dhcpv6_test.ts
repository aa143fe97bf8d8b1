import assert from "node:assert/strict";
import { type Ctx, ctxNew } from "../ctx.ts";
import {
  DHCPV6_ADVERTISE,
  DHCPV6_MSG_MAX,
  DHCPV6_REPLY,
  DHCPV6_REPLY_FRAME_MAX,
  dhcpv6Handle,
  dhcpv6Match,
  STATUS_NOTONLINK,
  STATUS_SUCCESS,
} from "./dhcpv6.ts";
import { formatIp6, parseIp6 } from "../conf/addr.ts";
import { csumL4v6 } from "../wire/checksum.ts";
import { hex, prng } from "../wire/_hex.ts";

/* Frames captured from real clients: ISC dhclient on orzo's tap, systemd-networkd on a veth. */
/* ISC dhclient 4.4.3 -6: SOLICIT (client ID, ORO, elapsed time, IA_NA) */
const DHCLIENT6_SOLICIT = hex(`
  33 33 00 01 00 02 7e 57 e3 79 5a f6 86 dd 60 04
  86 c6 00 40 11 01 fe 80 00 00 00 00 00 00 7c 57
  e3 ff fe 79 5a f6 ff 02 00 00 00 00 00 00 00 00
  00 00 00 01 00 02 02 22 02 23 00 40 b7 9f 01 69
  ee 61 00 01 00 0e 00 01 00 01 32 9f 3f 72 7e 57
  e3 79 5a f6 00 06 00 08 00 17 00 18 00 27 00 1f
  00 08 00 02 00 00 00 03 00 0c e3 79 5a f6 00 00
  0e 10 00 00 15 18
`);

/* ISC dhclient -6: REQUEST to our server ID for 2001:db8:1::2 */
const DHCLIENT6_REQUEST = hex(`
  33 33 00 01 00 02 7e 57 e3 79 5a f6 86 dd 60 04
  86 c6 00 6a 11 01 fe 80 00 00 00 00 00 00 7c 57
  e3 ff fe 79 5a f6 ff 02 00 00 00 00 00 00 00 00
  00 00 00 01 00 02 02 22 02 23 00 6a b7 c9 03 93
  8b 6b 00 01 00 0e 00 01 00 01 32 9f 3f 72 7e 57
  e3 79 5a f6 00 02 00 0a 00 03 00 01 9a 55 9a 55
  9a 55 00 06 00 08 00 17 00 18 00 27 00 1f 00 08
  00 02 00 00 00 03 00 28 e3 79 5a f6 00 00 0e 10
  00 00 15 18 00 05 00 18 20 01 0d b8 00 01 00 00
  00 00 00 00 00 00 00 02 00 00 1c 20 00 00 1d 4c
`);

/* ISC dhclient -6 with a lease file: CONFIRM of 2001:db8:1::2 */
const DHCLIENT6_CONFIRM = hex(`
  33 33 00 01 00 02 aa ed 57 57 0e 6e 86 dd 60 04
  8b a7 00 5c 11 01 fe 80 00 00 00 00 00 00 a8 ed
  57 ff fe 57 0e 6e ff 02 00 00 00 00 00 00 00 00
  00 00 00 01 00 02 02 22 02 23 00 5c 0b a7 04 9a
  6f 48 00 01 00 0e 00 01 00 01 32 9f 3f 72 7e 57
  e3 79 5a f6 00 06 00 08 00 17 00 18 00 27 00 1f
  00 08 00 02 00 00 00 03 00 28 e3 79 5a f6 00 00
  00 00 00 00 00 00 00 05 00 18 20 01 0d b8 00 01
  00 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00
  00 00
`);

/* systemd-networkd 252: SOLICIT with rapid commit, IA_NA, IA_PD, FQDN */
const NETWORKD_SOLICIT = hex(`
  33 33 00 01 00 02 02 00 00 00 00 0b 86 dd 60 06
  67 0c 00 5c 11 01 fe 80 00 00 00 00 00 00 00 00
  00 ff fe 00 00 0b ff 02 00 00 00 00 00 00 00 00
  00 00 00 01 00 02 02 22 02 23 00 5c fc fe 01 ec
  eb 4a 00 0e 00 00 00 03 00 0c 1c 9c 1b 42 00 00
  00 00 00 00 00 00 00 19 00 0c 1c 9c 1b 42 00 00
  00 00 00 00 00 00 00 27 00 04 01 02 76 6d 00 06
  00 08 00 17 00 1f 00 38 00 52 00 01 00 0e 00 02
  00 00 ab 11 00 33 bd eb f9 5e 19 2c 00 08 00 02
  00 00
`);

const MSG = 14 + 40 + 8; /* the message in a frame without extension headers */

function ctx(): Ctx {
  const c = ctxNew();
  c.ip6.enabled = true;
  c.ip6.addr.set(parseIp6("2001:db8:1::2")!);
  c.ip6.ourLinkLocal.set(parseIp6("fe80::1")!);
  c.dns6 = [parseIp6("2001:db8::53")!];
  c.dnsSearch = ["a.example", "b.a.example"];
  c.fqdn = "guest.a.example";
  return c;
}

const mac = (b: Uint8Array, o: number) =>
  Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, "0")).join(":");
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const ascii = (s: string) => Array.from(s, (ch) => ch.charCodeAt(0));
const name = (...labels: string[]) => [...labels.flatMap((l) => [l.length, ...ascii(l)]), 0];

/** A decoded reply: headers checked, options framed. */
interface Reply {
  ethDst: string;
  ethSrc: string;
  src: string;
  dst: string;
  ports: [number, number];
  type: number;
  xid: number;
  opts: Map<number, number[]>;
  order: number[];
}

/** Options in [from, to) as code -> data, in order; each must be within bounds, once. */
function options(b: Uint8Array, from: number, to: number, order: number[] = []) {
  const opts = new Map<number, number[]>();
  for (let p = from; p < to;) {
    assert.ok(p + 4 <= to, "option header within bounds");
    const code = u16(b, p);
    const l = u16(b, p + 2);
    assert.ok(p + 4 + l <= to, `option ${code} within bounds`);
    assert.ok(!opts.has(code), `option ${code} once`);
    opts.set(code, Array.from(b.subarray(p + 4, p + 4 + l)));
    order.push(code);
    p += 4 + l;
  }
  return opts;
}

function parse(b: Uint8Array, n: number): Reply {
  assert.equal(u16(b, 12), 0x86dd);
  assert.equal(u16(b, 18), n - 54, "IPv6 payload length");
  assert.equal(b[20], 17);
  assert.equal(u16(b, 58), n - 54, "UDP length");
  assert.equal(csumL4v6(b, 14, 54, n - 54, 17), 0, "UDP checksum");
  const order: number[] = [];
  return {
    ethDst: mac(b, 0),
    ethSrc: mac(b, 6),
    src: formatIp6(b.subarray(22, 38)),
    dst: formatIp6(b.subarray(38, 54)),
    ports: [u16(b, 54), u16(b, 56)],
    type: b[MSG]!,
    xid: u32(b, MSG) & 0xffffff,
    opts: options(b, MSG + 4, n, order),
    order,
  };
}

function answer(c: Ctx, frame: Uint8Array): Reply | null {
  const buf = new Uint8Array(frame.length + 9).fill(0xa5);
  buf.set(frame, 5);
  const out = new Uint8Array(DHCPV6_REPLY_FRAME_MAX).fill(0x5a);
  const before = JSON.stringify(c.stats);
  const n = dhcpv6Handle(c, buf, 5, frame.length, out);
  if (n === 0) {
    assert.notEqual(JSON.stringify(c.stats), before, "a dropped message is counted");
    return null;
  }
  return parse(out, n);
}

function msgOf(frame: Uint8Array): Uint8Array {
  return frame.slice(MSG, 54 + u16(frame, 18));
}

/** A frame with `template`'s headers carrying `msg` (lengths fixed, checksum left). */
function withMsg(template: Uint8Array, msg: Uint8Array): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(MSG + msg.length);
  f.set(template.subarray(0, MSG));
  f.set(msg, MSG);
  const dv = new DataView(f.buffer);
  dv.setUint16(18, 8 + msg.length);
  dv.setUint16(58, 8 + msg.length);
  return f;
}

/** `frame` with message type `type` and options edited (code -> data, null removes). */
function edit(frame: Uint8Array, type: number | null, set: Record<number, number[] | null>) {
  const msg = msgOf(frame);
  const kept = [...options(msg, 4, msg.length)].filter(([code]) => !(code in set));
  for (const [k, v] of Object.entries(set)) if (v !== null) kept.push([Number(k), v]);
  const bytes = [type ?? msg[0]!, msg[1]!, msg[2]!, msg[3]!];
  for (const [code, v] of kept) {
    bytes.push(code >> 8, code & 0xff, v.length >> 8, v.length & 0xff, ...v);
  }
  return withMsg(frame, new Uint8Array(bytes));
}

const OUR_DUID = [0, 3, 0, 1, 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
const ADDR = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const INF = [0xff, 0xff, 0xff, 0xff];
const DNS = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
const DOMAINS = [...name("a", "example"), ...name("b", "a", "example")];

/** Checks a reply carrying the lease: addresses, identifiers, IA_NA, DNS, domains, FQDN. */
function checkLease(r: Reply, type: number, request: Uint8Array, fqdnFlags: number) {
  const req = msgOf(request);
  const ropts = options(req, 4, req.length);
  assert.equal(r.type, type);
  assert.equal(r.xid, u32(req, 0) & 0xffffff);
  assert.equal(r.ethDst, mac(request, 6), "to the client's MAC");
  assert.equal(r.ethSrc, "9a:55:9a:55:9a:55");
  assert.equal(r.src, "fe80::1");
  assert.equal(r.dst, formatIp6(request.subarray(22, 38)), "to the client's link-local address");
  assert.deepEqual(r.ports, [547, 546]);
  assert.deepEqual(r.opts.get(2), OUR_DUID, "server DUID-LL from our MAC");
  assert.deepEqual(r.opts.get(1), ropts.get(1), "the client's identifier");
  const ia = r.opts.get(3)!;
  assert.deepEqual(ia.slice(0, 4), ropts.get(3)!.slice(0, 4), "the client's IAID");
  assert.deepEqual(ia.slice(4, 12), [...INF, ...INF], "T1, T2 infinite");
  const inner = options(new Uint8Array(ia), 12, ia.length);
  assert.deepEqual(inner.get(5), [...ADDR, ...INF, ...INF]);
  assert.equal(inner.size, 1);
  assert.deepEqual(r.opts.get(23), DNS);
  assert.deepEqual(r.opts.get(24), DOMAINS, "uncompressed");
  assert.deepEqual(r.opts.get(39), [fqdnFlags, ...name("guest", "a", "example")]);
  assert.ok(!r.opts.has(13), "no status: success");
}

Deno.test("dhcpv6Handle() advertises the guest's address to dhclient's SOLICIT", () => {
  const c = ctx();
  const f = DHCLIENT6_SOLICIT;
  assert.ok(dhcpv6Match(c, new DataView(f.buffer), 14, f.length - 14));
  const r = answer(c, f)!;
  checkLease(r, DHCPV6_ADVERTISE, f, 0);
  assert.deepEqual(r.order, [2, 1, 3, 23, 24, 39]);
  assert.equal(c.stats.dhcpv6Replies, 1);
  assert.equal(formatIp6(c.ip6.addrLinkLocalSeen), formatIp6(f.subarray(22, 38)));
});

Deno.test("dhcpv6Handle() replies to dhclient's REQUEST for our server", () => {
  const c = ctx();
  checkLease(answer(c, DHCLIENT6_REQUEST)!, DHCPV6_REPLY, DHCLIENT6_REQUEST, 0);
  /* RENEW and REBIND (with or without our identifier) get the same */
  checkLease(answer(c, edit(DHCLIENT6_REQUEST, 5, {}))!, DHCPV6_REPLY, DHCLIENT6_REQUEST, 0);
  checkLease(answer(c, edit(DHCLIENT6_REQUEST, 6, {}))!, DHCPV6_REPLY, DHCLIENT6_REQUEST, 0);
  const rebind = edit(DHCLIENT6_REQUEST, 6, { 2: null });
  checkLease(answer(c, rebind)!, DHCPV6_REPLY, DHCLIENT6_REQUEST, 0);
  assert.equal(c.stats.dhcpv6Replies, 4);
});

Deno.test("dhcpv6Handle() commits at once to systemd-networkd's rapid-commit SOLICIT", () => {
  const c = ctx();
  const f = NETWORKD_SOLICIT;
  const req = options(msgOf(f), 4, msgOf(f).length);
  assert.ok(req.has(14) && req.has(25) && req.has(39), "the capture has rapid commit, IA_PD, FQDN");
  const r = answer(c, f)!;
  /* networkd sets S (0x01) in its FQDN option: we answer O, as passt */
  checkLease(r, DHCPV6_REPLY, f, (req.get(39)![0]! & 1) ? 0x02 : 0);
  assert.deepEqual(r.opts.get(14), []);
  assert.ok(!r.opts.has(25), "no prefix delegation");
  assert.equal(r.ethDst, "02:00:00:00:00:0b");
});

Deno.test("dhcpv6Handle() confirms dhclient's address, and says NotOnLink for another", () => {
  const c = ctx();
  const ok = answer(c, DHCLIENT6_CONFIRM)!;
  assert.equal(ok.type, DHCPV6_REPLY);
  assert.deepEqual(ok.opts.get(13), [0, STATUS_SUCCESS]);
  assert.deepEqual(ok.order, [2, 1, 13]);
  c.ip6.addr.set(parseIp6("2001:db8:1::99")!);
  const no = answer(c, DHCLIENT6_CONFIRM)!;
  assert.deepEqual(no.opts.get(13), [0, STATUS_NOTONLINK]);
});

Deno.test("dhcpv6Handle() answers a REQUEST for an address not the guest's with NotOnLink in the IA", () => {
  const c = ctx();
  c.ip6.addr.set(parseIp6("2001:db8:1::99")!);
  const r = answer(c, DHCLIENT6_REQUEST)!;
  const ia = r.opts.get(3)!;
  assert.deepEqual(options(new Uint8Array(ia), 12, ia.length).get(13), [0, STATUS_NOTONLINK]);
});

Deno.test("dhcpv6Handle() ignores messages for another server, and everything with --no-dhcpv6", () => {
  const c = ctx();
  const other = edit(DHCLIENT6_REQUEST, null, { 2: [0, 3, 0, 1, 2, 0, 0, 0, 0, 1] });
  assert.equal(answer(c, other), null);
  assert.equal(answer(c, edit(other, 5, {})), null);
  assert.equal(answer(c, edit(other, 8, {})), null);
  assert.equal(answer(c, edit(DHCLIENT6_REQUEST, DHCPV6_ADVERTISE, {})), null);
  assert.equal(c.stats.unhandled, 4);
  c.noDhcpv6 = true;
  assert.equal(answer(c, DHCLIENT6_SOLICIT), null);
  assert.equal(c.stats.unhandled, 5);
  assert.equal(c.stats.dhcpMalformed, 0);
});

Deno.test("dhcpv6Handle() answers INFORMATION-REQUEST with the configuration only", () => {
  const c = ctx();
  const r = answer(c, edit(DHCLIENT6_SOLICIT, 11, { 3: null }))!;
  assert.equal(r.type, DHCPV6_REPLY);
  assert.deepEqual(r.order, [2, 1, 23, 24, 39]);
  assert.deepEqual(r.opts.get(23), DNS);
  /* without a client identifier too */
  assert.deepEqual(answer(c, edit(DHCLIENT6_SOLICIT, 11, { 3: null, 1: null }))!.order, [
    2,
    23,
    24,
    39,
  ]);
});

Deno.test("dhcpv6Handle() acknowledges RELEASE and DECLINE with status Success", () => {
  const c = ctx();
  for (const type of [8, 9]) {
    const r = answer(c, edit(DHCLIENT6_REQUEST, type, {}))!;
    assert.equal(r.type, DHCPV6_REPLY);
    assert.deepEqual(r.order, [2, 1, 13]);
    assert.deepEqual(r.opts.get(13), [0, STATUS_SUCCESS]);
  }
});

Deno.test("dhcpv6Handle() without an address to give says NoAddrsAvail", () => {
  const c = ctx();
  c.ip6.addr.fill(0);
  const r = answer(c, DHCLIENT6_SOLICIT)!;
  assert.ok(!r.opts.has(3));
  assert.deepEqual(r.opts.get(13), [0, 2]);
});

Deno.test("dhcpv6Match() takes UDP to ff02::1:2 port 547 only", () => {
  const c = ctx();
  const f = DHCLIENT6_SOLICIT.slice();
  const dv = new DataView(f.buffer);
  const m = () => dhcpv6Match(c, dv, 14, f.length - 14);
  assert.ok(m());
  dv.setUint16(56, 548);
  assert.ok(!m());
  dv.setUint16(56, 547);
  f[53] = 1; /* ff02::1:1 */
  assert.ok(!m());
  f[53] = 2;
  f[20] = 6;
  assert.ok(!m());
  f[20] = 17;
  assert.ok(!dhcpv6Match(c, dv, 14, 50), "truncated: not ours to judge");
  c.ip6.enabled = false;
  assert.ok(!m());
});

Deno.test("dhcpv6Handle() drops and counts malformed messages", () => {
  const msg = msgOf(DHCLIENT6_SOLICIT);
  const cases: [string, Uint8Array][] = [];
  const past = msg.slice();
  past[msg.length - 16 + 3] = 13; /* the IA_NA (last) says 13 bytes, 12 there */
  cases.push(["option past the end", withMsg(DHCLIENT6_SOLICIT, past)]);
  cases.push(["option header cut", withMsg(DHCLIENT6_SOLICIT, msg.slice(0, msg.length - 14))]);
  cases.push(["no message type", withMsg(DHCLIENT6_SOLICIT, msg.slice(0, 3))]);
  const big = new Uint8Array(DHCPV6_MSG_MAX + 1);
  big.set(msg);
  cases.push(["oversized", withMsg(DHCLIENT6_SOLICIT, big)]);
  cases.push(["IA_NA of 8 bytes", edit(DHCLIENT6_SOLICIT, null, { 3: [0, 0, 0, 1, 0, 0, 0, 0] })]);
  cases.push([
    "IAADDR of 16 bytes",
    edit(DHCLIENT6_SOLICIT, null, { 3: [...new Array(12).fill(0), 0, 5, 0, 16, ...ADDR] }),
  ]);
  cases.push([
    "IA sub-option past the IA",
    edit(DHCLIENT6_SOLICIT, null, { 3: [...new Array(12).fill(0), 0, 5, 0, 24, ...ADDR] }),
  ]);
  cases.push([
    "client ID of 131 bytes",
    edit(DHCLIENT6_SOLICIT, null, { 1: new Array(131).fill(1) }),
  ]);
  cases.push(["SOLICIT without client ID", edit(DHCLIENT6_SOLICIT, null, { 1: null })]);
  cases.push(["SOLICIT with a server ID", edit(DHCLIENT6_SOLICIT, null, { 2: OUR_DUID })]);
  cases.push(["CONFIRM with a server ID", edit(DHCLIENT6_CONFIRM, null, { 2: OUR_DUID })]);
  cases.push(["rapid commit of 1 byte", edit(DHCLIENT6_SOLICIT, null, { 14: [1] })]);
  cases.push(["INFORMATION-REQUEST with an IA", edit(DHCLIENT6_SOLICIT, 11, {})]);
  const udpLong = DHCLIENT6_SOLICIT.slice();
  new DataView(udpLong.buffer).setUint16(58, 200);
  cases.push(["UDP length past the packet", udpLong]);
  const fromAny = DHCLIENT6_SOLICIT.slice();
  fromAny.fill(0, 22, 38);
  cases.push(["from ::", fromAny]);
  for (const [what, f] of cases) {
    const c = ctx();
    assert.equal(answer(c, f), null, what);
    assert.equal(c.stats.dhcpMalformed, 1, what);
    assert.equal(c.stats.malformed, 1, what);
  }
});

Deno.test("dhcpv6Handle() survives every truncation and random corruption of real messages", () => {
  const c = ctx();
  const out = new Uint8Array(DHCPV6_REPLY_FRAME_MAX);
  for (const f of [DHCLIENT6_SOLICIT, DHCLIENT6_REQUEST, NETWORKD_SOLICIT]) {
    for (let n = 0; n < f.length; n++) assert.equal(dhcpv6Handle(c, f, 0, n, out), 0);
    const msg = msgOf(f);
    for (let n = 0; n <= msg.length; n++) {
      const t = withMsg(f, msg.slice(0, n));
      const r = dhcpv6Handle(c, t, 0, t.length, out);
      if (r > 0) parse(out, r);
    }
  }
  const rnd = prng(547);
  for (let i = 0; i < 3000; i++) {
    const f = (i & 1 ? DHCLIENT6_REQUEST : NETWORKD_SOLICIT).slice();
    for (let k = 1 + (rnd() % 6); k > 0; k--) f[MSG + (rnd() % (f.length - MSG))] = rnd() & 0xff;
    const n = dhcpv6Handle(c, f, 0, f.length, out);
    if (n > 0) parse(out, n);
  }
  assert.ok(c.stats.dhcpMalformed > 0 && c.stats.dhcpv6Replies > 0);
});
