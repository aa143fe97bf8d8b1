/**
 * loop.ts - the synchronous epoll loop and its dispatch table.
 *
 * Theory of operation: one `epoll_wait` on the JS thread blocks until some
 * fd is ready; `now` (monotonic ms) is read once per wakeup; each event's
 * packed reference selects a handler from the table by type, and the handler
 * gets the fd, the per-type value and the event mask. A handler's failure is
 * caught at this boundary and counted: one bad flow never stops the loop.
 * After a caught failure the `recover` hooks run, so that state a handler
 * left half-changed (a flow set-up, see FlowTable.flowSetupAbandon()) is
 * put right before the next event.
 * Timers are timerfds in the same set.
 *
 * Signals: Deno's listeners (Deno.addSignalListener) run only once Deno's
 * runtime has parked and polled its reactor, where the signal arrives, and
 * this loop lets it only when it awaits something. A signal that arrives
 * while the thread sleeps in epoll_wait interrupts it (EINTR); one that
 * arrives while handlers run is taken by the C-level handler then and there,
 * and the next epoll_wait is not interrupted. So the loop yields on EINTR,
 * and once SIGNAL_CHECK_MS have passed since the last yield it yields at
 * the first YIELD_IDLE_MS without events, or YIELD_GRACE_MS after it first
 * saw the yield due if events never stop. Once a handler has run since the
 * last yield, it never waits longer than SIGNAL_CHECK_MS in epoll_wait: a
 * signal that came while handlers ran is acted on within about 2 *
 * SIGNAL_CHECK_MS. A loop that has dispatched nothing since its last yield
 * can have missed only a signal that came in the few microseconds between
 * that yield and its next epoll_wait: it waits up to QUIET_WAIT_MS, the
 * longest such a signal waits. With the TCP walk's quiet period
 * (TCP_TIMER_QUIET_MS), an idle orzo went from 32-33 wake-ups and 2.7-3.2 ms
 * of CPU a second to 4 and 0.3-0.4 ms (pasta: 2 and 0.2 ms; measured here
 * over 10 s, 5 s after start). Yielding when idle keeps the
 * stall off exchanges in flight: a ping every 50 ms met the due yield
 * between its request and its reply, each time (about 0.1-0.2 ms more RTT).
 * The grace is short because yields under load are worth their cost: held
 * back to 2 * SIGNAL_CHECK_MS, they cost passt mode 15% more CPU per
 * connection with a VM (bench/vm.ts: 124-133 µs against 107-116 µs,
 * VM→remote), the same as not waiting at all with a 5 ms grace. The yield
 * awaits a trivial FFI call run on a blocking thread (getpid_async), so the
 * runtime must park. Measured here (Deno 2.9, a busy loop yielding every
 * 50 ms): that yield stalls the loop 0.5 ms (1% under full load) and the
 * listener ran within one period; setTimeout(0) also works
 * but stalls 2-4 ms (the timer's granularity: 4-8% under load); a
 * MessageChannel round trip stalls 0.2 ms but the listener had still not
 * run after 4.5 s (the runtime never parks). Rejected too: a self-pipe
 * written by the listener (it cannot run before the yield), signalfd or
 * sigpending() (Deno's other threads take the signal), reading
 * /proc/self/status (an open and a parse per check).
 *
 * @module
 */

import { Epoll } from "./ffi/epoll.ts";
import { libc } from "./ffi/libc.ts";
import { err } from "./log.ts";

/** Longest time the loop goes without yielding to Deno's event loop (ms). */
export const SIGNAL_CHECK_MS = 50;

/**
 * Longest wait of a loop that has dispatched nothing since its last yield
 * (ms): the bound on acting on a signal that came between that yield and
 * the wait (see the module doc).
 */
export const QUIET_WAIT_MS = 1000;

/**
 * Once a yield is due, the loop waits this long for more events before it
 * yields (ms): traffic still in flight (a ping's reply, the next request of
 * a request/response exchange) is handled first.
 */
export const YIELD_IDLE_MS = 1;

/** Longest a due yield waits for YIELD_IDLE_MS without events (ms; see the module doc). */
export const YIELD_GRACE_MS = 5;

/** Longest run of extra yields asked for by {@linkcode EventLoop.yieldMore} (ms). */
export const YIELD_MORE_MS = 20;

/**
 * Whether {@linkcode EventLoop.run} yields to Deno's runtime after a wait
 * (see the module doc).
 * @param n what the wait returned: events dispatched, 0 when it timed out
 *   (after YIELD_IDLE_MS once a yield is due), -4 (EINTR) when a signal
 *   interrupted it
 * @param sinceMs time since the last yield (ms)
 * @param dueForMs time since the loop first saw the yield due (ms; 0 when
 *   it sees it now): the grace runs from there, so a yield that falls due
 *   while the loop sleeps does not cut the next exchange in two
 * @returns true to yield now
 */
