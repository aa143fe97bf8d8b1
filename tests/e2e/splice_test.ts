/**
 * End-to-end tests of the splice path: loopback to loopback between the host
 * and the guest, with the bytes joined by splice(2) in the kernel.
 */

import assert from "node:assert/strict";
import { background, DENO, TCP_PEER, Topology } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const PEER = `${DENO} run --allow-net --allow-env ${TCP_PEER}`;

for (const [fam, lo] of [["IPv4", "127.0.0.1"], ["IPv6", "::1"]] as const) {
  Deno.test({
    name: `splice ${fam}: -T PORT, the guest's loopback reaches a server on the host's loopback`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const srv = await background(
        ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose ${lo} 9050`],
        { ready: "listening" },
      );
      try {
        const r = await t.orzo([
          "--config-net",
          "-d",
          "-T",
          "9050",
          "--",
          "sh",
          "-c",
          `${PEER} client-halfclose ${lo} 9050 ${20 << 20}`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), "ok");
        assert.match(r.stderr, /TCP splice: opened 1, closed 1, failed 0, bytes [1-9]/);
      } finally {
        await srv.stop();
        await t.destroy();
      }
    },
  });

  Deno.test({
    name: `splice ${fam}: -t PORT from the host's loopback reaches the guest's loopback`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      try {
        /* the guest's server listens on its loopback only: the tap cannot reach it */
        const orzo = t.orzo([
          "--config-net",
          "-t",
          "9052",
          "--",
          "sh",
          "-c",
          `${PEER} serve-halfclose ${lo} 9052 & p=$!; sleep 3; kill $p`,
        ], { timeoutMs: 30000 });
        await new Promise((r) => setTimeout(r, 1500));
        const c = await t.inHost([...PEER.split(" "), "client-halfclose", lo, "9052", "1000000"]);
        assert.equal(c.stdout.trim(), "ok", c.stderr);
        const r = await orzo;
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await t.destroy();
      }
    },
  });
}

Deno.test({
  name: "splice: -T auto (the default) follows the ports the host listens on",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await background(
      ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose 127.0.0.1 9051`],
      { ready: "listening" },
    );
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 127.0.0.1 9051 100000`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok");
      const none = await t.orzo([
        "--config-net",
        "-T",
        "none",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 127.0.0.1 9051 100000`,
      ]);
      assert.notEqual(none.code, 0, "with -T none nothing listens on the guest's loopback");
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});
