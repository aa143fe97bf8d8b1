/**
 * vm.ts - passt mode side by side (`deno task bench:vm`, as root): the same
 * virtual machine (tests/helpers/vm.ts: qemu under TCG, Debian's cloud kernel,
 * a busybox initramfs with Debian's iperf3 and bench/vm_crr.c added) served in
 * turn by orzo, upstream passt (PASST_BIN) and Debian's passt, each in a fresh
 * hermetic topology (tests/helpers/topology.ts).
 *
 * Per translator: TCP throughput VM->remote, remote->VM on a connection the VM
 * opens (iperf3 -R) and remote->VM through a `-t` forward, then TCP connections
 * per second both ways (the second through the forward). Beside each number,
 * the CPU time of the translator and of qemu during that measurement (from
 * /proc/PID/stat). Under TCG the VM is the bottleneck, so the translator's CPU
 * per GiB or per connection is the figure that compares translators.
 *
 * Environment: BENCH_VM_ROUNDS (default 2; the order of the columns alternates),
 * BENCH_VM_SECONDS (iperf3 duration, default 10), BENCH_VM_CRR_SECONDS (connection-rate
 * duration, default 5), BENCH_VM_TOOLS (orzo,passt,passt-debian), PASST_BIN (default
 * /work/upstream/passt if present).
 *
 * @module
 */

import { DENO, MAIN, REPO, Topology } from "../tests/helpers/topology.ts";
import { type CpioEntry, findKernel, Vm } from "../tests/helpers/vm.ts";
import { killAll, lastLine, must, Proc, run, type Usage, usage } from "./proc.ts";
import { ORZO_V8_FLAGS } from "../tools/v8_flags.ts";

/** Ports: remote servers (5200-5202, 5301) and forwards into the VM (5203, 5302). */
const PORT_WARM = 5200;
const PORT_OUT = 5201;
const PORT_REV = 5202;
const PORT_IN = 5203;
const PORT_CRR_OUT = 5301;
const PORT_CRR_IN = 5302;
const REMOTE = "203.0.113.10";
const HOST = "198.51.100.2";
/** The connection-rate loops stop after this many connections (or their time). */
const CRR_COUNT = 5000;
/** The whole run stays within this (the brief: under 10 minutes). */
const RUN_BUDGET_MS = 570_000;

/** set by SIGINT/SIGTERM: the run stops, cleans up and prints what it has */
let interrupted = false;
/** the VM of the column being measured (killed on interrupt) */
let currentVm: Vm | null = null;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** A translator under test. */
interface Translator {
  /** column name */
  name: string;
  /** binary (for its version) */
  bin: string;
  /**
   * @param sock the socket path to listen on
   * @returns the argv, run in the host namespace
   */
  argv(sock: string): string[];
}

const FWD = ["-t", `${PORT_IN},${PORT_CRR_IN}`];

/** The upstream passt: PASST_BIN, else the build in /work/upstream if there is one. */
const UPSTREAM_PASST = Deno.env.get("PASST_BIN") ||
  (exists("/work/upstream/passt") ? "/work/upstream/passt" : "");

/**
 * passt as the user nobody (Debian's passt fails as root; the upstream one runs the same way).
 * @param name column name
 * @param bin the binary
 * @returns the translator
 */
function passt(name: string, bin: string): Translator {
  return {
    name,
    bin,
    argv: (sock) => [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      bin,
      "-f",
      "-1",
      "-s",
      sock,
      ...FWD,
    ],
  };
}

/** Every translator, in column order, by BENCH_VM_TOOLS id. */
const TRANSLATORS: Record<string, Translator> = {
  orzo: {
    name: "orzo",
    bin: MAIN,
    argv: (
      sock,
    ) => [DENO, "run", "--allow-ffi", ORZO_V8_FLAGS, MAIN, "-f", "-1", "-s", sock, ...FWD],
  },
  passt: passt("passt (upstream)", UPSTREAM_PASST),
  "passt-debian": passt("passt (Debian)", "/usr/bin/passt"),
};

/** One measurement: its number and what the processes spent on it. */
interface Sample {
  /** Mbit/s or connections/s */
  value: number;
  /** bytes moved (throughput) or connections made (rate) */
  amount: number;
  /** wall time between the markers, s */
  wallS: number;
  /** translator CPU time, s */
  cpuS: number;
  /** qemu's CPU time, s */
  qemuS: number;
  /** connections that failed (timed out) */
  failed: number;
  /** the last failure's errno text, "-" if none */
  lastFailure?: string;
}

