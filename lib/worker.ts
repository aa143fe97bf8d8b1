/**
 * worker.ts - one network, run in its own Worker for the library (net.ts).
 *
 * The packet loop blocks its thread in epoll_wait (loop.ts), so a network
 * that a program embeds runs on a Worker: the program's own thread stays
 * free. Module state is per Worker (each has its own libc table, errno
 * view, flow table and protocol state), so two networks in one process
 * share nothing.
 *
 * Messages: the first one is `{op: "start", conf}` (pasta or passt mode);
 * the Worker answers `{op: "ready", wakeFd, socketPath}` once the network is
 * up (socketPath: passt mode's socket, else null), or `{op: "exit", code,
 * error}` if it could not start. Then requests `{id, op, ...}` (add, remove,
 * list, stats, pcap, close) get `{id, ok, result | error}`. The loop reads
 * messages only when it yields to Deno's event loop (at least every
 * SIGNAL_CHECK_MS): a request is followed by a write to the eventfd `wakeFd`,
 * whose handler makes the loop yield at once. Events go out unasked:
 * `{op: "flow", ...}` when flows opened or closed since the last one, and
 * `{op: "error", message}` when handlers failed; `{op: "exit", code}` ends.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import { ConfError } from "../conf/errors.ts";
import { libc } from "../ffi/libc.ts";
import { EPOLLIN } from "../ffi/layout.ts";
import { errno, SysError } from "../ffi/errno.ts";
import { cString } from "../ffi/mem.ts";
import { CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from "../ffi/layout.ts";
import { EPOLL_TYPE_WAKE } from "../loop.ts";
import { LOG_DEBUG, LOG_INFO, LOG_TRACE, LOG_WARN, logSetLevel } from "../log.ts";
import { NsError } from "../ns/ns.ts";
import { unsupported } from "../unsupported.ts";
import { type PastaEmbed, pastaRun } from "../pasta.ts";
import { passtRun } from "../passt.ts";
import { pcapClose, pcapOpen } from "../pcap.ts";
import { netCounters } from "../counters.ts";
import type { FwdProto, FwdRuntime } from "../fwd/runtime.ts";
import { SIGTERM } from "../ffi/layout.ts";

/** How often the Worker looks for flow events to send (ms). */
const EVENT_INTERVAL_MS = 50;

type Msg = { id?: number; op: string; [k: string]: unknown };

function message(e: unknown): string {
  if (e instanceof ConfError || e instanceof SysError || e instanceof NsError) return e.message;
  return e instanceof Error ? `Internal error: ${e.message}` : `Internal error: ${e}`;
}

/** The Worker's global scope (this module runs only as a Worker). */
const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<Msg>) => void) | null;
};
const post = (m: Record<string, unknown>) => scope.postMessage(m);

let handle: ((m: Msg) => unknown) | null = null;
/* requests announced on the eventfd, and requests received: while the first
 * is ahead, the loop keeps yielding so that the message is read */
let announced = 0;
let received = 0;

scope.onmessage = (e: MessageEvent<Msg>) => {
  const m = e.data;
  if (m.op === "start") {
    start(m.conf as Config, m.hostNetns as string | null).then(
      (code) => post({ op: "exit", code }),
      (err) => post({ op: "exit", code: 1, error: message(err) }),
    );
    return;
  }
  if (m.id === undefined) return;
  received++;
  if (handle === null) {
    post({ id: m.id, ok: false, error: "network not running" });
    return;
  }
  try {
    post({ id: m.id, ok: true, result: handle(m) });
  } catch (err) {
    post({ id: m.id, ok: false, error: message(err) });
  }
};

/** Moves this thread (and the threads it starts) into another network namespace. */
function enterNetns(path: string): void {
  const fd = libc.symbols.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw new SysError(`open ${path}`, errno());
  const r = libc.symbols.setns(fd, CLONE_NEWNET);
  const e = errno();
  libc.symbols.close(fd);
  if (r < 0) throw new SysError(`setns ${path}`, e);
}

