/**
 * loop_test.ts - the event loop's dispatch boundary: a failing handler is
 * counted and the recovery hooks put the flow table right; when run()
 * yields to Deno's runtime.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  EPOLL_TYPE_PING,
  EPOLL_TYPE_TIMER,
  EPOLL_TYPE_UDP,
  EventLoop,
  QUIET_WAIT_MS,
  SIGNAL_CHECK_MS,
  YIELD_GRACE_MS,
  yieldNow,
} from "./loop.ts";
import { FLOW_STATE_FREE, FLOW_TYPE_UDP, FlowTable } from "./flow/table.ts";
import { PIF_HOST, PIF_TAP } from "./flow/pif.ts";
import { libc } from "./ffi/libc.ts";
import { EPOLLIN, O_CLOEXEC, O_NONBLOCK } from "./ffi/layout.ts";
import { timerAck, timerCreate, timerSet } from "./ffi/timer.ts";

/** run()'s timeout in the tests of idle waits (ms): short, and not SIGNAL_CHECK_MS. */
const QUIET_TEST_MS = 200;

/** A pipe with a byte in it: its read end is readable until closed. */
function readablePipe(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(libc.symbols.pipe2(new Uint8Array(fds.buffer), O_NONBLOCK | O_CLOEXEC), 0);
  assert.equal(libc.symbols.write(fds[1]!, new Uint8Array(1), 1), 1);
  return [fds[0]!, fds[1]!];
}

Deno.test("EventLoop: a handler failing mid flow set-up leaves the table usable", () => {
  const flows = new FlowTable({ capacity: 4 });
  const loop = new EventLoop();
  loop.post.push(() => flows.flowDeferHandler());
  loop.recover.push(() => flows.flowSetupAbandon());
  const a = new Uint8Array(16);
  /* one handler throws between flowAlloc() and flowActivate() */
  loop.on(EPOLL_TYPE_UDP, () => {
    const idx = flows.flowAlloc();
    flows.flowInitiate(idx, PIF_TAP, a, 0, a, 0, 1, 2);
    throw new Error("bad input");
  });
  /* the other sets flows up to the end */
  let made = -1;
  loop.on(EPOLL_TYPE_PING, () => {
    const idx = flows.flowAlloc();
    flows.flowInitiate(idx, PIF_TAP, a, 0, a, 0, 3, 4);
    flows.flowTarget(idx, PIF_HOST, a, 0, a, 0, 3, 4);
    flows.flowSetType(idx, FLOW_TYPE_UDP);
    flows.flowActivate(idx);
    made = idx;
  });
  const [bad, badW] = readablePipe();
  const [good, goodW] = readablePipe();
  try {
    loop.epoll.add(bad, EPOLLIN, EPOLL_TYPE_UDP);
    assert.equal(loop.runOnce(0), 1);
    assert.equal(loop.failures, 1, "the failure is counted");
    assert.equal(flows.abandoned, 1, "the set-up abandoned");
    assert.equal(flows.state[0], FLOW_STATE_FREE);
    loop.epoll.del(bad);
    loop.epoll.add(good, EPOLLIN, EPOLL_TYPE_PING);
    assert.equal(loop.runOnce(0), 1);
    assert.equal(loop.failures, 1, "no failure after recovery");
    assert.equal(made, 0, "the next flow takes the abandoned slot");
  } finally {
    for (const fd of [bad, badW, good, goodW]) libc.symbols.close(fd);
    loop.epoll.close();
  }
});

Deno.test("yieldNow: on a signal; once due, at the first idle wait or after the grace", () => {
  assert.equal(yieldNow(-4, 0, 0), true, "EINTR: a signal is waiting for its listener");
  assert.equal(yieldNow(0, SIGNAL_CHECK_MS - 1, 0), false, "not due yet");
  assert.equal(yieldNow(3, SIGNAL_CHECK_MS - 1, 0), false, "not due yet");
  assert.equal(yieldNow(0, SIGNAL_CHECK_MS, 0), true, "due and idle");
  /* due, but events came in the short wait: a reply in flight goes first */
  assert.equal(yieldNow(1, SIGNAL_CHECK_MS, 0), false);
  assert.equal(yieldNow(1, SIGNAL_CHECK_MS + YIELD_GRACE_MS - 1, YIELD_GRACE_MS - 1), false);
  /* due long ago (it fell due while the loop slept): the grace still runs from now */
  assert.equal(yieldNow(1, 2 * SIGNAL_CHECK_MS, 0), false, "a ping's request after a long sleep");
  assert.equal(
    yieldNow(1, SIGNAL_CHECK_MS + YIELD_GRACE_MS, YIELD_GRACE_MS),
    true,
    "events that never stop wait no longer",
  );
});

