/**
 * pasta.ts - pasta mode: set up the guest's namespace and tap, then run the loop.
 *
 * Order of start-up (as pasta): enter a user namespace where needed
 * (userns.ts), go to the background unless a command is spawned or -f is
 * given (daemon.ts), read the host's upstream addressing over rtnetlink,
 * create or join the guest's network namespace on the namespace thread,
 * create the tap there (none with --splice-only: then only the loopback paths
 * work) and bring the guest's loopback up, set up the protocols and their
 * forwards, open the PID file, give the tap its addresses and routes
 * (--config-net: last, so that a guest using them at once finds the loop
 * nearly ready), spawn the command, give up privileges (isolate/isolate.ts),
 * write the PID file, and run the event loop until the command exits, the
 * namespace goes away or a signal asks us to stop. Inherited descriptors
 * are closed first (isolate/fds.ts), and V8's worker threads get the lowest
 * priority (ffi/threads.ts).
 *
 * @module
 */

import type { Config } from "./conf/config.ts";
import { ctxNew } from "./ctx.ts";
import { FLOW_MAX } from "./flow/table.ts";
import type { Ctx } from "./ctx.ts";
import { libc } from "./ffi/libc.ts";
import { check, errno, errnoName, SysError } from "./ffi/errno.ts";
import { cString, getEnv, writeAll } from "./ffi/mem.ts";
import { environWith, fdCount, pidfdOpen, reap } from "./ffi/proc.ts";
import {
  AF_INET,
  AF_INET6,
  EPOLLIN,
  O_CLOEXEC,
  O_CREAT,
  O_TRUNC,
  O_WRONLY,
  SIGTERM,
} from "./ffi/layout.ts";
import {
  EPOLL_TRAFFIC_TYPES,
  EPOLL_TYPE_NSQUIT_INOTIFY,
  EPOLL_TYPE_NSQUIT_TIMER,
  EPOLL_TYPE_PIDFD,
  EPOLL_TYPE_TAP_PASTA,
  EPOLL_TYPE_TIMER,
  EventLoop,
} from "./loop.ts";
import { NsThread } from "./ns/ns.ts";
import { netnsWatch, netnsWatchGone } from "./ns/netns_quit.ts";
import { needUserns, reexecInNewUserns, reexecInUserns, userNsCheck } from "./ns/userns.ts";
import { DAEMON_FD, daemonize, daemonReady, isDaemonChild } from "./daemon.ts";
import { closeInheritedFds } from "./isolate/fds.ts";
import { filePagesTrimWhenQuiet } from "./ffi/file_pages.ts";
import { v8WorkersDeprioritise } from "./ffi/threads.ts";
import { isolate, keptCaps } from "./isolate/isolate.ts";
import { targetIds, type UserIds } from "./isolate/users.ts";
import { tapHandler, tapNew, VNET_HDR_LEN } from "./tap/tap.ts";
import { tapDeviceBackend } from "./tap/backend.ts";
import { pcapClose, pcapOpen } from "./pcap.ts";
import { debug, info, LOG_DEBUG, logLevel } from "./log.ts";
import { ConfError } from "./conf/errors.ts";
import { parseIp4, parseIp6 } from "./conf/addr.ts";
import { hostUpstream, nlOpen } from "./ffi/netlink_io.ts";
import type { Upstream } from "./ffi/netlink_io.ts";
import { nsAddrsConfigure, type NsConfInput, nsLinkPrepare, nsLoopbackUp } from "./ns/ns_conf.ts";
import { statsStart } from "./stats.ts";
import { flowTableHooks, type Protocols, protoInit } from "./protocols.ts";
import { CtlServer } from "./fwd/ctl.ts";
import { netCounters } from "./counters.ts";
import { fdBudgetLine } from "./flow/fd_budget.ts";
import { dnsConf } from "./fwd/dns.ts";
import { udpStatsLine } from "./udp/udp.ts";
import { icmpStatsLine } from "./icmp/icmp.ts";
import { tcpCloseAll, tcpOpenCount, tcpStatsLine } from "./tcp/tcp.ts";
import { spliceCloseAll, spliceStatsLine } from "./tcp/splice.ts";
import { timerAck, timerCreate, timerSet } from "./ffi/timer.ts";

