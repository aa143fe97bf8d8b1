/**
 * End-to-end tests of pasta mode start-up, in the hermetic topology
 * (tests/helpers/topology.ts): real namespaces, real `ip`, `ping`, `unshare`.
 */

import assert from "node:assert/strict";
import { installOrzo } from "../helpers/pasta_bin.ts";
import {
  asUser,
  background,
  denoSh,
  INJECT,
  orzoIn,
  run,
  sh,
  TCP_PEER,
  Topology,
} from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const OUR_MAC = "9a:55:9a:55:9a:55";
const PEER = denoSh(TCP_PEER);

type IpAddr = {
  ifname: string;
  mtu: number;
  address?: string;
  "addr_info": { family: string; local: string; prefixlen: number; scope: string }[];
};
type IpRoute = { dst: string; gateway?: string; dev: string };
type IpNeigh = { dst: string; dev: string; lladdr?: string; state?: string[] };

/** Runs `sh -c SCRIPT` as orzo's command and returns orzo's result. */
function guestSh(t: Topology, args: string[], script: string, timeoutMs = 30000) {
  return t.orzo([...args, "--", "sh", "-c", script], { timeoutMs });
}

/** Splits the output of several `ip -j` commands separated by a marker line. */
function sections(out: string): string[] {
  return out.split("\n--\n").map((s) => s.trim());
}

