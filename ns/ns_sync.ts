/**
 * ns_sync.ts - sockets and files opened inside the guest's network namespace,
 * synchronously, from the event loop.
 *
 * Theory of operation: a socket belongs to the network namespace of the
 * thread that creates it, and the main thread must stay in the host's
 * namespace (FFI-NOTES.md §5: an unprivileged orzo cannot even come back).
 * The namespace thread (worker_main.ts) answers set-up requests over
 * postMessage, which the main thread only sees while the JS event loop runs:
 * at set-up, never while the synchronous epoll loop blocks it. Flows that
 * need a socket in the guest's namespace while running (a datagram from the
 * host's loopback spliced to the guest's, a port bound by `auto` scanning,
 * -T listeners) use this channel to the same thread instead: a
 * SharedArrayBuffer served with `Atomics.wait`/`Atomics.notify`, so that the
 * main thread blocks for the few microseconds a `socket(2)` takes (about
 * 3 us for the round trip on an idle machine, measured) instead of needing
 * its event loop.
 *
 * One thread, two ways in, one at a time: the first call here posts the
 * thread a `sync` message, after which it serves only the buffer, blocked in
 * `Atomics.wait`; ns.ts calls {@linkcode NsSync.release} before each
 * request message, which hands the thread back to its event loop. Set-up
 * alternates a little; once the loop runs there are only calls here, so the
 * thread stays on the buffer for good. (Serving both at once with
 * `Atomics.waitAsync` costs about 8 us a round trip instead of 3, measured.)
 *
 * Request block (Int32Array over the shared buffer):
 *
 *     [0] state: 0 idle, 1 request posted, 2 reply ready
 *     [1] op: 1 socket(a, b, c), 2 open(path, a), 3 quit,
 *         4 drop capabilities (a keep mask, b clamp, c sets; error text in the path area),
 *         5 yield (back to messages)
 *     [2..4] arguments a, b, c
 *     [5] result: an fd, or -errno
 *     bytes 64..64+PATH_MAX: NUL-terminated path for open
 *
 * One request at a time (the loop is single-threaded). A thread that does not
 * answer within NS_SYNC_TIMEOUT_MS marks the channel broken: every later call
 * returns -ETIMEDOUT and callers fall back (no splice, no scan).
 *
 * @module
 */

import { nsWorkerStart } from "./worker_main.ts";

/** Longest wait for the namespace worker's reply. */
export const NS_SYNC_TIMEOUT_MS = 2000;
/** Room for a path in the request block. */
const PATH_MAX = 4096;
const PATH_OFF = 64;
const ST_POSTED = 1;
const ST_DONE = 2;
const OP_SOCKET = 1;
const OP_OPEN = 2;
const OP_QUIT = 3;
const OP_CAPS = 4;
const OP_YIELD = 5;
const ETIMEDOUT = 110;

/**
 * A synchronous channel to the thread inside the guest's network namespace.
 * ns.ts's NsThread makes one for its thread (its `sync`);
 * {@linkcode NsSync.start} makes a thread of its own.
 */
export class NsSync {
  readonly #worker: Worker;
  readonly #sab: SharedArrayBuffer;
  readonly #ctl: Int32Array;
  readonly #path: Uint8Array;
  /** whether the thread serves the buffer (else its messages) */
  #serving = false;
  #broken = false;
  /**
   * the thread's kernel id: /proc/self/task/TID/net shows the namespace's
   * sockets (/proc/net/udp and friends) to any thread
   */
  tid: number = -1;

  /**
   * A channel to a namespace Worker (worker_main.ts) serving messages.
   * @param worker the Worker, from nsWorkerStart
   */
  constructor(worker: Worker) {
    this.#worker = worker;
    this.#sab = new SharedArrayBuffer(PATH_OFF + PATH_MAX);
    this.#ctl = new Int32Array(this.#sab, 0, 16);
    this.#path = new Uint8Array(this.#sab, PATH_OFF, PATH_MAX);
  }

