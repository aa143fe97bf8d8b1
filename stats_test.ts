/**
 * Unit tests of stats.ts: the --stats table is printed from the loop's real
 * event counts, at most once per delay, and only when something changed.
 */

import assert from "node:assert/strict";
import { EPOLL_TYPE_TIMER, EventLoop } from "./loop.ts";
import { EPOLLIN } from "./ffi/layout.ts";
import { timerAck, timerCreate, timerSet } from "./ffi/timer.ts";
import { libc } from "./ffi/libc.ts";
import { LOG_INFO, logOpenFile, logSetLevel } from "./log.ts";
import { STATS_HEADER_EVERY, statsStart } from "./stats.ts";

/** A loop with one timerfd, and a way to make it fire once. */
function timerLoop(): { loop: EventLoop; fire: () => void; close: () => void } {
  const loop = new EventLoop();
  const fd = timerCreate();
  loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TIMER);
  loop.on(EPOLL_TYPE_TIMER, (f) => timerAck(f));
  const fire = () => {
    timerSet(fd, 1);
    assert.equal(loop.runOnce(1000), 1, "the timer fires");
  };
  return { loop, fire, close: () => libc.symbols.close(fd) };
}

Deno.test("stats: the event table counts dispatched events, once per change", () => {
  const path = Deno.makeTempFileSync();
  logSetLevel(LOG_INFO);
  logOpenFile(path, 1 << 20);
  const { loop, fire, close } = timerLoop();
  try {
    let counter = 0;
    statsStart(loop, 0, () => [`module: counter ${counter}`]);
    fire();
    fire();
    let lines = Deno.readTextFileSync(path).trim().split("\n").map((l) =>
      l.replace(/^\S+ INFO: /, "")
    );
    /* header, counts, module line after each of the two batches */
    assert.equal(lines.length, 5, lines.join("\n"));
    assert.match(lines[0]!, /^\s+timer$/, "one column: the only type with a handler");
    assert.match(lines[1]!, /^\s+1$/);
    assert.equal(lines[2], "module: counter 0");
    assert.match(lines[3]!, /^\s+2$/, "counts are cumulative; no header again yet");
    /* nothing happened: nothing printed */
    loop.runOnce(0);
    lines = Deno.readTextFileSync(path).trim().split("\n");
    assert.equal(lines.length, 5);
    /* a module's counter changed without an event: printed */
    counter = 7;
    loop.runOnce(0);
    lines = Deno.readTextFileSync(path).trim().split("\n");
    assert.equal(lines.length, 7);
    assert.match(lines[6]!, /module: counter 7$/);
  } finally {
    close();
    Deno.removeSync(path);
  }
});

Deno.test("stats: at most one table per DELAY seconds, header every STATS_HEADER_EVERY rows", () => {
  const path = Deno.makeTempFileSync();
  logSetLevel(LOG_INFO);
  logOpenFile(path, 1 << 20);
  const { loop, fire, close } = timerLoop();
  try {
    statsStart(loop, 3600, () => []);
    for (let i = 0; i < 5; i++) fire();
    const lines = Deno.readTextFileSync(path).trim().split("\n");
    assert.equal(lines.length, 2, "the first batch prints, the next ones are within the delay");
    assert.match(lines[1]!, /\s1$/);
  } finally {
    close();
    Deno.removeSync(path);
  }
  const path2 = Deno.makeTempFileSync();
  logOpenFile(path2, 1 << 20);
  const t = timerLoop();
  try {
    statsStart(t.loop, 0, () => []);
    for (let i = 0; i < STATS_HEADER_EVERY + 1; i++) t.fire();
    const lines = Deno.readTextFileSync(path2).trim().split("\n");
    const headers = lines.filter((l) => /timer$/.test(l));
    assert.equal(headers.length, 2);
    assert.equal(lines.length, STATS_HEADER_EVERY + 1 + 2);
  } finally {
    t.close();
    Deno.removeSync(path2);
  }
});