Deno.test({
  name: "pasta --config-net copies the host's addresses and routes, MTU 65520",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(
        t,
        ["--config-net"],
        "ip -j addr show; echo --; ip -j route show; echo --; ip -j -6 route show",
      );
      assert.equal(r.code, 0, r.stderr);
      const [addrJ, r4J, r6J] = sections(r.stdout);
      const links = JSON.parse(addrJ!) as IpAddr[];
      const tap = links.find((l) => l.ifname === "eth0");
      assert.ok(tap, `no eth0 in ${addrJ}`);
      assert.equal(tap.mtu, 65520);
      const v4 = tap.addr_info.find((a) => a.family === "inet");
      assert.equal(v4?.local, "198.51.100.2");
      assert.equal(v4?.prefixlen, 24);
      const v6 = tap.addr_info.find((a) => a.family === "inet6" && a.scope === "global");
      assert.equal(v6?.local, "2001:db8:1::2");
      assert.equal(v6?.prefixlen, 64);
      const lo = links.find((l) => l.ifname === "lo");
      assert.ok(lo?.addr_info.some((a) => a.local === "127.0.0.1"), "loopback is up");
      const r4 = JSON.parse(r4J!) as IpRoute[];
      assert.ok(r4.some((x) => x.dst === "default" && x.gateway === "198.51.100.1"), r4J);
      const r6 = JSON.parse(r6J!) as IpRoute[];
      assert.ok(r6.some((x) => x.dst === "default" && x.gateway === "2001:db8:1::1"), r6J);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta -m, -a, -g, -I override the copied configuration",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(
        t,
        [
          "--config-net",
          "-m",
          "1500",
          "-a",
          "10.10.0.5",
          "-n",
          "16",
          "-g",
          "10.10.0.1",
          "-I",
          "tapx",
          "-4",
        ],
        "ip -j addr show dev tapx; echo --; ip -j route show",
      );
      assert.equal(r.code, 0, r.stderr);
      const [addrJ, r4J] = sections(r.stdout);
      const tap = (JSON.parse(addrJ!) as IpAddr[])[0]!;
      assert.equal(tap.mtu, 1500);
      assert.deepEqual(
        tap.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
        ["10.10.0.5/16"],
      );
      assert.ok(!tap.addr_info.some((a) => a.family === "inet6" && a.scope === "global"));
      const r4 = JSON.parse(r4J!) as IpRoute[];
      assert.ok(r4.some((x) => x.dst === "default" && x.gateway === "10.10.0.1"), r4J);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta answers ARP and NDP for the gateway with its own MAC",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(
        t,
        ["--config-net"],
        "ping -c1 -W1 198.51.100.1 >/dev/null 2>&1; ping -6 -c1 -W1 2001:db8:1::1 >/dev/null 2>&1;" +
          " ip -j neigh show dev eth0",
      );
      assert.equal(r.code, 0, r.stderr);
      const neigh = JSON.parse(r.stdout) as IpNeigh[];
      const gw4 = neigh.find((n) => n.dst === "198.51.100.1");
      assert.equal(gw4?.lladdr, OUR_MAC, r.stdout);
      const gw6 = neigh.find((n) => n.dst === "2001:db8:1::1");
      assert.equal(gw6?.lladdr, OUR_MAC, r.stdout);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta without --config-net: the guest learns the prefix from a router advertisement",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(
        t,
        [],
        "ip link set eth0 up; i=0; while [ $i -lt 100 ]; do " +
          "ip -6 addr show dev eth0 scope global | grep -q 2001:db8:1: && break; " +
          "sleep 0.1; i=$((i+1)); done; ip -j -6 addr show dev eth0; echo --; ip -j -6 route show",
      );
      assert.equal(r.code, 0, r.stderr);
      const [addrJ, routeJ] = sections(r.stdout);
      const tap = (JSON.parse(addrJ!) as IpAddr[])[0]!;
      const slaac = tap.addr_info.find((a) => a.scope === "global");
      assert.ok(slaac?.local.startsWith("2001:db8:1:0:"), addrJ);
      assert.equal(slaac?.prefixlen, 64);
      const routes = JSON.parse(routeJ!) as IpRoute[];
      assert.ok(routes.some((x) => x.dst === "default" && x.gateway?.startsWith("fe80::")), routeJ);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta without a host default route starts in local mode (link-local addresses)",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create({ noDefaultRoute: true });
    try {
      const r = await guestSh(
        t,
        ["--config-net"],
        "ip -j addr show; echo --; ip -j route show; echo --; ip -j -6 route show",
      );
      assert.equal(r.code, 0, r.stderr);
      const [addrJ, r4J, r6J] = sections(r.stdout);
      const tap = (JSON.parse(addrJ!) as IpAddr[]).find((l) => l.ifname === "tap0");
      assert.ok(tap, addrJ);
      const v4 = tap["addr_info"].find((a) => a.family === "inet");
      assert.equal(`${v4?.local}/${v4?.prefixlen}`, "169.254.2.1/16");
      const r4 = JSON.parse(r4J!) as IpRoute[];
      assert.ok(r4.some((x) => x.dst === "default" && x.gateway === "169.254.2.2"), r4J);
      const r6 = JSON.parse(r6J!) as IpRoute[];
      assert.ok(r6.some((x) => x.dst === "default" && x.gateway === "fe80::1"), r6J);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta -l writes its log to a file",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const log = await Deno.makeTempFile();
    try {
      const r = await guestSh(t, ["-d", "-l", log, "--log-size", "65536"], "true");
      assert.equal(r.code, 0, r.stderr);
      const text = await Deno.readTextFile(log);
      assert.match(text, /tap: frames in \d+/);
      assert.equal(r.stderr, "", "nothing on stderr when logging to a file");
    } finally {
      await Deno.remove(log);
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta --stats 1 prints the event table and the counters during a transfer",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await background(
      [
        "ip",
        "netns",
        "exec",
        t.remote,
        "sh",
        "-c",
        `exec ${PEER} serve-halfclose 203.0.113.10 9070`,
      ],
      { ready: "listening" },
    );
    try {
      const r = await guestSh(
        t,
        [
          "-f",
          "--stats",
          "1",
          "--config-net",
          "-t",
          "none",
          "-u",
          "none",
          "-T",
          "none",
          "-U",
          "none",
        ],
        `${PEER} client-halfclose 203.0.113.10 9070 ${20 << 20} && sleep 1.5 && ` +
          `${PEER} client-halfclose 203.0.113.10 9070 1000`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok\nok");
      const lines = r.stderr.split("\n");
      const header = lines.findIndex((l) => /^\s+tap \(pasta\)\s.*\sTCP\s/.test(l));
      assert.ok(header >= 0, r.stderr);
      assert.match(lines[header + 1]!, /^(\s+\d+)+$/, "a row of event counts under the header");
      const tables = lines.filter((l) => /^(\s+\d+)+$/.test(l));
      assert.ok(tables.length >= 2, `a table each second while traffic flows:\n${r.stderr}`);
      const tcp = lines.filter((l) => l.startsWith("TCP: opened"));
      assert.equal(tcp.length, tables.length, "the counters follow each table");
      assert.ok(tcp.some((l) => /TCP: opened [12],/.test(l)), r.stderr);
      assert.ok(lines.some((l) => /^tap: frames in [1-9]/.test(l)), r.stderr);
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta accepts the obsolete -e/--stderr and says it has no effect",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(t, ["-e", "--stderr", "--config-net"], "echo fine");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "fine");
      assert.match(r.stderr, /--stderr has no effect/);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta exits with the command's exit status",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await guestSh(t, [], "exit 7");
      assert.equal(r.code, 7, r.stderr);
      const k = await guestSh(t, [], "kill -TERM $$");
      assert.equal(k.code, 128 + 15, k.stderr);
    } finally {
      await t.destroy();
    }
  },
});

