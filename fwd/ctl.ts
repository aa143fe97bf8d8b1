/**
 * ctl.ts - the control socket (-c, --conf-path): forwards changed from
 * outside while orzo runs.
 *
 * Theory of operation. A UNIX stream socket, created by orzo (mode 0600,
 * owned by the user orzo runs as once isolated, removed at exit), is served
 * from the epoll loop like any other fd: the listening socket and each
 * connection have an epoll reference of their own (EPOLL_TYPE_CTL_LISTEN,
 * EPOLL_TYPE_CTL). The protocol is JSON lines, one request and one reply
 * each; "proto" is "tcp" or "udp" for -t/-u (host to guest), "tcp-ns" or
 * "udp-ns" for -T/-U (the guest's loopback to the host's):
 *
 *     {"op":"add","proto":"tcp","spec":"8080:80"}   -> {"ok":true}
 *     {"op":"remove","proto":"udp","spec":"5353"}   -> {"ok":true,"removed":1}
 *     {"op":"add","proto":"tcp-ns","spec":"5432"}   -> {"ok":true}
 *     {"op":"list"}   -> {"ok":true,"tcp":["8080:80"],"udp":[],"tcp-ns":["5432"],"udp-ns":[]}
 *     {"op":"stats"}             -> {"ok":true,"stats":{...}}
 *     anything else              -> {"ok":false,"error":"..."}
 *
 * Everything read here is untrusted: a line is at most CTL_LINE_MAX bytes
 * (a longer one is answered with an error and dropped up to its newline), at
 * most CTL_CONNS_MAX connections are open at once (more are closed at
 * once), malformed JSON or fields get an error reply, and no failure leaves
 * the handlers. A reply that the socket does not take whole (a client that
 * does not read) closes the connection.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { check, ERRNO, errno, errnoName, SysError } from "../ffi/errno.ts";
import { cString } from "../ffi/mem.ts";
import { AF_UNIX, EPOLLIN, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from "../ffi/layout.ts";
import { EPOLL_TYPE_CTL, EPOLL_TYPE_CTL_LISTEN, type EventLoop } from "../loop.ts";
import { ConfError } from "../conf/errors.ts";
import { debug } from "../log.ts";
import { FWD_PROTOS, fwdProtoOf, type FwdRuntime } from "./runtime.ts";

/** Longest request line, newline included. */
export const CTL_LINE_MAX = 4096;
/** Most control connections open at once. */
export const CTL_CONNS_MAX = 8;

/** What the control socket acts on. */
export interface CtlTarget {
  /** the run-time forwards */
  fwd: FwdRuntime;
  /** the network's counters (numbers) */
  stats: () => unknown;
}

/**
 * Answers one request line (without its newline).
 * @param t what requests act on
 * @param line the request, JSON text
 * @returns the reply, JSON text without newline
 */
export function ctlRequest(t: CtlTarget, line: string): string {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return JSON.stringify({ ok: false, error: "malformed JSON" });
  }
  if (typeof req !== "object" || req === null || Array.isArray(req)) {
    return JSON.stringify({ ok: false, error: "a request is a JSON object" });
  }
  const r = req as Record<string, unknown>;
  try {
    switch (r.op) {
      case "add":
      case "remove": {
        const proto = fwdProtoOf(r.proto);
        if (proto === null || proto !== r.proto) {
          return JSON.stringify({
            ok: false,
            error: `"proto" must be one of ${FWD_PROTOS.map((p) => `"${p}"`).join(", ")}`,
          });
        }
        if (typeof r.spec !== "string") {
          return JSON.stringify({ ok: false, error: `"spec" must be a string` });
        }
        if (r.op === "add") {
          t.fwd.add(proto, r.spec);
          return JSON.stringify({ ok: true });
        }
        return JSON.stringify({ ok: true, removed: t.fwd.remove(proto, r.spec) });
      }
      case "list":
        return JSON.stringify({ ok: true, ...t.fwd.list() });
      case "stats":
        return JSON.stringify({ ok: true, stats: t.stats() });
      default:
        return JSON.stringify({
          ok: false,
          error: `unknown "op": add, remove, list or stats`,
        });
    }
  } catch (e) {
    const known = e instanceof ConfError || e instanceof SysError;
    const msg = e instanceof Error ? e.message : String(e);
    return JSON.stringify({ ok: false, error: known ? msg : `Internal error: ${msg}` });
  }
}

/**
 * A sockaddr_un for a path.
 * @param path the socket path (at most 107 bytes)
 * @returns the structure
 * @throws ConfError when the path is too long
 */
export function sockaddrUnix(path: string): Uint8Array<ArrayBuffer> {
  const sa = new Uint8Array(110);
  const p = new TextEncoder().encode(path);
  if (p.length > 107) throw new ConfError(`Socket path too long: ${path}`);
  sa[0] = AF_UNIX;
  sa.set(p, 2);
  return sa;
}

/** The control socket and its connections (see the module doc). */
export class CtlServer {
  /** the socket path */
  readonly path: string;
  readonly #loop: EventLoop;
  readonly #t: CtlTarget;
  readonly #fd: number;
  /** connection fd by slot, -1 when free */
  readonly #conn = new Int32Array(CTL_CONNS_MAX).fill(-1);
  /** bytes of an unfinished line by slot */
  readonly #buf = Array.from({ length: CTL_CONNS_MAX }, () => new Uint8Array(CTL_LINE_MAX));
  readonly #len = new Int32Array(CTL_CONNS_MAX);
  /** 1 while the rest of an overlong line is being dropped */
  readonly #skip = new Uint8Array(CTL_CONNS_MAX);
  readonly #dec = new TextDecoder();
  readonly #enc = new TextEncoder();

