/**
 * Tests of forwards changed at run time (runtime.ts) and of the control
 * protocol (ctl.ts ctlRequest): real sockets on 127.0.0.1, no namespace.
 */

import assert from "node:assert/strict";
import { configDefaults } from "../conf/config.ts";
import { ConfError } from "../conf/errors.ts";
import { fwdSpecNew, parsePortSpec } from "../conf/ports.ts";
import { ctxNew } from "../ctx.ts";
import { SysError } from "../ffi/errno.ts";
import { EventLoop } from "../loop.ts";
import { PIF_HOST, PIF_SPLICE } from "../flow/pif.ts";
import { ctlRequest } from "./ctl.ts";
import {
  FWD_TCP,
  FWD_UDP,
  FwdListeners,
  hostSocket,
  KIND_AUTO,
  listenRef,
  loopWatch,
} from "./listeners.ts";
import { FwdDirection } from "./direction.ts";
import { FwdRuntime, ruleText } from "./runtime.ts";
import { libc } from "../ffi/libc.ts";
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/layout.ts";
import { freeTcpPort as freePort } from "../tests/helpers/host_sock.ts";

const OPTS = { pasta: true, ipv4: true, ipv6: true };

/** Whether a plain UDP socket (no SO_REUSEADDR) can bind 127.0.0.1:port. */
function udpBindable(port: number): boolean {
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  const sa = new Uint8Array(16);
  sa[0] = AF_INET;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  sa.set([127, 0, 0, 1], 4);
  const r = libc.symbols.bind(fd, sa, 16);
  libc.symbols.close(fd);
  return r === 0;
}

async function reaches(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return false;
    throw e;
  }
}

/**
 * A runtime with the four directions in one table; the namespace-side ones
 * (-T, -U) create their sockets here (no namespace: the test's loopback).
 * @param tcpSpec the -t spec at start-up
 * @param read the guest's ports for `-t auto`, if any
 */
function setup(tcpSpec = "none", read: ((out: Uint8Array) => number) | null = null) {
  const c = ctxNew(63);
  c.ip4.enabled = true;
  c.ip6.enabled = true;
  const loop = new EventLoop();
  const conf = configDefaults("pasta");
  if (tcpSpec !== "none") conf.tcp = parsePortSpec("t", tcpSpec, OPTS);
  const table = new FwdListeners(loopWatch(loop));
  const dir = (proto: number, pif: number, spec = fwdSpecNew()) =>
    new FwdDirection(table, {
      proto,
      pif,
      spec,
      v4: true,
      v6: false,
      freebind: false,
      socket: hostSocket,
      read,
      own: null,
    });
  const dirs = {
    "tcp": dir(FWD_TCP, PIF_HOST, conf.tcp),
    "udp": dir(FWD_UDP, PIF_HOST),
    "tcp-ns": dir(FWD_TCP, PIF_SPLICE),
    "udp-ns": dir(FWD_UDP, PIF_SPLICE),
  };
  const fwd = new FwdRuntime(c, conf, dirs);
  const close = () => {
    table.closeAll();
    libc.symbols.close(loop.epoll.fd);
  };
  return { c, loop, conf, table, dirs, fwd, close };
}

const NONE = { "tcp": [], "udp": [], "tcp-ns": [], "udp-ns": [] };

Deno.test("ruleText writes rules back as SPECs that parse to the same rules", () => {
  for (
    const spec of [
      "80",
      "8080:80",
      "8000-8010:9000-9010",
      "127.0.0.1/5353",
      "[::1]/8080-8081:9080-9081",
      "%lo/53",
      "127.0.0.1%lo/22:2222",
      "127.0.0.1/5353:10.0.0.1/53",
    ]
  ) {
    const r = parsePortSpec("t", spec, OPTS).rules;
    assert.equal(r.length, 1, spec);
    assert.equal(ruleText(r[0]!), spec);
  }
});

Deno.test("FwdRuntime: a TCP forward added listens, conflicts are refused, removal closes it", async () => {
  const port = freePort();
  const w = setup("1");
  try {
    assert.deepEqual(w.fwd.list(), { ...NONE, tcp: ["1"] });
    assert.equal(await reaches(port), false);
    w.fwd.add("tcp", `127.0.0.1/${port}:80`);
    assert.equal(await reaches(port), true, "listening after add");
    assert.deepEqual(w.fwd.list().tcp, ["1", `127.0.0.1/${port}:80`]);
    /* the listener table holds it, with its target port, under an epoll reference */
    const T = w.table;
    const i = Array.from(T.port.subarray(0, T.count)).indexOf(port);
    assert.ok(i >= 0);
    assert.equal(T.target[i], 80);
    assert.equal(T.lookup(FWD_TCP, listenRef(port, PIF_HOST, false), T.fd[i]!), i);
    assert.throws(() => w.fwd.add("tcp", `${port}`), ConfError, "overlaps the rule in force");
    assert.throws(() => w.fwd.add("tcp", "auto"), /start-up only/);
    assert.throws(() => w.fwd.add("tcp", "70000"), ConfError);
    assert.throws(() => w.fwd.remove("tcp", `127.0.0.1/${port}`), /No tcp forward/);
    assert.equal(w.fwd.remove("tcp", `127.0.0.1/${port}:80`), 1);
    assert.equal(T.fd[i], -1, "slot freed");
    assert.equal(await reaches(port), false, "refused after remove");
    assert.deepEqual(w.fwd.list().tcp, ["1"]);
    /* the freed slot is used again */
    w.fwd.add("tcp", `127.0.0.1/${port}`);
    assert.equal(T.port[i], port);
    assert.equal(await reaches(port), true);
  } finally {
    w.close();
  }
});