export function yieldNow(n: number, sinceMs: number, dueForMs: number): boolean {
  if (n === -4) return true;
  if (sinceMs < SIGNAL_CHECK_MS) return false;
  return n === 0 || dueForMs >= YIELD_GRACE_MS;
}

/** Reference types: what an fd in the epoll set is. */
export const EPOLL_TYPE_NONE = 0;
/** the tap device (pasta) */
export const EPOLL_TYPE_TAP_PASTA = 1;
/** the qemu stream socket (passt) */
export const EPOLL_TYPE_TAP_PASST = 2;
/** the listening UNIX socket (passt) */
export const EPOLL_TYPE_TAP_LISTEN = 3;
/** the spawned command's pidfd */
export const EPOLL_TYPE_PIDFD = 4;
/** inotify watch on the namespace's directory */
export const EPOLL_TYPE_NSQUIT_INOTIFY = 5;
/** fallback timer checking the namespace */
export const EPOLL_TYPE_NSQUIT_TIMER = 6;
/** periodic protocol timer */
export const EPOLL_TYPE_TIMER = 7;
/** TCP connection socket */
export const EPOLL_TYPE_TCP = 8;
/** TCP listening socket */
export const EPOLL_TYPE_TCP_LISTEN = 9;
/** TCP per-connection timer */
export const EPOLL_TYPE_TCP_TIMER = 10;
/** spliced TCP connection socket */
export const EPOLL_TYPE_TCP_SPLICE = 11;
/** UDP socket */
export const EPOLL_TYPE_UDP = 12;
/** UDP listening socket */
export const EPOLL_TYPE_UDP_LISTEN = 13;
/** ICMP ping socket */
export const EPOLL_TYPE_PING = 14;
/** listening control socket (-c, fwd/ctl.ts) */
export const EPOLL_TYPE_CTL_LISTEN = 15;
/** a control connection (fwd/ctl.ts) */
export const EPOLL_TYPE_CTL = 16;
/** eventfd by which an embedding program asks the loop to yield (lib/) */
export const EPOLL_TYPE_WAKE = 17;
/** Number of reference types. */
export const EPOLL_NUM_TYPES = 18;

/** Event types that carry traffic (not timers, signals or control). */
export const EPOLL_TRAFFIC_TYPES: readonly number[] = [
  EPOLL_TYPE_TAP_PASTA,
  EPOLL_TYPE_TAP_PASST,
  EPOLL_TYPE_TCP,
  EPOLL_TYPE_TCP_LISTEN,
  EPOLL_TYPE_TCP_SPLICE,
  EPOLL_TYPE_UDP,
  EPOLL_TYPE_UDP_LISTEN,
  EPOLL_TYPE_PING,
];

/** Names of the reference types, for logs. */
export const EPOLL_TYPE_NAMES: readonly string[] = [
  "none",
  "tap (pasta)",
  "tap (passt)",
  "tap listen",
  "pidfd",
  "namespace inotify",
  "namespace timer",
  "timer",
  "TCP",
  "TCP listen",
  "TCP timer",
  "TCP splice",
  "UDP",
  "UDP listen",
  "ping",
  "control listen",
  "control",
  "wake",
];

/**
 * An event handler.
 * @param fd the fd that is ready
 * @param data the per-type value of the reference
 * @param events EPOLL* mask
 * @param now monotonic time in ms
 */
export type EpollHandler = (fd: number, data: number, events: number, now: number) => void;

/** The loop: the epoll set and a handler per reference type. */
export class EventLoop {
  /** the epoll set */
  readonly epoll = new Epoll();
  /** handler by reference type */
  readonly handlers: (EpollHandler | null)[] = new Array(EPOLL_NUM_TYPES).fill(null);
  /** handler failures caught at the dispatch boundary */
  failures = 0;
  /** events dispatched, by reference type (for --stats) */
  readonly events: Float64Array = new Float64Array(EPOLL_NUM_TYPES);
  /** set by a handler to make run() yield to Deno's event loop after this batch */
  yieldNow = false;
  /**
   * Asked after each yield: while it returns true, run() yields again (for
   * at most YIELD_MORE_MS), so that work the runtime still holds for this
   * thread (a Worker's message) runs before the loop blocks again.
   */
  yieldMore: (() => boolean) | null = null;
  /** set to stop the loop after the current batch */
  exitCode: number | null = null;
  /**
   * Called after each batch of events, in order: deferred work and protocol
   * timers (each checks its own interval against `now`).
   */
  readonly post: ((now: number) => void)[] = [];

  /**
   * Called after any handler failure caught at the dispatch boundary, in
   * order: they undo what a handler may have left half-done.
   */
  readonly recover: (() => void)[] = [];