  /**
   * Creates the socket (mode 0600) and adds it to the loop.
   * @param loop the event loop
   * @param path where the socket goes (an existing socket file nobody
   *   listens on is replaced; one in use is an error)
   * @param t what requests act on
   * @param owner the user to own the file (the one orzo becomes), or null
   * @throws ConfError or SysError when the socket cannot be made
   */
  constructor(
    loop: EventLoop,
    path: string,
    t: CtlTarget,
    owner: { uid: number; gid: number } | null,
  ) {
    this.path = path;
    this.#loop = loop;
    this.#t = t;
    const sa = sockaddrUnix(path);
    const probe = libc.symbols.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
      const r = libc.symbols.connect(probe, sa, sa.length);
      const e = r < 0 ? errno() : 0;
      libc.symbols.close(probe);
      if (r === 0) throw new ConfError(`Control socket ${path} already in use`);
      /* a socket file nobody listens on: left by an orzo that was killed */
      if (e === ERRNO.ECONNREFUSED) libc.symbols.unlink(cString(path));
    }
    const fd = check(
      libc.symbols.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
      "socket(AF_UNIX)",
    );
    /* created 0600: no window where others may connect */
    const old = libc.symbols.umask(0o177);
    const r = libc.symbols.bind(fd, sa, sa.length);
    const e = errno();
    libc.symbols.umask(old);
    if (r < 0) {
      libc.symbols.close(fd);
      throw new SysError(`bind ${path}`, e);
    }
    if (owner !== null) libc.symbols.chown(cString(path), owner.uid, owner.gid);
    if (libc.symbols.listen(fd, CTL_CONNS_MAX) < 0) {
      const le = errno();
      libc.symbols.close(fd);
      libc.symbols.unlink(cString(path));
      throw new SysError(`listen ${path}`, le);
    }
    this.#fd = fd;
    loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_CTL_LISTEN);
    loop.on(EPOLL_TYPE_CTL_LISTEN, () => this.#accept());
    loop.on(EPOLL_TYPE_CTL, (cfd, slot, events) => this.#readable(cfd, slot, events));
  }

  #accept(): void {
    for (let n = 0; n < CTL_CONNS_MAX * 2; n++) {
      const cfd = libc.symbols.accept4(this.#fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) return;
      const slot = this.#conn.indexOf(-1);
      if (slot < 0) {
        debug("control: too many connections, one refused");
        libc.symbols.close(cfd);
        continue;
      }
      if (this.#loop.epoll.add(cfd, EPOLLIN, EPOLL_TYPE_CTL, slot) < 0) {
        libc.symbols.close(cfd);
        continue;
      }
      this.#conn[slot] = cfd;
      this.#len[slot] = 0;
    }
  }

  #readable(fd: number, slot: number, _events: number): void {
    if (slot >= CTL_CONNS_MAX || this.#conn[slot] !== fd) return;
    const buf = this.#buf[slot]!;
    for (;;) {
      const have = this.#len[slot]!;
      const n = libc.symbols.read(fd, buf.subarray(have), CTL_LINE_MAX - have);
      if (n < 0) {
        if (errno() !== ERRNO.EAGAIN) this.#drop(slot);
        return;
      }
      if (n === 0) {
        this.#drop(slot);
        return;
      }
      let end = have + n;
      let start = 0;
      for (let i = have; i < end; i++) {
        if (buf[i] !== 10) continue;
        const skipped = this.#skip[slot] === 1;
        this.#skip[slot] = 0;
        const line = skipped ? "" : this.#dec.decode(buf.subarray(start, i)).trim();
        start = i + 1;
        if (line === "") continue;
        if (!this.#reply(slot, ctlRequest(this.#t, line))) return;
      }
      if (this.#skip[slot] === 1) start = end; /* the rest of an overlong line */
      buf.copyWithin(0, start, end);
      end -= start;
      this.#len[slot] = end;
      if (end === CTL_LINE_MAX) {
        /* answered now; the rest of the line, up to its newline, is dropped */
        const error = `line longer than ${CTL_LINE_MAX} bytes`;
        if (!this.#reply(slot, JSON.stringify({ ok: false, error }))) return;
        this.#skip[slot] = 1;
        this.#len[slot] = 0;
      }
    }
  }

  /** Writes a reply line; a connection that does not take it whole is closed. */
  #reply(slot: number, text: string): boolean {
    const fd = this.#conn[slot]!;
    const b = this.#enc.encode(text + "\n");
    const n = libc.symbols.write(fd, b, b.length);
    if (n === b.length) return true;
    debug(`control: reply not taken (${n < 0 ? errnoName(errno()) : "partial"}), closing`);
    this.#drop(slot);
    return false;
  }

  #drop(slot: number): void {
    const fd = this.#conn[slot]!;
    if (fd < 0) return;
    this.#loop.epoll.del(fd);
    libc.symbols.close(fd);
    this.#conn[slot] = -1;
    this.#len[slot] = 0;
    this.#skip[slot] = 0;
  }

  /** Closes the connections and the socket, and removes the file. */
  close(): void {
    for (let i = 0; i < CTL_CONNS_MAX; i++) this.#drop(i);
    this.#loop.epoll.del(this.#fd);
    libc.symbols.close(this.#fd);
    if (libc.symbols.unlink(cString(this.path)) < 0) {
      debug(`Cannot remove the control socket ${this.path}: ${errnoName(errno())}`);
    }
  }
}