/** Waits until a process is gone, up to `ms`. */
async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

Deno.test({
  name: "pasta attaches to a namespace by PID, and quits when that process exits",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const pidFile = await Deno.makeTempFile();
    const holder = new Deno.Command("ip", {
      args: ["netns", "exec", t.host, "unshare", "--net", "sleep", "60"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      /* wait for unshare to exec sleep in its new namespace */
      let target = 0;
      for (let i = 0; i < 100 && target === 0; i++) {
        const kids = await run(["pgrep", "-P", String(holder.pid), "sleep"]);
        const sleepPid = Number(kids.stdout.trim().split("\n")[0]);
        const ns = await run(["readlink", `/proc/${sleepPid || holder.pid}/ns/net`]);
        const mine = await run(["readlink", "/proc/self/ns/net"]);
        const hostNs = await t.inHost(["readlink", "/proc/self/ns/net"]);
        if (ns.stdout && ns.stdout !== mine.stdout && ns.stdout !== hostNs.stdout) {
          target = sleepPid || holder.pid;
        } else await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(target > 0, "namespace holder started");
      const r = await t.orzo(["--config-net", "-P", pidFile, String(target)]);
      assert.equal(r.code, 0, r.stderr);
      const orzoPid = Number((await Deno.readTextFile(pidFile)).trim());
      assert.ok(orzoPid > 0);
      const addr = await run([
        "nsenter",
        "-t",
        String(target),
        "-n",
        "ip",
        "-j",
        "addr",
        "show",
        "eth0",
      ]);
      const tap = (JSON.parse(addr.stdout) as IpAddr[])[0]!;
      assert.ok(tap.addr_info.some((a) => a.local === "198.51.100.2"), addr.stdout);
      holder.kill("SIGKILL");
      await run(["kill", "-KILL", String(target)]);
      assert.ok(await waitGone(orzoPid, 5000), "orzo exited after the namespace's process");
    } finally {
      try {
        holder.kill("SIGKILL");
      } catch { /* gone */ }
      await holder.status;
      await Deno.remove(pidFile).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta attaches to --netns NAME, and quits when the namespace is deleted",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const guest = `orzo-g-${Deno.pid}`;
    const pidFile = await Deno.makeTempFile();
    await sh(["ip", "netns", "add", guest]);
    try {
      const r = await t.orzo(["--config-net", "-P", pidFile, "--netns", guest]);
      assert.equal(r.code, 0, r.stderr);
      const orzoPid = Number((await Deno.readTextFile(pidFile)).trim());
      const addr = await run(["ip", "-n", guest, "-j", "addr", "show", "eth0"]);
      const tap = (JSON.parse(addr.stdout) as IpAddr[])[0]!;
      assert.ok(tap.addr_info.some((a) => a.local === "2001:db8:1::2"), addr.stdout);
      await sh(["ip", "netns", "del", guest]);
      assert.ok(await waitGone(orzoPid, 5000), "orzo exited after the namespace was deleted");
    } finally {
      await run(["ip", "netns", "del", guest]);
      await Deno.remove(pidFile).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta works for an ordinary user (new user namespace, uid mapped to 0)",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* the checkout may not be readable by others (tests/helpers/pasta_bin.ts) */
    const orzo = await installOrzo();
    try {
      const r = await t.inHost([
        ...asUser(),
        orzo.path,
        "--config-net",
        "--",
        "sh",
        "-c",
        "id -u; ip -j addr show dev eth0",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const [uid, json] = r.stdout.split("\n", 2);
      assert.equal(uid, "0");
      const tap = (JSON.parse(json!) as IpAddr[])[0]!;
      assert.equal(tap.mtu, 65520);
      assert.ok(tap["addr_info"].some((a) => a.local === "198.51.100.2"), json);
    } finally {
      await orzo.remove();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta drops and counts malformed frames, and keeps answering",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const dst = "9a559a559a55";
      const src = "020000000001";
      const frames = [
        `${dst}${src}0806` + "0001", /* ARP cut short */
        `${dst}${src}0806` + "0001080006040001".padEnd(56, "0").slice(0, 40), /* short ARP body */
        `${dst}${src}0800` + "4500", /* IPv4 header cut short */
        `${dst}${src}86dd` + "6000000000083aff", /* IPv6 header cut short */
        /* ICMPv6 neighbour solicitation with payload length beyond the frame */
        `${dst}${src}86dd` + "600000000400" + "3aff" + "fe80".padEnd(32, "0") +
        "ff02".padEnd(32, "0") + "8700000000000000",
      ];
      const garbage: string[] = [];
      let seed = 12345;
      for (let i = 0; i < 20; i++) {
        let h = `${dst}${src}${i % 2 ? "0806" : "86dd"}`;
        const n = 1 + (i * 7) % 60;
        for (let j = 0; j < n; j++) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          h += (seed >> 16 & 0xff).toString(16).padStart(2, "0");
        }
        garbage.push(h);
      }
      const inject = `${denoSh(INJECT)} eth0 ` +
        [...frames, ...garbage].join(" ");
      const r = await guestSh(
        t,
        ["--config-net", "-d"],
        `${inject}; ping -c1 -W1 198.51.100.1 >/dev/null 2>&1; ip -j neigh show dev eth0`,
      );
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(Number(lines[0]), frames.length + garbage.length, "all frames were sent");
      const neigh = JSON.parse(lines[1]!) as IpNeigh[];
      assert.equal(neigh.find((n) => n.dst === "198.51.100.1")?.lladdr, OUR_MAC);
      const m = r.stderr.match(/malformed (\d+)/);
      assert.ok(m, r.stderr);
      assert.ok(Number(m[1]) >= frames.length, `malformed count ${m[1]}`);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta --pcap writes a capture that tshark reads",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const pcap = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const r = await guestSh(
        t,
        ["--config-net", "-p", pcap],
        "ping -c1 -W1 198.51.100.1 >/dev/null 2>&1; true",
      );
      assert.equal(r.code, 0, r.stderr);
      const ts = await run([
        "tshark",
        "-r",
        pcap,
        "-Y",
        "arp.opcode == 2",
        "-T",
        "fields",
        "-e",
        "arp.src.hw_mac",
      ]);
      assert.equal(ts.code, 0, ts.stderr);
      assert.ok(ts.stdout.includes(OUR_MAC), ts.stdout);
    } finally {
      await Deno.remove(pcap).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "pasta rejects a bad option with one line and status 1",
  async fn() {
    const r = await run(orzoIn(null, ["--pasta", "--bogus"]));
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /bogus/);
  },
});

Deno.test({
  name: "pasta attaching to a missing namespace reports it in one line from the background copy",
  ignore: !isRoot,
  async fn() {
    const r = await run(orzoIn(null, ["--pasta", "--netns", "orzo-missing"]));
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), "orzo: open /run/netns/orzo-missing: ENOENT");
  },
});
