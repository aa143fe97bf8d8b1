/**
 * proc.ts - background processes for the benchmark: every one has a deadline,
 * its output is kept (bounded), and it is stopped by its PID.
 *
 * @module
 */

import type { RunResult } from "../tests/helpers/topology.ts";

/** Output kept per stream: the last 256 KiB. */
const KEEP = 256 * 1024;

/** A process started in the background. */
export class Proc {
  /** every process not yet reaped, for the interrupt handler */
  static readonly live: Set<Proc> = new Set();

  /** its PID (the program at the end of any exec chain: ip netns exec, nsenter, setpriv) */
  readonly pid: number;
  /** what was started */
  readonly argv: string[];
  /** standard output so far */
  out = "";
  /** standard error so far */
  err = "";
  /** exit status, once it is known */
  exited: Deno.CommandStatus | null = null;
  /** resolves when the process has exited and its output is read */
  readonly done: Promise<Deno.CommandStatus>;

  /**
   * Starts a process.
   * @param argv program and arguments
   * @param deadlineMs SIGKILL after this many milliseconds
   */
  constructor(argv: string[], deadlineMs: number) {
    this.argv = argv;
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = child.pid;
    Proc.live.add(this);
    const timer = setTimeout(() => this.signal("SIGKILL"), deadlineMs);
    const pumps = [
      pump(child.stdout, (s) => this.out = (this.out + s).slice(-KEEP)),
      pump(child.stderr, (s) => this.err = (this.err + s).slice(-KEEP)),
    ];
    this.done = (async () => {
      const st = await child.status;
      await Promise.allSettled(pumps);
      clearTimeout(timer);
      this.exited = st;
      Proc.live.delete(this);
      return st;
    })();
  }

  /**
   * Sends a signal, ignoring a process already gone.
   * @param sig signal name
   */
  signal(sig: Deno.Signal): void {
    if (this.exited) return;
    try {
      Deno.kill(this.pid, sig);
    } catch { /* gone */ }
  }

  /**
   * Waits for the process to exit.
   * @param ms at most this long
   * @returns its status, or null on timeout
   */
  async wait(ms: number): Promise<Deno.CommandStatus | null> {
    let t: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.done,
      new Promise<null>((res) => t = setTimeout(() => res(null), ms)),
    ]);
    clearTimeout(t);
    return r;
  }

  /**
   * Waits until the output matches, the process exits, or time runs out.
   * @param re pattern looked for in stdout and stderr
   * @param ms at most this long
   */
  async waitFor(re: RegExp, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(this.out) && !re.test(this.err)) {
      if (this.exited) throw new Error(`${this.name()} exited early: ${this.lastWords()}`);
      if (Date.now() > end) throw new Error(`${this.name()}: no ${re} within ${ms} ms`);
      await sleep(20);
    }
  }

  /** Stops the process: SIGTERM, then SIGKILL after a grace period. */
  async stop(graceMs = 1500): Promise<void> {
    if (this.exited) return;
    this.signal("SIGTERM");
    if (await this.wait(graceMs)) return;
    this.signal("SIGKILL");
    await this.wait(5000);
  }

  /** @returns a short name for messages */
  name(): string {
    const skip = new Set(["ip", "netns", "exec", "nsenter", "setpriv"]);
    const prog = this.argv.find((a) => !skip.has(a) && !a.startsWith("-") && !/^orzo-/.test(a));
    return (prog ?? this.argv[0]!).split("/").pop()!;
  }

  /** @returns the last line of stderr (or stdout), with the exit status if known */
  lastWords(): string {
    const st = this.exited ? `status ${this.exited.code}` : "running";
    const line = lastLine(this.err) || lastLine(this.out);
    return line ? `${st}: ${line}` : st;
  }
}

/**
 * Reads a byte stream into a callback as text.
 * @param stream the stream
 * @param sink receives decoded text
 */
async function pump(stream: ReadableStream<Uint8Array>, sink: (s: string) => void) {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
}

/**
 * @param s text
 * @returns its last non-empty line, without syslog noise
 */
export function lastLine(s: string): string {
  const lines = s.split("\n").map((l) => l.trim()).filter((l) =>
    l && !/^Failed to send \d+ bytes to syslog/.test(l)
  );
  return lines.pop() ?? "";
}

/**
 * @param ms milliseconds
 * @returns a promise resolved after them
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs a command to its end, as a Proc (so that an interrupt kills it at once).
 * @param argv program and arguments
 * @param timeoutMs SIGKILL after this long
 * @returns its status and output
 */
