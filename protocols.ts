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
import { tcpInit, tcpSetAuto, tcpSetListeners } from "./tcp/tcp.ts";
import { TcpAuto } from "./tcp/auto.ts";
import { tcpListen } from "./tcp/listen.ts";
import { udpInit } from "./udp/udp.ts";
import { tcpAutoPorts } from "./tcp/tcp.ts";
import { icmpInit } from "./icmp/icmp.ts";

/**
 * Starts the L4 modules.
 * @param c execution context
 * @param loop the event loop
 * @param conf the configuration
 * @param ns the namespace thread, for sockets that live in the guest's namespace
 */
export async function protoInit(
  c: Ctx,
  loop: EventLoop,
  conf: Config,
  ns: NsThread,
): Promise<void> {
  if (!conf.noTcp) {
    tcpInit(c, loop);
    const l = tcpListen(
      conf.tcp,
      { v4: c.ip4.enabled, v6: c.ip6.enabled },
      conf.freebind,
      (fd, index) => loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, index),
    );
    tcpSetListeners(l);
    if (conf.tcp.rules.some((r) => r.scan)) {
      const tid = await ns.tid();
      tcpSetAuto(
        new TcpAuto(
          conf.tcp,
          `/proc/self/task/${tid}/net`,
          { v4: c.ip4.enabled, v6: c.ip6.enabled },
          (fd, data) => loop.epoll.add(fd, EPOLLIN, EPOLL_TYPE_TCP_LISTEN, data),
        ),
      );
    }
  }
  /* UDP (-u, -U, splice) and ICMP echo: udp/udp.ts, icmp/icmp.ts */
  if (!conf.noUdp) {
    udpInit(c, loop, conf, { nsSync: c.nsSync, tcpAutoPortsHost: tcpAutoPorts });
  }
  if (!conf.noIcmp) icmpInit(c, loop);
  await Promise.resolve();
}
