import assert from "node:assert/strict";
import {
  addrEqual,
  addrIsUnspecified,
  addrRead,
  addrWrite,
  ip4Format,
  ip4IsBroadcast,
  ip4IsLoopback,
  ip4IsMulticast,
  ip4Parse,
  ip6Format,
  ip6IsLinkLocal,
  ip6IsLoopback,
  ip6IsMulticast,
  ip6IsSolicitedNode,
  ip6MulticastMac,
  ip6Parse,
} from "./addr.ts";

/** A DataView over a copy of an address. */
function view(a: Uint8Array): DataView {
  return new DataView(a.slice().buffer);
}

Deno.test("ip4Parse() and ip4Format() round-trip and reject bad text", () => {
  assert.deepEqual(ip4Parse("198.51.100.255"), new Uint8Array([198, 51, 100, 255]));
  assert.equal(ip4Format(new Uint8Array([0, 10, 0, 2, 1]), 1), "10.0.2.1");
  for (const s of ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d"]) {
    assert.equal(ip4Parse(s), null, s);
  }
});

Deno.test("ip6Parse() reads the RFC 4291 text forms", () => {
  const cases: [string, string][] = [
    ["::", "00000000000000000000000000000000"],
    ["::1", "00000000000000000000000000000001"],
    ["fe80::1", "fe800000000000000000000000000001"],
    ["2001:db8::", "20010db8000000000000000000000000"],
    ["2001:DB8:0:0:1:0:0:1", "20010db8000000000001000000000001"],
    ["::ffff:192.0.2.1", "00000000000000000000ffffc0000201"],
    ["64:ff9b::198.51.100.7", "0064ff9b0000000000000000c6336407"],
    ["1:2:3:4:5:6:7::", "00010002000300040005000600070000"],
  ];
  for (const [s, h] of cases) {
    const a = ip6Parse(s);
    assert.ok(a !== null, s);
    assert.equal([...a].map((b) => b.toString(16).padStart(2, "0")).join(""), h, s);
  }
});

Deno.test("ip6Parse() rejects malformed text", () => {
  for (
    const s of [
      "",
      ":",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "12345::",
      "g::",
      "::1.2.3",
      "1.2.3.4::",
      "1:2:3:4:5:6:7:8::",
      "fe80::1%eth0",
    ]
  ) {
    assert.equal(ip6Parse(s), null, s);
  }
});

Deno.test("ip6Format() writes the RFC 5952 form", () => {
  for (
    const s of [
      "::",
      "::1",
      "2001:db8::1",
      "2001:db8:0:1:1:1:1:1",
      "2001:0:0:1::1",
      "fe80::9855:9aff:fe55:9a55",
      "::ffff:192.0.2.1",
      "1:2:3:4:5:6:7:8",
    ]
  ) {
    assert.equal(ip6Format(ip6Parse(s)!), s);
  }
  assert.equal(
    ip6Format(ip6Parse("2001:0db8:0000:0000:0001:0000:0000:0001")!),
    "2001:db8::1:0:0:1",
  );
});

Deno.test("addr reads, writes and compares in place", () => {
  const dv = new DataView(new ArrayBuffer(40));
  const a = ip6Parse("2001:db8::5")!;
  addrWrite(dv, 7, a, 16);
  assert.ok(addrEqual(dv, 7, a, 16));
  assert.equal(addrEqual(dv, 8, a, 16), false);
  const out = new Uint8Array(18);
  addrRead(dv, 7, out, 2, 16);
  assert.deepEqual(out.subarray(2), a);
  assert.ok(addrIsUnspecified(dv, 24, 16) && addrIsUnspecified(dv, 0, 4));
  assert.equal(addrIsUnspecified(dv, 7, 16), false);
});

Deno.test("address classification", () => {
  assert.ok(ip6IsMulticast(view(ip6Parse("ff02::1")!), 0));
  assert.ok(ip6IsLinkLocal(view(ip6Parse("febf::1")!), 0));
  assert.equal(ip6IsLinkLocal(view(ip6Parse("fec0::1")!), 0), false);
  assert.ok(ip6IsLoopback(view(ip6Parse("::1")!), 0));
  assert.ok(ip6IsSolicitedNode(view(ip6Parse("ff02::1:ff00:2")!), 0));
  assert.equal(ip6IsSolicitedNode(view(ip6Parse("ff02::1:fe00:2")!), 0), false);
  assert.ok(ip4IsMulticast(view(ip4Parse("239.1.2.3")!), 0));
  assert.ok(ip4IsBroadcast(view(ip4Parse("255.255.255.255")!), 0));
  assert.ok(ip4IsLoopback(view(ip4Parse("127.0.0.53")!), 0));
});

Deno.test("ip6MulticastMac() maps a group to 33:33:xx:xx:xx:xx", () => {
  const out = new DataView(new ArrayBuffer(6));
  ip6MulticastMac(view(ip6Parse("ff02::1:ff12:3456")!), 0, out, 0);
  assert.deepEqual(
    new Uint8Array(out.buffer),
    new Uint8Array([0x33, 0x33, 0xff, 0x12, 0x34, 0x56]),
  );
});
