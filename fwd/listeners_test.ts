/**
 * Tests of the forwarding socket table (listeners.ts) and of one direction
 * of forwarding (direction.ts): real sockets on the loopback, a real epoll
 * set, no namespace.
 */

import assert from "node:assert/strict";
import { parsePortSpec } from "../conf/ports.ts";
import { SysError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/layout.ts";
import { fdCount } from "../ffi/proc.ts";
import { PIF_HOST, PIF_SPLICE } from "../flow/pif.ts";
import { EPOLL_TYPE_TCP_LISTEN, EPOLL_TYPE_UDP_LISTEN, EventLoop } from "../loop.ts";
import { FwdDirection, type FwdDirectionOptions } from "./direction.ts";
import {
  FWD_TCP,
  FWD_UDP,
  FwdListeners,
  hostSocket,
  KIND_AUTO,
  KIND_RULE,
  listenRef,
  loopWatch,
  refPif,
  refPort,
  refV6,
} from "./listeners.ts";
import { freeTcpPort as freePort } from "../tests/helpers/host_sock.ts";

const OPTS = { pasta: true, ipv4: true, ipv6: true };

async function reaches(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname, port });
    c.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return false;
    throw e;
  }
}

/** A table on a fresh event loop, and a direction builder on it. */
function world() {
  const loop = new EventLoop();
  const table = new FwdListeners(loopWatch(loop), 2);
  const dir = (
    o: Partial<Omit<FwdDirectionOptions, "spec">> & { spec: string; opt?: "t" | "u" | "T" | "U" },
  ) =>
    new FwdDirection(table, {
      proto: FWD_TCP,
      pif: PIF_HOST,
      v4: true,
      v6: false,
      freebind: false,
      socket: hostSocket,
      read: null,
      own: null,
      ...o,
      spec: parsePortSpec(o.opt ?? "t", o.spec, OPTS),
    });
  const close = () => {
    table.closeAll();
    loop.epoll.close();
  };
  return { loop, table, dir, close };
}

/** Waits for one event of the loop's epoll set: its type, fd and data. */
function oneEvent(loop: EventLoop): { type: number; fd: number; data: number } | null {
  const n = loop.epoll.wait(1000);
  if (n < 1) return null;
  return { type: loop.epoll.typeOf(0), fd: loop.epoll.fdOf(0), data: loop.epoll.dataOf(0) };
}

Deno.test("listenRef: {port, pif, family} in one u32, and back", () => {
  for (const [port, pif, v6] of [[1, PIF_HOST, false], [65535, PIF_SPLICE, true]] as const) {
    const r = listenRef(port, pif, v6);
    assert.equal(r >>> 0, r, "a u32");
    assert.equal(refPort(r), port);
    assert.equal(refPif(r), pif);
    assert.equal(refV6(r), v6);
  }
  assert.notEqual(listenRef(80, PIF_HOST, false), listenRef(80, PIF_SPLICE, false));
  assert.notEqual(listenRef(80, PIF_HOST, false), listenRef(80, PIF_HOST, true));
});

Deno.test("FwdDirection: explicit rules open sockets that epoll reports with their reference", async () => {
  const p = freePort();
  const w = world();
  try {
    const d = w.dir({ spec: `127.0.0.1/${p}:8080` });
    d.openRules(parsePortSpec("t", `127.0.0.1/${p}:8080`, OPTS).rules, new Uint8Array(8192), true);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: p });
    try {
      const ev = oneEvent(w.loop);
      assert.ok(ev !== null, "an event for the connection");
      assert.equal(ev.type, EPOLL_TYPE_TCP_LISTEN);
      assert.equal(ev.data, listenRef(p, PIF_HOST, false));
      const i = w.table.lookup(FWD_TCP, ev.data, ev.fd);
      assert.ok(i >= 0);
      assert.equal(w.table.target[i], 8080);
      assert.equal(w.table.kind[i], KIND_RULE);
      /* the same reference under UDP, or another fd, finds nothing */
      assert.equal(w.table.lookup(FWD_UDP, ev.data, ev.fd), -1);
      assert.equal(w.table.lookup(FWD_TCP, ev.data, ev.fd + 1000), -1);
    } finally {
      conn.close();
    }
  } finally {
    w.close();
  }
});

