/**
 * End-to-end tests of ICMP and ICMPv6 echo in pasta mode, in the hermetic
 * topology: the guest's ping reaches the remote host (and the gateway, which
 * is the host's loopback) through orzo's ping sockets in the host namespace.
 */

import assert from "node:assert/strict";
import { Topology } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;

/** Lets every group open ping sockets in the test's host namespace. */
async function pingRange(t: Topology, range = "0 2147483647"): Promise<void> {
  const r = await t.hostSysctl(`net.ipv4.ping_group_range=${range}`);
  assert.equal(r.code, 0, r.stderr);
}

/** Received count of a `ping -q` summary. */
function received(out: string): number[] {
  return [...out.matchAll(/(\d+) received/g)].map((m) => Number(m[1]));
}

Deno.test({
  name: "ping -c 5 and ping -6 -c 5 from the guest to the remote host get every reply",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      await pingRange(t);
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        "ping -c 5 -i 0.2 -W 2 -q 203.0.113.10; ping -6 -c 5 -i 0.2 -W 2 -q 2001:db8:2::10; " +
        "ping -c 3 -i 0.2 -W 2 -q 198.51.100.1; ping -6 -c 3 -i 0.2 -W 2 -q 2001:db8:1::1; " +
        "ping -c 2 -s 4000 -W 2 -q 203.0.113.10",
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(received(r.stdout), [5, 5, 3, 3, 2], r.stdout);
      const rtt = /rtt min\/avg\/max\/mdev = [0-9.]+\/([0-9.]+)\//.exec(r.stdout);
      console.log(`ping through orzo, average round trip: ${rtt?.[1]} ms`);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "two pings at once keep their own identifiers and sequences",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      await pingRange(t);
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        "ping -c 10 -i 0.05 -W 2 203.0.113.10 > /tmp/orzo-p1.$$ & " +
        "ping -c 10 -i 0.05 -W 2 203.0.113.10 > /tmp/orzo-p2.$$; wait; " +
        "cat /tmp/orzo-p1.$$ /tmp/orzo-p2.$$; rm -f /tmp/orzo-p1.$$ /tmp/orzo-p2.$$",
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(received(r.stdout), [10, 10], r.stdout);
      /* each ping sees its own sequence numbers once, no duplicates */
      assert.ok(!/DUP!/.test(r.stdout), r.stdout);
      for (const seq of [1, 10]) {
        assert.equal((r.stdout.match(new RegExp(`icmp_seq=${seq} `, "g")) ?? []).length, 2);
      }
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "without ping sockets on the host (ping_group_range), orzo says why and keeps running",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      await pingRange(t, "1 0");
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        "ping -c 2 -i 0.2 -W 1 -q 203.0.113.10; ping -6 -c 1 -W 1 -q 2001:db8:2::10; echo done",
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(received(r.stdout), [0, 0], r.stdout);
      assert.match(r.stdout, /done/);
      assert.match(r.stderr, /ping_group_range/);
      assert.equal((r.stderr.match(/Cannot open "ping" socket/g) ?? []).length, 1, r.stderr);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "--no-icmp: echo requests get no reply",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      await pingRange(t);
      const r = await t.orzo([
        "--config-net",
        "--no-icmp",
        "--",
        "sh",
        "-c",
        "ping -c 1 -W 1 -q 203.0.113.10; echo done",
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(received(r.stdout), [0], r.stdout);
    } finally {
      await t.destroy();
    }
  },
});
