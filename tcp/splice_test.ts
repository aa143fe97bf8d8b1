/**
 * splice_test.ts - unit tests of the spliced connections' timeouts, on the
 * host's loopback only: the "accepted" socket comes from a listener of the
 * test, and the splice module connects to a second listener (its namespace
 * socket function makes plain host sockets). spliceTimer() is called with
 * simulated times.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ctxNew } from "../ctx.ts";
import { EventLoop } from "../loop.ts";
import { libc } from "../ffi/libc.ts";
import { ERRNO } from "../ffi/errno.ts";
import { SOCK_CLOEXEC, SOCK_NONBLOCK } from "../ffi/layout.ts";
import { fdCount } from "../ffi/proc.ts";
import { fdBudget, fdBudgetRefresh } from "../flow/fd_budget.ts";
import {
  SPLICE_CONNECT_TIMEOUT_MS,
  SPLICE_FIN_TIMEOUT_MS,
  SPLICE_IDLE_TIMEOUT_MS,
  spliceCloseAll,
  spliceConnect,
  spliceInit,
  type SpliceStats,
  spliceTimer,
} from "./splice.ts";
import { closedPort, HostConn, HostListener } from "../tests/helpers/host_sock.ts";

/** Longest wait for anything expected. */
const WAIT_MS = 3000;

interface Splice {
  loop: EventLoop;
  stats: SpliceStats;
  /** the client of the accepted side */
  client: HostConn;
  /** the server's end of the spliced connection, null when none accepted */
  server: HostConn | null;
  owned: { close(): void }[];
}

/** Pumps the loop until cond() holds. */
async function pumpUntil(sp: Splice, what: string, cond: () => boolean): Promise<void> {
  const end = performance.now() + WAIT_MS;
  while (!cond()) {
    sp.loop.runOnce(0);
    if (performance.now() > end) assert.fail(`Timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * A spliced connection: client -> front listener (accepted by the test) ->
 * splice -> server listener; with `serverPort` a port to connect to instead.
 */
async function spliced(serverPort?: number): Promise<Splice> {
  const c = ctxNew(16);
  const loop = new EventLoop();
  const stats = spliceInit(c, loop, (d, t) => libc.symbols.socket(d, t, 0));
  loop.post.push(() => c.flows.flowDeferHandler());
  const front = new HostListener(false);
  const back = new HostListener(false);
  const client = HostConn.connect(false, front.port);
  const sp: Splice = { loop, stats, client, server: null, owned: [front, back, client] };
  let fd = -1;
  await pumpUntil(sp, "the front accept", () => {
    fd = libc.symbols.accept4(front.fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return fd >= 0;
  });
  assert.ok(spliceConnect(fd, false, serverPort ?? back.port, false));
  if (serverPort === undefined) {
    await pumpUntil(sp, "the back accept", () => (sp.server = back.accept()) !== null);
    sp.owned.push(sp.server!);
  }
  return sp;
}

function spliceTest(name: string, fn: (t0: number) => Promise<void>): void {
  Deno.test(name, async () => {
    const before = fdCount();
    await fn(performance.now());
    assert.equal(fdCount(), before, "fds open after the test");
  });
}

async function done(sp: Splice): Promise<void> {
  spliceCloseAll();
  sp.loop.runOnce(0);
  for (const o of sp.owned) o.close();
  sp.loop.epoll.close();
  await Promise.resolve();
}

spliceTest("spliceTimer() resets a connection idle for SPLICE_IDLE_TIMEOUT_MS", async () => {
  const sp = await spliced();
  try {
    const data = new Uint8Array(1000).fill(7);
    assert.equal(sp.client.send(data), data.length);
    await pumpUntil(sp, "bytes at the server", () => sp.server!.poll().receivedLen() === 1000);
    const t0 = performance.now();
    spliceTimer(t0 + SPLICE_IDLE_TIMEOUT_MS - 1000);
    sp.loop.runOnce(0);
    assert.equal(sp.stats.timedOut, 0, "timed out while only a little idle");
    spliceTimer(t0 + SPLICE_IDLE_TIMEOUT_MS + 1000);
    assert.equal(sp.stats.timedOut, 1);
    await pumpUntil(sp, "the client reset", () => sp.client.poll().error !== 0);
    assert.equal(sp.client.error, ERRNO.ECONNRESET);
    assert.equal(sp.server!.poll().error, ERRNO.ECONNRESET);
  } finally {
    await done(sp);
  }
});

spliceTest(
  "spliceTimer() resets a half-closed connection after SPLICE_FIN_TIMEOUT_MS",
  async () => {
    const sp = await spliced();
    try {
      sp.client.shutdownWrite();
      await pumpUntil(sp, "end of file at the server", () => sp.server!.poll().eof);
      /* the server keeps sending: the half-closed connection is alive */
      const t0 = performance.now();
      assert.equal(sp.server!.send(new Uint8Array(10)), 10);
      await pumpUntil(sp, "bytes at the client", () => sp.client.poll().receivedLen() === 10);
      spliceTimer(t0 + SPLICE_FIN_TIMEOUT_MS - 1000);
      assert.equal(sp.stats.timedOut, 0, "timed out while moving bytes");
      const t1 = performance.now();
      spliceTimer(t1 + SPLICE_FIN_TIMEOUT_MS + 1000);
      assert.equal(sp.stats.timedOut, 1);
      await pumpUntil(sp, "the client reset", () => sp.client.poll().error !== 0);
      assert.equal(sp.client.error, ERRNO.ECONNRESET);
    } finally {
      await done(sp);
    }
  },
);

spliceTest("spliceTimer() resets a connect not completed in time", async () => {
  /* a port nobody listens on: the connect fails at once, the splice resets;
   * a connect still pending is simulated by calling the timer at once */
  const sp = await spliced(closedPort(false));
  try {
    spliceTimer(performance.now() + SPLICE_CONNECT_TIMEOUT_MS + 1000);
    sp.loop.runOnce(0);
    assert.equal(sp.stats.timedOut, 1);
    await pumpUntil(sp, "the client reset", () => sp.client.poll().error !== 0);
  } finally {
    await done(sp);
  }
});

spliceTest(
  "spliceConnect() refuses a connection whose pipes would go beyond the descriptor budget",
  async () => {
    const c = ctxNew(16);
    const loop = new EventLoop();
    const stats = spliceInit(c, loop, (d, t) => libc.symbols.socket(d, t, 0));
    const front = new HostListener(false);
    const back = new HostListener(false);
    const client = HostConn.connect(false, front.port);
    const sp: Splice = { loop, stats, client, server: null, owned: [front, back, client] };
    try {
      let fd = -1;
      await pumpUntil(sp, "the front accept", () => {
        fd = libc.symbols.accept4(front.fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
        return fd >= 0;
      });
      /* room for the accepted socket and the connecting one, not for the
       * four pipe ends */
      const refused = fdBudget.refused;
      fdBudget.max = fd + 3;
      assert.equal(spliceConnect(fd, false, back.port, false), false);
      assert.equal(fdBudget.refused, refused + 1, "refusals counted");
      assert.equal(stats.failed, 1);
      await pumpUntil(sp, "the client reset", () => sp.client.poll().error !== 0);
      assert.equal(sp.client.error, ERRNO.ECONNRESET);
      assert.equal(c.flows.flowNextActive(0), -1, "flows left");
      assert.equal(c.flows.flowCheck(), null, "flow table consistent");
    } finally {
      fdBudgetRefresh(performance.now());
      await done(sp);
    }
  },
);
