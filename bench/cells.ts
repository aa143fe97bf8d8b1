/**
 * cells.ts - what the benchmark measures. A cell is one measurement for one
 * tool in a fresh topology; it yields named numbers, shown as one or more table
 * rows.
 *
 * @module
 */

import { DENO, REPO, type Topology } from "../tests/helpers/topology.ts";
import { lastLine, must, Proc, run, sleep, threadTimes, threadTimesSince } from "./proc.ts";
import { type Forwards, type Guest, REMOTE_ADDR } from "./tools.ts";

/** Settings from the environment. */
export interface Config {
  /** iperf3 TCP duration, s (BENCH_SECONDS) */
  seconds: number;
  /** iperf3 UDP duration, s (BENCH_UDP_SECONDS) */
  udpSeconds: number;
  /** iperf3 UDP target bandwidth, `-b` (BENCH_UDP_BW; 0 is unlimited) */
  udpBw: string;
  /**
   * unmeasured run of a cell's traffic before the measured one, s
   * (BENCH_WARMUP_SECONDS; 0: none); count-bound cells run their count
   */
  warmupS: number;
}

/** One table row drawn from a cell's numbers. */
export interface RowDef {
  /** row label */
  label: string;
  /** the number compared across tools (orzo/pasta ratio) */
  key: string;
  /** false: the row has no orzo/pasta ratio (several numbers in one cell) */
  ratio?: boolean;
  /** formats the cell's numbers for this row */
  fmt(m: Record<string, number>): string;
}

/** A measurement. */
export interface CellDef {
  /** name used by BENCH_ROWS */
  id: string;
  /** label of the cell in the resources table */
  label: string;
  /** ports the tool must forward to the guest */
  fwd: Forwards;
  /** table rows */
  rows: RowDef[];
  /** false: measured from the tool's start, without a warm-up run (Config.warmupS) */
  warm?: boolean;
  /** runs it */
  measure(t: Topology, g: Guest, cfg: Config): Promise<Record<string, number>>;
}

const PORT = 5201;
const RR_PORT = 7000;
const RR = `${REPO}/bench/rr.ts`;
const NO_FWD: Forwards = { tcp: [], udp: [] };

/**
 * @param t topology
 * @param argv a command
 * @returns the argv that runs it in the remote namespace
 */
function inRemote(t: Topology, argv: string[]): string[] {
  return ["ip", "netns", "exec", t.remote, ...argv];
}

/**
 * Waits until something listens on a TCP port.
 * @param exec wraps a command to run it in the right namespace
 * @param port the port
 * @param server the server process, checked for an early exit
 */
async function waitListen(
  exec: (a: string[]) => string[],
  port: number,
  server: Proc,
): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (server.exited) throw new Error(`${server.name()} exited: ${server.lastWords()}`);
    const r = await run(exec(["ss", "-Hltn", `sport = :${port}`]), 5000);
    if (r.stdout.trim()) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port}`);
}

/**
 * Parses iperf3's JSON output.
 * @param out stdout (a warning may precede the JSON)
 * @param err stderr
 * @returns the object
 */
// deno-lint-ignore no-explicit-any
function iperfJson(out: string, err: string): any {
  const i = out.indexOf("{");
  if (i < 0) throw new Error(`iperf3: ${lastLine(err) || lastLine(out) || "no output"}`);
  // deno-lint-ignore no-explicit-any
  let j: any;
  try {
    j = JSON.parse(out.slice(i));
  } catch {
    throw new Error(`iperf3: unreadable output: ${lastLine(err) || lastLine(out)}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j;
}

/** Counters of one namespace where UDP datagrams get lost. */
interface UdpDrops {
  /** packets its non-loopback interfaces dropped on transmit (a full tap ring, a full qdisc) */
  txDropped: number;
  /** datagrams its UDP sockets dropped for a full receive buffer (UdpRcvbufErrors) */
  rcvbufErrors: number;
}

