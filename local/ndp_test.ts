import assert from "node:assert/strict";
import { type Ctx, ctxNew } from "../ctx.ts";
import { NDP_NA_FRAME_LEN, ndpHandle, ndpRouterAdvert } from "./ndp.ts";
import { parseIp6 } from "../conf/addr.ts";
import { icmpv6ChecksumOk, icmpv6FillChecksum } from "../wire/icmpv6.ts";
import { hex, prng } from "../wire/_hex.ts";

/* Neighbour solicitation from the guest (captured on a veth): who has 2001:db8::2? */
const NS = hex(`
  33 33 ff 00 00 02  02 00 00 00 00 0a  86 dd       // Ethernet: solicited-node group, guest, IPv6
  60 00 00 00  00 20  3a  ff                        // IPv6: payload 32, ICMPv6, hop limit 255
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // 2001:db8::1 (the guest)
  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02   // ff02::1:ff00:2
  87 00 1c 1e  00 00 00 00                          // NS, checksum, reserved
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // target 2001:db8::2
  01 01 02 00 00 00 00 0a                           // source link-layer address
`);

/* Our answer: router, solicited, override; from the target (checksum computed independently). */
const NA = hex(`
  02 00 00 00 00 0a  9a 55 9a 55 9a 55  86 dd       // to the guest, from us
  60 00 00 00  00 20  3a  ff
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // from the target address
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // to the solicitation's source
  88 00 3d 72         // NA, checksum
  e0 00 00 00         // R, S, O
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   // target
  02 01 9a 55 9a 55 9a 55                           // target link-layer address: our MAC
`);

/* Duplicate address detection probe (captured): from ::, with a nonce option (RFC 7527). */
const DAD = hex(`
  33 33 ff 00 00 0b  02 00 00 00 00 0b  86 dd
  60 00 00 00  00 20  3a  ff
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   // ::
  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 0b
  87 00 12 bb  00 00 00 00
  fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 0b   // target fe80::ff:fe00:b
  0e 01 9d 94 c2 08 fc af                           // nonce
`);

/* Router solicitation from the guest (captured). */
const RS = hex(`
  33 33 00 00 00 02  02 00 00 00 00 0a  86 dd
  60 00 00 00  00 10  3a  ff
  fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 0a   // fe80::ff:fe00:a
  ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02   // all-routers
  85 00 7b 1a  00 00 00 00
  01 01 02 00 00 00 00 0a                           // source link-layer address
`);

/* Our router advertisement for ctx() (checksum computed independently). */
const RA = hex(`
  02 00 00 00 00 0a  9a 55 9a 55 9a 55  86 dd
  60 00 00 00  00 70  3a  ff                        // payload 112
  fe 80 00 00 00 00 00 00 98 55 9a ff fe 55 9a 55   // c.ip6.ourLinkLocal
  fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 0a   // the solicitation's source
  86 00 d7 f3         // RA, checksum
  ff 80 ff ff         // current hop limit 255, M, router lifetime 65535
  00 00 00 00  00 00 00 00                          // reachable, retrans: unspecified
  03 04 40 c0  ff ff ff ff  ff ff ff ff  00 00 00 00   // prefix information /64 L A, infinite
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00   // 2001:db8::
  01 01 9a 55 9a 55 9a 55                           // source link-layer address
  05 01 00 00 00 00 ff f0                           // MTU 65520
  19 03 00 00 ff ff ff ff                           // RDNSS, lifetime infinite
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 35   // 2001:db8::35
  1f 03 00 00 ff ff ff ff                           // DNSSL, lifetime infinite
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00  01 61 00  // example.com, a
`);

function ctx(): Ctx {
  const c = ctxNew();
  c.ip6.enabled = true;
  c.ip6.addr.set(parseIp6("2001:db8::1")!);
  c.ip6.addrSeen.set(parseIp6("2001:db8::1")!);
  c.ip6.addrLinkLocalSeen.set(parseIp6("fe80::ff:fe00:a")!);
  c.ip6.prefixLen = 64;
  c.dns6 = [parseIp6("2001:db8::35")!];
  c.dnsSearch = ["example.com", "a"];
  return c;
}

