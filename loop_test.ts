/**
 * loop_test.ts - the event loop's dispatch boundary: a failing handler is
 * counted and the recovery hooks put the flow table right.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EPOLL_TYPE_PING, EPOLL_TYPE_UDP, EventLoop } from "./loop.ts";
import { FLOW_STATE_FREE, FLOW_TYPE_UDP, FlowTable } from "./flow/table.ts";
import { PIF_HOST, PIF_TAP } from "./flow/pif.ts";
import { libc } from "./ffi/libc.ts";
import { EPOLLIN, O_CLOEXEC, O_NONBLOCK } from "./ffi/layout.ts";

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