/** What one translator gave. */
interface TranslatorResult {
  /** column name */
  name: string;
  /** the binary's version line */
  version: string;
  /** samples by row id */
  rows: Record<string, Sample | { error: string }>;
  /** why the whole column failed, if it did */
  error: string | null;
  /** seconds from qemu's start to a DHCP lease */
  bootS: number | null;
  /** the lease the VM got */
  lease: string | null;
  /** translator's peak RSS at the end, KiB */
  rssKiB: number | null;
}

/** The rows, in table order. */
const ROWS = [
  { id: "tcp_out", label: "TCP VM→remote, Mbit/s", unit: "Mbit/s" },
  { id: "tcp_rev", label: "TCP remote→VM (VM connects, iperf3 -R), Mbit/s", unit: "Mbit/s" },
  { id: "tcp_in", label: "TCP remote→VM through -t, Mbit/s", unit: "Mbit/s" },
  { id: "crr_out", label: "TCP connections/s VM→remote", unit: "conn/s" },
  { id: "crr_in", label: "TCP connections/s remote→VM through -t", unit: "conn/s" },
] as const;

/**
 * @param path a path
 * @returns whether it exists
 */
function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param name environment variable
 * @param def default
 * @returns its positive numeric value
 */
function envNum(name: string, def: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, not ${v}`);
  return n;
}

/**
 * @param e anything thrown
 * @returns a one-line message
 */
function message(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return lastLine(s).replace(/\s+/g, " ").trim();
}

/**
 * The VM's script: a DHCP lease, a 2 s warm-up transfer, then each row in turn between `@@begin_ROW`
 * (or `@@listen_ROW` when the remote side starts it) and `@@end_ROW STATUS`.
 * @param seconds iperf3 duration
 * @param crrMs connection-rate duration
 * @returns the script
 */
function vmScript(seconds: number, crrMs: number): string {
  const crrServerS = Math.ceil(crrMs / 1000) + 30;
  return `
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
udhcpc -i eth0 -q -n -t 5 -T 2 -O mtu >/dev/null 2>&1
echo "@@net $(ip -4 -o addr show dev eth0 | grep -o 'inet [^ ]*') mtu=$(cat /sys/class/net/eth0/mtu)"
waitport() { i=0; while ! netstat -ltn | grep -q ":$1 " && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; }
iperf3 -c ${REMOTE} -p ${PORT_WARM} -t 2 -i 0 --connect-timeout 5000 >/tmp/o 2>&1
echo "@@warm $? $(tail -n1 /tmp/o)"
echo @@begin_tcp_out
iperf3 -c ${REMOTE} -p ${PORT_OUT} -t ${seconds} -i 0 --connect-timeout 5000 >/tmp/o 2>&1; s=$?
echo "@@end_tcp_out $s $(tail -n1 /tmp/o)"
echo @@begin_tcp_rev
iperf3 -c ${REMOTE} -p ${PORT_REV} -t ${seconds} -i 0 -R --connect-timeout 5000 >/tmp/o 2>&1; s=$?
echo "@@end_tcp_rev $s $(tail -n1 /tmp/o)"
iperf3 -s -1 -p ${PORT_IN} -i 0 >/tmp/o 2>&1 & p=$!
waitport ${PORT_IN}; echo @@listen_tcp_in
wait $p; s=$?; echo "@@end_tcp_in $s $(tail -n1 /tmp/o)"
echo @@begin_crr_out
vm_crr client ${REMOTE} ${PORT_CRR_OUT} ${CRR_COUNT} ${crrMs} >/tmp/o 2>&1; s=$?
echo "@@end_crr_out $s $(tail -n1 /tmp/o)"
vm_crr server 0.0.0.0 ${PORT_CRR_IN} ${crrServerS} >/tmp/o 2>&1 & p=$!
waitport ${PORT_CRR_IN}; echo @@listen_crr_in
wait $p; s=$?; echo "@@end_crr_in $s $(tail -n1 /tmp/o)"
`;
}

/**
 * Compiles bench/vm_crr.c statically (it runs in the VM and in the remote namespace).
 * @param dir where to put the binary
 * @returns its path
 */
async function buildCrr(dir: string): Promise<string> {
  const out = `${dir}/vm_crr`;
  await must(["gcc", "-static", "-O2", "-o", out, `${REPO}/bench/vm_crr.c`], 60_000);
  return out;
}

/**
 * The initramfs additions: iperf3 with its shared libraries (as ldd lists them) and vm_crr.
 * @param crr the vm_crr binary
 * @returns the entries
 */
async function vmFiles(crr: string): Promise<CpioEntry[]> {
  const ldd = await must(["ldd", "/usr/bin/iperf3"], 10_000);
  const libs = [...ldd.stdout.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const add = async (path: string, to: string) => {
    const parts = to.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      /* bin and lib are in the base image already */
      if (!dirs.has(d) && d !== "bin" && d !== "lib") {
        dirs.add(d);
        entries.push({ name: d, mode: S_IFDIR | 0o755 });
      }
    }
    entries.push({ name: to, mode: S_IFREG | 0o755, data: await Deno.readFile(path) });
  };
  for (const lib of libs) await add(lib, lib.slice(1));
  await add("/usr/bin/iperf3", "bin/iperf3");
  await add(crr, "bin/vm_crr");
  return entries;
}

/**
 * @param p a process
 * @returns its CPU usage now (zero when gone)
 */
async function cpu(p: number): Promise<Usage> {
  return (await usage(p)) ?? { cpuS: 0, hwmKiB: 0, rssKiB: 0, anonKiB: 0, fileKiB: 0 };
}

/**
 * @param text iperf3 -J output
 * @param pick which sum
 * @returns Mbit/s and bytes
 */
function iperfSum(text: string, pick: "sum_sent" | "sum_received"): [number, number] {
  let j: { end?: Record<string, { bits_per_second?: number; bytes?: number }>; error?: string };
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`iperf3: ${lastLine(text) || "no output"}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const s = j.end?.[pick];
  if (!s?.bits_per_second) throw new Error(`iperf3: no ${pick}`);
  return [s.bits_per_second / 1e6, s.bytes ?? 0];
}

