/**
 * protocols.ts - start-up of the L4 translation modules (TCP, UDP, ICMP).
 *
 * Each module registers its tap handler (tap/l3.ts l4Register), its epoll
 * handlers (loop.on), its timers (loop.post) and its listening sockets here,
 * after the tap exists and before the guest's command starts.
 *
 * @module
 */

import type { Config } from "./conf/config.ts";
import type { Ctx } from "./ctx.ts";
import type { EventLoop } from "./loop.ts";
import type { NsThread } from "./ns/ns.ts";
import { tcpInit, tcpSetListeners, tcpSetScan, tcpSetSplice } from "./tcp/tcp.ts";
import { spliceInit } from "./tcp/splice.ts";
import { diagOpen, diagPorts } from "./fwd/diag.ts";
import { scanPorts } from "./fwd/scan.ts";
import { FWD_TCP, FwdListeners, hostSocket, loopWatch } from "./fwd/listeners.ts";
import { FwdDirection } from "./fwd/direction.ts";
import { PIF_HOST, PIF_SPLICE } from "./flow/pif.ts";
import { udpDirections, udpInit, type UdpStats } from "./udp/udp.ts";
import { icmpInit, type IcmpStats } from "./icmp/icmp.ts";
import type { TcpStats } from "./tcp/tcp.ts";
import type { SpliceStats } from "./tcp/splice.ts";
import { type FwdDirections, FwdRuntime } from "./fwd/runtime.ts";

/** What {@linkcode protoInit} started: the modules' counters and the run-time forwards. */
export interface Protocols {
  /** TCP counters, null with --no-tcp */
  tcp: TcpStats | null;
  /** spliced TCP counters, null without the splice path */
  splice: SpliceStats | null;
  /** UDP counters, null with --no-udp */
  udp: UdpStats | null;
  /** ICMP counters, null with --no-icmp */
  icmp: IcmpStats | null;
  /** forwards added and removed at run time (fwd/runtime.ts) */
  fwd: FwdRuntime;
}

/**
 * A reader of the guest's listening TCP ports (not loopback-only ones):
 * sock_diag through a socket in the guest's namespace, else its procfs.
 */
function guestPorts(c: Ctx, netDir: string): (out: Uint8Array) => number {
  const nsSync = c.nsSync;
  const fd = nsSync === null ? -1 : diagOpen((d, t, p) => nsSync.socket(d, t, p));
  if (fd >= 0) return (out) => diagPorts(fd, false, out, true);
  return (out) => scanPorts(netDir, false, out, true);
}

/** A reader of the host's listening TCP ports (sock_diag, else procfs). */
function hostPorts(): (out: Uint8Array) => number {
  const fd = diagOpen();
  if (fd >= 0) return (out) => diagPorts(fd, false, out, false);
  return (out) => scanPorts("/proc/self/net", false, out, false);
}

/**
 * Starts the L4 modules.
 * @param c execution context
 * @param loop the event loop
 * @param conf the configuration
 * @param ns the namespace thread, for sockets that live in the guest's
 *   namespace; null in passt mode (no namespace: no `auto`, no splice)
 */
export async function protoInit(
  c: Ctx,
  loop: EventLoop,
  conf: Config,
  ns: NsThread | null,
): Promise<Protocols> {
  const out: Omit<Protocols, "fwd"> = { tcp: null, splice: null, udp: null, icmp: null };
  const dirs: FwdDirections = { "tcp": null, "udp": null, "tcp-ns": null, "udp-ns": null };
  /* the one table of forwarding sockets, both protocols, both sides */
  const table = new FwdListeners(loopWatch(loop));
  const fams = { v4: c.ip4.enabled, v6: c.ip6.enabled };
  if (!conf.noTcp) {
    out.tcp = tcpInit(c, loop);
    tcpSetListeners(table);
    const tcpIn = new FwdDirection(table, {
      ...fams,
      proto: FWD_TCP,
      pif: PIF_HOST,
      spec: conf.tcp,
      freebind: conf.freebind,
      socket: hostSocket,
      read: ns !== null && conf.tcp.rules.some((r) => r.scan)
        ? guestPorts(c, `/proc/self/task/${await ns.tid()}/net`)
        : null,
      own: null,
    });
    dirs.tcp = tcpIn;
    if (conf.tcp.mode === "spec" || conf.tcp.mode === "all") {
      tcpIn.openRules(conf.tcp.rules, conf.tcp.excluded, true);
    }
    /* the splice path: -T on the guest's loopback, host loopback clients of -t */
    const nsSync = c.nsSync;
    if (nsSync !== null && !conf.noSplice) {
      out.splice = spliceInit(c, loop, (d, t) => nsSync.socket(d, t));
      /* -T auto leaves out the TCP ports orzo listens on on the host (-t,
       * also added at run time, and auto) */
      const own = new Uint8Array(8192);
      const tcpNs = new FwdDirection(table, {
        ...fams,
        proto: FWD_TCP,
        pif: PIF_SPLICE,
        spec: conf.tcpNs,
        freebind: false,
        socket: (d, t, p) => nsSync.socket(d, t, p),
        read: conf.tcpNs.rules.some((r) => r.scan) ? hostPorts() : null,
        own: () => table.ports(own.fill(0), FWD_TCP, PIF_HOST),
      });
      dirs["tcp-ns"] = tcpNs;
      /* (explicit -T ports that cannot be bound are skipped, as always) */
      tcpNs.openRules(conf.tcpNs.rules, conf.tcpNs.excluded, false);
      tcpSetSplice(true, conf.hostLoToNsLo);
    }
    tcpSetScan([dirs.tcp, dirs["tcp-ns"]].filter((d) => d?.hasAuto) as FwdDirection[]);
  }
  /* UDP (-u, -U, splice) and ICMP echo: udp/udp.ts, icmp/icmp.ts */
  if (!conf.noUdp) {
    out.udp = udpInit(c, loop, conf, { nsSync: c.nsSync, listeners: table });
    const u = udpDirections()!;
    dirs.udp = u.in;
    dirs["udp-ns"] = u.out;
  }
  if (!conf.noIcmp) out.icmp = icmpInit(c, loop);
  await Promise.resolve();
  return { ...out, fwd: new FwdRuntime(c, conf, dirs) };
}

/**
 * Registers the flow table's own hooks on the loop, after every protocol's:
 * flows closed during a batch become reusable at its end (last post
 * handler), and a handler that failed while setting a flow up does not
 * wedge the table (recovery).
 * @param c execution context
 * @param loop the event loop
 */
export function flowTableHooks(c: Ctx, loop: EventLoop): void {
  loop.post.push(() => c.flows.flowDeferHandler());
  loop.recover.push(() => c.flows.flowSetupAbandon());
}
