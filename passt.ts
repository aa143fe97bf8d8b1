/**
 * passt.ts - passt mode: serve a virtual machine over qemu's UNIX stream socket.
 *
 * Order of start-up (as passt): close inherited descriptors, go to the
 * background unless -f (daemon.ts; the listening socket is made by the
 * background copy, which reports its path before the foreground copy exits),
 * read the host's upstream addressing over rtnetlink (the guest gets the
 * host's own addresses, through DHCP, DHCPv6 and router advertisements),
 * bind the socket (-s, else the first free /tmp/passt_N.socket) or take --fd,
 * start the protocols, give up privileges, write the PID file, and run the
 * loop. orzo stays in the host's network namespace: there is no namespace
 * and no splice path in this mode.
 *
 * The frames go through the same intake (tap/tap.ts tapInput) and the same
 * protocol code as in pasta mode; only the backend differs (tap/stream.ts):
 * 4 bytes of length before each frame, and no offloads, so every checksum is
 * computed (l4Finish) and TCP segments stay within the guest's MSS.
 *
 * @module
 */

import type { Config } from "./conf/config.ts";
import type { Ctx } from "./ctx.ts";
import { libc } from "./ffi/libc.ts";
import { check, errno, errnoName } from "./ffi/errno.ts";
import { cString, writeAll } from "./ffi/mem.ts";
import { EPOLLIN, EPOLLRDHUP, O_CLOEXEC, O_CREAT, O_TRUNC, O_WRONLY } from "./ffi/layout.ts";
import {
  EPOLL_TRAFFIC_TYPES,
  EPOLL_TYPE_TAP_LISTEN,
  EPOLL_TYPE_TAP_PASST,
  EPOLL_TYPE_TIMER,
  EventLoop,
} from "./loop.ts";
import { DAEMON_FD, daemonize, daemonReady, isDaemonChild } from "./daemon.ts";
import { closeInheritedFds } from "./isolate/fds.ts";
import { isolate, keptCaps } from "./isolate/isolate.ts";
import { targetIds } from "./isolate/users.ts";
import { tapInput, tapNew } from "./tap/tap.ts";
import { STREAM_HDR_LEN, streamListen, StreamTap } from "./tap/stream.ts";
import { pcapClose, pcapOpen } from "./pcap.ts";
import { debug, info } from "./log.ts";
import { ConfError } from "./conf/errors.ts";
import { nlClose, nlOpen } from "./ffi/netlink_io.ts";
import { statsStart } from "./stats.ts";
import { flowTableHooks, protoInit } from "./protocols.ts";
import { CtlServer } from "./fwd/ctl.ts";
import { netCounters } from "./counters.ts";
import { udpStatsLine } from "./udp/udp.ts";
import { icmpStatsLine } from "./icmp/icmp.ts";
import { tcpCloseAll, tcpStatsLine, tcpTapWritable } from "./tcp/tcp.ts";
import { timerAck } from "./ffi/timer.ts";
import { filePagesTrimWhenQuiet } from "./ffi/file_pages.ts";
import { v8WorkersDeprioritise } from "./ffi/threads.ts";
import { fdBudgetLine } from "./flow/fd_budget.ts";
import {
  ctxAddressing,
  ctxFromConf,
  hostUpstreams,
  type PastaEmbed,
  tapStatsLine,
} from "./pasta.ts";

/**
 * Runs passt mode to the end.
 * @param conf the parsed configuration
 * @returns the process exit code
 */
export async function passtMain(conf: Config): Promise<number> {
  const keep = conf.fd !== undefined ? [conf.fd] : [];
  closeInheritedFds(isDaemonChild() ? [DAEMON_FD, ...keep] : keep);
  v8WorkersDeprioritise(); /* as pasta.ts */
  if (conf.vhostUser) throw new ConfError("--vhost-user is not supported yet");
  const ids = targetIds(conf.runas);
  const background = !conf.foreground;
  if (background && !isDaemonChild()) return daemonize(keep);
  return await passtRun(conf, background, ids);
}

/** The stream backend's counters, in one line. */
function streamStatsLine(s: StreamTap): string {
  const t = s.stats;
  return `stream: clients ${t.clients}, refused ${t.refused}, frames in ${t.framesIn}, ` +
    `short frames ${t.shortFrames}, bad-length closes ${t.badLengthCloses}, ` +
    `partial writes ${t.partialWrites}, refused when full ${t.refusedFull}`;
}

/** Fills the context from the options and the host's addressing. */
function passtCtx(conf: Config): Ctx {
  const c = ctxFromConf(conf, "passt");
  const nl = nlOpen();
  try {
    const { up4, up6 } = hostUpstreams(nl, conf);
    ctxAddressing(c, conf, up4, up6);
  } finally {
    nlClose(nl);
  }
  /* the guest's MAC is unknown until it speaks: broadcast until then (passt) */
  c.guestMac.fill(0xff);
  c.tapHdrLen = STREAM_HDR_LEN;
  return c;
}

/**
 * Runs passt mode once the process is set (inherited fds closed, background).
 * @param conf the configuration
 * @param background whether to report readiness to the parent (daemon.ts)
 * @param ids the user to become, or null
 * @param embed set when a program runs the network through the library: no
 *   signal listeners, no change of privileges, and the socket file removed
 *   at the end
 * @returns the exit code
 */
