/**
 * ns.ts - the main thread's handle on the namespace thread.
 *
 * See worker_main.ts for why a Worker does the namespace work. The calls here
 * are requests and replies over postMessage, used only during set-up, before
 * the synchronous event loop starts blocking the JS event loop; the same
 * thread serves the synchronous channel {@linkcode NsThread.sync}
 * (ns_sync.ts) at set-up and while the loop runs.
 *
 * @module
 */

import { nsWorkerStart } from "./worker_main.ts";
import { NsSync } from "./ns_sync.ts";
import { errnoName } from "../ffi/errno.ts";

/** Error reported by the namespace thread, already in "what: ERRNO" form. */
export class NsError extends Error {
  /**
   * @param message the worker's one-line error
   */
  constructor(message: string) {
    super(message);
    this.name = "NsError";
  }
}

type Reply = { id: number; ok: boolean; error?: string; [k: string]: unknown };

/** A thread living in the guest's network namespace. */
export class NsThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, (r: Reply) => void>();
  #nextId = 1;
  /** the synchronous channel to the same thread, for the event loop */
  readonly sync: NsSync;

  /** Starts the thread (in the host's namespace until unshare/setns). */
  constructor() {
    this.#worker = nsWorkerStart();
    this.sync = new NsSync(this.#worker);
    this.#worker.onmessage = (e: MessageEvent<Reply>) => {
      const cb = this.#pending.get(e.data.id);
      if (!cb) return;
      this.#pending.delete(e.data.id);
      cb(e.data);
    };
  }

  #call(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#nextId++;
    /* the thread answers messages only when not serving the channel */
    this.sync.release();
    if (this.sync.broken) {
      return Promise.reject(new NsError(`${op}: namespace thread not answering`));
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (r) => r.ok ? resolve(r) : reject(new NsError(r.error ?? op)));
      this.#worker.postMessage({ id, op, ...args });
    });
  }

  /**
   * Moves the thread into a new network namespace.
   * @returns an fd referring to the new namespace
   */
  async unshare(): Promise<number> {
    const r = await this.#call("unshare");
    this.sync.tid = r.tid as number;
    return r.nsFd as number;
  }

  /**
   * Moves the thread into an existing network namespace.
   * @param path a namespace file, such as /proc/PID/ns/net or /run/netns/NAME
   * @returns an fd referring to that namespace
   */
  async setns(path: string): Promise<number> {
    const r = await this.#call("setns", { path });
    this.sync.tid = r.tid as number;
    return r.nsFd as number;
  }

  /**
   * Creates a tap device in the thread's namespace.
   * @param name interface name requested
   * @param vnetHdr whether to enable the virtio-net header and offloads
   * @returns the tap fd and the name the kernel gave it
   */
  async tap(name: string, vnetHdr: boolean): Promise<{ tapFd: number; name: string }> {
    const r = await this.#call("tap", { name, vnetHdr });
    return { tapFd: r.tapFd as number, name: r.name as string };
  }

  /**
   * Opens a NETLINK_ROUTE socket bound to the thread's namespace.
   * @returns the socket fd
   */
  async netlink(): Promise<number> {
    return (await this.#call("netlink")).nlFd as number;
  }

  /**
   * The thread's id: /proc/self/task/TID/net lists the namespace's sockets.
   * @returns the kernel thread id of the namespace thread
   */
  async tid(): Promise<number> {
    if (this.sync.tid < 0) this.sync.tid = (await this.#call("tid")).tid as number;
    return this.sync.tid;
  }

  /**
   * Creates a socket in the thread's namespace (bind, listen and use it from
   * any thread: a socket stays in the namespace it was created in).
   * @param domain AF_INET, AF_INET6, ...
   * @param type SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ...
   * @param protocol protocol, usually 0
   * @returns the socket fd
   */
  socket(domain: number, type: number, protocol = 0): Promise<number> {
    const fd = this.sync.socket(domain, type, protocol);
    if (fd < 0) return Promise.reject(new NsError(`socket: ${errnoName(-fd)}`));
    return Promise.resolve(fd);
  }

  /**
   * Writes a file from inside the namespace (e.g. a per-namespace sysctl).
   * @param path the file
   * @param value text to write
   */
  async write(path: string, value: string): Promise<void> {
    await this.#call("write", { path, value });
  }

  /**
   * Spawns a command inside the namespace.
   * @param argv program (looked up in PATH) and arguments
   * @param env its environment, NAME=value strings
   * @returns the child's PID
   */
  async spawn(argv: string[], env: string[]): Promise<number> {
    return (await this.#call("spawn", { argv, env })).pid as number;
  }

  /**
   * Drops capabilities from the thread (isolate/thread_caps.ts).
   * @param keep capabilities to keep (bit mask)
   * @param clamp whether to empty the bounding set
   * @param sets whether to reduce the effective, permitted and inheritable sets
   * @returns "" on success, else what failed
   */
  capsDrop(keep: number, clamp: boolean, sets: boolean): Promise<string> {
    return Promise.resolve(this.sync.capsDrop(keep, clamp, sets));
  }

  /** Stops the thread. */
  close(): void {
    this.sync.close();
  }
}
