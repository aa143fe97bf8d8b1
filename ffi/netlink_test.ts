/**
 * netlink_test.ts - rtnetlink builders and parsers against hand-written bytes.
 *
 * Fixtures are annotated hex: `//` starts a comment, whitespace is ignored.
 * Multi-byte fields are little-endian (x86_64 host order), addresses are in
 * network order.
 */

import assert from "node:assert/strict";
import { ERRNO, SysError } from "./errno.ts";
import { AF_INET, AF_INET6 } from "./layout.ts";
import {
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_PERMANENT,
  IFF_UP,
  nlAddrCopyMsg,
  nlAddrToString,
  NlError,
  type NlMsg,
  nlParseAddr,
  nlParseAttrs,
  nlParseError,
  nlParseLink,
  nlParseRoute,
  NlReply,
  nlReqAddr,
  nlReqDumpAddrs,
  nlReqDumpRoutes,
  nlReqGetLinkByName,
  nlReqRoute,
  nlReqSetLink,
  nlRouteCopyMsg,
  nlSplit,
  nlStamp,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTPROT_KERNEL,
  RTPROT_STATIC,
} from "./netlink.ts";
import {
  nlDefaultGateway,
  nlLink,
  nlLinkByName,
  nlLinks,
  nlOrderUpstreamAddrs,
  nlPickUpstream,
} from "./netlink_io.ts";
import { nlClose, nlDrain, nlOpen, nlPortid } from "./netlink_sock.ts";
import { libc } from "./libc.ts";

/** Parses annotated hex. */
function hex(s: string): Uint8Array<ArrayBuffer> {
  const clean = s.replace(/\/\/[^\n]*/g, "").replace(/\s+/g, "");
  assert.equal(clean.length % 2, 0, "odd number of hex digits");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(toHex(actual), toHex(expected));
}

function stamped(msg: Uint8Array, seq = 1): Uint8Array {
  nlStamp(msg, seq, 0);
  return msg;
}

function one(d: Uint8Array): NlMsg {
  const ms = nlSplit(d);
  assert.equal(ms.length, 1);
  return ms[0]!;
}

function assertMalformed(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SysError, `expected SysError, got ${e}`);
    assert.equal(e.code, "EBADMSG");
    assert.match(e.message, /^Malformed netlink message: /);
    return true;
  });
}

const V6_2001_DB8_1__2 = "20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02";
const PORT = 0x1234;

/* ----------------------------------------------------------------- builders */

Deno.test("nlReqSetLink() builds RTM_NEWLINK with flags, MTU and MAC", () => {
  const msg = nlReqSetLink(5, {
    flags: IFF_UP,
    change: IFF_UP,
    mtu: 65520,
    mac: new Uint8Array([2, 0, 0, 0, 0, 1]),
  });
  assertBytes(
    stamped(msg),
    hex(`
      34 00 00 00   // nlmsg_len 52
      10 00         // RTM_NEWLINK
      05 00         // NLM_F_REQUEST | NLM_F_ACK
      01 00 00 00   // seq 1
      00 00 00 00   // pid 0
      00 00 00 00   // ifi_family AF_UNSPEC, pad, ifi_type 0
      05 00 00 00   // ifi_index 5
      01 00 00 00   // ifi_flags IFF_UP
      01 00 00 00   // ifi_change IFF_UP
      08 00 04 00  f0 ff 00 00                     // IFLA_MTU 65520
      0a 00 01 00  02 00 00 00 00 01  00 00        // IFLA_ADDRESS, 2 bytes padding
    `),
  );
});

Deno.test("nlReqAddr() builds RTM_NEWADDR for IPv6 with IFA_F_NODAD", () => {
  const addr = hex(V6_2001_DB8_1__2);
  assertBytes(
    stamped(nlReqAddr(AF_INET6, 3, addr, 64, IFA_F_NODAD)),
    hex(`
      40 00 00 00   // nlmsg_len 64
      14 00         // RTM_NEWADDR
      05 06         // REQUEST | ACK | EXCL (0x200) | CREATE (0x400)
      01 00 00 00  00 00 00 00   // seq 1, pid 0
      0a 40 02 00   // AF_INET6, prefixlen 64, IFA_F_NODAD, scope universe
      03 00 00 00   // ifa_index 3
      14 00 02 00  ${V6_2001_DB8_1__2}   // IFA_LOCAL
      14 00 01 00  ${V6_2001_DB8_1__2}   // IFA_ADDRESS
    `),
  );
});

