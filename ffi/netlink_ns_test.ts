/**
 * netlink_ns_test.ts - rtnetlink against real network namespaces (root only).
 *
 * Each test creates its own namespaces (`ip netns add orzo-nltest-...`), builds
 * veth links, addresses and routes in them with `ip`, opens netlink sockets
 * inside them by entering them on the main thread (setns, then back), and
 * checks what orzo reads and configures against `ip -j`. The machine's own
 * network configuration is never touched; namespaces are deleted in `finally`.
 */

import assert from "node:assert/strict";
import { libc } from "./libc.ts";
import { check } from "./errno.ts";
import { cString } from "./mem.ts";
import { AF_INET, AF_INET6, CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from "./layout.ts";
import { IFF_UP, nlAddrToString, NlError, nlReqDumpRoutes, nlStamp } from "./netlink.ts";
import {
  hostUpstream,
  nlAddAddr,
  nlAddRoute,
  nlAddrs,
  nlClose,
  nlCopyAddrs,
  nlCopyRoutes,
  nlDelAddr,
  nlDelRoute,
  nlLink,
  nlLinkByName,
  nlLinkUp,
  nlOpen,
  nlRoutes,
  nlSetLinkLocalNodad,
  nlSetMac,
  nlSetMtu,
} from "./netlink_io.ts";

const isRoot = libc.symbols.geteuid() === 0;
const dec = new TextDecoder();

function nsName(tag: string): string {
  return `orzo-nltest-${Deno.pid}-${Math.floor(Math.random() * 1e6)}-${tag}`;
}

/** Runs `ip` and returns its standard output. */
async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${dec.decode(out.stderr).trim()}`);
  return dec.decode(out.stdout);
}

/** Runs `ip -n NS -batch -` with the given commands on standard input. */
async function ipBatchStdin(ns: string, text: string): Promise<void> {
  const child = new Deno.Command("ip", {
    args: ["-n", ns, "-batch", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`ip -batch: ${dec.decode(out.stderr).trim()}`);
}

/** Runs `ip -j -n NS ...` and parses the JSON. */
// deno-lint-ignore no-explicit-any -- ip's JSON output is untyped
async function ipj(ns: string, ...args: string[]): Promise<any[]> {
  const text = await ip("-j", "-n", ns, ...args);
  return text.trim() === "" ? [] : JSON.parse(text);
}

/** Runs a list of `ip -n NS` commands, one string each. */
async function ipBatch(ns: string, cmds: string[]): Promise<void> {
  for (const c of cmds) await ip("-n", ns, ...c.split(/\s+/));
}

/** Opens a netlink socket inside a named namespace, from the main thread. */
function nlOpenIn(ns: string, open: () => number): number {
  const self = check(
    libc.symbols.open(cString("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC, 0),
    "open /proc/thread-self/ns/net",
  );
  try {
    const target = check(
      libc.symbols.open(cString(`/run/netns/${ns}`), O_RDONLY | O_CLOEXEC, 0),
      `open /run/netns/${ns}`,
    );
    try {
      check(libc.symbols.setns(target, CLONE_NEWNET), `setns ${ns}`);
      try {
        return open();
      } finally {
        check(libc.symbols.setns(self, CLONE_NEWNET), "setns back");
      }
    } finally {
      libc.symbols.close(target);
    }
  } finally {
    libc.symbols.close(self);
  }
}

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Creates namespaces, runs `fn`, deletes them and checks for leaked fds. */
async function withNamespaces(
  tags: string[],
  fn: (names: string[]) => Promise<void> | void,
): Promise<void> {
  const before = fdCount();
  const names: string[] = [];
  try {
    for (const t of tags) {
      const n = nsName(t);
      await ip("netns", "add", n);
      names.push(n);
    }
    await fn(names);
  } finally {
    for (const n of names) await ip("netns", "del", n).catch(() => {});
  }
  assert.equal(fdCount(), before, "file descriptors leaked");
}

const v4 = (s: string) => new Uint8Array(s.split(".").map(Number));
function v6(s: string): Uint8Array {
  const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const words = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    const n = parseInt(w, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
}

/** The "host" namespace: upstream link up0, a second one alt0. */
const HOST_SETUP = [
  "link add up0 type veth peer name up0p",
  "link add alt0 type veth peer name alt0p",
  "link set up0 address 02:00:00:00:00:0a mtu 1400",
  "link set up0p up",
  "link set alt0p up",
  "link set up0 up",
  "link set alt0 up",
  "addr add 10.10.0.2/16 dev up0",
  "addr add 198.51.100.2/24 dev up0",
  "addr add 2001:db8:9::2/56 dev up0 nodad",
  "addr add 2001:db8:1::2/64 dev up0 nodad",
  "addr add 192.0.2.2/24 dev alt0",
  "addr add 2001:db8:2::2/64 dev alt0 nodad",
  "route add default via 192.0.2.1 dev alt0 metric 600",
  "route add default via 198.51.100.1 dev up0 metric 100",
  "route add 203.0.113.0/24 via 198.51.100.1 dev up0",
  "route add 10.200.0.0/24 dev up0",
  "route add 10.1.0.0/16 via 10.200.0.1 dev up0",
  "route add 198.18.0.0/15 nexthop via 198.51.100.1 dev up0 weight 1" +
  " nexthop via 198.51.100.4 dev up0 weight 3",
  "route add 100.100.0.0/16 nexthop via 198.51.100.1 dev up0 nexthop via 192.0.2.1 dev alt0",
  "-6 route add default via 2001:db8:2::1 dev alt0 metric 600",
  "-6 route add default via fe80::1 dev up0 metric 100",
  "-6 route add 2001:db8:99::/48 via 2001:db8:1::1 dev up0",
];

Deno.test({
  name: "hostUpstream() finds interface, addresses, gateway and MTU in a namespace",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["host"], async ([host]) => {
      await ipBatch(host!, HOST_SETUP);
      const fd = nlOpenIn(host!, nlOpen);
      try {
        /* the socket stays in the namespace after the thread went back */
        const up0 = nlLinkByName(fd, "up0");

        const u4 = hostUpstream(fd, AF_INET)!;
        assert.equal(u4.ifname, "up0");
        assert.equal(u4.ifindex, up0.index);
        assert.equal(u4.mtu, 1400);
        assert.deepEqual(Array.from(u4.mac!), [2, 0, 0, 0, 0, 0x0a]);
        assert.ok(u4.flags & IFF_UP);
        assert.equal(nlAddrToString(u4.gateway!), "198.51.100.1");
        assert.equal(u4.hasDefaultRoute, true);
        assert.deepEqual(
          u4.addrs.map((a) => `${nlAddrToString(a.addr)}/${a.prefixLen}`),
          ["198.51.100.2/24", "10.10.0.2/16"],
        );
        assert.ok(
          u4.routes.some((r) => r.dstLen === 24 && nlAddrToString(r.dst) === "203.0.113.0"),
        );
        assert.ok(u4.routes.every((r) => r.oif === up0.index || r.multipath.length > 0));

        const u6 = hostUpstream(fd, AF_INET6)!;
        assert.equal(u6.ifname, "up0");
        assert.equal(nlAddrToString(u6.gateway!), "fe80::1");
        assert.equal(
          `${nlAddrToString(u6.addrs[0]!.addr)}/${u6.addrs[0]!.prefixLen}`,
          "2001:db8:1::2/64",
        );
        assert.ok(u6.addrs.some((a) => nlAddrToString(a.addr) === "2001:db8:9::2"));
        /* ip -j prints {} for addresses its filter leaves out */
        const ll = (await ipj(host!, "-6", "addr", "show", "dev", "up0", "scope", "link"))[0]
          .addr_info.find((a: { local?: string }) => a.local !== undefined).local;
        assert.equal(nlAddrToString(u6.linkLocal!), ll);

        const alt = hostUpstream(fd, AF_INET, "alt0")!;
        assert.equal(alt.ifname, "alt0");
        assert.equal(nlAddrToString(alt.gateway!), "192.0.2.1");
        assert.equal(nlAddrToString(alt.addrs[0]!.addr), "192.0.2.2");
        assert.throws(() => hostUpstream(fd, AF_INET, "nonexist0"), /RTM_GETLINK: ENODEV/);

        /* routes as the kernel has them */
        const routes = nlRoutes(fd, AF_INET);
        const mp = routes.find((r) => nlAddrToString(r.dst) === "198.18.0.0")!;
        assert.deepEqual(mp.multipath.map((nh) => [nh.ifindex, nh.weight]), [
          [up0.index, 1],
          [up0.index, 3],
        ]);
        assert.ok(nlAddrs(fd, AF_INET, up0.index).every((a) => a.index === up0.index));
      } finally {
        nlClose(fd);
      }
    });
  },
});

Deno.test({
  name: "hostUpstream() without a default route, and with no route at all",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["nodef", "empty"], async ([nodef, empty]) => {
      await ipBatch(nodef!, [
        "link add x0 type veth peer name x0p",
        "link set x0p up",
        "link set x0 up",
        "addr add 10.0.0.2/8 dev x0",
      ]);
      await ipBatch(empty!, ["link set lo up"]);
      const fdA = nlOpenIn(nodef!, nlOpen);
      const fdB = nlOpenIn(empty!, nlOpen);
      try {
        const u = hostUpstream(fdA, AF_INET)!;
        assert.equal(u.ifname, "x0");
        assert.equal(u.hasDefaultRoute, false);
        assert.equal(u.gateway, null);
        assert.equal(nlAddrToString(u.addrs[0]!.addr), "10.0.0.2");
        /* IPv6: only fe80::/64 (link-local) routes, which do not count */
        assert.equal(hostUpstream(fdA, AF_INET6), null);
        assert.equal(hostUpstream(fdB, AF_INET), null);
        assert.equal(hostUpstream(fdB, AF_INET6), null);
      } finally {
        nlClose(fdA);
        nlClose(fdB);
      }
    });
  },
});

Deno.test({
  name: "nlLinkUp/nlSetMac/nlCopyAddrs/nlCopyRoutes configure another namespace like the host",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["host", "guest"], async ([host, guest]) => {
      await ipBatch(host!, HOST_SETUP);
      await ipBatch(guest!, ["link add tap0 type veth peer name tap0p", "link set tap0p up"]);
      const fdH = nlOpenIn(host!, nlOpen);
      const fdG = nlOpenIn(guest!, nlOpen);
      try {
        const src = nlLinkByName(fdH, "up0").index;
        const tap = nlLinkByName(fdG, "tap0").index;
        nlLinkUp(fdG, 1);
        nlSetMac(fdG, tap, new Uint8Array([2, 0, 0, 0, 0, 0x42]));
        nlLinkUp(fdG, tap, 65520);
        nlSetLinkLocalNodad(fdG, tap);

        const a4 = nlCopyAddrs(fdH, src, fdG, tap, AF_INET);
        assert.deepEqual([a4.copied, a4.existing, a4.skipped.length], [2, 0, 0]);
        const a6 = nlCopyAddrs(fdH, src, fdG, tap, AF_INET6);
        assert.deepEqual([a6.copied, a6.existing], [2, 0]);
        assert.deepEqual(a6.skipped.map((s) => s.reason), ["link-local"]);
        /* a second copy finds everything in place */
        assert.deepEqual(nlCopyAddrs(fdH, src, fdG, tap, AF_INET).existing, 2);

        const r4 = nlCopyRoutes(fdH, src, fdG, tap, AF_INET);
        assert.equal(r4.copied, 5); /* default, 203.0.113/24, 10.200/24, 10.1/16, 198.18/15 */
        assert.equal(r4.existing, 2); /* prefix routes of the two copied addresses */
        assert.deepEqual(r4.skipped.map((s) => s.reason), [
          "nexthop on interface " +
          nlLinkByName(fdH, "alt0").index,
        ]);
        const r6 = nlCopyRoutes(fdH, src, fdG, tap, AF_INET6);
        /* default via fe80::1 and 2001:db8:99::/48 are new; the prefix routes
         * of the copied addresses exist; fe80::/64 exists once the kernel has
         * seen the carrier, which it learns asynchronously */
        assert.ok(r6.copied === 2 || r6.copied === 3, `copied ${r6.copied}`);
        assert.equal(r6.copied + r6.existing, 5);
        assert.equal(r6.skipped.length, 0);

        const link = (await ipj(guest!, "link", "show", "tap0"))[0];
        assert.equal(link.mtu, 65520);
        assert.equal(link.address, "02:00:00:00:00:42");
        assert.ok(link.flags.includes("UP"));
        assert.equal(nlLink(fdG, tap).mtu, 65520);
        assert.ok((await ipj(guest!, "link", "show", "lo"))[0].flags.includes("UP"));

        const addrs = (await ipj(guest!, "addr", "show", "dev", "tap0"))[0].addr_info;
        const have = addrs.map((a: { local: string; prefixlen: number }) =>
          `${a.local}/${a.prefixlen}`
        );
        for (
          const want of ["198.51.100.2/24", "10.10.0.2/16", "2001:db8:1::2/64", "2001:db8:9::2/56"]
        ) {
          assert.ok(have.includes(want), `${want} missing in ${have}`);
        }
        assert.ok(
          addrs.every((a: { tentative?: boolean; local: string }) =>
            !a.tentative || a.local.startsWith("fe80")
          ),
        );

        const routes4 = await ipj(guest!, "-4", "route", "show");
        const def4 = routes4.find((r) => r.dst === "default");
        assert.equal(def4.gateway, "198.51.100.1");
        assert.equal(def4.dev, "tap0");
        assert.equal(def4.metric, 100);
        const dep = routes4.find((r) => r.dst === "10.1.0.0/16");
        assert.equal(dep.gateway, "10.200.0.1");
        assert.ok(routes4.some((r) => r.dst === "10.200.0.0/24" && r.gateway === undefined));
        assert.ok(routes4.some((r) => r.dst === "203.0.113.0/24" && r.gateway === "198.51.100.1"));
        const mp = routes4.find((r) => r.dst === "198.18.0.0/15");
        assert.deepEqual(
          mp.nexthops.map((n: { gateway: string; dev: string; weight: number }) => [
            n.gateway,
            n.dev,
            n.weight,
          ]),
          [["198.51.100.1", "tap0", 1], ["198.51.100.4", "tap0", 3]],
        );
        assert.ok(!routes4.some((r) => r.dst === "100.100.0.0/16"));
        /* no second alias of a prefix route */
        assert.equal(routes4.filter((r) => r.dst === "198.51.100.0/24").length, 1);

        const routes6 = await ipj(guest!, "-6", "route", "show");
        const def6 = routes6.find((r) => r.dst === "default");
        assert.equal(def6.gateway, "fe80::1");
        assert.equal(def6.dev, "tap0");
        assert.equal(def6.metric, 100);
        assert.ok(
          routes6.some((r) => r.dst === "2001:db8:99::/48" && r.gateway === "2001:db8:1::1"),
        );

        /* copying the routes again adds nothing */
        const again = nlCopyRoutes(fdH, src, fdG, tap, AF_INET);
        assert.equal(again.copied, 0);
        assert.equal(again.existing, 7);
      } finally {
        nlClose(fdH);
        nlClose(fdG);
      }
    });
  },
});

Deno.test({
  name: "nlAddAddr/nlAddRoute/nlDelRoute/nlDelAddr/nlSetMtu on a namespace interface",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["guest"], async ([guest]) => {
      await ipBatch(guest!, ["link add tap1 type veth peer name tap1p", "link set tap1p up"]);
      const fd = nlOpenIn(guest!, nlOpen);
      try {
        const ifi = nlLinkByName(fd, "tap1").index;
        nlLinkUp(fd, ifi);
        nlSetMtu(fd, ifi, 9000);
        nlAddAddr(fd, AF_INET, ifi, v4("100.64.0.2"), 24);
        nlAddAddr(fd, AF_INET6, ifi, v6("fd00:1::2"), 64);
        assert.throws(
          () => nlAddAddr(fd, AF_INET, ifi, v4("100.64.0.2"), 24),
          (e: unknown) => e instanceof NlError && e.message.startsWith("RTM_NEWADDR: EEXIST"),
        );
        nlAddRoute(fd, AF_INET, ifi, new Uint8Array(4), 0, v4("100.64.0.1"));
        nlAddRoute(fd, AF_INET, ifi, v4("100.65.0.0"), 16, v4("100.64.0.1"), { metric: 5 });
        nlAddRoute(fd, AF_INET6, ifi, new Uint8Array(16), 0, v6("fe80::99"));
        nlAddRoute(fd, AF_INET6, ifi, v6("2001:db8:77::"), 48, null);
        assert.throws(
          () => nlAddRoute(fd, AF_INET, ifi, v4("100.66.0.0"), 16, v4("10.9.9.9")),
          /RTM_NEWROUTE: ENETUNREACH/,
        );

        const link = (await ipj(guest!, "link", "show", "tap1"))[0];
        assert.equal(link.mtu, 9000);
        const addrs = (await ipj(guest!, "addr", "show", "dev", "tap1"))[0].addr_info;
        const global6 = addrs.find((a: { local: string }) => a.local === "fd00:1::2");
        assert.equal(global6.prefixlen, 64);
        assert.equal(global6.tentative, undefined); /* IFA_F_NODAD: usable at once */
        assert.ok(addrs.some((a: { local: string }) => a.local === "100.64.0.2"));

        const r4 = await ipj(guest!, "-4", "route", "show");
        assert.ok(r4.some((r) => r.dst === "default" && r.gateway === "100.64.0.1"));
        assert.ok(r4.some((r) => r.dst === "100.65.0.0/16" && r.metric === 5));
        const r6 = await ipj(guest!, "-6", "route", "show");
        assert.ok(
          r6.some((r) => r.dst === "default" && r.gateway === "fe80::99" && r.dev === "tap1"),
        );
        assert.ok(r6.some((r) => r.dst === "2001:db8:77::/48" && r.gateway === undefined));

        nlDelRoute(fd, AF_INET, ifi, v4("100.65.0.0"), 16);
        nlDelRoute(fd, AF_INET6, 0, new Uint8Array(16), 0, v6("fe80::99"));
        assert.throws(
          () => nlDelRoute(fd, AF_INET, ifi, v4("100.65.0.0"), 16),
          /RTM_DELROUTE: ESRCH/,
        );
        nlDelAddr(fd, AF_INET6, ifi, v6("fd00:1::2"), 64);
        assert.throws(
          () => nlDelAddr(fd, AF_INET6, ifi, v6("fd00:1::2"), 64),
          /RTM_DELADDR: EADDRNOTAVAIL/,
        );
        const r4b = await ipj(guest!, "-4", "route", "show");
        assert.ok(!r4b.some((r) => r.dst === "100.65.0.0/16"));
        const r6b = await ipj(guest!, "-6", "route", "show");
        assert.ok(!r6b.some((r) => r.dst === "default"));
        const addrsB = (await ipj(guest!, "addr", "show", "dev", "tap1"))[0].addr_info;
        assert.ok(!addrsB.some((a: { local: string }) => a.local === "fd00:1::2"));
      } finally {
        nlClose(fd);
      }
    });
  },
});

Deno.test({
  name: "nlRoutes() reads a dump of many datagrams, also right after an abandoned one",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["big"], async ([big]) => {
      await ipBatch(big!, [
        "link add x0 type veth peer name x0p",
        "link set x0p up",
        "link set x0 up",
      ]);
      const lines: string[] = [];
      for (let i = 0; i < 3000; i++) lines.push(`route add 10.${i >> 8}.${i & 255}.0/24 dev x0`);
      await ipBatchStdin(big!, lines.join("\n") + "\n");
      const fd = nlOpenIn(big!, nlOpen);
      try {
        assert.equal(nlRoutes(fd, AF_INET).length, 3000);
        /* start a dump, read one datagram of it, and leave the rest */
        const req = nlReqDumpRoutes(AF_INET);
        nlStamp(req, 0x7fff0001, 0);
        const kernel = new Uint8Array(12);
        kernel[0] = 16;
        assert.equal(libc.symbols.sendto(fd, req, req.length, 0, kernel, 12), req.length);
        const buf = new Uint8Array(65536);
        assert.ok(libc.symbols.recv(fd, buf, buf.length, 0) > 0);
        const again = nlRoutes(fd, AF_INET);
        assert.equal(again.length, 3000);
        assert.ok(again.every((r) => r.dstLen === 24 && r.oif === nlLinkByName(fd, "x0").index));
      } finally {
        nlClose(fd);
      }
    });
  },
});

Deno.test({
  name: "nlRoutes() and hostUpstream() in a namespace that never had a route: none, no error",
  ignore: !isRoot,
  async fn() {
    await withNamespaces(["empty"], ([empty]) => {
      const fd = nlOpenIn(empty!, nlOpen);
      try {
        assert.deepEqual(nlRoutes(fd, AF_INET), []);
        assert.deepEqual(nlRoutes(fd, AF_INET6), []);
        assert.equal(hostUpstream(fd, AF_INET), null);
        assert.equal(hostUpstream(fd, AF_INET6), null);
      } finally {
        nlClose(fd);
      }
    });
  },
});
