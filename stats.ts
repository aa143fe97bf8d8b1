/**
 * stats.ts - --stats DELAY: event statistics in the log, at most every DELAY
 * seconds.
 *
 * As pasta, a table of how many events of each type the loop dispatched
 * (counted since start; a header row first, and again every
 * STATS_HEADER_EVERY rows), followed here by each module's one-line counters
 * (TCP, UDP, ICMP, splice). Printed at info level from a post handler, once
 * DELAY seconds have passed since the last print, and only when an event
 * count or a counter line changed: an idle orzo stays quiet.
 *
 * @module
 */

import { EPOLL_NUM_TYPES, EPOLL_TYPE_NAMES, type EventLoop } from "./loop.ts";
import { info } from "./log.ts";

/** Rows of counts between two header rows. */
export const STATS_HEADER_EVERY = 20;

/** Narrowest column of the event table. */
const COLUMN_MIN = 8;

/**
 * Starts printing statistics for a loop.
 * @param loop the event loop (its handlers are registered already: the table
 *   has a column for each type that has a handler)
 * @param delaySeconds shortest time between two prints (0: after every batch
 *   that changed something)
 * @param lines the modules' counter lines, read when printing
 */
export function statsStart(loop: EventLoop, delaySeconds: number, lines: () => string[]): void {
  const delayMs = delaySeconds * 1000;
  const printed = new Float64Array(EPOLL_NUM_TYPES);
  let lastMs = -Infinity;
  let lastLines = "";
  let rows = 0;
  let columns: number[] | null = null;
  let widths: number[] = [];
  loop.post.push((now) => {
    if (now - lastMs < delayMs) return;
    let changed = false;
    for (let t = 0; t < EPOLL_NUM_TYPES; t++) {
      if (loop.events[t] !== printed[t]) changed = true;
    }
    const text = lines();
    const joined = text.join("\n");
    if (!changed && joined === lastLines) return;
    lastMs = now;
    printed.set(loop.events);
    lastLines = joined;
    if (columns === null) {
      columns = [];
      for (let t = 1; t < EPOLL_NUM_TYPES; t++) if (loop.handlers[t] !== null) columns.push(t);
      widths = columns.map((t) => Math.max(COLUMN_MIN, EPOLL_TYPE_NAMES[t]!.length) + 1);
    }
    if (rows % STATS_HEADER_EVERY === 0) {
      info(columns.map((t, i) => EPOLL_TYPE_NAMES[t]!.padStart(widths[i]!)).join(""));
    }
    info(columns.map((t, i) => String(loop.events[t]).padStart(widths[i]!)).join(""));
    for (const l of text) info(l);
    rows++;
  });
}