export async function passtRun(
  conf: Config,
  background: boolean,
  ids: ReturnType<typeof targetIds>,
  embed?: PastaEmbed,
): Promise<number> {
  const c = passtCtx(conf);
  const loop = new EventLoop();
  const tap = tapNew(-1, STREAM_HDR_LEN);
  const oneOff = conf.oneOff || conf.fd !== undefined;
  const epollMod = (fd: number, events: number) => {
    loop.epoll.mod(fd, events, EPOLL_TYPE_TAP_PASST);
  };
  const hooks = {
    deliver: (buf: Uint8Array, view: DataView, off: number, len: number, now: number) =>
      tapInput(c, tap, buf, view, off, len, now),
    connected: (fd: number) => {
      c.tapFd = fd;
      c.guestMac.fill(0xff);
      loop.epoll.add(fd, EPOLLIN | EPOLLRDHUP, EPOLL_TYPE_TAP_PASST);
    },
    closed: (why: string) => {
      c.tapFd = -1;
      info(oneOff ? `${why}, exiting` : `${why}, waiting for the next client`);
      if (oneOff) loop.stop(0);
    },
    writable: (now: number) => tcpTapWritable(now),
  };

  let stream: StreamTap;
  if (conf.fd !== undefined) {
    stream = new StreamTap(-1, "", hooks, epollMod);
    c.tap = stream;
    stream.attach(conf.fd);
  } else {
    const l = streamListen(conf.socketPath);
    stream = new StreamTap(l.fd, l.path, hooks, epollMod);
    c.tap = stream;
    loop.epoll.add(l.fd, EPOLLIN, EPOLL_TYPE_TAP_LISTEN);
    info(`UNIX domain socket bound at ${l.path}`);
    info("You can now start qemu (>= 7.2):");
    info(
      "    qemu-system-x86_64 ... -device virtio-net-pci,netdev=s " +
        `-netdev stream,id=s,server=off,addr.type=unix,addr.path=${l.path}`,
    );
  }
  loop.on(EPOLL_TYPE_TAP_LISTEN, () => {
    const pid = stream.accept();
    if (pid >= 0) info(pid > 0 ? `Accepted connection from PID ${pid}` : "Accepted connection");
  });
  loop.on(EPOLL_TYPE_TAP_PASST, (_fd, _data, events, now) => stream.handler(events, now));
  loop.on(EPOLL_TYPE_TIMER, (fd) => timerAck(fd));

  /* a program's network that fails to start gives its socket back at once
   * (its Worker ends, but descriptors belong to the whole process) */
  const startFailed = (e: unknown): never => {
    if (embed !== undefined) {
      if (stream.listenFd >= 0) libc.symbols.close(stream.listenFd);
      if (stream.path !== "") libc.symbols.unlink(cString(stream.path));
    }
    throw e;
  };
  try {
    if (conf.pcap !== undefined) pcapOpen(conf.pcap);
  } catch (e) {
    startFailed(e);
  }
  const protos = await protoInit(c, loop, conf, null).catch(startFailed);
  if (conf.stats !== undefined) {
    statsStart(loop, conf.stats, () => [
      tapStatsLine(c, loop),
      streamStatsLine(stream),
      c.flows.flowStatsLine(),
      fdBudgetLine(),
      tcpStatsLine(),
      udpStatsLine(),
      icmpStatsLine(),
    ]);
  }
  flowTableHooks(c, loop);

  const stopOn = (sig: Deno.Signal, code: number) => {
    if (embed !== undefined) return;
    try {
      Deno.addSignalListener(sig, () => loop.stop(code));
    } catch { /* not available */ }
  };
  stopOn("SIGTERM", 143);
  stopOn("SIGINT", 130);
  stopOn("SIGHUP", 129);

  /* opened while privileged, written once isolated: it then marks both */
  const pidFd = conf.pidFile === undefined ? -1 : check(
    libc.symbols.open(cString(conf.pidFile), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644),
    `open ${conf.pidFile}`,
  );
  /* forwards changed at run time (-c): opened while privileged */
  const ctl = conf.confPath === undefined ? null : new CtlServer(loop, conf.confPath, {
    fwd: protos.fwd,
    stats: () => netCounters(c, loop, protos),
  }, ids);
  /* owned by the user orzo becomes, who removes it at exit (as pasta.ts) */
  if (pidFd >= 0 && ids !== null) libc.symbols.fchown(pidFd, ids.uid, ids.gid);
  if (embed === undefined) {
    await isolate({ ids, keep: keptCaps(conf, ids !== null, false), threads: [] });
  }
  if (pidFd >= 0) {
    writeAll(pidFd, new TextEncoder().encode(`${libc.symbols.getpid()}\n`), "write PID file");
    libc.symbols.close(pidFd);
  }
  if (background) daemonReady();

  /* one turn of Deno's runtime: it finishes setting up the signal listeners */
  await libc.symbols.getpid_async();
  embed?.ready({ c, loop, protos, child: -1, socketPath: stream.path });
  if (embed === undefined) filePagesTrimWhenQuiet(loop, EPOLL_TRAFFIC_TYPES); /* as pasta.ts */
  const code = await loop.run(1000);
  ctl?.close();
  debug(tapStatsLine(c, loop));
  debug(streamStatsLine(stream));
  debug(c.flows.flowStatsLine());
  debug(fdBudgetLine());
  debug(tcpStatsLine());
  debug(udpStatsLine());
  debug(icmpStatsLine());
  tcpCloseAll();
  stream.close("exiting");
  if (stream.listenFd >= 0) libc.symbols.close(stream.listenFd);
  /* a program's network gives its socket's name back (the CLI leaves it, as passt) */
  if (embed !== undefined && stream.path !== "") libc.symbols.unlink(cString(stream.path));
  pcapClose();
  if (conf.pidFile !== undefined && libc.symbols.unlink(cString(conf.pidFile)) < 0) {
    debug(`Cannot remove the PID file ${conf.pidFile}: ${errnoName(errno())}`);
  }
  return code;
}
