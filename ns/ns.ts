/**
 * ns.ts - the main thread's handle on the namespace thread.
 *
 * See worker_main.ts for why a Worker does the namespace work. Every call is
 * a request/reply over postMessage; they are used only during setup, before
 * the synchronous event loop starts blocking the JS event loop.
 *
 * @module
 */

import { nsWorkerMain } from "./worker_main.ts";
import { threadCapsDrop } from "../isolate/thread_caps.ts";

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

  /** Starts the thread (in the host's namespace until unshare/setns). */
  constructor() {
    const src = `(${nsWorkerMain.toString()})(${threadCapsDrop.toString()});`;
    const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
    this.#worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    this.#worker.onmessage = (e: MessageEvent<Reply>) => {
      const cb = this.#pending.get(e.data.id);
      if (!cb) return;
      this.#pending.delete(e.data.id);
      cb(e.data);
    };
  }

  #call(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#nextId++;
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
    return (await this.#call("unshare")).nsFd as number;
  }

  /**
   * Moves the thread into an existing network namespace.
   * @param path a namespace file, such as /proc/PID/ns/net or /run/netns/NAME
   * @returns an fd referring to that namespace
   */
  async setns(path: string): Promise<number> {
    return (await this.#call("setns", { path })).nsFd as number;
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
    return (await this.#call("tid")).tid as number;
  }

  /**
   * Creates a socket in the thread's namespace (bind, listen and use it from
   * any thread: a socket stays in the namespace it was created in).
   * @param domain AF_INET, AF_INET6, ...
   * @param type SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ...
   * @param protocol protocol, usually 0
   * @returns the socket fd
   */
  async socket(domain: number, type: number, protocol = 0): Promise<number> {
    return (await this.#call("socket", { domain, type, protocol })).fd as number;
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
  async capsDrop(keep: number, clamp: boolean, sets: boolean): Promise<string> {
    return (await this.#call("caps", { keep, clamp, sets })).error as string;
  }

  /** Stops the thread. */
  close(): void {
    this.#worker.terminate();
  }
}