Deno.test("nlReqAddr() builds RTM_NEWADDR for IPv4 and RTM_DELADDR", () => {
  const addr = new Uint8Array([198, 51, 100, 2]);
  assertBytes(
    stamped(nlReqAddr(AF_INET, 3, addr, 24)),
    hex(`
      28 00 00 00  14 00  05 06  01 00 00 00  00 00 00 00   // len 40, RTM_NEWADDR
      02 18 00 00  03 00 00 00    // AF_INET, /24, no flags, scope universe, index 3
      08 00 02 00  c6 33 64 02    // IFA_LOCAL 198.51.100.2
      08 00 01 00  c6 33 64 02    // IFA_ADDRESS 198.51.100.2
    `),
  );
  const del = stamped(nlReqAddr(AF_INET, 3, addr, 24, 0, true));
  assertBytes(del.subarray(0, 8), hex("28 00 00 00  15 00  05 00")); // RTM_DELADDR, REQUEST|ACK
});

Deno.test("nlReqAddr() puts flags above 8 bits in IFA_FLAGS", () => {
  const msg = nlReqAddr(AF_INET6, 1, hex(V6_2001_DB8_1__2), 64, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  assert.equal(msg.length, 72);
  assertBytes(msg.subarray(18, 19), hex("02")); // ifa_flags: low byte only
  assertBytes(msg.subarray(64), hex("08 00 08 00  02 02 00 00")); // IFA_FLAGS 0x202
});

Deno.test("nlReqRoute() builds an IPv4 default route via a gateway", () => {
  assertBytes(
    stamped(nlReqRoute(AF_INET, 3, new Uint8Array(4), 0, new Uint8Array([198, 51, 100, 1]))),
    hex(`
      2c 00 00 00  18 00  05 06  01 00 00 00  00 00 00 00  // len 44, RTM_NEWROUTE, REQ|ACK|EXCL|CREATE
      02 00 00 00   // AF_INET, dst_len 0, src_len 0, tos 0
      fe 03 00 01   // table main, RTPROT_BOOT, scope universe, RTN_UNICAST
      00 00 00 00   // rtm_flags
      08 00 05 00  c6 33 64 01   // RTA_GATEWAY 198.51.100.1
      08 00 04 00  03 00 00 00   // RTA_OIF 3
    `),
  );
});

Deno.test("nlReqRoute() builds an IPv6 default route via a link-local gateway", () => {
  const gw = hex("fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01");
  assertBytes(
    stamped(nlReqRoute(AF_INET6, 3, new Uint8Array(16), 0, gw, { metric: 1024 })),
    hex(`
      40 00 00 00  18 00  05 06  01 00 00 00  00 00 00 00  // len 64
      0a 00 00 00  fe 03 00 01  00 00 00 00               // AF_INET6, main, boot, universe, unicast
      14 00 05 00  fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01   // RTA_GATEWAY fe80::1
      08 00 04 00  03 00 00 00   // RTA_OIF 3 (needed for a link-local gateway)
      08 00 06 00  00 04 00 00   // RTA_PRIORITY 1024
    `),
  );
});

Deno.test("nlReqRoute() builds a direct route with scope link and masks host bits", () => {
  assertBytes(
    stamped(nlReqRoute(AF_INET, 3, new Uint8Array([10, 200, 0, 77]), 24, null)),
    hex(`
      2c 00 00 00  18 00  05 06  01 00 00 00  00 00 00 00
      02 18 00 00  fe 03 fd 01  00 00 00 00   // dst_len 24, scope link (253)
      08 00 01 00  0a c8 00 00   // RTA_DST 10.200.0.0 (host bits cleared)
      08 00 04 00  03 00 00 00   // RTA_OIF 3
    `),
  );
});

Deno.test("nlReqRoute() builds RTM_DELROUTE matching any scope and protocol", () => {
  assertBytes(
    stamped(nlReqRoute(AF_INET, 0, new Uint8Array(4), 0, null, {}, true)),
    hex(`
      1c 00 00 00  19 00  05 00  01 00 00 00  00 00 00 00  // len 28, RTM_DELROUTE, REQ|ACK
      02 00 00 00  fe 00 ff 01  00 00 00 00   // main, protocol 0, RT_SCOPE_NOWHERE, unicast
    `),
  );
});

Deno.test("nlReqDumpRoutes() builds a filtered RTM_GETROUTE dump", () => {
  assertBytes(
    stamped(nlReqDumpRoutes(AF_INET6, { type: RTN_UNICAST, oif: 3 })),
    hex(`
      24 00 00 00   // len 36
      1a 00         // RTM_GETROUTE
      01 03         // NLM_F_REQUEST | NLM_F_DUMP (0x300)
      01 00 00 00  00 00 00 00
      0a 00 00 00  fe 00 00 01  00 00 00 00   // AF_INET6, table main, type unicast
      08 00 04 00  03 00 00 00                // RTA_OIF 3
    `),
  );
});

Deno.test("nlReqDumpAddrs() and nlReqGetLinkByName() build their requests", () => {
  assertBytes(
    stamped(nlReqDumpAddrs(AF_INET6, 3)),
    hex(`
      18 00 00 00  16 00  01 03  01 00 00 00  00 00 00 00  // len 24, RTM_GETADDR, REQ|DUMP
      0a 00 00 00  03 00 00 00                            // AF_INET6, index 3
    `),
  );
  assertBytes(
    stamped(nlReqGetLinkByName("eth0")),
    hex(`
      34 00 00 00  12 00  05 00  01 00 00 00  00 00 00 00  // len 52, RTM_GETLINK, REQ|ACK
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  // ifinfomsg, index 0
      09 00 03 00  65 74 68 30 00  00 00 00                // IFLA_IFNAME "eth0\\0" + 3 pad
      08 00 1d 00  08 00 00 00                            // IFLA_EXT_MASK SKIP_STATS
    `),
  );
});

Deno.test("builders reject bad arguments", () => {
  assert.throws(() => nlReqAddr(AF_INET, 1, new Uint8Array(16), 24), RangeError);
  assert.throws(() => nlReqAddr(AF_INET, 1, new Uint8Array(4), 33), RangeError);
  assert.throws(
    () => nlReqRoute(AF_INET6, 1, new Uint8Array(16), 0, new Uint8Array(4)),
    RangeError,
  );
  assert.throws(() => nlReqSetLink(1, { mac: new Uint8Array(5) }), RangeError);
  assert.throws(() => nlReqGetLinkByName("a-very-long-interface-name"), RangeError);
  assert.throws(() => nlReqAddr(3, 1, new Uint8Array(4), 24), RangeError);
});

/* -------------------------------------------------------------- reply fixtures */

const LINK_REPLY = `
  4c 00 00 00  10 00  00 00  07 00 00 00  34 12 00 00  // len 76, RTM_NEWLINK, seq 7, pid 0x1234
  00 00 01 00   // AF_UNSPEC, pad, ARPHRD_ETHER
  04 00 00 00   // index 4
  43 10 01 00   // UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
  00 00 00 00   // change
  09 00 03 00  65 74 68 30 00  00 00 00   // IFLA_IFNAME "eth0"
  08 00 0d 00  e8 03 00 00               // IFLA_TXQLEN 1000 (ignored)
  08 00 04 00  78 05 00 00               // IFLA_MTU 1400
  0a 00 01 00  02 fc 00 00 00 01  00 00   // IFLA_ADDRESS 02:fc:00:00:00:01
  04 00 1a 80                            // IFLA_AF_SPEC, NLA_F_NESTED, empty
`;
const ACK_7 = `
  24 00 00 00  02 00  00 01  07 00 00 00  34 12 00 00  // len 36, NLMSG_ERROR, NLM_F_CAPPED
  00 00 00 00                                         // error 0: acknowledgement
  34 00 00 00  12 00  05 00  07 00 00 00  00 00 00 00  // the request's header
`;
const ADDR6_REPLY = `
  48 00 00 00  14 00  02 00  08 00 00 00  34 12 00 00  // len 72, RTM_NEWADDR, NLM_F_MULTI, seq 8
  0a 40 80 00  04 00 00 00   // AF_INET6, /64, IFA_F_PERMANENT, scope universe, index 4
  14 00 01 00  ${V6_2001_DB8_1__2}        // IFA_ADDRESS
  14 00 06 00  10 0e 00 00  20 1c 00 00  01 00 00 00  02 00 00 00  // IFA_CACHEINFO 3600 s, 7200 s
  08 00 08 00  a2 02 00 00   // IFA_FLAGS PERMANENT|NODAD|DEPRECATED|NOPREFIXROUTE
`;
const ROUTE_MULTIPATH = `
  50 00 00 00  18 00  02 00  09 00 00 00  34 12 00 00  // len 80, RTM_NEWROUTE, MULTI, seq 9
  02 00 00 00  fe 04 00 01  00 00 00 00   // AF_INET default, main, static, universe, unicast
  08 00 0f 00  fe 00 00 00                // RTA_TABLE 254
  08 00 06 00  64 00 00 00                // RTA_PRIORITY 100
  24 00 09 00                             // RTA_MULTIPATH, 32 bytes of nexthops
    10 00 00 00  04 00 00 00              //   rtnh len 16, flags 0, hops 0, ifindex 4
    08 00 05 00  c0 00 02 01              //   RTA_GATEWAY 192.0.2.1
    10 00 00 01  05 00 00 00              //   rtnh len 16, hops 1 (weight 2), ifindex 5
    08 00 05 00  c0 00 02 fe              //   RTA_GATEWAY 192.0.2.254
`;
const ROUTE_PREFIX = `
  3c 00 00 00  18 00  02 00  09 00 00 00  34 12 00 00  // len 60, RTM_NEWROUTE, MULTI, seq 9
  02 18 00 00  fe 02 fd 01  10 00 00 00   // /24, main, kernel, scope link, unicast, RTNH_F_LINKDOWN
  08 00 0f 00  fe 00 00 00                // RTA_TABLE 254
  08 00 01 00  c0 00 02 00                // RTA_DST 192.0.2.0
  08 00 07 00  c0 00 02 02                // RTA_PREFSRC 192.0.2.2
  08 00 04 00  04 00 00 00                // RTA_OIF 4
`;
const DONE_9 = `
  14 00 00 00  03 00  02 00  09 00 00 00  34 12 00 00  // len 20, NLMSG_DONE, MULTI, seq 9
  00 00 00 00                                         // status 0
`;
const EEXIST_10 = `
  30 00 00 00  02 00  00 03  0a 00 00 00  34 12 00 00  // len 48, NLMSG_ERROR, CAPPED|ACK_TLVS
  ef ff ff ff                                         // error -17 (EEXIST)
  40 00 00 00  14 00  05 06  0a 00 00 00  00 00 00 00  // the request's header
  0b 00 01 00  65 78 69 73 74 73 00  00                // NLMSGERR_ATTR_MSG "exists"
`;

/* ------------------------------------------------------------------ parsers */

Deno.test("nlParseLink() reads name, MTU, MAC and flags", () => {
  const l = nlParseLink(one(hex(LINK_REPLY)));
  assert.equal(l.index, 4);
  assert.equal(l.name, "eth0");
  assert.equal(l.mtu, 1400);
  assert.deepEqual(Array.from(l.mac!), [2, 0xfc, 0, 0, 0, 1]);
  assert.equal(l.flags, 0x11043);
  assert.equal(l.type, 1);
});

Deno.test("nlParseAddr() reads IFA_FLAGS over ifa_flags, and lifetimes", () => {
  const a = nlParseAddr(one(hex(ADDR6_REPLY)));
  assert.equal(a.family, AF_INET6);
  assert.equal(a.index, 4);
  assert.equal(a.prefixLen, 64);
  assert.equal(a.scope, RT_SCOPE_UNIVERSE);
  assert.equal(nlAddrToString(a.addr), "2001:db8:1::2");
  assert.equal(a.peer, null);
  assert.equal(a.flags, IFA_F_PERMANENT | IFA_F_NODAD | IFA_F_DEPRECATED | IFA_F_NOPREFIXROUTE);
  assert.equal(a.preferredLft, 3600);
  assert.equal(a.validLft, 7200);
});

Deno.test("nlParseRoute() reads a multipath default route", () => {
  const r = nlParseRoute(one(hex(ROUTE_MULTIPATH)));
  assert.equal(r.family, AF_INET);
  assert.equal(r.dstLen, 0);
  assert.deepEqual(Array.from(r.dst), [0, 0, 0, 0]);
  assert.equal(r.table, 254);
  assert.equal(r.protocol, RTPROT_STATIC);
  assert.equal(r.priority, 100);
  assert.equal(r.oif, 0);
  assert.equal(r.gateway, null);
  assert.equal(r.multipath.length, 2);
  assert.equal(r.multipath[0]!.ifindex, 4);
  assert.equal(r.multipath[0]!.weight, 1);
  assert.equal(nlAddrToString(r.multipath[0]!.gateway!), "192.0.2.1");
  assert.equal(r.multipath[1]!.ifindex, 5);
  assert.equal(r.multipath[1]!.weight, 2);
  assert.equal(nlAddrToString(r.multipath[1]!.gateway!), "192.0.2.254");
});

Deno.test("nlParseRoute() reads a prefix route with preferred source", () => {
  const r = nlParseRoute(one(hex(ROUTE_PREFIX)));
  assert.equal(nlAddrToString(r.dst), "192.0.2.0");
  assert.equal(r.dstLen, 24);
  assert.equal(r.scope, RT_SCOPE_LINK);
  assert.equal(r.protocol, RTPROT_KERNEL);
  assert.equal(r.oif, 4);
  assert.equal(nlAddrToString(r.prefsrc!), "192.0.2.2");
});

Deno.test("nlParseError() reads errno and the extended-ack message", () => {
  assert.deepEqual(nlParseError(one(hex(ACK_7))), { error: 0, extAck: null });
  assert.deepEqual(nlParseError(one(hex(EEXIST_10))), { error: -17, extAck: "exists" });
});

Deno.test("NlReply collects a reply followed by its ACK in one datagram", () => {
  const r = new NlReply("RTM_GETLINK", 7, PORT);
  assert.equal(r.feed(hex(LINK_REPLY + ACK_7)), true);
  assert.equal(r.messages.length, 1);
  assert.equal(r.messages[0]!.type, RTM_NEWLINK);
});

Deno.test("NlReply collects a multipart dump across datagrams until NLMSG_DONE", () => {
  const r = new NlReply("RTM_GETROUTE", 9, PORT);
  assert.equal(r.feed(hex(ROUTE_MULTIPATH)), false);
  assert.equal(r.feed(hex(ROUTE_PREFIX)), false);
  assert.equal(r.feed(hex(DONE_9)), true);
  assert.deepEqual(r.messages.map((m) => m.type), [RTM_NEWROUTE, RTM_NEWROUTE]);
  assert.equal(r.interrupted, false);
});

Deno.test("NlReply copies messages out of the receive buffer", () => {
  const d = hex(ROUTE_PREFIX + DONE_9);
  const r = new NlReply("RTM_GETROUTE", 9, PORT);
  r.feed(d);
  d.fill(0);
  assert.equal(nlParseRoute(r.messages[0]!).oif, 4);
});

Deno.test("NlReply skips stale messages of another sequence number", () => {
  const r = new NlReply("RTM_GETROUTE", 9, PORT);
  assert.equal(r.feed(hex(LINK_REPLY + ACK_7)), false);
  assert.equal(r.skipped, 2);
  assert.equal(r.feed(hex(DONE_9)), true);
  assert.equal(r.messages.length, 0);
});

Deno.test("NlReply refuses a reply addressed to another port", () => {
  const r = new NlReply("RTM_GETLINK", 7, 0x9999);
  assertMalformed(() => r.feed(hex(LINK_REPLY)));
});

Deno.test("NlReply turns NLMSG_ERROR into NlError with the errno name", () => {
  const r = new NlReply("RTM_NEWADDR", 10, PORT);
  assert.throws(() => r.feed(hex(EEXIST_10)), (e: unknown) => {
    assert.ok(e instanceof NlError && e instanceof SysError);
    assert.equal(e.code, "EEXIST");
    assert.equal(e.errno, ERRNO.EEXIST);
    assert.equal(e.message, "RTM_NEWADDR: EEXIST (exists)");
    assert.equal(e.extAck, "exists");
    return true;
  });
});

Deno.test("NlReply reports an error carried by NLMSG_DONE", () => {
  const r = new NlReply("RTM_GETROUTE", 9, PORT);
  const done = hex(DONE_9);
  done.set(hex("ea ff ff ff"), 16); // -22
  assert.throws(() => r.feed(done), /^NlError: RTM_GETROUTE: EINVAL$/);
});

Deno.test("NlReply notes NLM_F_DUMP_INTR and refuses NLMSG_OVERRUN", () => {
  const intr = hex(ROUTE_PREFIX);
  intr[6] = 0x12; // MULTI | DUMP_INTR
  const r = new NlReply("RTM_GETROUTE", 9, PORT);
  r.feed(intr);
  assert.equal(r.interrupted, true);
  const over = hex("14 00 00 00  04 00  00 00  09 00 00 00  34 12 00 00  00 00 00 00");
  assert.throws(() => new NlReply("RTM_GETROUTE", 9, PORT).feed(over), /ENOBUFS/);
});

/* ------------------------------------------------------ malformed and truncated */

Deno.test("nlSplit() refuses nlmsg_len smaller than the header", () => {
  assertMalformed(() => nlSplit(hex("08 00 00 00  10 00 00 00  07 00 00 00  34 12 00 00")));
  assertMalformed(() => nlSplit(hex("00 00 00 00  10 00 00 00  07 00 00 00  34 12 00 00")));
});

Deno.test("nlSplit() refuses nlmsg_len beyond the datagram and short trailers", () => {
  const d = hex(LINK_REPLY);
  assertMalformed(() => nlSplit(d.subarray(0, 40)));
  assertMalformed(() => nlSplit(hex(LINK_REPLY + "00 00 00 00 00 00")));
});

Deno.test("nlParseAttrs() refuses rta_len beyond the message", () => {
  const d = hex(LINK_REPLY);
  d.set(hex("c8 00"), 32); // IFLA_IFNAME rta_len 200
  assertMalformed(() => nlParseLink(one(d)));
});

Deno.test("nlParseAttrs() refuses zero-length attributes instead of looping", () => {
  const d = hex(LINK_REPLY);
  d.set(hex("00 00"), 44); // IFLA_TXQLEN rta_len 0
  assertMalformed(() => nlParseLink(one(d)));
  d.set(hex("02 00"), 44); // rta_len 2
  assertMalformed(() => nlParseLink(one(d)));
  assertMalformed(() => nlParseAttrs(new Uint8Array(8), 0, 8));
});

Deno.test("nlParseAttrs() ignores up to 3 trailing bytes, as RTA_OK does", () => {
  const b = hex("08 00 04 00  78 05 00 00  01 02 03");
  assert.equal(nlParseAttrs(b, 0, b.length).length, 1);
  assertMalformed(() => nlParseAttrs(b, 0, b.length + 1));
});

Deno.test("parsers refuse attributes of the wrong size", () => {
  const mtu = hex(LINK_REPLY);
  mtu.set(hex("06 00"), 52); // IFLA_MTU with 2 bytes of payload
  assertMalformed(() => nlParseLink(one(mtu)));
  const gw = hex(ROUTE_MULTIPATH);
  gw.set(hex("07 00"), 56); // first nexthop's RTA_GATEWAY of 3 bytes
  assertMalformed(() => nlParseRoute(one(gw)));
});

Deno.test("nlParseRoute() refuses broken multipath nexthops", () => {
  const zero = hex(ROUTE_MULTIPATH);
  zero.set(hex("00 00"), 48); // rtnh_len 0
  assertMalformed(() => nlParseRoute(one(zero)));
  const long = hex(ROUTE_MULTIPATH);
  long.set(hex("40 00"), 48); // rtnh_len 64, beyond RTA_MULTIPATH
  assertMalformed(() => nlParseRoute(one(long)));
});

Deno.test("parsers refuse messages shorter than their family header", () => {
  const d = hex(ROUTE_PREFIX).subarray(0, 24);
  d.set(hex("18 00 00 00"), 0); // nlmsg_len 24 < 16 + sizeof(rtmsg)
  assertMalformed(() => nlParseRoute(one(d)));
  const err = hex("10 00 00 00  02 00 00 00  07 00 00 00  34 12 00 00"); // NLMSG_ERROR, no code
  assertMalformed(() => new NlReply("RTM_NEWLINK", 7, PORT).feed(err));
  const addr = hex(ADDR6_REPLY);
  addr.set(hex("18 00 00 00"), 0); // RTM_NEWADDR without any address attribute
  assertMalformed(() => nlParseAddr(one(addr.subarray(0, 24))));
});

/** Parses everything a datagram holds, as the I/O layer does. */
function parseAll(d: Uint8Array, seq: number): void {
  const r = new NlReply("test", seq, PORT);
  r.feed(d);
  for (const m of r.messages) {
    if (m.type === RTM_NEWROUTE) {
      nlParseRoute(m);
      nlRouteCopyMsg(m, 4, 7);
    } else if (m.type === RTM_NEWADDR) {
      nlParseAddr(m);
      nlAddrCopyMsg(m, 4, 7);
    } else if (m.type === RTM_NEWLINK) nlParseLink(m);
  }
}

function onlyCleanErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof SysError) return; /* EBADMSG or an NlError */
    throw e; /* a RangeError here would be an out-of-bounds read */
  }
}