/** Copy of a frame with bytes changed and, unless told otherwise, the checksum fixed. */
function patched(f: Uint8Array, changes: [number, number][], fix = true): Uint8Array<ArrayBuffer> {
  const b = f.slice();
  for (const [at, v] of changes) b[at] = v;
  if (fix) icmpv6FillChecksum(b, 14, 54, (b[18]! << 8) | b[19]!);
  return b;
}

function stats(c: Ctx): number[] {
  const s = c.stats;
  return [s.ndpAdverts, s.routerAdverts, s.malformed, s.unhandled];
}

Deno.test("ndpHandle() answers a neighbour solicitation, every byte", () => {
  const c = ctx();
  const out = new Uint8Array(200).fill(0xa5);
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), NDP_NA_FRAME_LEN);
  assert.deepEqual(out.subarray(0, NDP_NA_FRAME_LEN), NA);
  assert.equal(out[NDP_NA_FRAME_LEN], 0xa5);
  assert.ok(icmpv6ChecksumOk(out, 14, 54, 32));
  assert.deepEqual(stats(c), [1, 0, 0, 0]);
});

Deno.test("ndpHandle() answers a router solicitation with passt's advertisement, every byte", () => {
  const c = ctx();
  const out = new Uint8Array(1600).fill(0xa5);
  const n = ndpHandle(c, RS, 0, RS.length, out);
  assert.equal(n, RA.length);
  assert.deepEqual(out.subarray(0, n), RA);
  assert.ok(icmpv6ChecksumOk(out, 14, 54, n - 54));
  assert.deepEqual(stats(c), [0, 1, 0, 0]);
});

Deno.test("ndpHandle() leaves out MTU, RDNSS and DNSSL as configured", () => {
  const c = ctx();
  c.mtu = 0;
  c.dns6 = [];
  const out = new Uint8Array(1600);
  const n = ndpHandle(c, RS, 0, RS.length, out);
  assert.equal(n, 54 + 16 + 32 + 8, "no MTU; no DNSSL without RDNSS (as passt)");
  assert.ok(icmpv6ChecksumOk(out, 14, 54, n - 54));
  c.dns6 = [new Uint8Array(16)];
  assert.equal(ndpHandle(c, RS, 0, RS.length, out), n, "unspecified servers are skipped");
  c.ip6.addr.fill(0);
  assert.equal(ndpHandle(c, RS, 0, RS.length, out), n - 32, "no prefix without an address");
});

Deno.test("ndpHandle() answers a solicitation from :: to all-nodes", () => {
  const c = ctx();
  /* from ::, without the source link-layer option (not allowed from ::) */
  const zeros: [number, number][] = [...Array(16).keys()].map((i) => [22 + i, 0]);
  const b = patched(RS.subarray(0, 62), [...zeros, [19, 8]]);
  const out = new Uint8Array(1600);
  const n = ndpHandle(c, b, 0, b.length, out);
  assert.equal(n, RA.length);
  assert.deepEqual(out.subarray(0, 6), new Uint8Array([0x33, 0x33, 0, 0, 0, 1]));
  assert.deepEqual(out.subarray(38, 54), parseIp6("ff02::1"));
  assert.ok(icmpv6ChecksumOk(out, 14, 54, n - 54));
});