Deno.test("EventLoop.run: yields under events that never stop, and when idle", async () => {
  for (const busy of [true, false]) {
    const loop = new EventLoop();
    const [r, w] = readablePipe();
    const yields: number[] = [];
    let events = 0;
    try {
      /* level-triggered and never drained: every wait returns at once */
      if (busy) loop.epoll.add(r, EPOLLIN, EPOLL_TYPE_UDP);
      loop.on(EPOLL_TYPE_UDP, () => events++);
      loop.yieldMore = () => {
        yields.push(performance.now());
        if (yields.length === 4) loop.stop(0);
        return false;
      };
      const t0 = performance.now();
      assert.equal(await loop.run(QUIET_TEST_MS), 0);
      const took = performance.now() - t0;
      assert.equal(yields.length, 4);
      assert.equal(events > 0, busy);
      /* four yields: YIELD_GRACE_MS after SIGNAL_CHECK_MS when events never
       * leave the loop idle, and each wait's full length (the run()
       * argument) when nothing comes at all; the upper bound leaves room
       * for a slow machine */
      const period = busy ? SIGNAL_CHECK_MS + YIELD_GRACE_MS : QUIET_TEST_MS;
      assert.ok(took >= 4 * period - 1, `busy ${busy}: four yields after ${took} ms`);
      assert.ok(took < 4 * period + 1000, `busy ${busy}: four yields took ${took} ms`);
    } finally {
      libc.symbols.close(r);
      libc.symbols.close(w);
      loop.epoll.close();
    }
  }
});

Deno.test("EventLoop.run: a quiet loop waits up to QUIET_WAIT_MS, and an event brings the yield right after it", async () => {
  const loop = new EventLoop();
  const timer = timerCreate();
  const yields: number[] = [];
  let fired = 0;
  try {
    loop.epoll.add(timer, EPOLLIN, EPOLL_TYPE_TIMER);
    loop.on(EPOLL_TYPE_TIMER, (fd) => fired += timerAck(fd));
    loop.yieldMore = () => {
      yields.push(performance.now());
      if (yields.length === 3) loop.stop(0);
      return false;
    };
    /* one expiry, 1.5 s after the first quiet wait began */
    const t0 = performance.now();
    assert.equal(timerSet(timer, QUIET_WAIT_MS + 500), 0);
    /* a longer timeout than the bound: the bound holds */
    assert.equal(await loop.run(10 * QUIET_WAIT_MS), 0);
    assert.equal(fired, 1);
    const [a, b, c] = yields.map((t) => t - t0) as [number, number, number];
    assert.ok(a >= QUIET_WAIT_MS - 1 && a < QUIET_WAIT_MS + 400, `first yield after ${a} ms`);
    /* the handler ran: the next yield comes SIGNAL_CHECK_MS after the last, not a second */
    assert.ok(
      b >= QUIET_WAIT_MS + 500 && b < QUIET_WAIT_MS + 500 + 400,
      `yield after the event at ${b} ms`,
    );
    assert.ok(c - b >= QUIET_WAIT_MS - 1, `then quiet again: ${c - b} ms`);
  } finally {
    libc.symbols.close(timer);
    loop.epoll.close();
  }
});

Deno.test("EventLoop.run: a post handler's wakeBy() cuts a quiet wait short", async () => {
  const loop = new EventLoop();
  const runs: number[] = [];
  let t0 = 0;
  loop.post.push((now) => {
    runs.push(now - t0);
    /* once, 300 ms after the first run; then nothing: the next wait is quiet again */
    if (runs.length === 1) loop.wakeBy(now + 300);
    if (runs.length === 3) loop.stop(0);
  });
  try {
    t0 = performance.now();
    assert.equal(await loop.run(QUIET_WAIT_MS), 0);
    const [a, b, c] = runs as [number, number, number];
    assert.ok(b - a >= 299 && b - a < 300 + 400, `asked for 300 ms: ${b - a} ms`);
    assert.ok(c - b >= QUIET_WAIT_MS - 1, `then a quiet wait: ${c - b} ms`);
  } finally {
    loop.epoll.close();
  }
});

Deno.test("EventLoop.run: a wakeBy() time just past waits 0 ms (not -0, which FFI refuses as an i32)", async () => {
  const loop = new EventLoop();
  let runs = 0;
  loop.post.push((now) => {
    /* due the moment it is asked: the wait computed from it is a fraction of a ms past */
    if (++runs < 5) loop.wakeBy(now);
    else loop.stop(0);
  });
  try {
    assert.equal(await loop.run(QUIET_WAIT_MS), 0);
    assert.equal(runs, 5);
  } finally {
    loop.epoll.close();
  }
});
