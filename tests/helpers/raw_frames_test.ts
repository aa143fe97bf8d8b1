/**
 * raw_frames_test.ts - the frames of raw_frames.ts carry correct lengths and
 * checksums (the isolation test relies on them being well formed).
 *
 * @module
 */

import assert from "node:assert/strict";
import { csumFinish, csumL4v4, csumL4v6, csumPartial } from "../../wire/checksum.ts";
import { ipv4ChecksumOk } from "../../wire/ipv4.ts";
import { ORZO_MAC_HEX, rawFrameBody, rawFrameHex } from "./raw_frames.ts";

Deno.test("raw frames: IPv4 and IPv6 TCP, UDP and ICMP checksums verify", () => {
  for (const v6 of [false, true]) {
    for (const proto of ["tcp", "udp", "icmp"] as const) {
      const b = rawFrameBody({
        proto,
        v6,
        src: v6 ? "2001:db8:1::2" : "198.51.100.2",
        dst: v6 ? "::ffff:127.0.0.1" : "127.0.0.1",
        sport: 40000,
        dport: 47001,
        payload: "probe",
      });
      const dv = new DataView(b.buffer);
      const ip = 2;
      const l4 = ip + (v6 ? 40 : 20);
      const l4Len = b.length - l4;
      assert.equal(dv.getUint16(0), v6 ? 0x86dd : 0x0800);
      if (v6) assert.equal(dv.getUint16(ip + 4), l4Len);
      else {
        assert.equal(dv.getUint16(ip + 2), b.length - ip);
        assert.ok(ipv4ChecksumOk(b, ip), "IPv4 header checksum");
      }
      const n = proto === "tcp" ? 6 : proto === "udp" ? 17 : v6 ? 58 : 1;
      const check = proto === "icmp" && !v6
        ? csumFinish(csumPartial(b, l4, l4Len, 0))
        : v6
        ? csumL4v6(b, ip, l4, l4Len, n)
        : csumL4v4(b, ip, l4, l4Len, n);
      assert.equal(check, 0, `${proto} ${v6 ? "IPv6" : "IPv4"} checksum`);
      if (proto === "udp") assert.equal(dv.getUint16(l4 + 4), 8 + 5);
      if (proto === "tcp") assert.equal(b[l4 + 13], 0x02);
    }
  }
});

Deno.test("raw frames: hex text starts with orzo's MAC and the given source", () => {
  const h = rawFrameHex(
    { proto: "udp", v6: false, src: "198.51.100.2", dst: "203.0.113.10", sport: 1, dport: 2 },
    "$M",
  );
  assert.ok(h.startsWith(`${ORZO_MAC_HEX}$M0800`), h);
  assert.equal(h.length, 12 + 2 + 2 * (2 + 20 + 8));
});