Deno.test("ndpRouterAdvert() builds the unsolicited advertisement to all-nodes", () => {
  const c = ctx();
  const out = new Uint8Array(1600);
  const n = ndpRouterAdvert(c, out);
  assert.equal(n, RA.length);
  assert.deepEqual(out.subarray(0, 6), new Uint8Array([0x33, 0x33, 0, 0, 0, 1]));
  assert.deepEqual(out.subarray(6, 22), RA.subarray(6, 22));
  assert.deepEqual(out.subarray(38, 54), parseIp6("ff02::1"));
  assert.deepEqual(out.subarray(58, n), RA.subarray(58));
  assert.ok(icmpv6ChecksumOk(out, 14, 54, n - 54));
  assert.equal(c.stats.routerAdverts, 1);
  c.noRa = true;
  assert.equal(ndpRouterAdvert(c, out), 0);
  c.noRa = false;
  c.noNdp = true;
  assert.equal(ndpRouterAdvert(c, out), 0);
  assert.equal(ndpRouterAdvert(ctxNew(), out), 0, "IPv6 disabled");
  assert.equal(ndpRouterAdvert(ctx(), new Uint8Array(100)), 0, "no room");
});

Deno.test("ndpHandle() does not sabotage duplicate address detection", () => {
  const c = ctx();
  assert.equal(ndpHandle(c, DAD, 0, DAD.length, new Uint8Array(200)), 0);
  assert.deepEqual(stats(c), [0, 0, 0, 1]);
});

Deno.test("ndpHandle() does not answer for the guest's own addresses", () => {
  const c = ctx();
  const out = new Uint8Array(200);
  const own = patched(NS, [[77, 1]]);
  assert.equal(ndpHandle(c, own, 0, own.length, out), 0);
  c.ip6.addrSeen.set(parseIp6("2001:db8::2")!);
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), 0);
  c.ip6.addrSeen.fill(0);
  c.ip6.addrLinkLocalSeen.set(parseIp6("2001:db8::2")!);
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), 0);
  assert.deepEqual(stats(c), [0, 0, 0, 3]);
});

Deno.test("ndpHandle() answers any other target, link-local ones too", () => {
  const c = ctx();
  const out = new Uint8Array(200);
  const ll = patched(NS, [[62, 0xfe], [63, 0x80], [64, 0], [65, 0], [77, 0x42]]);
  assert.equal(ndpHandle(c, ll, 0, ll.length, out), NDP_NA_FRAME_LEN);
  assert.deepEqual(out.subarray(22, 38), parseIp6("fe80::42"));
  assert.deepEqual(out.subarray(62, 78), parseIp6("fe80::42"));
});

Deno.test("ndpHandle() is quiet with NDP off, RAs off, IPv6 off", () => {
  const out = new Uint8Array(1600);
  let c = ctx();
  c.noNdp = true;
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), 0);
  assert.equal(ndpHandle(c, RS, 0, RS.length, out), 0);
  assert.deepEqual(stats(c), [0, 0, 0, 2]);
  c = ctx();
  c.noRa = true;
  assert.equal(ndpHandle(c, RS, 0, RS.length, out), 0);
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), NDP_NA_FRAME_LEN, "NS still answered");
  c = ctx();
  c.ip6.enabled = false;
  assert.equal(ndpHandle(c, NS, 0, NS.length, out), 0);
  assert.deepEqual(stats(c), [0, 0, 0, 1]);
});

Deno.test("ndpHandle() drops advertisements, redirects and other ICMPv6 from the guest", () => {
  const c = ctx();
  const out = new Uint8Array(200);
  for (const t of [134, 136, 137, 128, 1]) {
    const b = patched(NS, [[54, t]]);
    assert.equal(ndpHandle(c, b, 0, b.length, out), 0);
  }
  const udp = patched(NS, [[20, 17]], false);
  assert.equal(ndpHandle(c, udp, 0, udp.length, out), 0);
  assert.deepEqual(stats(c), [0, 0, 0, 6]);
});

Deno.test("ndpHandle() finds the message behind a hop-by-hop header", () => {
  const c = ctx();
  const b = new Uint8Array(NS.length + 8);
  b.set(NS.subarray(0, 54));
  b.set([58, 0, 1, 4, 0, 0, 0, 0], 54); /* hop-by-hop, PadN */
  b.set(NS.subarray(54), 62);
  b[20] = 0;
  b[19] = 40;
  const out = new Uint8Array(200);
  assert.equal(ndpHandle(c, b, 0, b.length, out), NDP_NA_FRAME_LEN);
  assert.deepEqual(out.subarray(0, NDP_NA_FRAME_LEN), NA);
});

