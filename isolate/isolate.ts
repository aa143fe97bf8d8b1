/**
 * isolate.ts - giving up privileges once set up, as pasta's isolation.c.
 *
 * Theory of operation. orzo needs its privileges only to set up: to enter or
 * create the guest's network namespace, open the tap, configure it over
 * rtnetlink, bind the forwarded ports, write the PID file and start the
 * command. Once that is done (pasta.ts calls {@linkcode isolate} right before
 * reporting readiness) it keeps only what the running translation needs:
 *
 * 1. the bounding set of every thread orzo controls (the main thread and its
 *    namespace Worker) is emptied, while they still have CAP_SETPCAP;
 * 2. started as root in the initial user namespace, orzo becomes --runas or
 *    `nobody`: setgroups(0), setgid, setuid through glibc, which applies them
 *    to every thread of the process (its SIGSETXID broadcast), Deno's own
 *    included; that clears every thread's capabilities. The main thread sets
 *    PR_SET_KEEPCAPS first when it must keep some;
 * 3. the capability sets of the threads orzo controls are cut to what each
 *    needs (see {@linkcode keptCaps}; the Worker needs none). In a user
 *    namespace, where there is no other user to become, Deno's own threads
 *    keep theirs: capset() acts on the calling thread only;
 * 4. PR_SET_DUMPABLE 0 (no core dumps, /proc/PID owned by root), then
 *    PR_SET_NO_NEW_PRIVS and the seccomp deny-list (seccomp.ts), installed
 *    with TSYNC so that every thread gets both.
 *
 * @module
 */

import type { Config } from "../conf/config.ts";
import type { FwdSpec } from "../conf/ports.ts";
import { libc } from "../ffi/libc.ts";
import { errno, errnoName, SysError } from "../ffi/errno.ts";
import { debug, info } from "../log.ts";
import { seccompInstall } from "./seccomp.ts";
import { threadCapsDrop } from "./thread_caps.ts";
import type { UserIds } from "./users.ts";

/** CAP_KILL: signal processes of another user. */
export const CAP_KILL = 5;
/** CAP_NET_BIND_SERVICE: bind ports below 1024. */
export const CAP_NET_BIND_SERVICE = 10;

const PR_SET_DUMPABLE = 4;
const PR_SET_KEEPCAPS = 8;
const PR_SET_NO_NEW_PRIVS = 38;

/** A thread of orzo's that drops its own capabilities when asked. */
export type ThreadDrop = (keep: number, clamp: boolean, sets: boolean) => Promise<string>;

/** What {@linkcode isolate} is to do. */
export interface IsolateOptions {
  /** the user to become, or null to stay (not root, or root of a user namespace) */
  ids: UserIds | null;
  /** capabilities the main thread keeps (bit mask), from {@linkcode keptCaps} */
  keep: number;
  /** the Workers, each dropping everything on its own thread */
  threads: ThreadDrop[];
}

function lowPorts(spec: FwdSpec, onlyScan: boolean): boolean {
  return spec.rules.some((r) => r.first < 1024 && (r.scan || !onlyScan));
}

/**
 * The capabilities the main thread needs while running (measured: nothing
 * else fails without the others):
 * - CAP_NET_BIND_SERVICE when a port below 1024 may be bound after set-up:
 *   `auto` forwarding opens listeners as the other side binds ports, and a
 *   UDP flow to a forwarded port answers from a socket bound to that port;
 *   with a control socket (-c), a forward added at run time may be any port;
 * - CAP_KILL when orzo switches user after starting a command as root, to
 *   pass SIGTERM and SIGINT on to it.
 * @param conf the configuration
 * @param switching whether orzo changes user
 * @param spawned whether orzo started the command
 * @returns the bit mask
 */
export function keptCaps(conf: Config, switching: boolean, spawned: boolean): number {
  let keep = 0;
  const tcp = !conf.noTcp && (lowPorts(conf.tcp, true) || lowPorts(conf.tcpNs, true));
  const udp = !conf.noUdp && (lowPorts(conf.udp, false) || lowPorts(conf.udpNs, false));
  const ctl = conf.confPath !== undefined && !(conf.noTcp && conf.noUdp);
  if (tcp || udp || ctl) keep |= 1 << CAP_NET_BIND_SERVICE;
  if (switching && spawned) keep |= 1 << CAP_KILL;
  return keep;
}

function prctl(option: number, arg: number, what: string): void {
  if (libc.symbols.prctl(option, BigInt(arg), 0n, 0n, 0n) < 0) throw new SysError(what, errno());
}

function dropped(what: string, r: string): void {
  if (r === "") return;
  const text = r.replace(/errno (\d+)/, (_, n) => errnoName(Number(n)));
  throw new Error(`Cannot drop capabilities (${what}): ${text}`);
}

/**
 * Gives up privileges; call once set-up is complete.
 * @param o what to do
 * @throws SysError or Error when a step fails (orzo must then not run)
 */
export async function isolate(o: IsolateOptions): Promise<void> {
  const switching = o.ids !== null;
  /* 1. bounding sets, and in a user namespace the Worker's capabilities */
  for (const t of o.threads) dropped("namespace thread", await t(0, true, !switching));
  dropped("main thread", threadCapsDrop(0xffffffff, true, false, libc.symbols));
  /* 2. the user */
  if (o.ids !== null) {
    if (o.keep !== 0) prctl(PR_SET_KEEPCAPS, 1, "prctl(PR_SET_KEEPCAPS)");
    if (libc.symbols.setgroups(0, null) < 0) throw new SysError("setgroups", errno());
    if (libc.symbols.setgid(o.ids.gid) < 0) throw new SysError(`setgid ${o.ids.gid}`, errno());
    if (libc.symbols.setuid(o.ids.uid) < 0) throw new SysError(`setuid ${o.ids.uid}`, errno());
    if (o.keep !== 0) prctl(PR_SET_KEEPCAPS, 0, "prctl(PR_SET_KEEPCAPS)");
    info(`Changed to UID ${o.ids.uid}, GID ${o.ids.gid}`);
  }
  /* 3. the main thread's sets */
  dropped("main thread", threadCapsDrop(o.keep, false, true, libc.symbols));
  /* 4. dumps, no_new_privs, the filter */
  prctl(PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE)");
  prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)");
  seccompInstall();
  debug(`Isolated: capabilities kept 0x${o.keep.toString(16)}, seccomp deny-list on every thread`);
}