Deno.test("FwdRuntime: a port that cannot be bound undoes the whole add", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p2 = (busy.addr as Deno.NetAddr).port;
  const w = setup();
  try {
    const p1 = p2 - 1;
    assert.throws(
      () => w.fwd.add("tcp", `127.0.0.1/${p1}-${p2}`),
      (e: unknown) => e instanceof SysError && /EADDRINUSE/.test(e.message),
    );
    assert.equal(await reaches(p1), false, "the port opened first is closed again");
    assert.deepEqual(w.fwd.list().tcp, []);
  } finally {
    busy.close();
    w.close();
  }
});

Deno.test("FwdRuntime: UDP forwards bind and close their sockets in the listener table", () => {
  const port = freePort();
  const w = setup();
  try {
    w.fwd.add("udp", `127.0.0.1/${port}:53`);
    const L = w.table;
    const open = () => Array.from(L.fd.subarray(0, L.count)).filter((fd) => fd >= 0).length;
    assert.equal(open(), 1);
    const i = L.fd.findIndex((fd) => fd >= 0);
    assert.equal(L.port[i], port);
    assert.equal(L.target[i], 53);
    assert.equal(udpBindable(port), false, "the port is taken");
    assert.equal(w.fwd.remove("udp", `127.0.0.1/${port}:53`), 1);
    assert.equal(open(), 0);
    assert.equal(udpBindable(port), true, "free again");
  } finally {
    w.close();
  }
});

Deno.test("FwdRuntime: a port of `-t auto` is taken from the scanner and given back", async () => {
  const port = freePort();
  const guest = new Uint8Array(8192);
  guest[port >> 3] = 1 << (port & 7);
  const w = setup("auto", (out) => {
    out.set(guest);
    return 1;
  });
  const auto = w.dirs.tcp;
  const autoFd = () => w.table.find(FWD_TCP, PIF_HOST, false, port, KIND_AUTO);
  try {
    assert.ok(auto.scan());
    assert.ok(autoFd() >= 0, "auto listens on the guest's port");
    /* an explicit rule for that port: the scanner's socket goes, ours binds */
    w.fwd.add("tcp", `${port}:22`);
    assert.equal(autoFd(), -1);
    auto.scan();
    assert.equal(autoFd(), -1, "the scanner leaves the port alone meanwhile");
    assert.equal(await reaches(port), true);
    w.fwd.remove("tcp", `${port}:22`);
    auto.scan();
    assert.ok(autoFd() >= 0, "the scanner has it again");
  } finally {
    w.close();
  }
});

Deno.test("FwdRuntime: -T and -U forwards open namespace-side sockets on loopback", async () => {
  const tport = freePort();
  const uport = freePort();
  const w = setup();
  try {
    w.fwd.add("tcp-ns", `${tport}:8080`);
    w.fwd.add("udp-ns", `${uport}`);
    assert.deepEqual(w.fwd.list(), {
      ...NONE,
      "tcp-ns": [`${tport}:8080`],
      "udp-ns": [`${uport}`],
    });
    const T = w.table;
    const t = T.find(FWD_TCP, PIF_SPLICE, false, tport);
    assert.ok(t >= 0);
    assert.equal(T.target[t], 8080);
    assert.deepEqual(Array.from(T.addr.subarray(t * 16 + 12, t * 16 + 16)), [127, 0, 0, 1]);
    assert.equal(await reaches(tport), true);
    assert.equal(udpBindable(uport), false, "the UDP port is taken");
    /* the checks of start-up, against the -T rules in force */
    assert.throws(() => w.fwd.add("tcp-ns", `${tport}`), /Conflicting/);
    assert.equal(w.fwd.remove("tcp-ns", `${tport}:8080`), 1);
    assert.equal(w.fwd.remove("udp-ns", `${uport}`), 1);
    assert.equal(await reaches(tport), false);
    assert.equal(udpBindable(uport), true);
    assert.deepEqual(w.fwd.list(), NONE);
  } finally {
    w.close();
  }
});

Deno.test("ctlRequest: answers every input with one JSON object, never throws", () => {
  const w = setup();
  const t = { fwd: w.fwd, stats: () => ({ n: 1 }) };
  try {
    const ask = (line: string) => JSON.parse(ctlRequest(t, line));
    for (
      const bad of [
        "",
        "{",
        "null",
        "42",
        "[]",
        `{"op":1}`,
        `{"op":"add"}`,
        `{"op":"add","proto":"tcp"}`,
        `{"op":"add","proto":"tcp","spec":""}`,
        `{"op":"add","proto":"icmp","spec":"1"}`,
        `{"op":"remove","proto":"udp","spec":"9"}`,
        `{"op":"add","proto":"tcp","spec":"${"1,".repeat(600)}1"}`,
        `{"op":"__proto__"}`,
      ]
    ) {
      const r = ask(bad);
      assert.equal(r.ok, false, bad);
      assert.equal(typeof r.error, "string", bad);
    }
    assert.deepEqual(ask(`{"op":"list"}`), { ok: true, ...NONE });
    assert.deepEqual(ask(`{"op":"stats"}`), { ok: true, stats: { n: 1 } });
    const port = freePort();
    assert.deepEqual(ask(`{"op":"add","proto":"tcp","spec":"127.0.0.1/${port}"}`), { ok: true });
    assert.deepEqual(ask(`{"op":"remove","proto":"tcp","spec":"127.0.0.1/${port}"}`), {
      ok: true,
      removed: 1,
    });
  } finally {
    w.close();
  }
});
