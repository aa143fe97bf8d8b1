/**
 * fd_budget.ts - the descriptor budget of new flows.
 *
 * Every flow holds one or two descriptors (a host socket, a duplicate of a
 * listening socket), and a flood of new flows would take them all: then the
 * tap, timers, listeners and the splice pipes could not get one, and every
 * user would lose service. So sockets for new flows may use descriptors only
 * up to RLIMIT_NOFILE less a headroom (FD_HEADROOM_MIN, or a 32nd of the
 * limit when that is more), kept for everything else.
 *
 * The check costs nothing per flow beyond the socket call itself: the kernel
 * always hands out the lowest free descriptor, so a new descriptor numbered
 * n means descriptors 0 to n - 1 are all in use. A flow whose new socket is
 * numbered at or above the budget closes it again at once and is refused
 * (an RST for TCP, a dropped datagram for UDP), exactly as if socket() had
 * failed with EMFILE. The limit is read with getrlimit() at start and again
 * every FD_BUDGET_REFRESH_MS from the timers, so a limit lowered from outside
 * (prlimit) is followed.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";

/** Descriptors kept out of the flows' reach, at least. */
export const FD_HEADROOM_MIN = 64;
/** How often the limit is read again (ms). */
export const FD_BUDGET_REFRESH_MS = 1000;
/** RLIMIT_NOFILE */
const RLIMIT_NOFILE = 7;
/** Budget used when getrlimit() fails (it cannot, short of a broken libc). */
const FD_LIMIT_FALLBACK = 1024;

const rl = new BigUint64Array(2);
const rlBytes = new Uint8Array(rl.buffer);

/** The budget and what it refused. */
export const fdBudget = {
  /** RLIMIT_NOFILE (soft limit) when last read */
  limit: FD_LIMIT_FALLBACK,
  /** descriptors 0 .. max - 1 may be held by flows */
  max: FD_LIMIT_FALLBACK - FD_HEADROOM_MIN,
  /** new flows refused because their socket was beyond the budget */
  refused: 0,
  /** new flows refused because socket(), accept() or dup() failed with EMFILE or ENFILE */
  exhausted: 0,
  /** when the limit was last read (ms) */
  readAt: -Infinity,
};

/**
 * Reads RLIMIT_NOFILE and sets the budget from it.
 * @param now monotonic time in ms
 */
export function fdBudgetRefresh(now: number): void {
  fdBudget.readAt = now;
  let limit = FD_LIMIT_FALLBACK;
  if (libc.symbols.getrlimit(RLIMIT_NOFILE, rlBytes) === 0) {
    const cur = rl[0]!;
    limit = cur > 0x7fffffffn ? 0x7fffffff : Number(cur);
  }
  const headroom = Math.max(FD_HEADROOM_MIN, limit >>> 5);
  fdBudget.limit = limit;
  fdBudget.max = limit > headroom ? limit - headroom : 0;
}

/**
 * Reads the limit again when FD_BUDGET_REFRESH_MS have passed (from timers).
 * @param now monotonic time in ms
 */
export function fdBudgetTick(now: number): void {
  if (now - fdBudget.readAt >= FD_BUDGET_REFRESH_MS) fdBudgetRefresh(now);
}

/**
 * Checks a descriptor just opened for a new flow against the budget, and
 * counts a refusal.
 * @param fd the new descriptor (not negative)
 * @returns true if the flow must not keep it (the caller closes it)
 */
export function fdOverBudget(fd: number): boolean {
  if (fd < fdBudget.max) return false;
  fdBudget.refused++;
  return true;
}

/**
 * The budget's line for --stats and the exit summary.
 * @returns the text
 */
export function fdBudgetLine(): string {
  return `fd budget: ${fdBudget.max} of limit ${fdBudget.limit}; flows refused over it ` +
    `${fdBudget.refused}, at EMFILE/ENFILE ${fdBudget.exhausted}`;
}

fdBudgetRefresh(-Infinity);
