/**
 * End-to-end test of passt mode's --fd: orzo takes one end of a socketpair
 * as its already connected client (no listening socket, no VM), answers an
 * ARP request sent over it with qemu's framing, and quits (--fd implies
 * --one-off) when the test closes its end. orzo runs in the hermetic
 * topology's host namespace.
 */

import assert from "node:assert/strict";
import { libc } from "../../ffi/libc.ts";
import { reap, spawn } from "../../ffi/proc.ts";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM } from "../../ffi/layout.ts";
import { orzoIn, Topology } from "../helpers/topology.ts";
import { arpRequest, streamFrame } from "../helpers/stream_guest.ts";

const isRoot = Deno.uid() === 0;
const GUEST_MAC = [0x52, 0x54, 0x00, 0x0a, 0xb0, 0x02];

Deno.test({
  name:
    "passt mode --fd: a connected socket is the client; ARP answered; orzo quits when it closes",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const sv = new Int32Array(2);
    assert.equal(
      libc.symbols.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, new Uint8Array(sv.buffer)),
      0,
    );
    let pid = -1;
    try {
      pid = spawn(
        orzoIn(t.host, ["-f", "--fd", "5"]),
        { fds: [[5, sv[1]!]] },
      );
      libc.symbols.close(sv[1]!);
      const req = streamFrame(arpRequest(GUEST_MAC, [198, 51, 100, 2], [198, 51, 100, 1]));
      assert.equal(libc.symbols.write(sv[0]!, req, req.length), req.length);
      /* the reply, once orzo is up (Deno starts in about a second) */
      const buf = new Uint8Array(4096);
      let got = 0;
      for (let i = 0; i < 200 && got < 4 + 42; i++) {
        const n = libc.symbols.recv(sv[0]!, buf.subarray(got), buf.length - got, 0x40);
        if (n > 0) got += n;
        else await new Promise((r) => setTimeout(r, 50));
      }
      const dv = new DataView(buf.buffer);
      assert.ok(got >= 4 + 42, `an answer came (${got} bytes)`);
      const len = dv.getUint32(0);
      assert.ok(len >= 42 && len <= 64, `framed with its length (${len})`);
      assert.deepEqual([...buf.subarray(4, 10)], GUEST_MAC, "to the guest");
      assert.equal(dv.getUint16(16), 0x0806);
      assert.equal(dv.getUint16(24), 2, "an ARP reply");
      assert.deepEqual([...buf.subarray(26, 32)], [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);
      assert.deepEqual([...buf.subarray(32, 36)], [198, 51, 100, 1]);
      /* --fd implies --one-off */
      libc.symbols.close(sv[0]!);
      sv[0] = -1;
      let code = -1;
      for (let i = 0; i < 100 && code < 0; i++) {
        code = reap(pid);
        if (code < 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(code, 0, "orzo exits 0 when its client leaves");
      pid = -1;
    } finally {
      if (sv[0]! >= 0) libc.symbols.close(sv[0]!);
      if (pid > 0) {
        libc.symbols.kill(pid, 9);
        for (let i = 0; i < 50 && reap(pid) < 0; i++) await new Promise((r) => setTimeout(r, 20));
      }
      await t.destroy();
    }
  },
});
