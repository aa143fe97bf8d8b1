/**
 * Tests of forwards changed at run time (runtime.ts) and of the control
 * protocol (ctl.ts ctlRequest): real sockets on 127.0.0.1, no namespace.
 */

import assert from "node:assert/strict";
import { configDefaults } from "../conf/config.ts";
import { ConfError } from "../conf/errors.ts";
import { parsePortSpec } from "../conf/ports.ts";
import { ctxNew } from "../ctx.ts";
import { SysError } from "../ffi/errno.ts";
import { EventLoop } from "../loop.ts";
import { TcpAuto } from "../tcp/auto.ts";
import { TcpListeners } from "../tcp/listen.ts";
import { UdpListeners } from "../udp/listen.ts";
import { ctlRequest } from "./ctl.ts";
import { FwdRuntime, ruleText } from "./runtime.ts";
import { libc } from "../ffi/libc.ts";
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/layout.ts";

const OPTS = { pasta: true, ipv4: true, ipv6: true };

/** A free TCP port on 127.0.0.1 (bound and released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

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

function setup(tcpSpec = "none") {
  const c = ctxNew(63);
  c.ip4.enabled = true;
  c.ip6.enabled = true;
  const loop = new EventLoop();
  const conf = configDefaults("pasta");
  if (tcpSpec !== "none") conf.tcp = parsePortSpec("t", tcpSpec, OPTS);
  const tcp = { listeners: new TcpListeners(), auto: null as TcpAuto | null };
  const udp = { listeners: new UdpListeners(), auto: null };
  const fwd = new FwdRuntime(c, loop, conf, tcp, udp);
  const close = () => {
    for (let i = 0; i < tcp.listeners.count; i++) {
      if (tcp.listeners.fd[i]! >= 0) libc.symbols.close(tcp.listeners.fd[i]!);
    }
    for (let i = 0; i < udp.listeners.count; i++) {
      if (udp.listeners.fd[i]! >= 0) libc.symbols.close(udp.listeners.fd[i]!);
    }
    tcp.auto?.closeAll();
    libc.symbols.close(loop.epoll.fd);
  };
  return { c, loop, conf, tcp, udp, fwd, close };
}

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
    assert.deepEqual(w.fwd.list(), { tcp: ["1"], udp: [] });
    assert.equal(await reaches(port), false);
    w.fwd.add("tcp", `127.0.0.1/${port}:80`);
    assert.equal(await reaches(port), true, "listening after add");
    assert.deepEqual(w.fwd.list().tcp, ["1", `127.0.0.1/${port}:80`]);
    /* the listener table holds it, with its target port, under an epoll reference */
    const i = Array.from(w.tcp.listeners.port.subarray(0, w.tcp.listeners.count)).indexOf(port);
    assert.ok(i >= 0);
    assert.equal(w.tcp.listeners.target[i], 80);
    assert.throws(() => w.fwd.add("tcp", `${port}`), ConfError, "overlaps the rule in force");
    assert.throws(() => w.fwd.add("tcp", "auto"), /start-up only/);
    assert.throws(() => w.fwd.add("tcp", "70000"), ConfError);
    assert.throws(() => w.fwd.remove("tcp", `127.0.0.1/${port}`), /No tcp forward/);
    assert.equal(w.fwd.remove("tcp", `127.0.0.1/${port}:80`), 1);
    assert.equal(w.tcp.listeners.fd[i], -1, "slot freed");
    assert.equal(await reaches(port), false, "refused after remove");
    assert.deepEqual(w.fwd.list().tcp, ["1"]);
    /* the freed slot is used again */
    w.fwd.add("tcp", `127.0.0.1/${port}`);
    assert.equal(w.tcp.listeners.port[i], port);
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
    const L = w.udp.listeners;
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
  const w = setup();
  const guest = new Uint8Array(8192);
  guest[port >> 3] = 1 << (port & 7);
  const auto = new TcpAuto(
    parsePortSpec("t", "auto", OPTS),
    (out) => {
      out.set(guest);
      return 1;
    },
    { v4: true, v6: false },
    () => {},
  );
  w.tcp.auto = auto;
  try {
    auto.scan();
    assert.ok(auto.fdOf(port * 2) >= 0, "auto listens on the guest's port");
    /* an explicit rule for that port: the scanner's socket goes, ours binds */
    w.fwd.add("tcp", `${port}:22`);
    assert.equal(auto.fdOf(port * 2), -1);
    auto.scan();
    assert.equal(auto.fdOf(port * 2), -1, "the scanner leaves the port alone meanwhile");
    assert.equal(await reaches(port), true);
    w.fwd.remove("tcp", `${port}:22`);
    auto.scan();
    assert.ok(auto.fdOf(port * 2) >= 0, "the scanner has it again");
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
    assert.deepEqual(ask(`{"op":"list"}`), { ok: true, tcp: [], udp: [] });
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