Deno.test("ndpHandle() validates as RFC 4861 asks: each fault is counted as malformed", () => {
  const faults: [string, Uint8Array][] = [
    ["hop limit 64", patched(NS, [[21, 64]])],
    ["RS hop limit 1", patched(RS, [[21, 1]])],
    ["code 1", patched(NS, [[55, 1]])],
    ["RS code 9", patched(RS, [[55, 9]])],
    ["bad checksum", patched(NS, [[57, 0x1f]], false)],
    ["RS bad checksum", patched(RS, [[60, 0x42]], false)],
    ["option length 0", patched(NS, [[79, 0]])],
    ["option overrun", patched(NS, [[79, 2]])],
    ["RS option length 0", patched(RS, [[63, 0]])],
    ["multicast target", patched(NS, [[62, 0xff]])],
    ["unspecified target", patched(NS, [...Array(16).keys()].map((i) => [62 + i, 0]))],
    ["multicast source", patched(NS, [[22, 0xff]])],
    ["multicast source MAC", patched(NS, [[6, 0x03]])],
    ["DAD to a unicast address", patched(DAD, [[38, 0x20], [39, 0x01]])],
    ["DAD with a source link-layer option", patched(DAD, [[78, 1]])],
    [
      "RS from :: with a source link-layer option",
      patched(RS, [...Array(16).keys()].map((i) => [22 + i, 0])),
    ],
    ["short NS", patched(NS.subarray(0, 70), [[19, 16]])],
    ["short RS", patched(RS.subarray(0, 58), [[19, 4]])],
    ["not IPv6", patched(NS, [[14, 0x40]], false)],
    ["not EtherType IPv6", patched(NS, [[12, 0x08], [13, 0]], false)],
    ["payload longer than the frame", patched(NS, [[19, 40]], false)],
  ];
  for (const [what, b] of faults) {
    const c = ctx();
    const out = new Uint8Array(200);
    assert.equal(ndpHandle(c, b, 0, b.length, out), 0, what);
    assert.deepEqual(stats(c), [0, 0, 1, 0], what);
    assert.deepEqual(out, new Uint8Array(200), `${what}: nothing written`);
  }
});

Deno.test("ndpHandle() rejects every truncation without throwing", () => {
  for (const f of [NS, RS]) {
    const c = ctx();
    const out = new Uint8Array(1600);
    for (let n = 0; n < f.length; n++) {
      assert.equal(ndpHandle(c, f, 0, n, out), 0);
      assert.equal(ndpHandle(c, f.slice(0, n), 0, n, out), 0);
    }
    assert.equal(c.stats.malformed, 2 * f.length);
  }
});

Deno.test("ndpHandle() rejects ranges outside the frame", () => {
  const c = ctx();
  const out = new Uint8Array(200);
  assert.equal(ndpHandle(c, NS, 1, NS.length, out), 0);
  assert.equal(ndpHandle(c, NS, -1, 10, out), 0);
  assert.equal(c.stats.malformed, 2);
});

Deno.test("ndpHandle() works at offsets, into a sub-array, and in place", () => {
  const c = ctx();
  const pool = new Uint8Array(512).fill(0xee);
  pool.set(NS, 130);
  const outBuf = new Uint8Array(200);
  assert.equal(
    ndpHandle(c, pool.subarray(2), 128, NS.length, outBuf.subarray(12)),
    NDP_NA_FRAME_LEN,
  );
  assert.deepEqual(outBuf.subarray(12, 12 + NDP_NA_FRAME_LEN), NA);
  const inPlace = new Uint8Array(200);
  inPlace.set(NS);
  assert.equal(ndpHandle(c, inPlace, 0, NS.length, inPlace), NDP_NA_FRAME_LEN);
  assert.deepEqual(inPlace.subarray(0, NDP_NA_FRAME_LEN), NA);
  const rsInPlace = new Uint8Array(1600);
  rsInPlace.set(RS);
  assert.equal(ndpHandle(c, rsInPlace, 0, RS.length, rsInPlace), RA.length);
  assert.deepEqual(rsInPlace.subarray(0, RA.length), RA);
});