Deno.test("every truncation of a reply fails cleanly", () => {
  for (const [fixture, seq] of [[LINK_REPLY, 7], [ADDR6_REPLY, 8], [ROUTE_MULTIPATH, 9]] as const) {
    const full = hex(fixture);
    for (let cut = 0; cut < full.length; cut++) {
      onlyCleanErrors(() => parseAll(full.slice(0, cut), seq));
      const d = full.slice(0, cut);
      if (cut >= 4) new DataView(d.buffer).setUint32(0, cut, true); /* nlmsg_len agrees */
      onlyCleanErrors(() => parseAll(d, seq));
    }
  }
});

Deno.test("random corruption of replies fails cleanly", () => {
  let x = 0x2545f491;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const base = hex(
    ROUTE_MULTIPATH + ROUTE_PREFIX + ADDR6_REPLY.replace("08 00 00 00", "09 00 00 00"),
  );
  for (let i = 0; i < 20000; i++) {
    const d = base.slice();
    const n = 1 + (rand() % 4);
    for (let k = 0; k < n; k++) d[16 + (rand() % (d.length - 16))] = rand() & 0xff;
    onlyCleanErrors(() => parseAll(d, 9));
  }
});

/* ------------------------------------------------------------------ copying */

Deno.test("nlRouteCopyMsg() moves a route to another interface, minus host details", () => {
  const c = nlRouteCopyMsg(one(hex(ROUTE_PREFIX)), 4, 7);
  assert.equal(c.reason, null);
  assertBytes(
    c.msg!,
    hex(`
      34 00 00 00  18 00  05 04  00 00 00 00  00 00 00 00  // len 52, RTM_NEWROUTE, REQ|ACK|CREATE
      02 18 00 00  fe 02 fd 01  00 00 00 00   // same rtmsg, RTNH_F_LINKDOWN cleared
      08 00 0f 00  fe 00 00 00                // RTA_TABLE 254
      08 00 01 00  c0 00 02 00                // RTA_DST 192.0.2.0 (RTA_PREFSRC dropped)
      08 00 04 00  07 00 00 00                // RTA_OIF 7
    `),
  );
});

