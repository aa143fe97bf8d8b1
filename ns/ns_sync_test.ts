import assert from "node:assert/strict";
import { NsSync } from "./ns_sync.ts";
import { NsThread } from "./ns.ts";
import { libc } from "../ffi/libc.ts";
import { cString } from "../ffi/mem.ts";
import { AF_INET, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/layout.ts";

Deno.test("NsSync.socket() and open() answer synchronously", async () => {
  const s = await NsSync.start(-1);
  try {
    const t0 = performance.now();
    const fds: number[] = [];
    for (let i = 0; i < 100; i++) {
      const fd = s.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      assert.ok(fd >= 0, `socket: ${fd}`);
      fds.push(fd);
    }
    assert.ok(performance.now() - t0 < 1000);
    for (const fd of fds) libc.symbols.close(fd);
    assert.equal(s.socket(12345, SOCK_DGRAM, 0), -97 /* EAFNOSUPPORT */);
    const f = s.open("/proc/thread-self/net/udp", O_RDONLY | O_CLOEXEC);
    assert.ok(f >= 0);
    libc.symbols.close(f);
    assert.equal(s.open("/nonexistent/x", O_RDONLY), -2);
    assert.ok(s.tid > 0);
    assert.ok(Deno.statSync(`/proc/self/task/${s.tid}/net/udp`).isFile);
  } finally {
    s.close();
  }
  assert.ok(s.broken);
  assert.equal(s.socket(AF_INET, SOCK_DGRAM, 0), -110);
});

/** The sockets of this process in the namespace shown by /proc/self/task/TID/net/udp. */
function udpInodes(tid: number): Set<string> {
  const lines = Deno.readTextFileSync(`/proc/self/task/${tid}/net/udp`).trim().split("\n").slice(1);
  return new Set(lines.map((l) => l.trim().split(/\s+/)[9]!));
}

Deno.test({
  name: "one namespace thread answers set-up messages and the synchronous channel in turn",
  ignore: Deno.uid() !== 0,
  async fn() {
    const ns = new NsThread();
    try {
      await ns.unshare();
      const tid = await ns.tid();
      assert.equal(ns.sync.tid, tid);
      /* a socket bound through the channel shows in the thread's namespace only */
      const fd = ns.sync.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      assert.ok(fd >= 0, `socket: ${fd}`);
      const sa = new Uint8Array(16);
      sa[0] = AF_INET;
      sa[2] = 0x9c; /* port 40000 */
      sa[3] = 0x40;
      assert.equal(libc.symbols.bind(fd, sa, 16), 0);
      const ino = Deno.readLinkSync(`/proc/self/fd/${fd}`).replace(/^socket:\[(\d+)\]$/, "$1");
      assert.ok(udpInodes(tid).has(ino));
      assert.ok(!udpInodes(libc.symbols.gettid()).has(ino));
      libc.symbols.close(fd);
      /* back to a message (the thread yields the channel), then the channel again */
      await ns.write("/proc/sys/net/ipv4/ping_group_range", "0 0");
      const nl = await ns.netlink();
      assert.ok(nl >= 0);
      libc.symbols.close(nl);
      for (let i = 0; i < 3; i++) {
        const f = ns.sync.open("/proc/thread-self/net/udp", O_RDONLY | O_CLOEXEC);
        assert.ok(f >= 0, `open: ${f}`);
        libc.symbols.close(f);
        const s = await ns.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        libc.symbols.close(s);
        assert.equal(await ns.tid(), tid);
        await ns.write("/proc/sys/net/ipv4/ping_group_range", "0 0");
      }
      await assert.rejects(ns.socket(12345, SOCK_DGRAM, 0), /EAFNOSUPPORT/);
      /* capabilities are dropped on the thread itself; it keeps answering */
      assert.equal(await ns.capsDrop(0, false, true), "");
      const status = Deno.readTextFileSync(`/proc/self/task/${tid}/status`);
      assert.match(status, /CapEff:\s+0+\n/);
      const after = ns.sync.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      assert.ok(after >= 0, `socket after the drop: ${after}`);
      libc.symbols.close(after);
    } finally {
      ns.close();
    }
    assert.ok(ns.sync.broken);
    await assert.rejects(ns.netlink(), /not answering/);
  },
});

Deno.test({
  name: "NsSync creates sockets inside the given network namespace",
  ignore: Deno.uid() !== 0,
  async fn() {
    const name = `orzo-nssync-${Deno.pid}`;
    const ip = (args: string[]) => new Deno.Command("ip", { args }).outputSync();
    assert.equal(ip(["netns", "add", name]).code, 0);
    let s: NsSync | null = null;
    try {
      const nsFd = libc.symbols.open(cString(`/run/netns/${name}`), O_RDONLY | O_CLOEXEC, 0);
      assert.ok(nsFd >= 0);
      s = await NsSync.start(nsFd);
      libc.symbols.close(nsFd);
      const fd = s.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      assert.ok(fd >= 0);
      /* 192.0.2.77 exists only in that namespace */
      ip(["-n", name, "link", "set", "lo", "up"]);
      ip(["-n", name, "addr", "add", "192.0.2.77/32", "dev", "lo"]);
      const sa = new Uint8Array(16);
      sa[0] = AF_INET;
      sa.set([192, 0, 2, 77], 4);
      assert.equal(libc.symbols.bind(fd, sa, 16), 0);
      libc.symbols.close(fd);
    } finally {
      s?.close();
      ip(["netns", "del", name]);
    }
  },
});
