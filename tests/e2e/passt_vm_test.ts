/**
 * End-to-end tests of passt mode with a real virtual machine: qemu under TCG
 * with Debian's cloud kernel and a busybox initramfs (tests/helpers/vm.ts),
 * connected to the translator's UNIX socket, inside the hermetic topology
 * (orzo and qemu in the "host" namespace). Inside the VM:
 *
 * - udhcpc gets the address, prefix, router, DNS and MTU;
 * - the kernel takes an IPv6 address from the router advertisement;
 * - ping (IPv4 and IPv6) to the remote namespace;
 * - a TCP transfer to the remote namespace, hash-checked both ways: the VM
 *   sends 1 MiB and shuts down its side first, the server answers with the
 *   hash of what it got and 1 MiB of pattern, then closes: its FIN must
 *   reach the VM for nc to finish;
 * - the gateway address reaches a server on the host's loopback, over IPv4
 *   and over IPv6 to the remote namespace;
 * - DNS through --dns-forward to the resolver of the host's resolv.conf;
 * - a -t forward from the remote namespace reaches a server in the VM.
 *
 * The same test runs with Debian's passt (or PASST_BIN) in place of orzo. A
 * third test runs orzo with libvirt's exact argv (it goes to the background
 * and quits with its client, --one-off) serving a VM started with libvirt's
 * JSON netdev.
 */

import assert from "node:assert/strict";
import { background, denoIn, MAIN, orzoIn, run, TCP_PEER, Topology } from "../helpers/topology.ts";
import { dnsServer, hostResolvConf } from "../helpers/dns.ts";
import { findKernel, kv, Vm } from "../helpers/vm.ts";

const isRoot = Deno.uid() === 0;
const kernel = findKernel();
const PASST_BIN = Deno.env.get("PASST_BIN") || "/usr/bin/passt";
const havePasst = (() => {
  try {
    return Deno.statSync(PASST_BIN).isFile;
  } catch {
    return false;
  }
})();

/** Ports of the servers. */
const PORT_TCP = 5001;
const PORT_LO = 5002;
const PORT_HTTP6 = 5003;
const PORT_FWD = 8080;
const MAC = "52:54:00:0a:b0:01";

/** The VM's side of the test, in order; every step prints its results. */
const SCRIPT = `
udhcpc -i eth0 -q -n -t 5 -T 2 -O mtu -O search
i=0; while ! ip -6 addr show dev eth0 scope global | grep -q inet6 && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "@@addr6 $(ip -6 addr show dev eth0 scope global | grep -o 'inet6 [^ ]*' | head -n1)"
echo "@@route6 $(ip -6 route show default | head -n1)"
ping -c 1 -W 5 203.0.113.10 >/dev/null 2>&1; echo "@@ping $?"
ping6 -c 1 -W 5 2001:db8:2::10 >/dev/null 2>&1; echo "@@ping6 $?"
echo "@@lo $(timeout 20 wget -q -O - http://198.51.100.1:${PORT_LO}/ 2>&1)"
echo "@@http6 $(timeout 20 wget -q -O - http://[2001:db8:2::10]:${PORT_HTTP6}/ 2>&1)"
echo "@@dns $(timeout 20 nslookup a.orzo.test 169.254.1.1 2>&1 | grep -A1 'Name:' | grep -o 'Address: [0-9.]*')"
printf '#!/bin/sh\\necho hello-from-vm\\n' > /tmp/serve; chmod +x /tmp/serve
echo "@@listening"
timeout 30 nc -l -p ${PORT_FWD} -e /tmp/serve; echo "@@served $?"
dd if=/dev/urandom of=/tmp/up bs=1024 count=1024 2>/dev/null
echo "@@upsha $(sha256sum /tmp/up | cut -d' ' -f1)"
timeout 25 nc 203.0.113.10 ${PORT_TCP} < /tmp/up > /tmp/down; echo "@@nc $?"
echo "@@echosha $(head -n1 /tmp/down)"
echo "@@down $(tail -c +66 /tmp/down | wc -c) $(tail -c +66 /tmp/down | sha256sum | cut -d' ' -f1)"
`;