Deno.test("nlRouteCopyMsg() skips routes through other interfaces", () => {
  assert.equal(nlRouteCopyMsg(one(hex(ROUTE_PREFIX)), 5, 7).reason, "on interface 4");
  /* the second nexthop uses interface 5 */
  assert.equal(nlRouteCopyMsg(one(hex(ROUTE_MULTIPATH)), 4, 7).reason, "nexthop on interface 5");
  const both = hex(ROUTE_MULTIPATH);
  both[68] = 4; /* second nexthop on interface 4 too */
  const c = nlRouteCopyMsg(one(both), 4, 7);
  assert.equal(c.reason, null);
  const r = nlParseRoute(one(c.msg!));
  assert.deepEqual(r.multipath.map((nh) => nh.ifindex), [7, 7]);
  assert.deepEqual(r.multipath.map((nh) => nh.weight), [1, 2]);
});

Deno.test("nlAddrCopyMsg() copies a global address with NODAD and no lifetimes", () => {
  const m = one(hex(ADDR6_REPLY));
  assert.equal(nlAddrCopyMsg(m, 4, 7).reason, "deprecated");
  const fresh = hex(ADDR6_REPLY);
  fresh.set(hex("82 02 00 00"), 68); /* IFA_FLAGS without DEPRECATED */
  const c = nlAddrCopyMsg(one(fresh), 4, 7);
  assertBytes(
    c.msg!,
    hex(`
      34 00 00 00  14 00  05 04  00 00 00 00  00 00 00 00  // len 52, RTM_NEWADDR, REQ|ACK|CREATE
      0a 40 82 00  07 00 00 00   // /64, PERMANENT|NODAD, scope universe, index 7
      14 00 01 00  ${V6_2001_DB8_1__2}   // IFA_ADDRESS (IFA_CACHEINFO dropped)
      08 00 08 00  82 02 00 00   // IFA_FLAGS with NODAD
    `),
  );
});