  /** the earliest time (performance.now() ms) a post handler asked to run by, or Infinity */
  #wakeAt = Infinity;

  /**
   * Asks for the post handlers to run again by a time even if no event comes
   * (a quiet loop waits up to QUIET_WAIT_MS otherwise). A post handler asks
   * again after each wait while it still needs it: the asks are cleared
   * before the post handlers run.
   * @param at monotonic time (performance.now(), ms)
   */
  wakeBy(at: number): void {
    if (at < this.#wakeAt) this.#wakeAt = at;
  }

  /**
   * Registers the handler for a reference type.
   * @param type EPOLL_TYPE_*
   * @param h the handler
   */
  on(type: number, h: EpollHandler): void {
    this.handlers[type] = h;
  }

  /**
   * Asks the loop to stop with an exit code.
   * @param code process exit code
   */
  stop(code: number): void {
    if (this.exitCode === null) this.exitCode = code;
  }

  /**
   * Waits once for events and dispatches them, then runs the post handlers
   * (also when the wait timed out with no events). Does not block beyond
   * `timeoutMs`, so tests can pump the loop with 0.
   * @param timeoutMs longest wait in ms: 0 polls, -1 waits without limit
   * @returns the number of events dispatched, or -errno when epoll_wait
   *   failed (-4, EINTR, when a signal arrived): then nothing ran
   */
  runOnce(timeoutMs: number): number {
    const ep = this.epoll;
    const n = ep.wait(timeoutMs);
    if (n < 0) return n;
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const type = ep.typeOf(i);
      const h = this.handlers[type];
      if (h === null || h === undefined) continue;
      this.events[type]++;
      try {
        h(ep.fdOf(i), ep.dataOf(i), ep.eventsOf(i), now);
      } catch (e) {
        this.failures++;
        err(`${EPOLL_TYPE_NAMES[type]} handler failed: ${e instanceof Error ? e.message : e}`);
        this.#recover();
      }
    }
    const post = this.post;
    this.#wakeAt = Infinity;
    for (let i = 0; i < post.length; i++) {
      try {
        post[i]!(now);
      } catch (e) {
        this.failures++;
        err(`deferred handler failed: ${e instanceof Error ? e.message : e}`);
        this.#recover();
      }
    }
    return n;
  }

  #recover(): void {
    const r = this.recover;
    for (let i = 0; i < r.length; i++) {
      try {
        r[i]!();
      } catch (e) {
        err(`recovery after a failure failed: ${e instanceof Error ? e.message : e}`);
      }
    }
  }

  /**
   * Runs until stop() is called, yielding to Deno's event loop about
   * every SIGNAL_CHECK_MS while events come, so that signal listeners run
   * (see the module doc).
   * @param timeoutMs longest wait between post() calls: at most
   *   SIGNAL_CHECK_MS while events come, at most QUIET_WAIT_MS once a yield
   *   has been followed by none
   * @returns the exit code given to stop()
   */
  async run(timeoutMs = 1000): Promise<number> {
    const wait = timeoutMs < 0 || timeoutMs > SIGNAL_CHECK_MS ? SIGNAL_CHECK_MS : timeoutMs;
    const quietWait = timeoutMs < 0 || timeoutMs > QUIET_WAIT_MS ? QUIET_WAIT_MS : timeoutMs;
    let lastYield = performance.now();
    /* when the loop first saw a yield due, -1 while none is */
    let dueAt = -1;
    /* whether a handler ran since the last yield (it may have taken a signal) */
    let busy = false;
    while (this.exitCode === null) {
      let ms = dueAt >= 0 && wait > YIELD_IDLE_MS ? YIELD_IDLE_MS : busy ? wait : quietWait;
      if (this.#wakeAt !== Infinity) {
        /* (a time just past gives Math.ceil() -0, which FFI refuses as an i32) */
        const by = Math.ceil(this.#wakeAt - performance.now());
        if (by < ms) ms = by > 0 ? by : 0;
      }
      const n = this.runOnce(ms);
      if (n < 0 && n !== -4 /* EINTR: a signal */) {
        err(`epoll_wait: errno ${-n}`);
        return 1;
      }
      if (n > 0) busy = true;
      const t = performance.now();
      const since = t - lastYield;
      if (dueAt < 0 && since >= SIGNAL_CHECK_MS) dueAt = t;
      if (this.yieldNow || yieldNow(n, since, dueAt < 0 ? 0 : t - dueAt)) {
        dueAt = -1;
        busy = false;
        this.yieldNow = false;
        /* Deno's runtime parks meanwhile: signal listeners run */
        const t0 = performance.now();
        do {
          await libc.symbols.getpid_async();
        } while (this.yieldMore?.() === true && performance.now() - t0 < YIELD_MORE_MS);
        lastYield = performance.now();
      }
    }
    return this.exitCode;
  }
}