Deno.test("FwdListeners: sockets on one port and family but two addresses share a reference", async () => {
  const p = freePort();
  const w = world();
  try {
    const d = w.dir({ spec: "none" });
    const rules = parsePortSpec("t", `127.0.0.1/${p}:1001`, OPTS).rules.concat(
      parsePortSpec("t", `127.0.0.2/${p}:1002`, OPTS).rules,
    );
    d.openRules(rules, new Uint8Array(8192), true);
    const ref = listenRef(p, PIF_HOST, false);
    const targets = new Set<number>();
    for (let i = 0; i < w.table.count; i++) {
      assert.equal(w.table.lookup(FWD_TCP, ref, w.table.fd[i]!), i, "each by its fd");
      targets.add(w.table.target[i]!);
    }
    assert.deepEqual([...targets].sort(), [1001, 1002]);
    /* closing the first of the chain leaves the second found */
    assert.equal(d.closeRule(rules[1]!), 1);
    assert.equal(await reaches(p, "127.0.0.2"), false);
    assert.equal(await reaches(p, "127.0.0.1"), true);
    const left = w.table.find(FWD_TCP, PIF_HOST, false, p);
    assert.ok(left >= 0);
    assert.equal(w.table.lookup(FWD_TCP, ref, w.table.fd[left]!), left);
    assert.equal(w.table.target[left], 1001);
  } finally {
    w.close();
  }
});

Deno.test("FwdDirection: a port in use fails an explicit rule, and is skipped by a weak one", () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (busy.addr as Deno.NetAddr).port;
  const w = world();
  try {
    const d = w.dir({ spec: "none" });
    const rules = parsePortSpec("t", `127.0.0.1/${p}`, OPTS).rules;
    assert.throws(
      () => d.openRules(rules, new Uint8Array(8192), true),
      (e: unknown) => e instanceof SysError && /Failed to bind port .*EADDRINUSE/.test(e.message),
    );
    d.openRules(rules, new Uint8Array(8192), false);
    d.openRules([{ ...rules[0]!, weak: true }], new Uint8Array(8192), true);
    assert.equal(d.ports().some((b) => b !== 0), false, "nothing open");
  } finally {
    busy.close();
    w.close();
  }
});

Deno.test("FwdDirection: the table grows past its first capacity, and slots are reused", () => {
  const w = world();
  try {
    const d = w.dir({ spec: "none", proto: FWD_UDP, v6: true });
    const ports = [freePort(), freePort(), freePort()];
    const rules = ports.map((p) => parsePortSpec("u", `${p}`, OPTS).rules[0]!);
    d.openRules(rules, new Uint8Array(8192), true);
    assert.equal(w.table.count, 6, "two families each");
    assert.ok(w.table.cap >= 6);
    assert.equal(d.closeRule(rules[0]!), 2);
    d.openRules([rules[0]!], new Uint8Array(8192), true);
    assert.equal(w.table.count, 6, "freed slots taken again");
    for (const p of ports) {
      assert.ok(w.table.find(FWD_UDP, PIF_HOST, true, p) >= 0);
      assert.ok(w.table.find(FWD_UDP, PIF_HOST, false, p) >= 0);
    }
  } finally {
    w.close();
  }
});