/**
 * Reads a namespace's UDP drop counters: /proc/net/snmp and rtnetlink follow the namespace of
 * the reader (sysfs would not, under nsenter).
 * @param exec wraps a command to run it in the namespace
 * @returns the counters, or null when they cannot be read
 */
async function udpDrops(exec: (a: string[]) => string[]): Promise<UdpDrops | null> {
  const [snmp, links] = await Promise.all([
    run(exec(["cat", "/proc/net/snmp"]), 5000),
    run(exec(["ip", "-s", "-j", "link", "show"]), 5000),
  ]);
  if (snmp.code !== 0 || links.code !== 0) return null;
  const udp = snmp.stdout.split("\n").filter((l) => l.startsWith("Udp: "));
  if (udp.length < 2) return null;
  const names = udp[0]!.split(/\s+/);
  const values = udp[1]!.split(/\s+/).map(Number);
  const i = names.indexOf("RcvbufErrors");
  let txDropped = 0;
  try {
    // deno-lint-ignore no-explicit-any
    for (const l of JSON.parse(links.stdout) as any[]) {
      if (l.ifname !== "lo") txDropped += Number(l.stats64?.tx?.dropped ?? 0);
    }
  } catch {
    return null;
  }
  return { txDropped, rcvbufErrors: i > 0 ? values[i]! : 0 };
}

/** Options of one iperf3 run. */
interface IperfOpts {
  /** data flows remote -> guest, over a connection the remote opens to a forwarded port */
  reverse: boolean;
  /** data flows guest -> host namespace (the server there, reached at g.hostAddr) */
  toHost?: boolean;
  /** parallel streams */
  streams: number;
  /** UDP datagram size; TCP when absent */
  udpLen?: number;
  /** TCP: the senders' total rate in Mbit/s (iperf3 -b, split over the streams); else unlimited */
  rateMbps?: number;
}

/**
 * Runs iperf3: the server on the receiving side, the client (sender) on the other.
 * @param t topology
 * @param g guest
 * @param cfg settings
 * @param o what to run
 * @returns gbps received (and for UDP sentGbps, lossPct; for TCP retransmits)
 */