Deno.test("ndpHandle() fits the advertisement into a small output buffer", () => {
  const c = ctx();
  c.dnsSearch = ["x".repeat(60) + ".example", "y".repeat(60) + ".example"];
  const out = new Uint8Array(54 + 16 + 32 + 8 + 8 + 24 + 80);
  const n = ndpHandle(c, RS, 0, RS.length, out);
  assert.equal(n, out.length, "DNSSL holds the first domain only");
  assert.ok(icmpv6ChecksumOk(out, 14, 54, n - 54));
  assert.equal(ndpHandle(c, NS, 0, NS.length, new Uint8Array(NDP_NA_FRAME_LEN - 1)), 0);
});

Deno.test("ndpHandle() survives random garbage and mutations, counting every frame", () => {
  const c = ctx();
  const r = prng(1234);
  const out = new Uint8Array(1600);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    let b: Uint8Array;
    if (i % 3 === 0) {
      b = new Uint8Array(r() % 120);
      for (let j = 0; j < b.length; j++) b[j] = r() & 0xff;
      if (b.length > 14) b.set([0x86, 0xdd, 0x60], 12);
    } else {
      const base = i % 3 === 1 ? NS : RS;
      b = base.slice();
      for (let k = r() % 4; k >= 0; k--) b[14 + (r() % (b.length - 14))] = r() & 0xff;
      if (r() % 2 === 0) icmpv6FillChecksum(b, 14, 54, b.length - 54);
    }
    const len = r() % 8 === 0 ? r() % (b.length + 1) : b.length;
    const reply = ndpHandle(c, b, 0, len, out);
    assert.ok(reply >= 0 && reply <= out.length);
  }
  const s = c.stats;
  assert.equal(s.malformed + s.unhandled + s.ndpAdverts + s.routerAdverts, n);
  assert.ok(s.malformed > 0 && s.ndpAdverts > 0 && s.routerAdverts > 0);
});

Deno.test({
  name: "tshark decodes our NA and RA with good checksums and nothing malformed",
  ignore: !hasTshark(),
  fn: async () => {
    const c = ctx();
    const frames: Uint8Array[] = [];
    let out = new Uint8Array(1600);
    frames.push(out.slice(0, ndpHandle(c, NS, 0, NS.length, out)));
    out = new Uint8Array(1600);
    frames.push(out.slice(0, ndpHandle(c, RS, 0, RS.length, out)));
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      await Deno.writeFile(path, pcapBytes(frames));
      const r = await new Deno.Command("tshark", {
        args: [
          "-r",
          path,
          "-T",
          "fields",
          "-e",
          "icmpv6.type",
          "-e",
          "icmpv6.checksum.status",
          "-e",
          "icmpv6.opt.dnssl",
          "-e",
          "_ws.malformed",
        ],
        stderr: "null",
      }).output();
      const lines = new TextDecoder().decode(r.stdout).replace(/\n$/, "").split("\n");
      assert.equal(lines.length, 2);
      assert.deepEqual(lines[0]!.split("\t"), ["136", "1", "", ""]);
      assert.deepEqual(lines[1]!.split("\t"), ["134", "1", "example.com,a", ""]);
    } finally {
      await Deno.remove(path);
    }
  },
});

function hasTshark(): boolean {
  try {
    return new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** A minimal pcap file (host order, LINKTYPE_ETHERNET) holding `frames`. */
function pcapBytes(frames: Uint8Array[]): Uint8Array {
  const size = 24 + frames.reduce((s, f) => s + 16 + f.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 65535, true);
  dv.setUint32(20, 1, true);
  let p = 24;
  for (const f of frames) {
    dv.setUint32(p + 8, f.length, true);
    dv.setUint32(p + 12, f.length, true);
    b.set(f, p + 16);
    p += 16 + f.length;
  }
  return b;
}