/** How long orzo waits, after the command exits, for the guest's TCP connections to close. */
export const EXIT_LINGER_MS = 2000;

/** Default name of the tap when the host has no upstream interface. */
export const PASTA_DEFAULT_IFNAME = "tap0";
/** Link-local IPv4 address given to the guest in local mode (169.254.2.1). */
const IP4_LL_GUEST_ADDR = new Uint8Array([169, 254, 2, 1]);
/** Link-local IPv4 gateway in local mode (169.254.2.2). */
const IP4_LL_GUEST_GW = new Uint8Array([169, 254, 2, 2]);
/** Link-local IPv6 gateway in local mode (fe80::1). */
const IP6_LL_GUEST_GW = new Uint8Array([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** Where the guest's namespace comes from. */
function nsTarget(conf: Config): string | null {
  if (conf.netns !== undefined) return conf.netns;
  if (conf.pid !== undefined) return `/proc/${conf.pid}/ns/net`;
  return null;
}

/** Prefix length of an IPv4 address by its historical class, as pasta. */
function classPrefix(a: Uint8Array): number {
  if (a[0]! < 128) return 8;
  if (a[0]! < 192) return 16;
  if (a[0]! < 224) return 24;
  return 32;
}

function isLinkLocal6(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

/**
 * Fills the context's addressing from the host's upstream interfaces and the
 * options (-a, -n, -g win over what the host has), falling back to pasta's
 * local mode when the host has neither family. passt mode (passt.ts) uses it
 * as it is.
 * @param c execution context
 * @param conf the configuration
 * @param up4 the usable IPv4 upstream (usable4()), or null
 * @param up6 the usable IPv6 upstream (usable6()), or null
 * @returns whether local mode applies
 */
export function ctxAddressing(
  c: Ctx,
  conf: Config,
  up4: Upstream | null,
  up6: Upstream | null,
): { local: boolean } {
  const local = up4 === null && up6 === null;
  if (local) {
    info("No external interface as template, switch to local mode");
    c.ip4.enabled = !conf.ipv6Only;
    c.ip4.addr.set(IP4_LL_GUEST_ADDR);
    c.ip4.gateway.set(IP4_LL_GUEST_GW);
    c.ip4.prefixLen = 16;
    c.ip6.enabled = !conf.ipv4Only;
    c.ip6.gateway.set(IP6_LL_GUEST_GW);
    c.ip6.ourLinkLocal.set(IP6_LL_GUEST_GW);
  }
  if (up4 !== null) {
    c.ip4.enabled = true;
    const a = up4.addrs[0];
    if (a !== undefined) {
      c.ip4.addr.set(a.addr);
      c.ip4.prefixLen = a.prefixLen;
    }
    if (up4.gateway !== null) c.ip4.gateway.set(up4.gateway);
  }
  if (up6 !== null) {
    c.ip6.enabled = true;
    const a = up6.addrs.find((x) => !isLinkLocal6(x.addr));
    if (a !== undefined) {
      c.ip6.addr.set(a.addr);
      c.ip6.prefixLen = a.prefixLen;
    }
    if (up6.gateway !== null) c.ip6.gateway.set(up6.gateway);
    if (up6.gateway !== null && isLinkLocal6(up6.gateway)) c.ip6.ourLinkLocal.set(up6.gateway);
    else if (up6.linkLocal !== null) c.ip6.ourLinkLocal.set(up6.linkLocal);
  }
  if (conf.addr4 !== undefined && !conf.ipv6Only) {
    const a = parseIp4(conf.addr4)!;
    c.ip4.enabled = true;
    c.ip4.addr.set(a);
    c.ip4.prefixLen = conf.prefixLen4 ?? conf.netmask ?? classPrefix(a);
  } else if (conf.netmask !== undefined) c.ip4.prefixLen = conf.netmask;
  if (conf.gateway4 !== undefined && !conf.ipv6Only) c.ip4.gateway.set(parseIp4(conf.gateway4)!);
  if (conf.addr6 !== undefined && !conf.ipv4Only) {
    c.ip6.enabled = true;
    c.ip6.addr.set(parseIp6(conf.addr6)!);
    c.ip6.prefixLen = conf.prefixLen6 ?? 64;
  }
  if (conf.gateway6 !== undefined && !conf.ipv4Only) {
    const g = parseIp6(conf.gateway6)!;
    c.ip6.gateway.set(g);
    if (isLinkLocal6(g)) c.ip6.ourLinkLocal.set(g);
  }
  /* The gateway reaches the host's loopback unless told otherwise */
  if (!conf.noMapGw) {
    c.ip4.mapHostLoopback.set(c.ip4.gateway);
    c.ip6.mapHostLoopback.set(c.ip6.gateway);
  }
  if (conf.mapHostLoopback4 !== undefined) {
    c.ip4.mapHostLoopback.set(parseIp4(conf.mapHostLoopback4)!);
  }
  if (conf.mapHostLoopback6 !== undefined) {
    c.ip6.mapHostLoopback.set(parseIp6(conf.mapHostLoopback6)!);
  }
  if (conf.mapGuestAddr4 !== undefined) c.ip4.mapGuestAddr.set(parseIp4(conf.mapGuestAddr4)!);
  if (conf.mapGuestAddr6 !== undefined) c.ip6.mapGuestAddr.set(parseIp6(conf.mapGuestAddr6)!);
  if (conf.ipv6Only) c.ip4.enabled = false;
  if (conf.ipv4Only) c.ip6.enabled = false;
  c.ip4.addrSeen.set(c.ip4.addr);
  c.ip6.addrSeen.set(c.ip6.addr);
  /* resolvers, --dns-forward and --dns-host (fwd/dns.ts) */
  dnsConf(c, conf);
  return { local };
}

/**
 * An IPv4 upstream serves as template only with a gateway and an address
 * (from the host or the options), as pasta's conf_ip4().
 * @param up the host's IPv4 upstream, or null
 * @param conf the configuration
 * @returns `up`, or null when it cannot serve
 */
export function usable4(up: Upstream | null, conf: Config): Upstream | null {
  if (up === null) return null;
  if (up.gateway === null && conf.gateway4 === undefined) return null;
  if (up.addrs.length === 0 && conf.addr4 === undefined) return null;
  return up;
}

/**
 * An IPv6 upstream serves as template only with a gateway, a global address
 * and a link-local address to speak from, as pasta's conf_ip6().
 * @param up the host's IPv6 upstream, or null
 * @param conf the configuration
 * @returns `up`, or null when it cannot serve
 */
export function usable6(up: Upstream | null, conf: Config): Upstream | null {
  if (up === null) return null;
  if (up.gateway === null && conf.gateway6 === undefined) return null;
  if (!up.addrs.some((a) => !isLinkLocal6(a.addr)) && conf.addr6 === undefined) return null;
  const gwLinkLocal = up.gateway !== null && isLinkLocal6(up.gateway);
  if (up.linkLocal === null && !gwLinkLocal) return null;
  return up;
}

/**
 * Runs pasta mode to the end.
 * @param conf the parsed configuration
 * @returns the process exit code
 */
export async function pastaMain(conf: Config): Promise<number> {
  closeInheritedFds(isDaemonChild() ? [DAEMON_FD] : []);
  /* V8's compile jobs must not hold the CPU when the loop wakes up; before
   * isolate(): a process that is not dumpable cannot read its threads' names */
  v8WorkersDeprioritise();
  const target = nsTarget(conf);

  if (needUserns()) {
    if (conf.userns !== undefined) reexecInUserns(conf.userns);
    if (conf.pid !== undefined) reexecInUserns(`/proc/${conf.pid}/ns/user`);
    if (target === null) reexecInNewUserns();
  }
  userNsCheck();

  const ids = targetIds(conf.runas);
  const spawning = target === null;
  const background = !spawning && !conf.foreground;
  if (background && !isDaemonChild()) return daemonize();
  return await pastaRun(conf, target, background, ids);
}

/**
 * A network run by a program through the library (lib/), not by the CLI
 * (pasta mode here, passt mode in passt.ts).
 */
export interface PastaEmbed {
  /**
   * Called once the network is up, right before the loop runs. An embedded
   * network installs no signal listeners, changes no privileges and, when
   * it has neither a namespace to join nor a command, spawns nothing.
   * `child` is the command's PID (-1: none); `socketPath` is passt mode's
   * listening socket ("" with --fd).
   */
  ready(
    net: { c: Ctx; loop: EventLoop; protos: Protocols; child: number; socketPath?: string },
  ): void;
}

/**
 * A context for either mode, with what the options say outside addressing.
 * @param conf the parsed configuration
 * @param mode "pasta" or "passt"
 * @returns the context
 */
export function ctxFromConf(conf: Config, mode: "pasta" | "passt"): Ctx {
  const c = ctxNew(FLOW_MAX);
  c.mode = mode;
  if (conf.ourMac !== undefined) c.ourMac.set(conf.ourMac);
  if (conf.mtu !== undefined) c.mtu = conf.mtu;
  c.noNdp = conf.noNdp || conf.noIcmp;
  c.noRa = conf.noRa;
  c.noDhcp = conf.noDhcp;
  c.noDhcpv6 = conf.noDhcpv6;
  c.hostname = conf.hostname ?? "";
  c.fqdn = conf.fqdn ?? "";
  return c;
}

/**
 * The host's upstream interfaces that can serve as templates (-i, -4, -6
 * applied).
 * @param nl an rtnetlink socket in the host's namespace
 * @param conf the parsed configuration
 * @returns the IPv4 and IPv6 templates, null where there is none
 * @throws ConfError when -i names an interface that serves neither family
 */
export function hostUpstreams(
  nl: number,
  conf: Config,
): { up4: Upstream | null; up6: Upstream | null } {
  const up4 = conf.ipv6Only ? null : usable4(hostUpstream(nl, AF_INET, conf.ifname), conf);
  const up6 = conf.ipv4Only ? null : usable6(hostUpstream(nl, AF_INET6, conf.ifname), conf);
  if (conf.ifname !== undefined && up4 === null && up6 === null) {
    throw new ConfError(`External interface "${conf.ifname}" not usable`);
  }
  return { up4, up6 };
}

/**
 * Runs pasta mode once the process is set (user namespace, background).
 * @param conf the configuration
 * @param target the namespace to join, or null for a new one
 * @param background whether to report readiness to the parent (daemon.ts)
 * @param ids the user to become, or null
 * @param embed set when a program runs the network through the library
 * @returns the exit code
 */
export async function pastaRun(
  conf: Config,
  target: string | null,
  background: boolean,
  ids: UserIds | null,
  embed?: PastaEmbed,
): Promise<number> {
  const c = ctxFromConf(conf, "pasta");

  const hostNl = nlOpen();
  let up4: Upstream | null = null;
  let up6: Upstream | null = null;
  let local = false;
  if (conf.spliceOnly) {
    /* no tap: no addresses, both families over the loopback paths only */
    c.ip4.enabled = !conf.ipv6Only;
    c.ip6.enabled = !conf.ipv4Only;
  } else {
    ({ up4, up6 } = hostUpstreams(hostNl, conf));
    local = ctxAddressing(c, conf, up4, up6).local;
  }

  const ns = new NsThread();
  let nsFd: number;
  try {
    nsFd = target === null ? await ns.unshare() : await ns.setns(target);
  } catch (e) {
    ns.close();
    throw e;
  }
  c.nsFd = nsFd;
  /* sockets in the guest's namespace while the loop runs (ns/ns_sync.ts) */
  c.nsSync = ns.sync;
  if (target === null) {
    await ns.write("/proc/sys/net/ipv4/ping_group_range", "0 0").catch(() => {
      debug("Cannot set ping_group_range, ICMP requests might fail");
    });
  }
  const nsNl = await ns.netlink();
  const loop = new EventLoop();
  /* the guest's addresses and routes, set once the protocols are ready */
  let guestConfigure = () => {};
  if (conf.spliceOnly) {
    nsLoopbackUp(nsNl);
    debug("--splice-only: no tap device, loopback forwarding only");
  } else {
    const ifname = conf.nsIfname ?? (local ? undefined : (up4 ?? up6)?.ifname) ??
      PASTA_DEFAULT_IFNAME;
    guestConfigure = await pastaTap(c, conf, ns, loop, ifname, {
      hostNl,
      nsNl,
      up4,
      up6,
      local,
    });
  }

  if (conf.pcap !== undefined) pcapOpen(conf.pcap);

  if (target !== null && !conf.noNetnsQuit) {
    if (conf.netns !== undefined) {
      const w = netnsWatch(conf.netns);
      const type = w.kind === "inotify" ? EPOLL_TYPE_NSQUIT_INOTIFY : EPOLL_TYPE_NSQUIT_TIMER;
      loop.epoll.add(w.fd, EPOLLIN, type);
      const h = () => {
        if (netnsWatchGone(w)) {
          info("Namespace gone, exiting");
          loop.stop(0);
        }
      };
      loop.on(EPOLL_TYPE_NSQUIT_INOTIFY, h);
      loop.on(EPOLL_TYPE_NSQUIT_TIMER, h);
    } else if (conf.pid !== undefined) {
      const pfd = pidfdOpen(conf.pid);
      if (pfd >= 0) {
        loop.epoll.add(pfd, EPOLLIN, EPOLL_TYPE_PIDFD, 1);
      }
    }
  }

  const protos = await protoInit(c, loop, conf, ns);
  if (conf.stats !== undefined) {
    statsStart(loop, conf.stats, () => [
      tapStatsLine(c, loop),
      c.flows.flowStatsLine(),
      fdBudgetLine(),
      tcpStatsLine(),
      udpStatsLine(),
      icmpStatsLine(),
      spliceStatsLine(),
    ]);
  }
  flowTableHooks(c, loop);

  let child = -1;
  loop.on(EPOLL_TYPE_PIDFD, (_fd, data) => {
    if (data === 1) {
      info("Namespace process gone, exiting");
      loop.stop(0);
      return;
    }
    const code = reap(child);
    if (code < 0) return;
    /* The guest's kernel may still be sending what the command wrote before
     * it exited: linger until its connections are closed, for a while */
    const deadline = performance.now() + EXIT_LINGER_MS;
    loop.epoll.del(_fd);
    loop.post.push((now) => {
      if (tcpOpenCount() === 0 || now >= deadline) loop.stop(code);
    });
    timerSet(lingerTimer, 50, 50);
  });
  const lingerTimer = timerCreate();
  loop.epoll.add(lingerTimer, EPOLLIN, EPOLL_TYPE_TIMER);
  loop.on(EPOLL_TYPE_TIMER, (fd) => timerAck(fd));

  const stopOn = (sig: Deno.Signal, code: number) => {
    if (embed !== undefined) return;
    try {
      Deno.addSignalListener(sig, () => {
        if (child > 0) libc.symbols.kill(child, SIGTERM);
        loop.stop(code);
      });
    } catch { /* not available */ }
  };
  /* acted on within about 100 ms whatever the loop does (loop.ts) */
  stopOn("SIGTERM", 143);
  stopOn("SIGINT", 130);
  stopOn("SIGHUP", 129);

  /* opened while privileged, written once isolated: it then marks both */
  const pidFd = conf.pidFile === undefined ? -1 : check(
    libc.symbols.open(cString(conf.pidFile), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644),
    `open ${conf.pidFile}`,
  );
  /* owned by the user orzo becomes, so that it can remove the file at exit
   * where the directory lets that user (a sticky /tmp, say) */
  if (pidFd >= 0 && ids !== null) libc.symbols.fchown(pidFd, ids.uid, ids.gid);

  /* forwards changed at run time (-c): opened while privileged */
  const ctl = conf.confPath === undefined ? null : new CtlServer(loop, conf.confPath, {
    fwd: protos.fwd,
    stats: () => netCounters(c, loop, protos),
  }, ids);
  guestConfigure();
  if (target === null && (embed === undefined || conf.command.length > 0)) {
    const argv = conf.command.length > 0 ? conf.command : [defaultShell()];
    child = await ns.spawn(argv, environWith({}, "ORZO_"));
    const pfd = pidfdOpen(child);
    if (pfd < 0) throw new SysError("pidfd_open", -pfd);
    loop.epoll.add(pfd, EPOLLIN, EPOLL_TYPE_PIDFD, 0);
  }
  if (embed === undefined) {
    await isolate({
      ids,
      keep: keptCaps(conf, ids !== null, target === null),
      threads: [(k, cl, s) => ns.capsDrop(k, cl, s)],
    });
  }
  if (pidFd >= 0) {
    writeAll(pidFd, new TextEncoder().encode(`${libc.symbols.getpid()}\n`), "write PID file");
    libc.symbols.close(pidFd);
  }
  if (background) daemonReady();

  /* one turn of Deno's runtime, which the loop gives it now and then: it
   * finishes setting up the signal listeners (a socket of its own) */
  await libc.symbols.getpid_async();
  /* (4096 fcntl() calls: only for the debug line at exit) */
  const fdsAtStart = logLevel >= LOG_DEBUG ? fdCount() : -1;
  /* start-up's share of the deno binary leaves the RSS once the loop is
   * quiet; the loop's comes back */
  if (embed === undefined) filePagesTrimWhenQuiet(loop, EPOLL_TRAFFIC_TYPES);
  embed?.ready({ c, loop, protos, child });
  const code = await loop.run(1000);
  ctl?.close();
  debug(tapStatsLine(c, loop));
  debug(c.flows.flowStatsLine());
  debug(fdBudgetLine());
  debug(tcpStatsLine());
  debug(udpStatsLine());
  debug(icmpStatsLine());
  debug(spliceStatsLine());
  tcpCloseAll();
  spliceCloseAll();
  if (logLevel >= LOG_DEBUG) {
    debug(`fds: ${fdsAtStart} when the loop started, ${fdCount()} at exit`);
  }
  ns.close();
  pcapClose();
  if (conf.pidFile !== undefined && libc.symbols.unlink(cString(conf.pidFile)) < 0) {
    debug(`Cannot remove the PID file ${conf.pidFile}: ${errnoName(errno())}`);
  }
  return code;
}

/**
 * The tap's counters and the loop's handler failures, in one line.
 * @param c execution context
 * @param loop the event loop
 * @returns the line
 */
export function tapStatsLine(c: Ctx, loop: EventLoop): string {
  const st = c.stats;
  return `tap: frames in ${st.framesIn}, out ${st.framesOut}, malformed ${st.malformed}, ` +
    `unhandled ${st.unhandled}; ARP replies ${st.arpReplies}, NDP adverts ${st.ndpAdverts}, ` +
    `router adverts ${st.routerAdverts}, DHCP replies ${st.dhcpReplies}, DHCPv6 replies ` +
    `${st.dhcpv6Replies}, DHCP malformed ${st.dhcpMalformed}; handler failures ${loop.failures}`;
}

/**
 * Creates the tap in the guest's namespace and hands its frames to the
 * loop.
 * @returns what gives the guest its addresses and routes (nsAddrsConfigure)
 */
async function pastaTap(
  c: Ctx,
  conf: Config,
  ns: NsThread,
  loop: EventLoop,
  ifname: string,
  io: Omit<NsConfInput, "tapName">,
): Promise<() => void> {
  /* ORZO_NO_OFFLOAD: no virtio-net header, orzo computes every checksum */
  const offload = getEnv("ORZO_NO_OFFLOAD") === undefined;
  const { tapFd, name } = await ns.tap(ifname, offload);
  const nsIo = { ...io, tapName: name };
  const idx = nsLinkPrepare(c, conf, nsIo);
  debug(`tap ${name} ready in namespace fd ${c.nsFd}`);
  const tap = tapNew(tapFd, offload ? VNET_HDR_LEN : 0);
  c.tapFd = tapFd;
  c.tap = tapDeviceBackend(tapFd);
  c.tapHdrLen = tap.vnetHdr;
  loop.epoll.add(tapFd, EPOLLIN, EPOLL_TYPE_TAP_PASTA);
  loop.on(EPOLL_TYPE_TAP_PASTA, (_fd, _data, _events, now) => {
    if (!tapHandler(c, tap, now)) {
      info("Tap device gone, exiting");
      loop.stop(0);
    }
  });
  return () => nsAddrsConfigure(c, conf, nsIo, idx);
}

function defaultShell(): string {
  const p = libc.symbols.getenv(new TextEncoder().encode("SHELL\0"));
  if (p === null) return "/bin/sh";
  return new Deno.UnsafePointerView(p).getCString() || "/bin/sh";
}