async function iperf(
  t: Topology,
  g: Guest,
  cfg: Config,
  o: IperfOpts,
): Promise<Record<string, number>> {
  const secs = o.udpLen ? cfg.udpSeconds : cfg.seconds;
  const inHost = (a: string[]) => ["ip", "netns", "exec", t.host, ...a];
  const sExec = o.reverse ? g.exec : o.toHost ? inHost : (a: string[]) => inRemote(t, a);
  const cExec = o.reverse ? (a: string[]) => inRemote(t, a) : g.exec;
  if (o.toHost && g.hostAddr === null) throw new Error("the guest cannot reach the host");
  const target = o.reverse ? g.inboundAddr : o.toHost ? g.hostAddr! : REMOTE_ADDR;
  /* In the remote namespace, the server binds the address the guest targets: unbound, its UDP
   * replies would leave from the veth's address and miss the client's connected socket. */
  const bind = o.reverse || o.toHost ? [] : ["-B", REMOTE_ADDR];
  const server = new Proc(
    sExec(["iperf3", "-s", "-1", "-p", String(PORT), ...bind]),
    (secs + 60) * 1000,
  );
  try {
    await waitListen(sExec, PORT, server);
    const args = ["iperf3", "-c", target, "-p", String(PORT), "-t", String(secs), "-J"];
    args.push("--connect-timeout", "5000");
    /* From the remote's own address, not from the gateway address 198.51.100.1: pasta maps
     * the gateway address to the host's loopback, so UDP replies to it would go astray. */
    if (o.reverse) args.push("-B", REMOTE_ADDR);
    if (o.streams > 1) args.push("-P", String(o.streams));
    if (o.udpLen) args.push("-u", "-b", cfg.udpBw, "-l", String(o.udpLen));
    else if (o.rateMbps) args.push("-b", `${Math.round(o.rateMbps / o.streams)}M`);
    const limit = secs + 10;
    const inHostNs = (a: string[]) => ["ip", "netns", "exec", t.host, ...a];
    const dropsAt = () =>
      Promise.all([udpDrops(g.exec), udpDrops(inHostNs), udpDrops((a) => inRemote(t, a))]);
    const drops0 = o.udpLen ? await dropsAt() : null;
    const t0 = performance.now();
    const r = await run(cExec(args), limit * 1000);
    const drops1 = o.udpLen ? await dropsAt() : null;
    if (r.code !== 0 && !r.stdout.includes("{")) {
      const killed = performance.now() - t0 >= limit * 1000 - 100;
      throw new Error(
        killed
          ? `iperf3 client: no result after ${limit} s, killed` +
            (o.udpLen ? " (the UDP stream never started or stalled)" : "")
          : `iperf3 client: ${lastLine(r.stderr) || `status ${r.code}`}`,
      );
    }
    const j = iperfJson(r.stdout, r.stderr);
    const rx = j.end?.sum_received;
    const tx = j.end?.sum_sent;
    if (!rx) throw new Error("iperf3: no receiver summary");
    const m: Record<string, number> = { gbps: rx.bits_per_second / 1e9 };
    if (o.udpLen) {
      m.sentGbps = (tx?.bits_per_second ?? 0) / 1e9;
      m.lossPct = rx.lost_percent ?? 0;
      /* where the datagrams were lost, as shares of those sent: dropped by the sender's
       * interface (guest→remote: the tap's ring, which the translator drains), by the host
       * namespace's sockets (remote→guest: the translator's), by the receiver's socket */
      const sent = rx.packets ?? 0;
      const [g0, h0, r0] = drops0!;
      const [g1, h1, r1] = drops1!;
      if (sent > 0 && g0 && h0 && r0 && g1 && h1 && r1) {
        const pct = (n: number) => 100 * n / sent;
        m.txDropPct = pct(o.reverse ? r1.txDropped - r0.txDropped : g1.txDropped - g0.txDropped);
        m.hostRcvbufPct = pct(h1.rcvbufErrors - h0.rcvbufErrors);
        m.rcvbufPct = pct(
          o.reverse ? g1.rcvbufErrors - g0.rcvbufErrors : r1.rcvbufErrors - r0.rcvbufErrors,
        );
      }
    } else {
      m.retransmits = tx?.retransmits ?? 0;
    }
    return m;
  } finally {
    await server.stop();
  }
}

/**
 * Starts the echo server.
 * @param exec wraps a command to run it in the server's namespace
 * @returns the server process, listening
 */
async function rrServer(exec: (a: string[]) => string[]): Promise<Proc> {
  const p = new Proc(
    exec([DENO, "run", "--allow-net", RR, "server", String(RR_PORT), "120"]),
    130_000,
  );
  try {
    await p.waitFor(/ready/, 20000);
  } catch (e) {
    await p.stop();
    throw e;
  }
  return p;
}

/**
 * Runs rr.ts: the echo server on one side, the client on the other.
 * @param t topology
 * @param g guest
 * @param mode rr or crr
 * @param inbound the client runs in the remote namespace and reaches the server in the guest
 *   through the forwarded port (-t RR_PORT); else the client runs in the guest
 * @param count bound on iterations
 * @param maxMs bound on time
 * @returns its numbers
 */