/**
 * @param text vm_crr client output
 * @returns connections per second, the count, and the failed connections (each of which
 *   cost its 1 s deadline)
 */
function crrRate(text: string): [number, number, number, string] {
  const m = /^crr (\d+) ([\d.]+) (\d+) (.*)$/m.exec(text);
  if (!m) throw new Error(`vm_crr: ${lastLine(text) || "no output"}`);
  if (m[1] === "0") throw new Error(`vm_crr: no connection (${m[4]})`);
  return [Number(m[1]) / Number(m[2]), Number(m[1]), Number(m[3]), m[4]!];
}

/**
 * Runs the VM against one translator.
 * @param tr the translator
 * @param files the initramfs additions
 * @param crr the vm_crr binary
 * @param seconds iperf3 duration
 * @param crrMs connection-rate duration
 * @param deadlineMs the VM's deadline
 * @returns the column
 */
async function runTranslator(
  tr: Translator,
  files: CpioEntry[],
  crr: string,
  seconds: number,
  crrMs: number,
  deadlineMs: number,
): Promise<TranslatorResult> {
  const res: TranslatorResult = {
    name: tr.name,
    version: "",
    rows: {},
    error: null,
    bootS: null,
    lease: null,
    rssKiB: null,
  };
  const kernel = findKernel();
  if (!kernel) {
    res.error = "needs qemu-system-x86, linux-image-cloud-amd64 and busybox-static";
    return res;
  }
  if (!tr.bin || !exists(tr.bin)) {
    res.error = `no binary${tr.bin ? ` at ${tr.bin}` : " (set PASST_BIN)"}`;
    return res;
  }
  if (tr.bin !== MAIN) {
    res.version = (await run([tr.bin, "--version"], 5000)).stdout.split("\n")[0]!.trim();
  } else {
    res.version = (await run(["git", "-C", REPO, "describe", "--always", "--dirty"], 5000))
      .stdout.trim();
  }
  const procs: Proc[] = [];
  let t: Topology | null = null;
  let vm: Vm | null = null;
  const dir = await Deno.makeTempDir({ prefix: "orzo-benchvm-" });
  await Deno.chmod(dir, 0o777);
  const sock = `${dir}/passt.socket`;
  const life = deadlineMs + 10_000;
  try {
    t = await Topology.create();
    const remote = (argv: string[]) => ["ip", "netns", "exec", t!.remote, ...argv];
    const start = (argv: string[]) => {
      const p = new Proc(argv, life);
      procs.push(p);
      return p;
    };
    /* an unmeasured transfer first: TCG translates iperf3's code on its first run */
    start(remote(["iperf3", "-s", "-1", "-p", String(PORT_WARM)]));
    const srvOut = start(remote(["iperf3", "-s", "-1", "-p", String(PORT_OUT), "-J"]));
    const srvRev = start(remote(["iperf3", "-s", "-1", "-p", String(PORT_REV), "-J"]));
    const srvCrr = start(
      remote([crr, "server", REMOTE, String(PORT_CRR_OUT), String(life / 1000)]),
    );
    await srvCrr.waitFor(/listening/, 10_000);
    const translator = start(["ip", "netns", "exec", t.host, ...tr.argv(sock)]);
    for (let i = 0; !exists(sock); i++) {
      if (translator.exited || i > 200) {
        throw new Error(`${tr.name} did not listen: ${translator.lastWords()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = performance.now();
    vm = await Vm.boot(kernel, {
      socket: sock,
      netns: t.host,
      script: vmScript(seconds, crrMs),
      timeoutMs: deadlineMs,
      files,
    });
    currentVm = vm;
    const qemu = vm.pid;
    res.lease = await vm.waitFor("net", 90_000);
    res.bootS = (performance.now() - t0) / 1000;
    if (!/inet 198\.51\.100\.2\//.test(res.lease)) throw new Error(`no lease: ${res.lease}`);

    /** Measures one row between two markers, or around a host-side client. */
    const measure = async (
      id: string,
      body: () => Promise<[number, number, number?, string?]>,
      startKey: string,
    ) => {
      const stepMs = (id.startsWith("crr") ? crrMs : seconds * 1000) + 60_000;
      try {
        await vm!.waitFor(startKey, stepMs);
        const [a0, q0, w0] = [await cpu(translator.pid), await cpu(qemu), performance.now()];
        const [value, amount, failed, lastFailure] = await body();
        const end = await vm!.waitFor(`end_${id}`, stepMs);
        const [a1, q1, w1] = [await cpu(translator.pid), await cpu(qemu), performance.now()];
        if (!end.startsWith("0")) throw new Error(`in the VM: ${end}`);
        res.rows[id] = {
          value,
          amount,
          wallS: (w1 - w0) / 1000,
          cpuS: a1.cpuS - a0.cpuS,
          qemuS: q1.cpuS - q0.cpuS,
          failed: failed ?? 0,
          lastFailure,
        };
      } catch (e) {
        const gone = translator.exited ? ` (${tr.name} exited: ${translator.lastWords()})` : "";
        res.rows[id] = { error: message(e) + gone };
        console.error(`bench:vm: ${tr.name} ${id}: ${message(e)}${gone}`);
      }
      const s = res.rows[id]!;
      if ("value" in s) {
        console.error(
          `bench:vm: ${tr.name} ${id}: ${s.value.toFixed(1)}, translator ${s.cpuS.toFixed(2)} s, ` +
            `qemu ${s.qemuS.toFixed(2)} s of ${s.wallS.toFixed(1)} s` +
            (s.failed ? `, ${s.failed} connections failed (${s.lastFailure})` : ""),
        );
      }
    };
    const ended = async (p: Proc, ms: number) => {
      if (!(await p.wait(ms))) throw new Error(`${p.name()} did not finish`);
      return p.out;
    };
    await measure("tcp_out", async () => {
      await vm!.waitFor("end_tcp_out", seconds * 1000 + 60_000);
      return iperfSum(await ended(srvOut, 10_000), "sum_received");
    }, "begin_tcp_out");
    await measure("tcp_rev", async () => {
      await vm!.waitFor("end_tcp_rev", seconds * 1000 + 60_000);
      return iperfSum(await ended(srvRev, 10_000), "sum_sent");
    }, "begin_tcp_rev");
    await measure("tcp_in", async () => {
      const r = await run(
        remote([
          "iperf3",
          "-c",
          HOST,
          "-p",
          String(PORT_IN),
          "-t",
          String(seconds),
          "-J",
          "--connect-timeout",
          "5000",
        ]),
        seconds * 1000 + 30_000,
      );
      return iperfSum(r.stdout, "sum_sent");
    }, "listen_tcp_in");
    await measure("crr_out", async () => {
      const end = await vm!.waitFor("end_crr_out", crrMs + 60_000);
      return crrRate(end.replace(/^\d+ /, ""));
    }, "begin_crr_out");
    await measure("crr_in", async () => {
      const r = await run(
        remote([
          crr,
          "client",
          HOST,
          String(PORT_CRR_IN),
          String(CRR_COUNT),
          String(crrMs),
          "stop",
        ]),
        crrMs + 30_000,
      );
      return crrRate(r.stdout);
    }, "listen_crr_in");
    res.rssKiB = (await cpu(translator.pid)).hwmKiB || null;
    await vm.waitFor("done", 30_000).catch(() => {});
  } catch (e) {
    res.error = message(e);
    console.error(`bench:vm: ${tr.name}: ${res.error}`);
  } finally {
    await vm?.stop();
    currentVm = null;
    for (const p of procs.reverse()) await p.stop();
    if (t) await t.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return res;
}

/**
 * Renders a markdown table with aligned columns.
 * @param head header cells
 * @param rows body rows
 * @returns the table
 */
function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(" | ")} |`;
  return [line(head), `|${w.map((n) => "-".repeat(n + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}

/**
 * @param n a number
 * @returns it with three significant digits
 */
function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** @returns the load averages (as uptime prints them) */
function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

/** Entry point. */
async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("bench:vm: needs root (network namespaces); try sudo deno task bench:vm");
    return 1;
  }
  const seconds = envNum("BENCH_VM_SECONDS", 10);
  const crrMs = envNum("BENCH_VM_CRR_SECONDS", 5) * 1000;
  const rounds = Math.floor(envNum("BENCH_VM_ROUNDS", 2));
  const ids = (Deno.env.get("BENCH_VM_TOOLS") || Object.keys(TRANSLATORS).join(","))
    .split(/[,\s]+/).filter(Boolean);
  const bad = ids.filter((i) => !(i in TRANSLATORS));
  if (bad.length) {
    console.error(`bench:vm: unknown BENCH_VM_TOOLS ${bad.join(",")}`);
    return 1;
  }
  const tools = ids.map((i) => TRANSLATORS[i]!);
  const kernel = findKernel();
  if (!kernel) {
    console.error("bench:vm: needs qemu-system-x86, linux-image-cloud-amd64 and busybox-static");
    return 1;
  }
  const onSignal = () => {
    console.error("bench:vm: interrupted, cleaning up");
    interrupted = true;
    killAll();
    currentVm?.stop();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const started = new Date();
  const load0 = loadavg();
  const t0 = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "orzo-benchvm-" });
  const runs: TranslatorResult[] = [];
  try {
    const crr = await buildCrr(tmp);
    const files = await vmFiles(crr);
    /* rounds alternate the order, so that a change in the machine's load hits every column */
    for (let round = 0; round < rounds && !interrupted; round++) {
      for (const tr of round % 2 ? [...tools].reverse() : tools) {
        if (interrupted) break;
        const left = RUN_BUDGET_MS - (performance.now() - t0);
        const deadline = Math.min(120_000 + 3 * seconds * 1000 + 2 * crrMs, left);
        if (deadline < 60_000) {
          console.error(`bench:vm: ${tr.name}, round ${round + 1}: skipped, no time left`);
          continue;
        }
        console.error(`bench:vm: ${tr.name}, round ${round + 1} of ${rounds}`);
        runs.push(await runTranslator(tr, files, crr, seconds, crrMs, deadline));
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const durationS = (performance.now() - t0) / 1000;
  const load1 = loadavg();

  const names = tools.map((t) => t.name);
  const samples = (name: string, id: string): Sample[] =>
    runs.filter((r) => r.name === name).map((r) => r.rows[id]).filter((s): s is Sample =>
      s !== undefined && "value" in s
    );
  const median = (xs: number[]) => {
    const v = [...xs].sort((x, y) => x - y);
    const m = v.length >> 1;
    return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
  const na = (name: string, id: string) => {
    const mine = runs.filter((r) => r.name === name);
    let e = "not run";
    for (const r of mine) {
      const s = r.rows[id];
      e = s && "error" in s ? s.error : r.error ?? e;
    }
    return `n/a (${e.length > 60 ? e.slice(0, 57) + "..." : e})`.replace(/\|/g, "\\|");
  };
  /* translator CPU per GiB moved or per connection: its cost, whatever the VM's speed */
  const perUnit = (row: typeof ROWS[number], ss: Sample[]) => {
    const cpuS = ss.reduce((a, s) => a + s.cpuS, 0);
    const amount = ss.reduce((a, s) => a + s.amount, 0);
    return row.unit === "Mbit/s" ? cpuS / (amount / 2 ** 30) : (cpuS / amount) * 1e6;
  };
  const share = (ss: Sample[], f: (s: Sample) => number) =>
    `${(100 * ss.reduce((a, s) => a + f(s), 0) / ss.reduce((a, s) => a + s.wallS, 0)).toFixed(0)}%`;
  const ratio = names.includes("orzo") && names.includes("passt (upstream)");
  const head = ["", ...names, ...(ratio ? ["orzo/upstream"] : [])];
  const ratioOf = (f: (ss: Sample[]) => number, id: string) => {
    const a = samples("orzo", id);
    const b = samples("passt (upstream)", id);
    return a.length && b.length && f(b) ? `${(f(a) / f(b)).toFixed(2)}x` : "–";
  };
  const med = (ss: Sample[]) => median(ss.map((s) => s.value));

  const valueRows = ROWS.map((row) => [
    row.label,
    ...names.map((name) => {
      const ss = samples(name, row.id);
      if (!ss.length) return na(name, row.id);
      const vs = ss.map((s) => s.value);
      const failed = ss.reduce((a, s) => a + s.failed, 0);
      return (ss.length > 1
        ? `${fmt(med(ss))} (${fmt(Math.min(...vs))}–${fmt(Math.max(...vs))})`
        : fmt(vs[0]!)) +
        (failed ? ` [${failed} timed out]` : "") +
        (ss.length < rounds ? ` [${ss.length} of ${rounds} rounds]` : "");
    }),
    ...(ratio ? [ratioOf(med, row.id)] : []),
  ]);
  const costRows = ROWS.map((row) => [
    row.unit === "Mbit/s"
      ? `${row.label.replace(/, Mbit\/s$/, "")}: CPU s/GiB`
      : `${row.label}: CPU µs/conn`,
    ...names.map((name) => {
      const ss = samples(name, row.id);
      return ss.length ? `${fmt(perUnit(row, ss))} (${share(ss, (s) => s.cpuS)})` : "–";
    }),
    ...(ratio ? [ratioOf((ss) => perUnit(row, ss), row.id)] : []),
  ]);
  const qemuRows = ROWS.map((row) => [
    row.label.replace(/, Mbit\/s$/, ""),
    ...names.map((name) => {
      const ss = samples(name, row.id);
      return ss.length ? share(ss, (s) => s.qemuS) : "–";
    }),
  ]);
  const versions = names.map((name) =>
    `${name}: ${runs.find((r) => r.name === name && r.version)?.version ?? "?"}`
  );
  const when = started.toISOString().replace(/\.\d+Z$/, "Z");
  const text = [
    `## orzo passt mode vs passt, one VM, ${when}`,
    "",
    `qemu ${(await run(["qemu-system-x86_64", "--version"], 5000)).stdout.split("\n")[0]} ` +
    `(TCG, 1 vCPU, 256 MiB), kernel ${kernel.image.split("/").pop()}; ${versions.join("; ")}. ` +
    `${rounds} round(s), iperf3 ${seconds} s, connection loops ${crrMs / 1000} s (at most ` +
    `${CRR_COUNT}). ${navigator.hardwareConcurrency} CPUs; load average ${load0} before, ` +
    `${load1} after. Run took ${durationS.toFixed(0)} s.`,
    "",
    "Median over the rounds (lowest–highest in parentheses):",
    "",
    table(head, valueRows),
    "",
    "Translator CPU time per GiB moved or per connection, over all rounds (lower is better; in " +
    "parentheses its share of one core between the measurement's markers):",
    "",
    table(head, costRows),
    "",
    "qemu's CPU time during the measurements, as a share of one core:",
    "",
    table(["", ...names], qemuRows),
    "",
  ].join("\n");
  console.log(text);

  const dir = `${REPO}/bench/results`;
  Deno.mkdirSync(dir, { recursive: true });
  const file = `${dir}/vm-${when.replace(/:/g, "-")}.json`;
  Deno.writeTextFileSync(
    file,
    JSON.stringify(
      {
        started: started.toISOString(),
        durationS,
        config: { rounds, seconds, crrSeconds: crrMs / 1000, crrCount: CRR_COUNT },
        loadavg: { before: load0, after: load1 },
        runs,
        text,
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`bench:vm: results in ${file.slice(REPO.length + 1)} (${durationS.toFixed(0)} s)`);
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench:vm: ${message(e)}`);
  }
  Deno.exit(code);
}