export async function run(argv: string[], timeoutMs = 30000): Promise<RunResult> {
  const p = new Proc(argv, timeoutMs);
  const st = await p.done;
  return {
    code: st.signal ? 128 + signalNumber(st.signal) : st.code,
    stdout: p.out,
    stderr: p.err,
  };
}

/**
 * @param sig a signal name
 * @returns its number on Linux (9 when unknown)
 */
function signalNumber(sig: Deno.Signal): number {
  return { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[sig as string] ?? 9;
}

/**
 * Runs a command and throws with its last line of output when it fails.
 * @param argv program and arguments
 * @param timeoutMs deadline
 * @returns its result
 */
export async function must(argv: string[], timeoutMs = 30000): Promise<RunResult> {
  const r = await run(argv, timeoutMs);
  if (r.code !== 0) {
    const prog = argv.find((a) => !["ip", "netns", "exec", "nsenter", "-n", "-t"].includes(a));
    throw new Error(
      `${prog ?? argv[0]} failed (status ${r.code}): ${lastLine(r.stderr) || lastLine(r.stdout)}`,
    );
  }
  return r;
}

/** Kills every live process (on interrupt). */
export function killAll(): void {
  for (const p of Proc.live) p.signal("SIGKILL");
}

/**
 * Finds a process by its exact command line.
 * @param argv the command line
 * @returns its PID, or 0
 */
export function findProcess(argv: string[]): number {
  const want = argv.join("\0") + "\0";
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === want) return Number(e.name);
    } catch { /* gone */ }
  }
  return 0;
}

/** Run time and sleeps of a thread, or their sum over threads. */
export interface ThreadTimes {
  /** time on a CPU, ns (schedstat: exact, unlike the tick-counted stat) */
  runNs: number;
  /** voluntary context switches: each is a sleep, so a wake-up follows */
  wakeups: number;
}

/**
 * Reads run time and voluntary switches of each of a process's threads.
 * @param pid the process
 * @returns by thread ID, or null when the process is gone
 */
export function threadTimes(pid: number): Map<string, ThreadTimes> | null {
  const out = new Map<string, ThreadTimes>();
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const dir = `/proc/${pid}/task/${e.name}`;
        const runNs = Number(Deno.readTextFileSync(`${dir}/schedstat`).split(" ")[0]);
        const status = Deno.readTextFileSync(`${dir}/status`);
        const wakeups = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        out.set(e.name, { runNs, wakeups });
      } catch { /* a thread that ended */ }
    }
  } catch {
    return null;
  }
  return out;
}

/**
 * What a process's threads did between two readings: the threads alive at
 * the second count from the first (or from their start). A thread that ended
 * in between is left out (its part of the interval is lost: sums over the
 * live threads alone would go backwards).
 * @param before the first reading
 * @param after the second
 * @returns the sums
 */
export function threadTimesSince(
  before: Map<string, ThreadTimes>,
  after: Map<string, ThreadTimes>,
): ThreadTimes {
  let runNs = 0;
  let wakeups = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid);
    runNs += a.runNs - (b?.runNs ?? 0);
    wakeups += a.wakeups - (b?.wakeups ?? 0);
  }
  return { runNs, wakeups };
}

/** CPU time and memory of a process. */
export interface Usage {
  /** user + system CPU seconds, all threads */
  cpuS: number;
  /** peak resident set (VmHWM), KiB */
  hwmKiB: number;
  /** current resident set (VmRSS), KiB */
  rssKiB: number;
  /** its anonymous part (RssAnon), KiB: heaps, buffers, tables */
  anonKiB: number;
  /** its file-backed part (RssFile), KiB: mapped program and library pages */
  fileKiB: number;
}

let clkTck = 0;

/**
 * Reads a process's CPU time, current (with its anonymous and file parts) and
 * peak RSS from /proc.
 * @param pid the process
 * @returns its usage, or null when it is gone
 */
export async function usage(pid: number): Promise<Usage | null> {
  if (!clkTck) {
    const r = await run(["getconf", "CLK_TCK"], 5000);
    clkTck = Number(r.stdout.trim()) || 100;
  }
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    /* fields after the command name in parentheses: state is field 3, utime 14, stime 15 */
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return {
      cpuS: ticks / clkTck,
      hwmKiB: kib("VmHWM"),
      rssKiB: kib("VmRSS"),
      anonKiB: kib("RssAnon"),
      fileKiB: kib("RssFile"),
    };
  } catch {
    return null;
  }
}