  /**
   * Starts a namespace thread of its own and moves it into a network namespace.
   * @param nsFd an fd referring to the namespace (-1: stay in the current one, for tests)
   * @returns the channel
   * @throws Error when the thread cannot enter the namespace
   */
  static async start(nsFd: number): Promise<NsSync> {
    const worker = nsWorkerStart();
    const s = new NsSync(worker);
    const reply = await new Promise<{ ok: boolean; error?: string; tid?: number }>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        resolve({ ok: false, error: "the thread failed" });
      };
      worker.postMessage({ id: 1, op: nsFd >= 0 ? "setnsFd" : "tid", fd: nsFd });
    });
    worker.onmessage = null;
    if (!reply.ok) {
      worker.terminate();
      throw new Error(`Cannot enter the namespace for sockets: ${reply.error}`);
    }
    s.tid = reply.tid ?? -1;
    return s;
  }

  /** Whether the thread stopped answering (every call then fails). */
  get broken(): boolean {
    return this.#broken;
  }

  #call(op: number, a: number, b: number, c: number): number {
    if (this.#broken) return -ETIMEDOUT;
    const ctl = this.#ctl;
    if (!this.#serving) {
      /* the thread leaves its event loop for the buffer (worker_main.ts) */
      this.#worker.postMessage({ id: 0, op: "sync", sab: this.#sab });
      this.#serving = true;
    }
    ctl[1] = op;
    ctl[2] = a;
    ctl[3] = b;
    ctl[4] = c;
    Atomics.store(ctl, 0, ST_POSTED);
    Atomics.notify(ctl, 0);
    const deadline = performance.now() + NS_SYNC_TIMEOUT_MS;
    while (Atomics.load(ctl, 0) !== ST_DONE) {
      Atomics.wait(ctl, 0, ST_POSTED, 50);
      if (Atomics.load(ctl, 0) !== ST_DONE && performance.now() > deadline) {
        this.#broken = true;
        return -ETIMEDOUT;
      }
    }
    const r = ctl[5]!;
    Atomics.store(ctl, 0, 0);
    return r;
  }

  /**
   * Hands the thread back to its event loop, to answer a request message
   * (ns.ts calls this before posting one). The next call here takes it back.
   */
  release(): void {
    if (this.#serving) this.#call(OP_YIELD, 0, 0, 0);
    this.#serving = false;
  }
  /**
   * Creates a socket in the namespace (then bind, connect and use it from
   * any thread: a socket stays in the namespace it was created in).
   * @param domain AF_INET, AF_INET6
   * @param type SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ...
   * @param protocol protocol, usually 0
   * @returns the fd, or -errno
   */
  socket(domain: number, type: number, protocol = 0): number {
    return this.#call(OP_SOCKET, domain, type, protocol);
  }

  /**
   * Opens a file from inside the namespace, e.g. /proc/thread-self/net/udp,
   * which then keeps showing that namespace's sockets.
   * @param path the file
   * @param flags open(2) flags (O_RDONLY | O_CLOEXEC, ...)
   * @returns the fd, or -errno
   */
  open(path: string, flags: number): number {
    const b = new TextEncoder().encode(path);
    if (b.length >= PATH_MAX) return -36; /* ENAMETOOLONG */
    this.#path.fill(0);
    this.#path.set(b);
    return this.#call(OP_OPEN, flags, 0, 0);
  }

  /**
   * Drops capabilities from the thread (isolate/thread_caps.ts).
   * @param keep capabilities to keep (bit mask)
   * @param clamp whether to empty the bounding set
   * @param sets whether to reduce the effective, permitted and inheritable sets
   * @returns "" on success, else what failed
   */
  capsDrop(keep: number, clamp: boolean, sets: boolean): string {
    const r = this.#call(OP_CAPS, keep, clamp ? 1 : 0, sets ? 1 : 0);
    if (r === 0) return "";
    if (r === -ETIMEDOUT) return "no answer";
    const end = this.#path.indexOf(0);
    return new TextDecoder().decode(this.#path.slice(0, end < 0 ? PATH_MAX : end));
  }

  /**
   * Stops the thread (blocked in `Atomics.wait`, it would not notice
   * `Worker.terminate()` alone: it is asked to quit first).
   */
  close(): void {
    if (this.#serving) this.#call(OP_QUIT, 0, 0, 0);
    this.#broken = true;
    this.#worker.terminate();
  }
}