Deno.test("nlAddrCopyMsg() skips link-local addresses and other interfaces", () => {
  const ll = hex(ADDR6_REPLY);
  ll[19] = RT_SCOPE_LINK;
  assert.equal(nlAddrCopyMsg(one(ll), 4, 7).reason, "link-local");
  assert.equal(nlAddrCopyMsg(one(hex(ADDR6_REPLY)), 3, 7).reason, "on interface 4");
});

/* --------------------------------------------------------- upstream choice */

function route(
  dst: string,
  dstLen: number,
  oif: number,
  priority: number,
  gateway: number[] | null = null,
): ReturnType<typeof nlParseRoute> {
  const d = dst.split(".").map(Number);
  return {
    family: AF_INET,
    dst: new Uint8Array(d),
    dstLen,
    srcLen: 0,
    tos: 0,
    table: 254,
    protocol: RTPROT_STATIC,
    scope: 0,
    type: RTN_UNICAST,
    flags: 0,
    oif,
    gateway: gateway && new Uint8Array(gateway),
    priority,
    prefsrc: null,
    nhId: 0,
    multipath: [],
    raw: new Uint8Array(0),
  };
}

Deno.test("nlPickUpstream() takes the default route with the lowest metric", () => {
  const routes = [
    route("10.0.0.0", 8, 2, 0),
    route("0.0.0.0", 0, 3, 600, [192, 0, 2, 1]),
    route("0.0.0.0", 0, 4, 100, [198, 51, 100, 1]),
    route("0.0.0.0", 0, 5, 100, [203, 0, 113, 1]),
  ];
  const p = nlPickUpstream(routes, AF_INET);
  assert.equal(p!.ifindex, 4);
  assert.equal(p!.route, routes[2]);
});