async function rrClient(
  t: Topology,
  g: Guest,
  mode: string,
  inbound: boolean,
  count: number,
  maxMs: number,
): Promise<Record<string, number>> {
  const sExec = inbound ? g.exec : (a: string[]) => inRemote(t, a);
  const cExec = inbound ? (a: string[]) => inRemote(t, a) : g.exec;
  const server = await rrServer(sExec);
  try {
    const r = await run(
      cExec([
        DENO,
        "run",
        "--allow-net",
        RR,
        mode,
        inbound ? g.inboundAddr : REMOTE_ADDR,
        `${RR_PORT}`,
        `${count}`,
        `${maxMs}`,
      ]),
      maxMs + 30000,
    );
    const line = lastLine(r.stdout);
    if (!line.startsWith("{")) {
      throw new Error(`rr.ts ${mode}: ${lastLine(r.stderr) || `status ${r.code}`}`);
    }
    const j = JSON.parse(line);
    if (j.error) throw new Error(j.error);
    return j;
  } finally {
    await server.stop();
  }
}

/**
 * @param key the number's name
 * @param digits decimals
 * @returns a formatter of m[key] ("–" when the cell has no such number)
 */
function num(key: string, digits: number): (m: Record<string, number>) => string {
  return (m) => m[key] === undefined ? "–" : m[key]!.toFixed(digits);
}

/**
 * @param what the throughput cell's label
 * @returns the row of the translator's CPU per Gbit/s (run.ts adds cpuPerGbps to the numbers)
 */
function cpuRow(what: string): RowDef {
  return {
    label: `${what}: translator CPU per Gbit/s (% of a core)`,
    key: "cpuPerGbps",
    fmt: num("cpuPerGbps", 1),
  };
}

/**
 * @param inbound remote -> guest through the forwarded port
 * @returns the request/response latency cell
 */
function rrCell(inbound: boolean): CellDef {
  const what = `TCP RR 1 byte ${inbound ? "remote→guest" : "guest→remote"}`;
  return {
    id: inbound ? "rrr" : "rr",
    label: what,
    fwd: inbound ? { tcp: [RR_PORT], udp: [] } : NO_FWD,
    rows: [
      { label: `${what}, median (µs)`, key: "medianUs", fmt: num("medianUs", 1) },
      { label: `${what}, p99 (µs)`, key: "p99Us", fmt: num("p99Us", 1) },
    ],
    measure: (t, g) => rrClient(t, g, "rr", inbound, 20000, 3000),
  };
}

/**
 * @param inbound remote -> guest through the forwarded port
 * @returns the connection rate cell
 */
function crrCell(inbound: boolean): CellDef {
  const what = `TCP connect+1 byte+close ${inbound ? "remote→guest" : "guest→remote"}`;
  return {
    id: inbound ? "crrr" : "crr",
    label: what,
    fwd: inbound ? { tcp: [RR_PORT], udp: [] } : NO_FWD,
    rows: [
      { label: `${what} (conn/s)`, key: "perSecond", fmt: num("perSecond", 0) },
      { label: `${what}, p99 per connection (µs)`, key: "p99Us", fmt: num("p99Us", 0) },
    ],
    measure: (t, g) => rrClient(t, g, "crr", inbound, 5000, 3000),
  };
}

/** @returns "G Gbit/s (loss L%)" */
function udpFmt(m: Record<string, number>): string {
  const loss = m.lossPct!;
  return `${m.gbps!.toFixed(2)} (loss ${loss < 10 ? loss.toFixed(1) : loss.toFixed(0)}%)`;
}

/**
 * @param streams parallel streams
 * @returns the TCP throughput cell guest -> a server in the host namespace (through the
 *   gateway address, which the pasta-like tools map to the host's loopback)
 */
function tcpHostCell(streams: number): CellDef {
  const what = `TCP ${streams} stream${streams > 1 ? "s" : ""} guest→host`;
  return {
    id: `tcp${streams}h`,
    label: what,
    fwd: NO_FWD,
    rows: [{
      label: `${what} (Gbit/s, sender's retransmits)`,
      key: "gbps",
      fmt: (m) => `${m.gbps!.toFixed(2)} (${m.retransmits} retr)`,
    }, cpuRow(what)],
    measure: (t, g, cfg) => iperf(t, g, cfg, { reverse: false, toHost: true, streams }),
  };
}

