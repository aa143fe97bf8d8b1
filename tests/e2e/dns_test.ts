/**
 * End-to-end tests of DNS for the guest: --dns-forward makes an address of
 * the guest's choosing reach the host's resolver (from the host's
 * resolv.conf, or --dns-host), over UDP and TCP, IPv4 and IPv6. The resolver
 * is tests/helpers/dns_server.ts in the remote namespace; the host's
 * resolv.conf is /etc/netns/<host namespace>/resolv.conf, which
 * `ip netns exec` mounts over /etc/resolv.conf for orzo.
 */

import assert from "node:assert/strict";
import { Topology } from "../helpers/topology.ts";
import { dnsServer, hostResolvConf } from "../helpers/dns.ts";

const isRoot = Deno.uid() === 0;
const DIG = "dig +short +time=2 +tries=2";

Deno.test({
  name:
    "--dns-forward reaches the host's resolver from resolv.conf: dig over UDP and TCP, IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const cleanup = await hostResolvConf(
      t,
      "# test\nnameserver 203.0.113.10\nnameserver 2001:db8:2::10\nsearch orzo.test\n",
    );
    const srv = await dnsServer(t);
    try {
      const r = await t.orzo([
        "--config-net",
        "--dns-forward",
        "169.254.1.1",
        "--dns-forward",
        "fd00::53",
        "--",
        "sh",
        "-c",
        `${DIG} @169.254.1.1 a.orzo.test A; echo --; ` +
        `${DIG} @169.254.1.1 a.orzo.test AAAA; echo --; ` +
        `${DIG} +tcp @169.254.1.1 b.orzo.test A; echo --; ` +
        `${DIG} @fd00::53 c.orzo.test AAAA; echo --; ` +
        `${DIG} +tcp @fd00::53 d.orzo.test A; echo --; ` +
        `dig +time=2 +tries=1 @169.254.1.1 nothere.example A | grep -o 'status: [A-Z]*'`,
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      const parts = r.stdout.split("--\n").map((s) => s.trim());
      assert.deepEqual(parts, [
        "192.0.2.123",
        "2001:db8:ff::123",
        "192.0.2.123",
        "2001:db8:ff::123",
        "192.0.2.123",
        "status: NXDOMAIN",
      ], r.stdout + r.stderr);
    } finally {
      await srv.stop();
      await cleanup();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "getent in the guest resolves through --dns-forward, IPv4 and IPv6 nameservers",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const cleanup = await hostResolvConf(t, "nameserver 203.0.113.10\nnameserver 2001:db8:2::10\n");
    const srv = await dnsServer(t);
    const dir = await Deno.makeTempDir({ prefix: "orzo-dns-" });
    try {
      await Deno.writeTextFile(
        `${dir}/resolv4.conf`,
        "nameserver 169.254.1.1\noptions timeout:2\n",
      );
      await Deno.writeTextFile(`${dir}/resolv6.conf`, "nameserver fd00::53\noptions timeout:2\n");
      const r = await t.orzo([
        "--config-net",
        "--dns-forward",
        "169.254.1.1",
        "--dns-forward",
        "fd00::53",
        "--",
        "unshare",
        "-m",
        "sh",
        "-c",
        `mount --bind ${dir}/resolv4.conf /etc/resolv.conf && getent ahostsv4 host1.orzo.test && ` +
        `mount --bind ${dir}/resolv6.conf /etc/resolv.conf && getent ahostsv6 host2.orzo.test`,
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^192\.0\.2\.123\s/m);
      assert.match(r.stdout, /^2001:db8:ff::123\s/m);
    } finally {
      await srv.stop();
      await cleanup();
      await Deno.remove(dir, { recursive: true });
      await t.destroy();
    }
  },
});

Deno.test({
  name: "--dns-host overrides resolv.conf's nameserver; the last --dns-forward per IP version wins",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const cleanup = await hostResolvConf(t, "nameserver 192.0.2.99\n");
    const srv = await dnsServer(t, "203.0.113.10");
    try {
      const r = await t.orzo([
        "--config-net",
        "--dns-forward",
        "169.254.1.1",
        "--dns-forward",
        "169.254.1.2",
        "--dns-host",
        "203.0.113.10",
        "--",
        "sh",
        "-c",
        `${DIG} @169.254.1.2 x.orzo.test A; echo --; ${DIG} @169.254.1.1 x.orzo.test A >/dev/null 2>&1; echo $?`,
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      const parts = r.stdout.split("--\n").map((s) => s.trim());
      /* 169.254.1.1 is nothing: dig times out (status 9) */
      assert.deepEqual(parts, ["192.0.2.123", "9"], r.stdout + r.stderr);
    } finally {
      await srv.stop();
      await cleanup();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "a loopback nameserver in resolv.conf is reached through the gateway's port 53",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* the host's resolver listens on its loopback only, as systemd-resolved does */
    const cleanup = await hostResolvConf(t, "nameserver 127.0.0.53\n");
    const lo = await dnsServer(t, "127.0.0.53", t.host);
    try {
      const r = await t.orzo(
        ["--config-net", "--", "sh", "-c", `${DIG} @198.51.100.1 y.orzo.test A`],
        { timeoutMs: 60000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "192.0.2.123", r.stdout + r.stderr);
    } finally {
      await lo.stop();
      await cleanup();
      await t.destroy();
    }
  },
});
