/**
 * End-to-end tests of UDP in pasta mode, in the hermetic topology
 * (tests/helpers/topology.ts): echo of many datagrams of every size both
 * ways, the forwarding matrix (IPv4, IPv6; tap and loopback paths; single
 * port, range, translated port and range, address- and interface-bound), and
 * iperf3 -u both ways. Every datagram is compared byte for byte by the
 * client (tests/helpers/udp_peer.ts), and the far side's hash of what it
 * received is checked too.
 */

import assert from "node:assert/strict";
import { installOrzo } from "../helpers/pasta_bin.ts";
import {
  asUser,
  background,
  denoIn,
  denoSh,
  run,
  Topology,
  UDP_PEER,
} from "../helpers/topology.ts";
import { withGuestServers } from "../helpers/guest.ts";

const isRoot = Deno.uid() === 0;
const PEER_RUN = denoSh(UDP_PEER);

type PeerResult = {
  addr: string;
  port: number;
  sent: number;
  ok: number;
  lost: number;
  bad: number;
  bytes: number;
  ms: number;
  serverCount: number;
  serverBytes: number;
  hashOk: boolean;
};

/** Parses the JSON lines of udp_peer.ts clients. */
function results(out: string): PeerResult[] {
  return out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Asserts that a client saw every datagram come back intact. */
function assertClean(r: PeerResult, what: string): void {
  const m = `${what}: ${JSON.stringify(r)}`;
  assert.equal(r.lost, 0, m);
  assert.equal(r.bad, 0, m);
  assert.equal(r.ok, r.sent, m);
  assert.equal(r.serverCount, r.sent, m);
  assert.equal(r.serverBytes, r.bytes, m);
  assert.ok(r.hashOk, m);
}

Deno.test({
  name: "UDP echo guest to remote: 10,000 datagrams of 1 to 65,000 bytes, IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const s4 = await background(
      denoIn(t.remote, UDP_PEER, ["echo", "203.0.113.10", "5000", "150"]),
      { ready: "ready", timeoutMs: 160000 },
    );
    const s6 = await background(
      denoIn(t.remote, UDP_PEER, ["echo", "2001:db8:2::10", "5001", "150"]),
      { ready: "ready", timeoutMs: 160000 },
    );
    try {
      const r = await t.orzo(
        [
          "--config-net",
          "--",
          "sh",
          "-c",
          `${PEER_RUN} client 203.0.113.10 5000 10000 1 65000; ` +
          `${PEER_RUN} client 2001:db8:2::10 5001 10000 1 65000`,
        ],
        { timeoutMs: 150000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const [v4, v6] = results(r.stdout);
      assert.ok(v4 && v6, r.stdout + r.stderr);
      assertClean(v4, "IPv4");
      assertClean(v6, "IPv6");
      assert.equal(v4.sent, 10000);
      console.log(
        `guest -> remote echo, 10,000 datagrams: IPv4 ${v4.ms.toFixed(0)} ms, IPv6 ${
          v6.ms.toFixed(0)
        } ms`,
      );
    } finally {
      await s4.stop();
      await s6.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "UDP bursts guest to remote and back: batched sends (GSO) and segmentation frames to the " +
    "guest keep every datagram intact and in order, IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const servers = await Promise.all(
      [["203.0.113.10", "5000"], ["2001:db8:2::10", "5001"]].map(([addr, port]) =>
        background(
          denoIn(t.remote, UDP_PEER, ["echo"])
            .concat([addr!, port!, "150"]),
          { ready: "ready", timeoutMs: 160000 },
        )
      ),
    );
    try {
      /* 100 rounds of 40 datagrams of 1400 bytes sent at once: they leave the tap together
       * (one sendmmsg, or UDP GSO sends on the flow's socket) and their echoes arrive together
       * (one recvmmsg, written to the tap as segmentation frames) */
      const r = await t.orzo(
        [
          "-d",
          "--config-net",
          "--",
          "sh",
          "-c",
          /* the gateway's address resolved first: datagrams queued while ARP or NDP
           * resolves it can be overtaken by later ones (the guest's kernel) */
          `ping -c 1 -W 2 203.0.113.10 >/dev/null; ping -c 1 -W 2 2001:db8:2::10 >/dev/null; ` +
          `${PEER_RUN} burst 203.0.113.10 5000 100 40 1400; ` +
          `${PEER_RUN} burst 2001:db8:2::10 5001 100 40 1400; ` +
          /* larger than the uplink's MTU: the kernel refuses GSO, sendmmsg() takes over */
          `${PEER_RUN} burst 203.0.113.10 5000 20 20 3000`,
        ],
        { timeoutMs: 150000 },
      );
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const [v4, v6, big] = results(r.stdout);
      assert.ok(v4 && v6 && big, r.stdout + r.stderr.slice(-3000));
      assertClean(v4, "IPv4");
      assertClean(v6, "IPv6");
      assertClean(big, "IPv4, 3000 bytes");
      assert.equal(v4.sent + v6.sent + big.sent, 8400);
      /* the counters at exit: datagrams written to the guest, and tap frames written */
      const toTap = Number(/datagrams from tap \d+, to tap (\d+)/.exec(r.stderr)?.[1]);
      const framesOut = Number(/tap: frames in \d+, out (\d+)/.exec(r.stderr)?.[1]);
      assert.ok(toTap >= 8400, `to tap ${toTap}`);
      console.log(
        `bursts: IPv4 ${v4.ms.toFixed(0)} ms, IPv6 ${v6.ms.toFixed(0)} ms; ` +
          `${toTap} datagrams to the guest in ${framesOut} tap frames (all kinds)`,
      );
    } finally {
      for (const s of servers) await s.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "UDP echo remote to guest through -u: 10,000 datagrams of 1 to 65,000 bytes, IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const { value, orzo } = await withGuestServers(
        t,
        ["--config-net", "-u", "6000", "-u", "6001"],
        [`${PEER_RUN} echo :: 6000,6001 150`],
        async () => {
          const c = (args: string) =>
            run(denoIn(t.remote, UDP_PEER, ["client", ...args.split(" ")]), { timeoutMs: 120000 });
          const r4 = await c("198.51.100.2 6000 10000 1 65000 2000 203.0.113.10:0");
          const r6 = await c("2001:db8:1::2 6001 10000 1 65000 2000 [2001:db8:2::10]:0");
          return [r4, r6];
        },
        { timeoutMs: 150000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      const [r4, r6] = value;
      const [v4] = results(r4!.stdout);
      const [v6] = results(r6!.stdout);
      assert.ok(v4 && v6, r4!.stdout + r4!.stderr + r6!.stdout + r6!.stderr);
      assertClean(v4, "IPv4");
      assertClean(v6, "IPv6");
      console.log(
        `remote -> guest echo, 10,000 datagrams: IPv4 ${v4.ms.toFixed(0)} ms, IPv6 ${
          v6.ms.toFixed(0)
        } ms`,
      );
    } finally {
      await t.destroy();
    }
  },
});

/** A client job of udp_peer.ts multi. */
type Job = {
  addr: string;
  port: number;
  count: number;
  min: number;
  max: number;
  bind?: string;
  what: string;
};

/** A small (3 datagrams) and a large (>= 10 MiB) transfer to addr:port. */
function jobs(what: string, addr: string, port: number, bind?: string): Job[] {
  const b = bind === undefined ? {} : { bind };
  return [
    { what: `${what} small`, addr, port, count: 3, min: 1, max: 1400, ...b },
    { what: `${what} large`, addr, port, count: 210, min: 40000, max: 65000, ...b },
  ];
}

/** Runs jobs with udp_peer.ts multi in a namespace (null: orzo's guest runs them). */
async function runJobs(ns: string, list: Job[]): Promise<PeerResult[]> {
  const r = await run(
    denoIn(ns, UDP_PEER, ["multi", JSON.stringify(list)]),
    { timeoutMs: 120000 },
  );
  const out = results(r.stdout);
  assert.equal(out.length, list.length, r.stdout + r.stderr);
  return out;
}

function assertJobs(list: Job[], out: PeerResult[]): void {
  for (let i = 0; i < list.length; i++) {
    assertClean(out[i]!, list[i]!.what);
    if (list[i]!.what.endsWith("large")) assert.ok(out[i]!.bytes >= 10 << 20, list[i]!.what);
  }
}

Deno.test({
  name: "UDP forwarding matrix, host to guest (-u): IPv4 and IPv6, tap and loopback paths",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const args = [
        "--config-net",
        ...["-u", "7001"],
        ...["-u", "7010-7012"],
        ...["-u", "7020:7021"],
        ...["-u", "7030-7031:7040-7041"],
        ...["-u", "198.51.100.2/7050"],
        ...["-u", "2001:db8:1::2/7051"],
        ...["-u", "127.0.0.1/7052"],
        ...["-u", "::1/7053"],
        ...["-u", "%eth0/7060"],
        ...["-u", "%lo/7062"],
      ];
      const ports = "7001,7010,7012,7021,7040,7041,7050,7051,7052,7053,7060,7062";
      const tap: Job[] = [];
      const lo: Job[] = [];
      for (const v6 of [false, true]) {
        const fam = v6 ? "IPv6" : "IPv4";
        const guest = v6 ? "2001:db8:1::2" : "198.51.100.2";
        const remote = v6 ? "[2001:db8:2::10]:0" : "203.0.113.10:0";
        const loop = v6 ? "::1" : "127.0.0.1";
        const both = (path: string, addr: string, bind: string | undefined, list: Job[]) => {
          list.push(...jobs(`${fam} ${path} single port`, addr, 7001, bind));
          list.push(...jobs(`${fam} ${path} range, first`, addr, 7010, bind));
          list.push(...jobs(`${fam} ${path} range, last`, addr, 7012, bind));
          list.push(...jobs(`${fam} ${path} translated port`, addr, 7020, bind));
          list.push(...jobs(`${fam} ${path} translated range, first`, addr, 7030, bind));
          list.push(...jobs(`${fam} ${path} translated range, last`, addr, 7031, bind));
        };
        both("tap", guest, remote, tap);
        tap.push(...jobs(`${fam} tap address-bound`, guest, v6 ? 7051 : 7050, remote));
        tap.push(...jobs(`${fam} tap interface-bound`, guest, 7060, remote));
        both("loopback", loop, undefined, lo);
        lo.push(...jobs(`${fam} loopback address-bound`, loop, v6 ? 7053 : 7052));
        lo.push(...jobs(`${fam} loopback interface-bound`, loop, 7062));
      }
      const { value, orzo } = await withGuestServers(
        t,
        ["-d", ...args],
        [`${PEER_RUN} echo :: ${ports} 150`],
        async () => [await runJobs(t.remote, tap), await runJobs(t.host, lo)],
        { timeoutMs: 150000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      assertJobs(tap, value[0]!);
      assertJobs(lo, value[1]!);
      /* the loopback path does not go through the tap */
      const m = /spliced (\d+)/.exec(orzo.stderr);
      assert.ok(m !== null && Number(m[1]) > 0, orzo.stderr);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "UDP forwarding matrix, guest loopback to host loopback (-U): IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await background(
      denoIn(t.host, UDP_PEER, ["echo", "::", "7101,7110,7112,7121,7140,7141", "150"]),
      { ready: "ready", timeoutMs: 160000 },
    );
    try {
      const list: Job[] = [];
      for (const addr of ["127.0.0.1", "::1"]) {
        const fam = addr === "::1" ? "IPv6" : "IPv4";
        list.push(...jobs(`${fam} single port`, addr, 7101));
        list.push(...jobs(`${fam} range, first`, addr, 7110));
        list.push(...jobs(`${fam} range, last`, addr, 7112));
        list.push(...jobs(`${fam} translated port`, addr, 7120));
        list.push(...jobs(`${fam} translated range, first`, addr, 7130));
        list.push(...jobs(`${fam} translated range, last`, addr, 7131));
      }
      const r = await t.orzo(
        [
          "--config-net",
          "-d",
          ...["-U", "7101"],
          ...["-U", "7110-7112"],
          ...["-U", "7120:7121"],
          ...["-U", "7130-7131:7140-7141"],
          "--",
          "sh",
          "-c",
          `${PEER_RUN} multi '${JSON.stringify(list)}'`,
        ],
        { timeoutMs: 150000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const out = results(r.stdout);
      assert.equal(out.length, list.length, r.stdout + r.stderr);
      assertJobs(list, out);
      /* all of it spliced: nothing went to the tap */
      assert.match(r.stderr, /to tap 0, spliced [1-9]/);
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

/** The share of iperf3's datagrams a test tolerates losing (bench/ measures loss). */
const UDP_LOSS_MAX = 0.2;

/** iperf3 --json's UDP summary: received bits per second and loss. */
function iperfUdp(out: string): { bps: number; lost: number; packets: number } {
  const j = JSON.parse(out);
  const s = j.end?.sum;
  assert.ok(s !== undefined, out.slice(0, 2000));
  return { bps: s.bits_per_second, lost: s.lost_packets, packets: s.packets };
}

Deno.test({
  name: "iperf3 -u from the guest, both directions (-R), IPv4 and IPv6",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* bound to the address the guest targets: replies come from it (a
     * connected flow socket takes nothing else, as with pasta) */
    const srv4 = await background(
      ["ip", "netns", "exec", t.remote, "iperf3", "-s", "-B", "203.0.113.10", "-p", "5201"],
      { timeoutMs: 90000 },
    );
    const srv6 = await background(
      ["ip", "netns", "exec", t.remote, "iperf3", "-s", "-B", "2001:db8:2::10", "-p", "5202"],
      { timeoutMs: 90000 },
    );
    try {
      await new Promise((r) => setTimeout(r, 300));
      const cmd = (addr: string, rev: string) =>
        `timeout 20 iperf3 -c ${addr} -p ${addr.includes(":") ? 5202 : 5201} -u -b 200M -l 1400 ` +
        `-t 2 --json ${rev} > /tmp/orzo-iperf.$$ 2>&1; ` +
        `cat /tmp/orzo-iperf.$$; rm -f /tmp/orzo-iperf.$$; echo '#--'`;
      const r = await t.orzo(
        [
          "--config-net",
          "--",
          "sh",
          "-c",
          [
            cmd("203.0.113.10", ""),
            cmd("203.0.113.10", "-R"),
            cmd("2001:db8:2::10", ""),
            cmd("2001:db8:2::10", "-R"),
          ].join("; "),
        ],
        { timeoutMs: 80000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const runs = r.stdout.split("#--\n").filter((s) => s.trim() !== "").map(iperfUdp);
      assert.equal(runs.length, 4, r.stdout.slice(0, 3000));
      const names = [
        "IPv4 guest->remote",
        "IPv4 remote->guest",
        "IPv6 guest->remote",
        "IPv6 remote->guest",
      ];
      runs.forEach((x, i) => {
        assert.ok(x.bps > 50e6, `${names[i]}: ${JSON.stringify(x)}`);
        /* loss at 200 Mbit/s depends on how busy the machine's 2 CPUs are:
         * its rate is bench/'s business; here, most datagrams must pass */
        assert.ok(x.lost <= x.packets * UDP_LOSS_MAX, `${names[i]}: ${JSON.stringify(x)}`);
      });
      console.log(
        runs.map((x, i) =>
          `${names[i]}: ${(x.bps / 1e6).toFixed(0)} Mbit/s, ${x.lost}/${x.packets} lost`
        ).join("; "),
      );
    } finally {
      await srv4.stop();
      await srv6.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "--no-udp: datagrams from the guest go nowhere, and -u is refused",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const s4 = await background(
      denoIn(t.remote, UDP_PEER, ["echo", "203.0.113.10", "5000", "60"]),
      { ready: "ready", timeoutMs: 70000 },
    );
    try {
      const r = await t.orzo(
        [
          "--config-net",
          "--no-udp",
          "--",
          "sh",
          "-c",
          `${PEER_RUN} client 203.0.113.10 5000 2 1 10 500`,
        ],
        { timeoutMs: 60000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const [x] = results(r.stdout);
      assert.equal(x?.lost, 2, r.stdout);
      const bad = await t.orzo(["--no-udp", "-u", "5000", "--", "true"]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /UDP is disabled/);
    } finally {
      await s4.stop();
      await t.destroy();
    }
  },
});

/** Waits (up to ms) until a UDP port is bound in a namespace. */
async function udpBound(ns: string, port: number, ms = 5000): Promise<boolean> {
  for (let i = 0; i < ms / 100; i++) {
    const r = await run(["ip", "netns", "exec", ns, "ss", "-Hnul", `sport = :${port}`]);
    if (r.stdout.trim() !== "") return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

Deno.test({
  name:
    "-u auto and -U auto (the defaults): bound UDP ports, and listening TCP ports, are forwarded",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* a host service on its loopback, for -U auto */
    const hostSrv = await background(
      denoIn(t.host, UDP_PEER, ["echo", "127.0.0.1", "7301", "90"]),
      { ready: "ready", timeoutMs: 100000 },
    );
    const outFile = await Deno.makeTempFile({ prefix: "orzo-auto-" });
    await Deno.chmod(outFile, 0o666);
    try {
      const { value, orzo } = await withGuestServers(
        t,
        ["--config-net", "-d", "-t", "none", "-T", "none"],
        [
          `${PEER_RUN} echo :: 7201 90`,
          /* a TCP listener only: its port is forwarded for UDP as well */
          "timeout --foreground 60 socat TCP-LISTEN:7202,reuseaddr EXEC:cat & sleep 0.3; echo ready; wait",
          /* the guest reaches the host's loopback service through -U auto */
          `i=0; while [ $i -lt 50 ]; do ss -Hnul 'sport = :7301' | grep -q . && break; sleep 0.1; i=$((i+1)); done; ` +
          `${PEER_RUN} client 127.0.0.1 7301 20 1 30000 2000 > ${outFile}; echo ready`,
        ],
        async () => {
          const b1 = await udpBound(t.host, 7201);
          const b2 = await udpBound(t.host, 7202);
          const c = await runJobs(
            t.remote,
            jobs("IPv4 auto", "198.51.100.2", 7201, "203.0.113.10:0"),
          );
          return { b1, b2, c };
        },
        { timeoutMs: 120000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      assert.ok(value.b1, "guest UDP port 7201 is bound on the host");
      assert.ok(value.b2, "guest TCP port 7202 is bound for UDP on the host");
      assertJobs(jobs("IPv4 auto", "198.51.100.2", 7201), value.c);
      assert.match(orzo.stderr, /auto forwarding: UDP port 7301 \(namespace to host\)/);
      const [u] = results(await Deno.readTextFile(outFile));
      assert.ok(u !== undefined, "the guest's -U client ran");
      assertClean(u, "IPv4 -U auto");
    } finally {
      await Deno.remove(outFile).catch(() => {});
      await hostSrv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "an ordinary user's orzo: UDP out through the tap, -U spliced to the host's loopback, ping",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* the checkout may not be readable by others: a bundle and a copy of deno */
    const orzo = await installOrzo();
    const remote = await background(
      denoIn(t.remote, UDP_PEER, ["echo", "203.0.113.10", "5000", "60"]),
      { ready: "ready", timeoutMs: 70000 },
    );
    const local = await background(
      denoIn(t.host, UDP_PEER, ["echo", "127.0.0.1", "5001", "60"]),
      { ready: "ready", timeoutMs: 70000 },
    );
    try {
      await t.hostSysctl("net.ipv4.ping_group_range=0 2147483647");
      const r = await t.inHost([
        ...asUser(),
        orzo.path,
        "--config-net",
        "-U",
        "5001",
        "--",
        "sh",
        "-c",
        "echo out-ok | socat -t 2 - UDP:203.0.113.10:5000; echo lo-ok | socat -t 2 - UDP:127.0.0.1:5001; " +
        "ping -c 2 -i 0.2 -W 2 -q 203.0.113.10 | grep -o '[0-9]* received'",
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        r.stdout.trim().split("\n"),
        ["out-ok", "lo-ok", "2 received"],
        r.stdout + r.stderr,
      );
    } finally {
      await remote.stop();
      await local.stop();
      await orzo.remove();
      await t.destroy();
    }
  },
});

Deno.test({
  name:
    "-t PORT alone: the guest's TCP server port is forwarded for UDP too (iperf3 -u, remote to guest)",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const { value, orzo } = await withGuestServers(
        t,
        ["--config-net", "-t", "5201"],
        ["timeout --foreground 60 iperf3 -s -p 5201 & sleep 0.5; echo ready; wait"],
        async () => {
          await udpBound(t.host, 5201);
          return await run([
            "ip",
            "netns",
            "exec",
            t.remote,
            "timeout",
            "30",
            "iperf3",
            "-c",
            "198.51.100.2",
            "-B",
            "203.0.113.10",
            "-p",
            "5201",
            "-u",
            "-b",
            "100M",
            "-l",
            "1400",
            "-t",
            "2",
            "--json",
          ], { timeoutMs: 40000 });
        },
        { timeoutMs: 90000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      assert.equal(value.code, 0, value.stdout.slice(0, 2000) + value.stderr);
      const x = iperfUdp(value.stdout);
      assert.ok(x.bps > 50e6 && x.lost <= x.packets * UDP_LOSS_MAX, JSON.stringify(x));
    } finally {
      await t.destroy();
    }
  },
});