Deno.test("FwdDirection: -U style sockets bind loopback, and report under the UDP type", () => {
  const p = freePort();
  const w = world();
  try {
    const d = w.dir({ spec: "none", proto: FWD_UDP, pif: PIF_SPLICE, opt: "U" });
    d.openRules(parsePortSpec("U", `${p}:53`, OPTS).rules, new Uint8Array(8192), true);
    const i = w.table.find(FWD_UDP, PIF_SPLICE, false, p);
    assert.ok(i >= 0);
    assert.deepEqual(Array.from(w.table.addr.subarray(i * 16 + 10, i * 16 + 16)), [
      0xff,
      0xff,
      127,
      0,
      0,
      1,
    ]);
    const s = libc.symbols.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    try {
      const sa = new Uint8Array(16);
      sa[0] = AF_INET;
      sa[2] = p >> 8;
      sa[3] = p & 0xff;
      sa.set([127, 0, 0, 1], 4);
      assert.equal(libc.symbols.sendto(s, new Uint8Array([1]), 1, 0, sa, 16), 1);
      const ev = oneEvent(w.loop);
      assert.ok(ev !== null);
      assert.equal(ev.type, EPOLL_TYPE_UDP_LISTEN);
      assert.equal(w.table.lookup(FWD_UDP, ev.data, ev.fd), i);
      assert.equal(w.table.target[i], 53);
    } finally {
      libc.symbols.close(s);
    }
  } finally {
    w.close();
  }
});

Deno.test("FwdDirection: auto opens what the other side has, minus own and held ports, and closes what it loses", async () => {
  const [a, b, c] = [freePort(), freePort(), freePort()];
  const other = new Uint8Array(8192);
  const own = new Uint8Array(8192);
  const set = (m: Uint8Array, p: number, on: boolean) => {
    m[p >> 3] = on ? m[p >> 3]! | (1 << (p & 7)) : m[p >> 3]! & ~(1 << (p & 7));
  };
  let readable = true;
  const w = world();
  try {
    const d = w.dir({
      spec: `auto,~${c + 1}`,
      read: (out) => {
        out.set(other);
        return readable ? 1 : -1;
      },
      own: () => own,
    });
    assert.ok(d.hasAuto);
    for (const p of [a, b, c]) set(other, p, true);
    set(own, b, true);
    assert.ok(d.scan());
    const autoAt = (p: number) => w.table.find(FWD_TCP, PIF_HOST, false, p, KIND_AUTO) >= 0;
    assert.deepEqual([autoAt(a), autoAt(b), autoAt(c)], [true, false, true], "own port left out");
    assert.equal(await reaches(a), true);
    /* held: closed now, not reopened by a scan, back once given back */
    d.hold(a, true);
    assert.equal(autoAt(a), false);
    d.scan();
    assert.equal(autoAt(a), false);
    d.hold(a, false);
    d.scan();
    assert.equal(autoAt(a), true);
    /* the other side stops listening on c: closed */
    set(other, c, false);
    d.scan();
    assert.equal(autoAt(c), false);
    assert.equal(await reaches(c), false);
    /* a port this side cannot bind is tried again at the next scan */
    const busy = Deno.listen({ hostname: "0.0.0.0", port: c });
    set(other, c, true);
    d.scan();
    assert.equal(autoAt(c), false);
    busy.close();
    d.scan();
    assert.equal(autoAt(c), true, "bound once free");
    /* the other side cannot be read: nothing changes */
    readable = false;
    assert.equal(d.scan(), false);
    assert.equal(autoAt(a) && autoAt(c), true);
    /* targets of auto sockets: the same port */
    const i = w.table.find(FWD_TCP, PIF_HOST, false, a, KIND_AUTO);
    assert.equal(w.table.target[i], a);
    d.close();
    assert.equal(w.table.find(FWD_TCP, PIF_HOST, false, a), -1);
  } finally {
    w.close();
  }
});

Deno.test("FwdListeners: a socket the event loop refuses is closed, no slot taken", () => {
  const table = new FwdListeners({ add: () => -9, /* EBADF */ del: () => {} });
  const before = fdCount();
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  const r = table.add(fd, {
    proto: FWD_UDP,
    pif: PIF_HOST,
    v6: false,
    port: 9,
    target: 9,
    kind: KIND_RULE,
    addr: new Uint8Array(16),
    toAddr: null,
    rule: null,
  });
  assert.equal(r, -9);
  assert.equal(table.count, 0);
  assert.equal(fdCount(), before, "the socket was closed");
});