/** The fixed rate of the equal-load CPU cells (Mbit/s): one every translator reaches. */
const FIXED_RATE_MBPS = 1000;

/**
 * The translators' CPU at the same load: 4 TCP streams at FIXED_RATE_MBPS in
 * total. The unlimited rows compare CPU per Gbit/s at whatever rate each
 * tool reaches, 10-100 times apart where upstream pasta's outbound TCP stalls.
 * @param reverse remote -> guest through the forwarded port; else guest -> host
 * @returns the cell
 */
function tcpFixedRateCell(reverse: boolean): CellDef {
  const what = `TCP 4 streams ${reverse ? "remote→guest" : "guest→host"} at ${
    FIXED_RATE_MBPS / 1000
  } Gbit/s`;
  return {
    id: reverse ? "tcp4r1g" : "tcp4h1g",
    label: what,
    fwd: reverse ? { tcp: [PORT], udp: [] } : NO_FWD,
    rows: [{
      label: `${what} (Gbit/s carried)`,
      key: "gbps",
      fmt: num("gbps", 2),
    }, cpuRow(what)],
    measure: (t, g, cfg) =>
      iperf(t, g, cfg, {
        reverse,
        toHost: !reverse,
        streams: 4,
        rateMbps: FIXED_RATE_MBPS,
      }),
  };
}

/**
 * @param streams parallel streams
 * @param reverse remote -> guest
 * @returns the TCP throughput cell
 */
function tcpCell(streams: number, reverse: boolean): CellDef {
  const dir = reverse ? "remote→guest" : "guest→remote";
  const what = `TCP ${streams} stream${streams > 1 ? "s" : ""} ${dir}`;
  return {
    id: `tcp${streams}${reverse ? "r" : ""}`,
    label: what,
    fwd: reverse ? { tcp: [PORT], udp: [] } : NO_FWD,
    rows: [{
      label: `${what} (Gbit/s, sender's retransmits)`,
      key: "gbps",
      fmt: (m) => `${m.gbps!.toFixed(2)} (${m.retransmits} retr)`,
    }, cpuRow(what)],
    measure: (t, g, cfg) => iperf(t, g, cfg, { reverse, streams }),
  };
}

/**
 * @param len datagram size
 * @param reverse remote -> guest
 * @returns the UDP throughput cell
 */
function udpCell(len: number, reverse: boolean): CellDef {
  const dir = reverse ? "remote→guest" : "guest→remote";
  const what = `UDP ${len} B ${dir}`;
  return {
    id: `udp${len}${reverse ? "r" : ""}`,
    label: what,
    fwd: reverse ? { tcp: [PORT], udp: [PORT] } : NO_FWD,
    rows: [
      { label: `${what} (Gbit/s received, loss)`, key: "gbps", fmt: udpFmt },
      { label: `${what}, loss (%)`, key: "lossPct", fmt: num("lossPct", 1) },
      {
        label: `${what}, lost at: sender's interface / host sockets / receiver's socket (%)`,
        key: "txDropPct",
        ratio: false,
        fmt: (m) =>
          m.txDropPct === undefined
            ? "–"
            : `${m.txDropPct.toFixed(0)} / ${m.hostRcvbufPct!.toFixed(0)} / ${
              m.rcvbufPct!.toFixed(0)
            }`,
      },
    ],
    measure: (t, g, cfg) => iperf(t, g, cfg, { reverse, streams: 1, udpLen: len }),
  };
}

/** How long the idle cell leaves the translator alone before reading its memory, ms. */
const IDLE_MS = 3000;

/** How long the idle cell counts CPU time and wake-ups after reading the memory, ms. */
const IDLE_CPU_MS = 2000;

/**
 * The translator when idle: IDLE_MS after the guest was configured, nothing
 * sent, VmRSS and its anonymous and file-backed parts; then CPU time and
 * wake-ups a second (all threads) over IDLE_CPU_MS, once start-up's one-time
 * work (orzo's trim of start-up's file pages) is done.
 */