Deno.test("nlPickUpstream() falls back to any route, not counting link-local ones", () => {
  const routes = [route("169.254.0.0", 16, 2, 1000), route("10.0.0.0", 8, 3, 0)];
  assert.deepEqual(nlPickUpstream(routes, AF_INET), { ifindex: 3, route: null });
  assert.equal(nlPickUpstream([routes[0]!], AF_INET), null);
  assert.equal(nlPickUpstream(routes, AF_INET6), null);
  const other = route("0.0.0.0", 0, 2, 0, [1, 2, 3, 4]);
  other.type = 6; /* blackhole */
  assert.equal(nlPickUpstream([other], AF_INET), null);
});

Deno.test("nlDefaultGateway() picks the heaviest nexthop on the interface", () => {
  const r = nlParseRoute(one(hex(ROUTE_MULTIPATH)));
  assert.equal(nlAddrToString(nlDefaultGateway([r], AF_INET, 4)!), "192.0.2.1");
  assert.equal(nlAddrToString(nlDefaultGateway([r], AF_INET, 5)!), "192.0.2.254");
  assert.equal(nlDefaultGateway([r], AF_INET, 6), null);
  assert.equal(nlPickUpstream([r], AF_INET)!.ifindex, 4);
  const plain = [
    route("0.0.0.0", 0, 4, 200, [1, 1, 1, 1]),
    route("0.0.0.0", 0, 4, 50, [2, 2, 2, 2]),
  ];
  assert.equal(nlAddrToString(nlDefaultGateway(plain, AF_INET, 4)!), "2.2.2.2");
});