async function start(conf: Config, hostNetns: string | null): Promise<number> {
  if (hostNetns !== null) enterNetns(hostNetns);
  if (conf.trace) logSetLevel(LOG_TRACE);
  else if (conf.debug) logSetLevel(LOG_DEBUG);
  else if (conf.quiet) logSetLevel(LOG_WARN);
  else logSetLevel(LOG_INFO);
  unsupported(conf);
  if (conf.confPath !== undefined) {
    throw new ConfError("--conf-path is for the program; use the handle's methods");
  }
  if (conf.mode === "passt") {
    if (conf.vhostUser) throw new ConfError("--vhost-user is not supported yet");
    return await passtRun(conf, false, null, embed());
  }
  if (libc.symbols.geteuid() !== 0) {
    throw new ConfError(
      "startPasta() needs root or a user namespace where we are root (unshare -Ur deno ...)",
    );
  }
  const target = conf.netns ?? (conf.pid !== undefined ? `/proc/${conf.pid}/ns/net` : null);
  return await pastaRun(conf, target, false, null, embed());
}

/** What runs once the network is up: the request handler, events, the wake-up eventfd. */
function embed(): PastaEmbed {
  return {
    ready({ c, loop, protos, child, socketPath }) {
      const wake = libc.symbols.eventfd(0, 0o2000000 | 0o4000 /* EFD_CLOEXEC | EFD_NONBLOCK */);
      const drain = new BigUint64Array(1);
      const drainBytes = new Uint8Array(drain.buffer);
      if (wake >= 0) {
        loop.epoll.add(wake, EPOLLIN, EPOLL_TYPE_WAKE);
        loop.on(EPOLL_TYPE_WAKE, (fd) => {
          if (libc.symbols.read(fd, drainBytes, 8) === 8) announced += Number(drain[0]!);
          loop.yieldNow = true;
        });
        loop.yieldMore = () => announced > received;
      }
      const fwd: FwdRuntime = protos.fwd;
      handle = (m) => {
        switch (m.op) {
          case "add":
            fwd.add(m.proto as FwdProto, m.spec as string);
            return null;
          case "remove":
            return fwd.remove(m.proto as FwdProto, m.spec as string);
          case "list":
            return fwd.list();
          case "stats":
            return netCounters(c, loop, protos);
          case "pcap":
            if (m.path === null) pcapClose();
            else pcapOpen(m.path as string);
            return null;
          case "close":
            if (child > 0) libc.symbols.kill(child, SIGTERM);
            loop.stop(0);
            return null;
          default:
            throw new ConfError(`unknown request "${m.op}"`);
        }
      };
      /* flow and error events, looked for now and then */
      let last = "";
      let failures = 0;
      let lastCheck = 0;
      loop.post.push((now) => {
        if (now - lastCheck < EVENT_INTERVAL_MS) return;
        lastCheck = now;
        const t = protos.tcp;
        const u = protos.udp;
        const s = protos.splice;
        const ic = protos.icmp;
        const opened = {
          tcp: t?.opened ?? 0,
          splice: s?.opened ?? 0,
          udp: u?.flowsOpened ?? 0,
          icmp: ic?.requests ?? 0,
        };
        const closed = {
          tcp: t?.closed ?? 0,
          splice: s?.closed ?? 0,
          udp: u?.flowsClosed ?? 0,
        };
        const key = JSON.stringify([opened, closed]);
        if (key !== last) {
          last = key;
          post({ op: "flow", opened, closed, active: c.flows.used });
        }
        if (loop.failures !== failures) {
          post({
            op: "error",
            message: `${loop.failures - failures} handler failure(s) (see the log)`,
          });
          failures = loop.failures;
        }
      });
      post({ op: "ready", wakeFd: wake, socketPath: socketPath ?? null });
    },
  };
}
