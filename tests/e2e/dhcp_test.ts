/**
 * End-to-end tests of orzo's DHCP and DHCPv6 servers: orzo in pasta mode
 * without --config-net leaves the guest's tap unconfigured, and real clients
 * inside the guest configure themselves from orzo: busybox udhcpc (IPv4) and
 * ISC dhclient -6 (IPv6). Their scripts print what they were given.
 */

import assert from "node:assert/strict";
import { Topology } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const have = (cmd: string) => {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).outputSync().success;
  } catch {
    return false;
  }
};
const haveClients = have("busybox") && have("dhclient");

/** Writes the client scripts into a fresh directory; returns it. */
async function scripts(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "orzo-dhcp-" });
  await Deno.writeTextFile(
    `${dir}/udhcpc.sh`,
    '#!/bin/sh\n[ "$1" = bound ] && echo "udhcpc ip=$ip mask=$mask router=$router dns=$dns ' +
      'mtu=$mtu hostname=$hostname search=$search lease=$lease serverid=$serverid"\nexit 0\n',
  );
  await Deno.writeTextFile(
    `${dir}/dhclient.sh`,
    '#!/bin/sh\n[ "$reason" = BOUND6 ] && echo "dhclient6 addr=$new_ip6_address ' +
      'dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search fqdn=$new_fqdn_fqdn"\nexit 0\n',
  );
  await Deno.chmod(`${dir}/udhcpc.sh`, 0o755);
  await Deno.chmod(`${dir}/dhclient.sh`, 0o755);
  return dir;
}

/** The guest's commands: bring the tap up, run udhcpc, then dhclient -6 (stopped after). */
function guest(dir: string): string {
  return [
    "sysctl -qw net.ipv6.conf.eth0.accept_dad=0",
    "ip link set eth0 up",
    "sleep 1",
    `timeout 20 busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s ${dir}/udhcpc.sh 2>/dev/null; echo "udhcpc exit $?"`,
    `timeout 20 dhclient -6 -1 -sf ${dir}/dhclient.sh -lf ${dir}/lease6 -pf ${dir}/pid6 eth0 2>/dev/null; echo "dhclient exit $?"`,
    /* dhclient goes to the background once bound and writes its pid file
     * from there: wait for it (a busy machine may take a moment), or the
     * daemon outlives the test */
    `for i in $(seq 50); do [ -s ${dir}/pid6 ] && break; sleep 0.1; done`,
    `[ -s ${dir}/pid6 ] && kill $(cat ${dir}/pid6)`,
    "true",
  ].join("; ");
}

Deno.test({
  name: "udhcpc and dhclient -6 in an unconfigured guest get address, router, DNS, MTU, host name",
  ignore: !isRoot || !haveClients,
  async fn() {
    const t = await Topology.create();
    const dir = await scripts();
    try {
      const r = await t.orzo([
        "-d",
        "--dhcp-dns",
        "--dhcp-search",
        "-D",
        "198.51.100.53",
        "-D",
        "2001:db8::53",
        "-S",
        "a.example b.a.example",
        "-H",
        "guesty",
        "--fqdn",
        "guesty.a.example",
        "--",
        "sh",
        "-c",
        guest(dir),
      ], { timeoutMs: 90000 });
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout;
      assert.match(out, /udhcpc exit 0/, out + r.stderr);
      assert.match(
        out,
        /^udhcpc ip=198\.51\.100\.2 mask=24 router=198\.51\.100\.1 dns=198\.51\.100\.53 mtu=65520 hostname=guesty search=a\.example b\.a\.example lease=4294967295 serverid=198\.51\.100\.1$/m,
        out,
      );
      assert.match(out, /dhclient exit 0/, out + r.stderr);
      assert.match(
        out,
        /^dhclient6 addr=2001:db8:1::2 dns=2001:db8::53 search=a\.example\. b\.a\.example\. fqdn=guesty\.a\.example$/m,
        out,
      );
      /* the exit line counts the replies: OFFER and ACK; ADVERTISE and REPLY */
      const m = r.stderr.match(/DHCP replies (\d+), DHCPv6 replies (\d+), DHCP malformed (\d+)/);
      assert.ok(m, r.stderr);
      assert.ok(Number(m[1]) >= 2 && Number(m[2]) >= 2 && m[3] === "0", m[0]);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "--no-dhcp and --no-dhcpv6: the clients get nothing",
  ignore: !isRoot || !haveClients,
  async fn() {
    const t = await Topology.create();
    const dir = await scripts();
    try {
      const r = await t.orzo([
        "-d",
        "--no-dhcp",
        "--no-dhcpv6",
        "--",
        "sh",
        "-c",
        [
          "ip link set eth0 up",
          `timeout 10 busybox udhcpc -i eth0 -n -q -f -t 2 -T 1 -s ${dir}/udhcpc.sh 2>/dev/null; echo "udhcpc exit $?"`,
          `timeout 5 dhclient -6 -1 -sf ${dir}/dhclient.sh -lf ${dir}/lease6 -pf ${dir}/pid6 eth0 2>/dev/null; echo "dhclient exit $?"`,
          `[ -s ${dir}/pid6 ] && kill $(cat ${dir}/pid6)`,
          "true",
        ].join("; "),
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /udhcpc exit 1/, r.stdout);
      assert.match(r.stdout, /dhclient exit [1-9]/, r.stdout);
      assert.doesNotMatch(r.stdout, /udhcpc ip=|dhclient6 addr=/);
      assert.match(r.stderr, /DHCP replies 0, DHCPv6 replies 0/, r.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await t.destroy();
    }
  },
});