/** SHA-256 of the 1 MiB pattern serve-halfclose sends (byte i = i & 0xff). */
async function patternSha(): Promise<string> {
  const p = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", p));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The servers of the test world: remote TCP and HTTP, host loopback HTTP, DNS. */
async function servers(t: Topology) {
  const peer = (ns: string, args: string[]) =>
    background(denoIn(ns, TCP_PEER, args, { env: { PEER_DEADLINE_MS: "170000" } }), {
      ready: "listening",
      timeoutMs: 170_000,
    });
  const started = [
    await peer(t.remote, ["serve-halfclose", "203.0.113.10", String(PORT_TCP)]),
    await peer(t.remote, ["serve-http", "2001:db8:2::10", String(PORT_HTTP6)]),
    await peer(t.host, ["serve-http", "127.0.0.1", String(PORT_LO)]),
    await dnsServer(t),
  ];
  return { stop: () => Promise.all(started.map((s) => s.stop())) };
}

/** What the VM reported, checked against what a translator must do. */
async function checkVm(
  vm: Vm,
  t: Topology,
  expect: { mtu: string; downStalls?: boolean },
): Promise<void> {
  const dhcp = kv(await vm.waitFor("dhcp", 60_000));
  assert.equal(dhcp.ip, "198.51.100.2", vm.text);
  assert.equal(dhcp.subnet, "255.255.255.0");
  assert.equal(dhcp.router, "198.51.100.1");
  assert.equal(dhcp.dns, "203.0.113.10", "the host's resolver (resolv.conf) is announced");
  assert.equal(dhcp.mtu, expect.mtu);
  assert.match(await vm.waitFor("addr6"), /^inet6 2001:db8:1:0:5054:ff:fe0a:b001\/64$/);
  assert.match(await vm.waitFor("route6"), /^default via fe80::/);
  assert.equal(await vm.waitFor("ping"), "0", "ping 203.0.113.10");
  assert.equal(await vm.waitFor("ping6"), "0", "ping6 2001:db8:2::10");
  assert.equal(await vm.waitFor("lo"), "hello from remote", "gateway -> host loopback");
  assert.equal(await vm.waitFor("http6"), "hello from remote", "IPv6 TCP to the remote");
  assert.equal(await vm.waitFor("dns"), "Address: 192.0.2.123", "DNS via --dns-forward");
  await vm.waitFor("listening");
  /* -t: from the remote namespace to the host's address, into the VM */
  let got = "";
  for (let i = 0; i < 20 && !got.includes("hello-from-vm"); i++) {
    const r = await run([
      "ip",
      "netns",
      "exec",
      t.remote,
      "socat",
      "-T",
      "10",
      "-",
      `TCP:198.51.100.2:${PORT_FWD}`,
    ], { timeoutMs: 15_000, stdin: "" });
    got = r.stdout;
    if (!got.includes("hello-from-vm")) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(got.trim(), "hello-from-vm", "-t forward reaches the VM's server");
  assert.equal(await vm.waitFor("served"), "0");
  const upSha = await vm.waitFor("upsha");
  const down = await vm.waitFor("down", 90_000);
  const ncStatus = vm.values("nc")[0];
  const echoSha = vm.values("echosha")[0];
  assert.equal(echoSha, upSha, "the server got the VM's 1 MiB intact");
  const full = `${1 << 20} ${await patternSha()}`;
  if (expect.downStalls && (ncStatus !== "0" || down !== full)) {
    /* Debian's passt (2023-03-09): the answer stalls after the guest's FIN */
    console.log(`known difference: nc status ${ncStatus}, got ${down.split(" ")[0]} of ${1 << 20}`);
  } else {
    assert.equal(ncStatus, "0", "nc ends: the server's FIN reached the VM");
    assert.equal(down, full, "1 MiB back, intact");
  }
  assert.equal(await vm.waitFor("done", 30_000), "0");
}

/** Builds the world: topology, resolv.conf, servers, a socket directory nobody may write. */
async function world() {
  const t = await Topology.create();
  const resolv = await hostResolvConf(t, "nameserver 203.0.113.10\n");
  /* the translators drop to nobody: ping sockets must be open to it */
  await t.hostSysctl("net.ipv4.ping_group_range=0 2147483647");
  const dir = await Deno.makeTempDir({ prefix: "orzo-passt-" });
  await Deno.chmod(dir, 0o777);
  let srv: { stop: () => Promise<unknown> } | null = null;
  try {
    srv = await servers(t);
  } catch (e) {
    await resolv();
    await t.destroy();
    throw e;
  }
  return {
    t,
    dir,
    sock: `${dir}/passt.socket`,
    async destroy() {
      await srv!.stop();
      await resolv();
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Waits for a socket file to appear (the translator is listening). */
async function socketReady(path: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if (Deno.statSync(path).isSocket) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no socket at ${path}`);
}

const COMMON = ["--dns-forward", "169.254.1.1", "-t", String(PORT_FWD)];

Deno.test({
  name: "passt mode: a VM gets DHCP, RA, ping, TCP both ways with half-close, loopback, DNS, -t",
  ignore: !isRoot || kernel === null,
  async fn() {
    const w = await world();
    const log = `${w.dir}/orzo.log`;
    const orzo = await background(
      orzoIn(w.t.host, ["-f", "-1", "-s", w.sock, "-l", log, ...COMMON]),
      { timeoutMs: 170_000 },
    );
    let vm: Vm | null = null;
    try {
      await socketReady(w.sock);
      vm = await Vm.boot(kernel!, { socket: w.sock, netns: w.t.host, script: SCRIPT, mac: MAC });
      await checkVm(vm, w.t, { mtu: "65520" });
      await vm.stop(20_000);
      /* --one-off: orzo quits when qemu leaves */
      const st = await Promise.race([
        orzo.child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.ok(st !== null && st.code === 0, "orzo exits 0 once its one client is gone");
      const text = await Deno.readTextFile(log);
      assert.match(text, /client closed connection, exiting/);
    } finally {
      await vm?.stop();
      await orzo.stop();
      await w.destroy();
    }
  },
});

Deno.test({
  name: "passt mode, the same VM test with Debian's passt (PASST_BIN)",
  ignore: !isRoot || kernel === null || !havePasst,
  async fn() {
    const w = await world();
    /* Debian's passt switches to nobody when root, then fails its namespace
     * set-up: start it as nobody, as DESIGN.md says for pasta */
    const passt = await background([
      "ip",
      "netns",
      "exec",
      w.t.host,
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      PASST_BIN,
      "-f",
      "-1",
      "-s",
      w.sock,
      ...COMMON,
    ], { timeoutMs: 170_000 });
    let vm: Vm | null = null;
    try {
      await socketReady(w.sock);
      vm = await Vm.boot(kernel!, { socket: w.sock, netns: w.t.host, script: SCRIPT, mac: MAC });
      await checkVm(vm, w.t, { mtu: "65520", downStalls: true });
    } finally {
      await vm?.stop();
      await passt.stop();
      await w.destroy();
    }
  },
});

Deno.test({
  name: "libvirt's exact passt argv serves a VM started with libvirt's JSON netdev",
  ignore: !isRoot || kernel === null,
  async fn() {
    const w = await world();
    const log = `${w.dir}/passt.log`;
    /* qemu_passt.c: passt --one-off --socket S --mac-addr M [--mtu N]
     * [--interface DEV] [--log-file F] [--address A --netmask P] [--tcp-ports SPEC] */
    const argv = [
      "--one-off",
      "--socket",
      w.sock,
      "--mac-addr",
      "9a:55:9a:55:9a:56",
      "--mtu",
      "1500",
      "--interface",
      "eth0",
      "--log-file",
      log,
      "--address",
      "198.51.100.2",
      "--netmask",
      "24",
      "--tcp-ports",
      String(PORT_FWD),
      "--dns-forward",
      "169.254.1.1",
    ];
    /* libvirt waits for passt to go to the background and exit 0 */
    const r = await run(orzoIn(w.t.host, [...argv]), {
      timeoutMs: 30_000,
      env: { ORZO_ARGV0: "passt" },
    });
    let vm: Vm | null = null;
    try {
      assert.equal(r.code, 0, r.stderr);
      await socketReady(w.sock, 1000);
      vm = await Vm.boot(kernel!, {
        socket: w.sock,
        netns: w.t.host,
        script: SCRIPT,
        mac: MAC,
        libvirtJson: true,
      });
      await checkVm(vm, w.t, { mtu: "1500" });
      await vm.stop(20_000);
      /* the background copy quits with its client */
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        gone = (await daemonPids(w.sock)).length === 0;
        if (!gone) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(gone, "the daemon quits with its one client");
      assert.match(await Deno.readTextFile(log), /client closed connection, exiting/);
    } finally {
      await vm?.stop();
      for (const pid of await daemonPids(w.sock)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await w.destroy();
    }
  },
});

/** PIDs of processes whose command line names the socket (the background orzo). */
async function daemonPids(sock: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (cmd.includes(sock) && cmd.includes(MAIN)) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}
