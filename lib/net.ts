/**
 * net.ts - a network as an object: {@linkcode startPasta},
 * {@linkcode startPasst} and their handles.
 *
 * Each network runs in a Worker of its own (worker.ts), because the packet
 * loop blocks its thread in epoll_wait; the handle talks to it with
 * messages. A request is posted, then the Worker's eventfd is written so
 * that its loop yields to the Worker's event loop at once and reads the
 * message (otherwise it would within SIGNAL_CHECK_MS, 50 ms). The embedding
 * program's thread never blocks: its timers and I/O carry on while the
 * network moves data.
 *
 * Permissions: --allow-ffi, and read access to orzo's source files (a
 * Worker's modules are loaded under the read permission, unlike the main
 * module graph); root, or a user namespace where the program is root
 * (`unshare -Ur deno run ...`), as for pasta itself.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import { confParse } from "../conf/conf.ts";
import { ConfError } from "../conf/errors.ts";
import { libc } from "../ffi/libc.ts";
import type { NetCounters } from "../counters.ts";
import type { FwdProto } from "../fwd/runtime.ts";

export type { NetCounters } from "../counters.ts";
export type { FwdProto } from "../fwd/runtime.ts";

/** What a "flow" event says: flows opened and closed so far, by kind, and those in use. */
export interface FlowEvent {
  /** connections and flows opened since the start, by kind (icmp: echo requests) */
  opened: { tcp: number; splice: number; udp: number; icmp: number };
  /** closed since the start, by kind */
  closed: { tcp: number; splice: number; udp: number };
  /** flow table entries in use now */
  active: number;
}

/** Options of {@linkcode startPasta} and {@linkcode startPasst}. */
export interface StartOptions {
  /** longest wait for the network to come up (ms); default 20000 */
  timeoutMs?: number;
  /**
   * A network namespace file (/run/netns/NAME, /proc/PID/ns/net) to play
   * the host: the network's Worker enters it before anything else, so its
   * host-side sockets, upstream addresses and forwards live there, while
   * the program stays where it is. Needs CAP_SYS_ADMIN.
   */
  hostNetns?: string;
}

type Reply = { id?: number; op?: string; ok?: boolean; error?: string; [k: string]: unknown };

/** A running network (see {@linkcode startPasta}, {@linkcode startPasst}). */
export class Network {
  readonly #worker: Worker;
  readonly #pending = new Map<number, (r: Reply) => void>();
  readonly #flow: ((e: FlowEvent) => void)[] = [];
  readonly #error: ((e: Error) => void)[] = [];
  readonly #wake = new BigUint64Array([1n]);
  #wakeFd = -1;
  #nextId = 1;
  #exitCode: number | null = null;
  #exitResolve: (code: number) => void = () => {};
  /** Resolves with the exit code once the network has stopped (close(), or its command ended). */
  readonly exited: Promise<number>;