Deno.test("nlOrderUpstreamAddrs() puts pasta's pick first and drops deprecated ones", () => {
  const a = (s: number[], prefixLen: number, scope = 0, flags = 0) => ({
    family: s.length === 4 ? AF_INET : AF_INET6,
    index: 4,
    prefixLen,
    scope,
    flags,
    addr: new Uint8Array(s),
    peer: null,
    broadcast: null,
    label: null,
    preferredLft: 0,
    validLft: 0,
  });
  const v4 = nlOrderUpstreamAddrs(
    [a([10, 0, 0, 2], 8), a([192, 0, 2, 2], 24), a([192, 0, 2, 9], 28, 0, IFA_F_DEPRECATED)],
    AF_INET,
  );
  assert.deepEqual(v4.addrs.map((x) => nlAddrToString(x.addr)), ["192.0.2.2", "10.0.0.2"]);
  const ll = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const g = Array.from(hex(V6_2001_DB8_1__2));
  const v6 = nlOrderUpstreamAddrs([a(ll, 64, RT_SCOPE_LINK), a(g, 64)], AF_INET6);
  assert.deepEqual(v6.addrs.map((x) => nlAddrToString(x.addr)), ["2001:db8:1::2", "fe80::1"]);
  assert.equal(nlAddrToString(v6.linkLocal!), "fe80::1");
});

