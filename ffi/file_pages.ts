/**
 * file_pages.ts - lets go of the program file pages that start-up touched.
 *
 * Most of orzo's resident memory at idle is not its own: it is pages of the
 * mapped `deno` binary (and libraries) that Deno's start-up ran or read once
 * (module loading, transpiling, the Workers' set-up) and that stay mapped,
 * and counted in the RSS, until the process ends. Read-only private file
 * mappings that hold no page of their own (smaps `Anonymous: 0 kB` and
 * `Swap: 0 kB`) are
 * copies of the page cache: `madvise(MADV_DONTNEED)` unmaps their pages, and
 * any page used again later is mapped again from the page cache by a minor
 * fault, so the resident set becomes the code the running loop uses.
 * Mappings with private (copied-on-write) pages, such as relocated
 * read-only data, are left alone: there MADV_DONTNEED would drop the copies.
 *
 * {@linkcode filePagesTrim} reads /proc/self/smaps and releases what it
 * lists in one synchronous step: no other JavaScript runs in between, so no
 * mapping listed can have been replaced (the Workers' threads do not map or
 * unmap program files once started). Set-up only: allocates.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { readFileText } from "./mem.ts";

/** madvise(2) on x86_64. */
const SYS_MADVISE = 28n;
/** Drop the pages of the range (file pages come back from the page cache). */
const MADV_DONTNEED = 4n;

/** A read-only file mapping without private pages. */
export interface FileRange {
  /** first address */
  start: bigint;
  /** length in bytes */
  len: bigint;
}

/**
 * Lists the read-only private file mappings of this process that hold no
 * private page, from /proc/self/smaps.
 * @param smaps the text of an smaps file (default: this process's)
 * @returns the ranges, or none when smaps cannot be read
 */
export function filePagesFind(smaps?: string): FileRange[] {
  let text = smaps;
  if (text === undefined) {
    try {
      text = readFileText("/proc/self/smaps");
    } catch {
      return [];
    }
  }
  const out: FileRange[] = [];
  let cur: FileRange | null = null;
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s+(\S.*)?$/.exec(line);
    if (m !== null) {
      /* file-backed (inode not 0, a path), readable, not writable, private */
      const ok = m[3]![0] === "r" && m[3]![1] === "-" && m[3]![3] === "p" && m[4] !== "0" &&
        m[5] !== undefined && m[5].startsWith("/");
      const start = BigInt("0x" + m[1]);
      cur = ok ? { start, len: BigInt("0x" + m[2]) - start } : null;
      continue;
    }
    /* no private page resident (Anonymous) nor swapped out (Swap, listed after it) */
    if (cur !== null && line.startsWith("Anonymous:") && !/^Anonymous:\s+0 kB/.test(line)) {
      cur = null;
    }
    if (cur !== null && line.startsWith("Swap:")) {
      if (/^Swap:\s+0 kB/.test(line)) out.push(cur);
      cur = null;
    }
  }
  return out;
}

/**
 * Unmaps the pages of this process's read-only file mappings without
 * private pages (they come back from the page cache on use).
 * @returns the number of ranges released (0 when smaps cannot be read)
 */
export function filePagesTrim(): number {
  let n = 0;
  for (const r of filePagesFind()) {
    if (libc.symbols.syscall4(SYS_MADVISE, r.start, r.len, MADV_DONTNEED) === 0n) n++;
  }
  return n;
}

/** How long the loop must have dispatched nothing before the trim runs (ms). */
export const FILE_TRIM_QUIET_MS = 1000;
/** The trim runs this long after start-up at the latest, quiet or not (ms). */
export const FILE_TRIM_LATEST_MS = 10_000;

/**
 * Runs {@linkcode filePagesTrim} once, from the loop's post handlers, when
 * the loop has dispatched no event of the given types (traffic: timers tick
 * on) for `quietMs`: the trim takes some
 * milliseconds (reading smaps) and the pages it drops fault back in on use,
 * so it must not stand between a guest and its first packets (a ping right
 * after start-up would wait for it). A network busy from the start gets it
 * FILE_TRIM_LATEST_MS after the first call, a one-time pause of some ms.
 * @param loop the event loop's post handlers, its per-type event counts and
 *   the ask to run them by a time (EventLoop.wakeBy)
 * @param types the event types that count (loop.ts: EPOLL_TRAFFIC_TYPES)
 * @param quietMs how long without events (ms)
 * @param trim what to run (the trim; tests count calls)
 */
export function filePagesTrimWhenQuiet(
  loop: {
    post: ((now: number) => void)[];
    events: Float64Array;
    wakeBy?: (at: number) => void;
  },
  types: readonly number[],
  quietMs = FILE_TRIM_QUIET_MS,
  trim: () => unknown = filePagesTrim,
): void {
  let done = false;
  let seen = -1;
  let quietSince = 0;
  let first = -1;
  loop.post.push((now) => {
    if (done) return;
    if (first < 0) first = now;
    let total = 0;
    for (let i = 0; i < types.length; i++) total += loop.events[types[i]!]!;
    if (total !== seen) {
      seen = total;
      quietSince = now;
    }
    if (now - quietSince >= quietMs || now - first >= FILE_TRIM_LATEST_MS) {
      done = true;
      trim();
      return;
    }
    /* a quiet loop sleeps up to a second: not past the time the trim falls due */
    const due = quietSince + quietMs;
    loop.wakeBy?.(due < first + FILE_TRIM_LATEST_MS ? due : first + FILE_TRIM_LATEST_MS);
  });
}
