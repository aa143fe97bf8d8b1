/**
 * ns_sync.ts - sockets and files opened inside the guest's network namespace,
 * synchronously, from the event loop.
 *
 * Theory of operation: a socket belongs to the network namespace of the
 * thread that creates it, and the main thread must stay in the host's
 * namespace (FFI-NOTES.md §5: an unprivileged orzo cannot even come back).
 * The namespace thread of ns.ts answers over postMessage, which the main
 * thread only sees while the JS event loop runs: at set-up, never while the
 * synchronous epoll loop blocks it. Flows that need a socket in the guest's
 * namespace while running (a datagram from the host's loopback spliced to the
 * guest's, a port bound by `auto` scanning) use this instead: a second,
 * dedicated Worker that enters the namespace once (`setns` on the namespace
 * fd) and then serves requests through a SharedArrayBuffer with
 * `Atomics.wait`/`Atomics.notify`, so the main thread blocks for the few
 * microseconds a `socket(2)` takes (about 5 us for the round trip, measured)
 * instead of needing its event loop.
 *
 * Request block (Int32Array over the shared buffer):
 *
 *     [0] state: 0 idle, 1 request posted, 2 reply ready
 *     [1] op: 1 socket(a, b, c), 2 open(path, a), 3 quit,
 *         4 drop capabilities (a keep mask, b clamp, c sets; error text in the path area)
 *     [2..4] arguments a, b, c
 *     [5] result: an fd, or -errno
 *     bytes 64..64+PATH_MAX: NUL-terminated path for open
 *
 * One request at a time (the loop is single-threaded). A worker that does not
 * answer within NS_SYNC_TIMEOUT_MS marks the channel broken: every later call
 * returns -ETIMEDOUT and callers fall back (no splice, no scan).
 *
 * @module
 */

import { threadCapsDrop } from "../isolate/thread_caps.ts";

/** Longest wait for the namespace worker's reply. */
export const NS_SYNC_TIMEOUT_MS = 2000;
/** Room for a path in the request block. */
const PATH_MAX = 4096;
const PATH_OFF = 64;
const OP_SOCKET = 1;
const OP_OPEN = 2;
const OP_QUIT = 3;
const OP_CAPS = 4;
const ETIMEDOUT = 110;

/**
 * The worker's code. Runs in the Worker's global scope and closes over
 * nothing (it is started from its own source text, as --allow-ffi alone
 * cannot load a Worker module from a file).
 * @param capsDrop isolate/thread_caps.ts's threadCapsDrop, also as source text
 */
function nsSyncWorkerMain(
  capsDrop?: (keep: number, clamp: boolean, sets: boolean) => string,
): void {
  const lib = Deno.dlopen(
    "libc.so.6",
    {
      __errno_location: { parameters: [], result: "pointer" },
      setns: { parameters: ["i32", "i32"], result: "i32" },
      gettid: { parameters: [], result: "i32" },
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
    } as const,
  );
  const sym = lib.symbols;
  const errnoSlot = new Int32Array(
    Deno.UnsafePointerView.getArrayBuffer(sym.__errno_location()!, 4),
  );
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<{ sab: SharedArrayBuffer; nsFd: number }>) => void) | null;
    postMessage: (m: unknown) => void;
  };
  scope.onmessage = (e) => {
    scope.onmessage = null;
    const ctl = new Int32Array(e.data.sab, 0, 16);
    const pathShared = new Uint8Array(e.data.sab, 64, 4096);
    const path = new Uint8Array(4096);
    if (e.data.nsFd >= 0 && sym.setns(e.data.nsFd, 0x40000000 /* CLONE_NEWNET */) < 0) {
      scope.postMessage({ ok: false, errno: errnoSlot[0] });
      return;
    }
    scope.postMessage({ ok: true, tid: sym.gettid() });
    for (;;) {
      Atomics.wait(ctl, 0, 0);
      if (Atomics.load(ctl, 0) !== 1) continue;
      const op = ctl[1]!;
      let r = -22; /* EINVAL */
      if (op === 1) {
        r = sym.socket(ctl[2]!, ctl[3]!, ctl[4]!);
        if (r < 0) r = -errnoSlot[0]!;
      } else if (op === 2) {
        path.set(pathShared);
        r = sym.open(path, ctl[2]!, 0);
        if (r < 0) r = -errnoSlot[0]!;
      } else if (op === 4) {
        const err = capsDrop === undefined ? "no capability helper" : capsDrop(
          ctl[2]!,
          ctl[3] !== 0,
          ctl[4] !== 0,
        );
        pathShared.fill(0);
        pathShared.set(new TextEncoder().encode(err).subarray(0, 4095));
        r = err === "" ? 0 : -1;
      }
      ctl[5] = op === 3 ? 0 : r;
      Atomics.store(ctl, 0, 2);
      Atomics.notify(ctl, 0);
      if (op === 3) return;
    }
  };
}

/**
 * A synchronous channel to a thread inside the guest's network namespace.
 * Create it with {@linkcode NsSync.start} during set-up.
 */
export class NsSync {
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  readonly #path: Uint8Array;
  #broken = false;
  /**
   * the worker's kernel thread id: /proc/self/task/TID/net shows the
   * namespace's sockets (/proc/net/udp and friends) to any thread
   */
  tid: number = -1;

  private constructor(worker: Worker, sab: SharedArrayBuffer) {
    this.#worker = worker;
    this.#ctl = new Int32Array(sab, 0, 16);
    this.#path = new Uint8Array(sab, PATH_OFF, PATH_MAX);
  }

  /**
   * Starts the worker and moves it into a network namespace.
   * @param nsFd an fd referring to the namespace (-1: stay in the current one, for tests)
   * @returns the channel
   * @throws Error when the worker cannot enter the namespace
   */
  static async start(nsFd: number): Promise<NsSync> {
    const src = `(${nsSyncWorkerMain.toString()})(${threadCapsDrop.toString()});`;
    const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
    const worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    const sab = new SharedArrayBuffer(PATH_OFF + PATH_MAX);
    const s = new NsSync(worker, sab);
    const reply = await new Promise<{ ok: boolean; errno?: number; tid?: number }>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        resolve({ ok: false, errno: 0 });
      };
      worker.postMessage({ sab, nsFd });
    });
    worker.onmessage = null;
    if (!reply.ok) {
      worker.terminate();
      throw new Error(`Cannot enter the namespace for sockets: errno ${reply.errno}`);
    }
    s.tid = reply.tid ?? -1;
    return s;
  }

  /** Whether the worker stopped answering (every call then fails). */
  get broken(): boolean {
    return this.#broken;
  }

  #call(op: number, a: number, b: number, c: number): number {
    if (this.#broken) return -ETIMEDOUT;
    const ctl = this.#ctl;
    ctl[1] = op;
    ctl[2] = a;
    ctl[3] = b;
    ctl[4] = c;
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const deadline = performance.now() + NS_SYNC_TIMEOUT_MS;
    while (Atomics.load(ctl, 0) !== 2) {
      Atomics.wait(ctl, 0, 1, 50);
      if (Atomics.load(ctl, 0) !== 2 && performance.now() > deadline) {
        this.#broken = true;
        return -ETIMEDOUT;
      }
    }
    const r = ctl[5]!;
    Atomics.store(ctl, 0, 0);
    return r;
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
   * Drops capabilities from the worker's thread (isolate/thread_caps.ts).
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

  /** Stops the worker. */
  close(): void {
    if (!this.#broken) this.#call(OP_QUIT, 0, 0, 0);
    this.#broken = true;
    this.#worker.terminate();
  }
}