const idleCell: CellDef = {
  id: "idle",
  label: "idle, 3 s after start",
  fwd: NO_FWD,
  warm: false,
  rows: [
    { label: "RSS idle, 3 s after start (MiB)", key: "rssMiB", fmt: num("rssMiB", 1) },
    {
      label: "RSS idle, 3 s after start: RssAnon + RssFile (MiB)",
      key: "anonMiB",
      ratio: false,
      fmt: (m) =>
        m.anonMiB === undefined ? "–" : `${m.anonMiB.toFixed(1)} + ${m.fileMiB!.toFixed(1)}`,
    },
    {
      label: "CPU idle, 3-5 s after start (ms a second)",
      key: "cpuMsPerS",
      fmt: num("cpuMsPerS", 2),
    },
    {
      label: "wake-ups idle, 3-5 s after start (a second)",
      key: "wakeupsPerS",
      fmt: num("wakeupsPerS", 1),
    },
  ],
  async measure(_t, g) {
    if (!g.pid) throw new Error("no translator process");
    await sleep(IDLE_MS);
    const status = Deno.readTextFileSync(`/proc/${g.pid}/status`);
    const t0 = threadTimes(g.pid);
    const w0 = performance.now();
    await sleep(IDLE_CPU_MS);
    const t1 = threadTimes(g.pid);
    const s = (performance.now() - w0) / 1000;
    const d = t0 && t1 ? threadTimesSince(t0, t1) : null;
    const mib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) / 1024;
    return {
      rssMiB: mib("VmRSS"),
      anonMiB: mib("RssAnon"),
      fileMiB: mib("RssFile"),
      cpuMsPerS: d ? d.runNs / 1e6 / s : NaN,
      wakeupsPerS: d ? d.wakeups / s : NaN,
    };
  },
};

/** Every cell, in table order. */
export const CELLS: CellDef[] = [
  idleCell,
  tcpHostCell(1),
  tcpHostCell(4),
  tcpCell(1, false),
  tcpCell(4, false),
  tcpCell(1, true),
  tcpCell(4, true),
  tcpFixedRateCell(false),
  tcpFixedRateCell(true),
  rrCell(false),
  rrCell(true),
  crrCell(false),
  crrCell(true),
  udpCell(1400, false),
  udpCell(8000, false),
  udpCell(1400, true),
  udpCell(8000, true),
  {
    id: "ping",
    label: "ping guest→remote",
    fwd: NO_FWD,
    rows: [
      { label: "ping guest→remote, median RTT (µs)", key: "medianUs", fmt: num("medianUs", 0) },
      { label: "ping guest→remote, average RTT (µs)", key: "avgUs", fmt: num("avgUs", 0) },
    ],
    async measure(_t, g) {
      const r = await run(
        g.exec(["ping", "-n", "-c", "20", "-i", "0.05", "-W", "1", REMOTE_ADDR]),
        30000,
      );
      const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((x) => Number(x[1]) * 1000)
        .sort((a, b) => a - b);
      if (!times.length) {
        const loss = r.stdout.match(/(\d+)% packet loss/);
        throw new Error(
          loss ? `no replies (${loss[1]}% loss)` : `ping: ${lastLine(r.stderr) || r.code}`,
        );
      }
      return {
        medianUs: times[Math.floor(times.length / 2)]!,
        avgUs: times.reduce((a, b) => a + b, 0) / times.length,
        replies: times.length,
        lossPct: (20 - times.length) * 5,
      };
    },
  },
];

/**
 * Opens what the scenario needs in the host namespace: ping sockets for every group (the
 * translators answer the guest's echo requests through them).
 * @param t topology
 */
export async function prepareHost(t: Topology): Promise<void> {
  await must([
    "ip",
    "netns",
    "exec",
    t.host,
    "sysctl",
    "-qw",
    "net.ipv4.ping_group_range=0 2147483647",
  ]);
}