  /** @internal use {@linkcode startPasta} or {@linkcode startPasst} */
  constructor(worker: Worker) {
    this.#worker = worker;
    this.exited = new Promise((r) => this.#exitResolve = r);
  }

  /** @internal first message of the Worker: ready (resolves with it) or failed */
  started(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#worker.onmessage = (e: MessageEvent<Reply>) => {
        const m = e.data;
        if (m.op === "ready") {
          this.#wakeFd = m.wakeFd as number;
          this.#worker.onmessage = (ev: MessageEvent<Reply>) => this.#message(ev.data);
          resolve(m);
        } else if (m.op === "exit") {
          this.#ended(m.code as number);
          reject(new ConfError(m.error ?? `network stopped at start (exit code ${m.code})`));
        }
      };
      this.#worker.onerror = (e) => {
        e.preventDefault();
        this.#ended(1);
        reject(new Error(e.message));
      };
    });
  }

  #message(m: Reply): void {
    if (m.id !== undefined) {
      const cb = this.#pending.get(m.id);
      if (cb === undefined) return;
      this.#pending.delete(m.id);
      cb(m);
      return;
    }
    if (m.op === "flow") {
      const ev = { opened: m.opened, closed: m.closed, active: m.active } as FlowEvent;
      for (const f of this.#flow) f(ev);
    } else if (m.op === "error") {
      const err = new Error(m.message as string);
      for (const f of this.#error) f(err);
    } else if (m.op === "exit") {
      if (typeof m.error === "string") {
        const err = new Error(m.error);
        for (const f of this.#error) f(err);
      }
      this.#ended(m.code as number);
    }
  }

  #ended(code: number): void {
    if (this.#exitCode !== null) return;
    this.#exitCode = code;
    this.#wakeFd = -1;
    this.#worker.terminate();
    for (const cb of this.#pending.values()) cb({ ok: false, error: "network stopped" });
    this.#pending.clear();
    this.#exitResolve(code);
  }

  #call(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    if (this.#exitCode !== null) return Promise.reject(new Error("network stopped"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (r) => r.ok ? resolve(r.result) : reject(new Error(r.error ?? op)));
      this.#worker.postMessage({ id, op, ...args });
      /* the loop yields at once instead of within 50 ms */
      if (this.#wakeFd >= 0) {
        libc.symbols.write(this.#wakeFd, new Uint8Array(this.#wake.buffer), 8);
      }
    });
  }

  /**
   * Adds a forward while the network runs, as `-t SPEC` (tcp), `-u SPEC`
   * (udp), `-T SPEC` (tcp-ns) or `-U SPEC` (udp-ns) at start-up: for -t/-u
   * the tap path and, for clients on the host's loopback, the splice path;
   * for -T/-U the splice path from the namespace's loopback to the host's.
   * @param proto "tcp", "udp", "tcp-ns" or "udp-ns"
   * @param spec pasta's SPEC, for example "8080:80"
   * @throws Error with one line (bad SPEC, conflict, port in use)
   */
  async addForward(proto: FwdProto, spec: string): Promise<void> {
    await this.#call("add", { proto, spec });
  }

  /**
   * Removes forwards in force (as listForwards() shows them); their
   * listening sockets close, established connections carry on.
   * @param proto "tcp", "udp", "tcp-ns" or "udp-ns"
   * @param spec the SPEC of rules in force
   * @returns the number of rules removed
   */
  async removeForward(proto: FwdProto, spec: string): Promise<number> {
    return await this.#call("remove", { proto, spec }) as number;
  }

  /**
   * The forwards in force (not `auto` ones), as SPEC text.
   * @returns rules by protocol
   */
  async listForwards(): Promise<Record<FwdProto, string[]>> {
    return await this.#call("list") as Record<FwdProto, string[]>;
  }

  /**
   * The network's counters now.
   * @returns flows by type and state, tap frames and drops, each protocol's counters
   */
  async stats(): Promise<NetCounters> {
    return await this.#call("stats") as NetCounters;
  }

  /**
   * Starts capturing the tap's frames to a pcap file, or stops.
   * @param path the file (created 0600, truncated), or null to stop
   */
  async pcap(path: string | null): Promise<void> {
    await this.#call("pcap", { path });
  }

  /**
   * Listens to the network's events: "flow" (flows opened or closed, at
   * most every 50 ms) and "error" (handler failures, a failed stop).
   * @param event "flow" or "error"
   * @param f the listener
   * @returns this handle
   */
  on(event: "flow", f: (e: FlowEvent) => void): this;
  /**
   * Listens to the network's errors: handler failures (counted, the network
   * goes on), and the reason it stopped when it stopped on its own.
   * @param event "error"
   * @param f the listener
   * @returns this handle
   */
  on(event: "error", f: (e: Error) => void): this;
  on(event: "flow" | "error", f: ((e: FlowEvent) => void) | ((e: Error) => void)): this {
    if (event === "flow") this.#flow.push(f as (e: FlowEvent) => void);
    else if (event === "error") this.#error.push(f as (e: Error) => void);
    else throw new TypeError(`Unknown event "${event}"`);
    return this;
  }

  /**
   * Stops the network: the command, if it started one, gets SIGTERM;
   * connections are reset, listeners closed, the Worker ends.
   * @returns the exit code
   */
  async close(): Promise<number> {
    if (this.#exitCode !== null) return this.#exitCode;
    await this.#call("close").catch(() => {});
    return await this.exited;
  }
}

/**
 * A running passt-mode network (see {@linkcode startPasst}): a
 * {@linkcode Network} that serves a virtual machine on a UNIX socket.
 */
export class PasstNetwork extends Network {
  #socketPath = "";

  /**
   * The UNIX socket qemu connects to (`-netdev stream,addr.type=unix,
   * addr.path=...`): -s/--socket, else the first free /tmp/passt_N.socket;
   * "" with --fd. close() removes it.
   */
  get socketPath(): string {
    return this.#socketPath;
  }

  /** @internal first message of the Worker: ready (with the socket's path) or failed */
  override async started(): Promise<Reply> {
    const m = await super.started();
    this.#socketPath = typeof m.socketPath === "string" ? m.socketPath : "";
    return m;
  }
}

/**
 * Starts pasta mode in a Worker: a tap in a network namespace, translated
 * to the host's sockets, as `orzo --pasta ARGS` would, without signal
 * listeners or privilege changes (the program's own). With neither a
 * namespace (`--netns`, a PID) nor a command, a new namespace is made and
 * kept until close().
 * @param args pasta's command line (without the program name), or a parsed Config
 * @param opts start options
 * @returns the running network
 * @throws Error with one line when the network cannot start
 */
export async function startPasta(
  args: string[] | Config,
  opts: StartOptions = {},
): Promise<Network> {
  const conf = Array.isArray(args) ? confParse(args, { argv0Pasta: true }) : args;
  if (conf.mode !== "pasta") throw new ConfError("startPasta() takes a pasta configuration");
  return await startWorker("startPasta", conf, opts, (w) => new Network(w));
}

/**
 * Starts passt mode in a Worker: a UNIX socket for one virtual machine at a
 * time (qemu's stream framing: each frame after its length in 4 bytes),
 * translated to the host's sockets, as `orzo ARGS` would in the foreground,
 * without signal listeners or privilege changes. The guest gets the host's
 * addresses (DHCP, DHCPv6, router advertisements). Needs no privileges,
 * except for `hostNetns`. The socket is {@linkcode PasstNetwork.socketPath};
 * close() removes it.
 * @param args passt's command line (without the program name), or a parsed Config
 * @param opts start options
 * @returns the running network
 * @throws Error with one line when the network cannot start (socket path in use...)
 */
export async function startPasst(
  args: string[] | Config,
  opts: StartOptions = {},
): Promise<PasstNetwork> {
  const conf = Array.isArray(args) ? confParse(args, { argv0Pasta: false }) : args;
  if (conf.mode !== "passt") throw new ConfError("startPasst() takes a passt configuration");
  return await startWorker("startPasst", conf, opts, (w) => new PasstNetwork(w));
}

/** Starts a network's Worker and waits until it is up or failed. */
async function startWorker<N extends Network>(
  name: string,
  conf: Config,
  opts: StartOptions,
  make: (w: Worker) => N,
): Promise<N> {
  const url = new URL("./worker.ts", import.meta.url);
  if (url.protocol === "file:") {
    const st = await Deno.permissions.query({ name: "read", path: url });
    if (st.state !== "granted") {
      const dir = new URL("../", import.meta.url).pathname;
      throw new ConfError(
        `${name}() needs --allow-read=${dir} (the network's Worker loads orzo's modules)`,
      );
    }
  }
  const worker = new Worker(url, { type: "module" });
  const net = make(worker);
  const up = net.started();
  worker.postMessage({ op: "start", conf, hostNetns: opts.hostNetns ?? null });
  const ms = opts.timeoutMs ?? 20_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`network not up after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([up, timeout]);
  } catch (e) {
    worker.terminate();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return net;
}
