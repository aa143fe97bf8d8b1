import assert from "node:assert/strict";
import {
  addrEqual,
  addrIsUnspecified,
  addrWrite,
  ip6IsMulticast,
  ip6IsSolicitedNode,
} from "./addr.ts";
import { parseIp6 } from "../conf/addr.ts";

/** A DataView over a copy of an address. */
function view(a: Uint8Array): DataView {
  return new DataView(a.slice().buffer);
}

Deno.test("addr writes and compares in place", () => {
  const dv = new DataView(new ArrayBuffer(40));
  const a = parseIp6("2001:db8::5")!;
  addrWrite(dv, 7, a, 16);
  assert.ok(addrEqual(dv, 7, a, 16));
  assert.equal(addrEqual(dv, 8, a, 16), false);
  assert.deepEqual(new Uint8Array(dv.buffer, 7, 16), a);
  assert.ok(addrIsUnspecified(dv, 24, 16) && addrIsUnspecified(dv, 0, 4));
  assert.equal(addrIsUnspecified(dv, 7, 16), false);
});

Deno.test("address classification", () => {
  assert.ok(ip6IsMulticast(view(parseIp6("ff02::1")!), 0));
  assert.equal(ip6IsMulticast(view(parseIp6("fe80::1")!), 0), false);
  assert.ok(ip6IsSolicitedNode(view(parseIp6("ff02::1:ff00:2")!), 0));
  assert.equal(ip6IsSolicitedNode(view(parseIp6("ff02::1:fe00:2")!), 0), false);
});