Deno.test("nlAddrToString() follows RFC 5952", () => {
  const v6 = (s: string) => nlAddrToString(hex(s));
  assert.equal(v6("00000000000000000000000000000000"), "::");
  assert.equal(v6("00000000000000000000000000000001"), "::1");
  assert.equal(v6("20010db8000000010001000100010001"), "2001:db8:0:1:1:1:1:1");
  assert.equal(v6("20010db8000000000001000000000001"), "2001:db8::1:0:0:1");
  assert.equal(v6("fe800000000000000000000000000000"), "fe80::");
  assert.equal(nlAddrToString(new Uint8Array([192, 0, 2, 1])), "192.0.2.1");
});

/* ------------------------------------------------------------------ socket */

Deno.test("nlLink() and nlLinkByName() read the loopback link", () => {
  const fd = nlOpen();
  try {
    const lo = nlLink(fd, 1);
    assert.equal(lo.name, "lo");
    assert.equal(nlLinkByName(fd, "lo").index, 1);
    assert.throws(() => nlLinkByName(fd, "orzo-nonexist"), /^NlError: RTM_GETLINK: ENODEV/);
    /* the socket still works after an error */
    assert.equal(nlLink(fd, 1).name, "lo");
  } finally {
    nlClose(fd);
  }
});

Deno.test("a raw unbound netlink socket works (port id from the first send)", () => {
  /* AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE: as a worker thread creates it */
  const fd = libc.symbols.socket(16, 3 | 0o2000000, 0);
  assert.ok(fd >= 0);
  try {
    assert.equal(nlPortid(fd), 0);
    assert.equal(nlLink(fd, 1).name, "lo");
    assert.notEqual(nlPortid(fd), 0);
    assert.equal(nlLinks(fd)[0]!.name, "lo");
  } finally {
    nlClose(fd);
  }
});

Deno.test("a dump left unread does not disturb the next request", () => {
  const fd = nlOpen();
  try {
    /* send a dump behind the I/O layer's back and never read its reply */
    const stale = nlReqDumpRoutes(AF_INET, { table: 0 });
    nlStamp(stale, 0x7fff0000, 0);
    const kernel = new Uint8Array(12);
    kernel[0] = 16;
    assert.equal(libc.symbols.sendto(fd, stale, stale.length, 0, kernel, 12), stale.length);
    assert.equal(nlLink(fd, 1).name, "lo");
    assert.ok(nlLinks(fd).some((l) => l.name === "lo"));
    assert.equal(nlDrain(fd), 0);
  } finally {
    nlClose(fd);
  }
});
