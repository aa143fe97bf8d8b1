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
import { EPOLL_TYPE_TCP_LISTEN } from "./loop.ts";
import { EPOLLIN } from "./ffi/layout.ts";
import { tcpAutoPorts, tcpInit, tcpSetAuto, tcpSetListeners, tcpSetSplice } from "./tcp/tcp.ts";
import { spliceInit } from "./tcp/splice.ts";
import { TcpNsListeners } from "./tcp/listen_ns.ts";
import { diagOpen, diagPorts } from "./fwd/diag.ts";
import { scanPorts } from "./fwd/scan.ts";
import { TcpAuto } from "./tcp/auto.ts";
import { tcpListen } from "./tcp/listen.ts";
import { udpAutoIn, udpInit, udpListeners, type UdpStats } from "./udp/udp.ts";
import { icmpInit, type IcmpStats } from "./icmp/icmp.ts";
import type { TcpStats } from "./tcp/tcp.ts";
import type { SpliceStats } from "./tcp/splice.ts";
import { FwdRuntime, type FwdRuntimeTcp, type FwdRuntimeUdp } from "./fwd/runtime.ts";

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
  let tcpFwd: FwdRuntimeTcp | null = null;
  let udpFwd: FwdRuntimeUdp | null = null;
  if (!conf.noTcp) {
    out.tcp = tcpInit(c, loop);
    const l = tcpListen(
      conf.tcp,
      { v4: c.ip4.enabled, v6: c.ip6.enabled },
      conf.freebind,
      (fd, index) => loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, index),
    );
    tcpSetListeners(l);
    tcpFwd = { listeners: l, auto: null };
    const families = { v4: c.ip4.enabled, v6: c.ip6.enabled };
    const addListener = (fd: number, data: number) =>
      loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, data);
    if (ns !== null && conf.tcp.rules.some((r) => r.scan)) {
      const tid = await ns.tid();
      tcpFwd.auto = new TcpAuto(
        conf.tcp,
        guestPorts(c, `/proc/self/task/${tid}/net`),
        families,
        addListener,
      );
      tcpSetAuto(tcpFwd.auto);
    }
    /* the splice path: -T on the guest's loopback, host loopback clients of -t */
    const nsSync = c.nsSync;
    if (nsSync !== null && !conf.noSplice) {
      out.splice = spliceInit(c, loop, (d, t) => nsSync.socket(d, t));
      let nsl: TcpNsListeners | null = null;
      if (conf.tcpNs.mode !== "none") {
        /* the -t ports (also those added at run time) and the auto ones */
        const exclude = () => l.ports(tcpAutoPorts() ?? new Uint8Array(8192));
        nsl = new TcpNsListeners(
          conf.tcpNs,
          (d, t) => nsSync.socket(d, t),
          families,
          addListener,
          exclude,
          hostPorts(),
        );
        nsl.start();
      }
      tcpSetSplice(nsl, true, conf.hostLoToNsLo);
    }
  }
  /* UDP (-u, -U, splice) and ICMP echo: udp/udp.ts, icmp/icmp.ts */
  if (!conf.noUdp) {
    /* -U auto leaves out the TCP ports orzo listens on: auto, and -t
     * rules added at run time (those of start-up it knows from conf.tcp) */
    const tcpL = tcpFwd?.listeners ?? null;
    const tcpHostPorts = () => {
      const auto = tcpAutoPorts();
      return tcpL === null ? auto : tcpL.ports(auto ?? new Uint8Array(8192));
    };
    out.udp = udpInit(c, loop, conf, { nsSync: c.nsSync, tcpAutoPortsHost: tcpHostPorts });
    udpFwd = { listeners: udpListeners()!, auto: udpAutoIn() };
  }
  if (!conf.noIcmp) out.icmp = icmpInit(c, loop);
  await Promise.resolve();
  return { ...out, fwd: new FwdRuntime(c, loop, conf, tcpFwd, udpFwd) };
}
