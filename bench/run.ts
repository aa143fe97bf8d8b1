/**
 * run.ts - side-by-side benchmark of orzo, upstream pasta (PASTA_BIN), Debian's
 * pasta, slirp4netns and a plain veth pair, in the hermetic topology of
 * DESIGN.md (`deno task bench`, as root).
 *
 * Every cell (one measurement x one tool) builds its own namespaces, starts the
 * tool fresh, measures, and tears everything down; a failing cell prints its
 * error and the run goes on. Prints markdown tables to stdout, progress to
 * stderr, and writes the full results as JSON under bench/results/.
 *
 * Each cell but the idle one first runs its traffic unmeasured for BENCH_WARMUP_SECONDS
 * (count-bound cells: their count), for every tool alike: the rows compare the tools in
 * their steady state, after orzo's JIT compiler has tiered its hot code up. The idle RSS
 * is read before that run, the CPU time counted after it.
 *
 * Environment: BENCH_SECONDS (iperf3 TCP duration, default 10), BENCH_UDP_SECONDS (default
 * half of it), BENCH_UDP_BW (iperf3 -b for UDP, default 0 = unlimited), BENCH_WARMUP_SECONDS
 * (default 3; 0 measures from start), BENCH_ROWS (cell ids,
 * comma-separated), BENCH_TOOLS (orzo,orzo-root,pasta,pasta-deb,slirp4netns,veth; all but
 * orzo-root by default), PASTA_BIN, BENCH_ORZO_FLAGS (extra `deno run` options for orzo).
 *
 * @module
 */

import { REPO, Topology } from "../tests/helpers/topology.ts";
import { type CellDef, CELLS, type Config, prepareHost } from "./cells.ts";
import { killAll, lastLine, run, type Usage, usage } from "./proc.ts";
import { DEBIAN_PASTA_BIN, DEFAULT_TOOLS, PASTA_BIN, TOOLS } from "./tools.ts";

/** The outcome of one cell. */
interface Result {
  /** cell id */
  cell: string;
  /** tool name */
  tool: string;
  /** the numbers, when it worked */
  metrics: Record<string, number> | null;
  /** why not */
  error: string | null;
  /** translator CPU seconds during the measurement */
  cpuS: number | null;
  /** translator peak RSS (VmHWM), KiB, at the end of the measurement */
  rssKiB: number | null;
  /** translator RSS (VmRSS), KiB, idle: started, guest configured, before the warm-up */
  idleRssKiB: number | null;
  /** the anonymous (RssAnon) and file-backed (RssFile) parts of idleRssKiB */
  idleAnonKiB: number | null;
  /** see idleAnonKiB */
  idleFileKiB: number | null;
  /** translator RSS (VmRSS), KiB, at the end of the measurement (after the load) */
  loadRssKiB: number | null;
  /** the anonymous (RssAnon) and file-backed (RssFile) parts of loadRssKiB */
  loadAnonKiB: number | null;
  /** see loadAnonKiB */
  loadFileKiB: number | null;
  /** wall time of the measurement, s */
  wallS: number | null;
  /** tool start-up until the guest was configured, s */
  startupS: number | null;
}

/**
 * @param name environment variable
 * @param def default
 * @param zero whether 0 is allowed
 * @returns its positive (or, with `zero`, non-negative) numeric value
 */
function envNum(name: string, def: number, zero = false): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!(n > 0 || (zero && n === 0))) {
    throw new Error(`${name} must be a ${zero ? "non-negative" : "positive"} number, not ${v}`);
  }
  return n;
}

/**
 * @param name environment variable
 * @param all allowed values
 * @param def the values selected when the variable is not set
 * @returns the selected values, in the order of `all`
 */
function envList(name: string, all: string[], def: readonly string[] = all): string[] {
  const v = Deno.env.get(name);
  if (!v) return all.filter((a) => def.includes(a));
  const want = v.split(/[,\s]+/).filter(Boolean);
  const bad = want.filter((w) => !all.includes(w));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(", ")} (known: ${all.join(",")})`);
  return all.filter((a) => want.includes(a));
}

/**
 * @param e anything thrown
 * @returns a one-line message
 */
function message(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.replace(/\s+/g, " ").trim();
}

let interrupted = false;

/**
 * Runs one cell for one tool.
 * @param cell the measurement
 * @param tool the tool's name
 * @param cfg settings
 * @returns its result
 */
async function runCell(cell: CellDef, tool: string, cfg: Config): Promise<Result> {
  const res: Result = {
    cell: cell.id,
    tool,
    metrics: null,
    error: null,
    cpuS: null,
    rssKiB: null,
    idleRssKiB: null,
    idleAnonKiB: null,
    idleFileKiB: null,
    loadRssKiB: null,
    loadAnonKiB: null,
    loadFileKiB: null,
    wallS: null,
    startupS: null,
  };
  let t: Topology | null = null;
  try {
    t = await Topology.create();
    await prepareHost(t);
    const g = await TOOLS[tool]!(t, cell.fwd);
    res.startupS = g.startupS;
    try {
      let u0: Usage | null = null;
      if (g.pid) u0 = await usage(g.pid);
      let uw = u0;
      if (cell.warm !== false && cfg.warmupS > 0) {
        await cell.measure(t, g, { ...cfg, seconds: cfg.warmupS, udpSeconds: cfg.warmupS });
        if (g.pid) uw = await usage(g.pid);
      }
      const t0 = performance.now();
      const m = await cell.measure(t, g, cfg);
      res.wallS = (performance.now() - t0) / 1000;
      if (g.pid) {
        const u1 = await usage(g.pid);
        if (u0 && uw && u1) {
          res.cpuS = u1.cpuS - uw.cpuS;
          res.rssKiB = u1.hwmKiB;
          res.idleRssKiB = u0.rssKiB;
          res.idleAnonKiB = u0.anonKiB;
          res.idleFileKiB = u0.fileKiB;
          res.loadRssKiB = u1.rssKiB;
          res.loadAnonKiB = u1.anonKiB;
          res.loadFileKiB = u1.fileKiB;
          /* the translator's share of a core per Gbit/s carried, for throughput cells */
          m.cpuPct = 100 * res.cpuS / res.wallS;
          if (m.gbps) m.cpuPerGbps = m.cpuPct / m.gbps;
        }
      }
      res.metrics = m;
    } catch (e) {
      /* a translator that died explains the failure better than the client's error */
      await new Promise((r) => setTimeout(r, 100));
      const gone = g.gone();
      throw gone ? new Error(`${gone} (${message(e)})`) : e;
    } finally {
      await g.stop();
    }
  } catch (e) {
    res.error = interrupted ? "interrupted" : message(e);
  } finally {
    if (t) await t.destroy();
  }
  return res;
}

/**
 * The memory table's rows: idle, after load and peak RSS of each tool.
 * @param results every cell's result
 * @param tools the columns
 * @returns the rows
 */
function memoryRows(results: Result[], tools: string[]): string[][] {
  const mib = (k: number) => (k / 1024).toFixed(1);
  const split = (rss: number, anon: number, file: number) =>
    `${mib(rss)} (${mib(anon)} + ${mib(file)})`;
  const of = (tool: string) => results.filter((r) => r.tool === tool && r.idleRssKiB !== null);
  const idle = (tool: string) => {
    const m = results.find((r) => r.tool === tool && r.cell === "idle")?.metrics;
    if (m) return split(m.rssMiB! * 1024, m.anonMiB! * 1024, m.fileMiB! * 1024);
    const rs = of(tool).sort((a, b) => a.idleRssKiB! - b.idleRssKiB!);
    const r = rs[Math.floor(rs.length / 2)];
    return r ? split(r.idleRssKiB!, r.idleAnonKiB!, r.idleFileKiB!) : "–";
  };
  const load = (tool: string) => {
    const r = of(tool).sort((a, b) => b.loadRssKiB! - a.loadRssKiB!)[0];
    return r ? split(r.loadRssKiB!, r.loadAnonKiB!, r.loadFileKiB!) : "–";
  };
  const peak = (tool: string) => {
    const rs = of(tool);
    return rs.length ? mib(Math.max(...rs.map((r) => r.rssKiB!))) : "–";
  };
  return [
    ["idle: VmRSS (RssAnon + RssFile)", ...tools.map(idle)],
    ["after load: VmRSS (RssAnon + RssFile)", ...tools.map(load)],
    ["peak: VmHWM", ...tools.map(peak)],
  ];
}

/**
 * @param s cell text
 * @returns it, safe inside a markdown table
 */
function md(s: string): string {
  return s.replace(/\|/g, "\\|");
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
 * @param r a result
 * @returns "n/a (error: ...)" for a failed cell
 */
function naText(r: Result): string {
  const e = r.error ?? "no result";
  return `n/a (error: ${e.length > 90 ? e.slice(0, 87) + "..." : e})`;
}

/**
 * @param argv a command printing its version
 * @returns its first line, or why not
 */
async function version(argv: string[]): Promise<string> {
  try {
    const r = await run(argv, 10000);
    return (r.stdout + r.stderr).split("\n")[0]!.trim();
  } catch (e) {
    return `unavailable (${message(e)})`;
  }
}

/** Entry point. */
async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("bench: needs root (it creates network namespaces); try sudo deno task bench");
    return 1;
  }
  const seconds = envNum("BENCH_SECONDS", 10);
  const cfg: Config = {
    seconds,
    udpSeconds: envNum("BENCH_UDP_SECONDS", Math.max(1, Math.ceil(seconds / 2))),
    udpBw: Deno.env.get("BENCH_UDP_BW") || "0",
    warmupS: envNum("BENCH_WARMUP_SECONDS", 3, true),
  };
  const cellIds = envList("BENCH_ROWS", CELLS.map((c) => c.id));
  const tools = envList("BENCH_TOOLS", Object.keys(TOOLS), DEFAULT_TOOLS);
  const cells = CELLS.filter((c) => cellIds.includes(c.id));

  /* the unprivileged pasta opens the tap as nobody: Debian's default mode (as test.sh) */
  try {
    if ((Deno.statSync("/dev/net/tun").mode! & 0o666) !== 0o666) {
      Deno.chmodSync("/dev/net/tun", 0o666);
      console.error("bench: made /dev/net/tun mode 0666 (Debian's default)");
    }
  } catch (e) {
    console.error(`bench: /dev/net/tun: ${message(e)}`);
  }

  const env = {
    kernel: await version(["uname", "-r"]),
    cpus: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    pasta: `pasta ${PASTA_BIN}: ${await version([PASTA_BIN, "--version"])}`,
    pastaDeb: `pasta-deb ${DEBIAN_PASTA_BIN}: ${await version([DEBIAN_PASTA_BIN, "--version"])}`,
    slirp4netns: await version(["slirp4netns", "--version"]),
    iperf3: await version(["iperf3", "--version"]),
    orzoCommit: (await version(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])) +
      ((await run(["git", "-C", REPO, "status", "--porcelain"])).stdout.trim() ? " (dirty)" : ""),
  };

  const onSignal = () => {
    if (!interrupted) console.error("bench: interrupted, cleaning up");
    interrupted = true;
    killAll();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const started = new Date();
  const t0 = performance.now();
  const results: Result[] = [];
  const total = cells.length * tools.length;
  console.error(
    `bench: ${cells.length} measurements x ${tools.length} tools, TCP ${cfg.seconds} s, ` +
      `UDP ${cfg.udpSeconds} s (-b ${cfg.udpBw}), warm-up ${cfg.warmupS} s`,
  );
  for (const cell of cells) {
    for (const tool of tools) {
      if (interrupted) break;
      const c0 = performance.now();
      const r = await runCell(cell, tool, cfg);
      results.push(r);
      const took = ((performance.now() - c0) / 1000).toFixed(1);
      const what = r.metrics ? cell.rows.map((row) => row.fmt(r.metrics!)).join(", ") : naText(r);
      const res = r.cpuS !== null
        ? ` [cpu ${r.cpuS.toFixed(2)} s, rss ${((r.idleRssKiB ?? 0) / 1024).toFixed(1)} / ${
          (r.rssKiB! / 1024).toFixed(1)
        } MiB]`
        : "";
      console.error(`[${results.length}/${total}] ${cell.id} ${tool}: ${what}${res} (${took} s)`);
    }
  }
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  const durationS = (performance.now() - t0) / 1000;

  const get = (cell: string, tool: string) =>
    results.find((r) => r.cell === cell && r.tool === tool);
  const ratioTools = tools.includes("orzo") && tools.includes("pasta");

  const head = ["", ...tools, ...(ratioTools ? ["orzo/pasta"] : [])];
  const rows: string[][] = [];
  for (const cell of cells) {
    for (const row of cell.rows) {
      const line = [row.label];
      for (const tool of tools) {
        const r = get(cell.id, tool);
        line.push(md(r?.metrics ? row.fmt(r.metrics) : r ? naText(r) : "not run"));
      }
      if (ratioTools && row.ratio === false) line.push("–");
      else if (ratioTools) {
        const o = get(cell.id, "orzo")?.metrics?.[row.key];
        const p = get(cell.id, "pasta")?.metrics?.[row.key];
        line.push(o !== undefined && p ? `${(o / p).toFixed(2)}x` : "–");
      }
      rows.push(line);
    }
  }
  const resTools = tools.filter((t) => t !== "veth");
  const resRows = cells.map((cell) => [
    cell.label,
    ...resTools.map((tool) => {
      const r = get(cell.id, tool);
      if (!r || r.cpuS === null || !r.wallS) return "–";
      const pct = (100 * r.cpuS / r.wallS).toFixed(0);
      const mib = (k: number | null) => k === null ? "?" : (k / 1024).toFixed(1);
      return `${r.cpuS.toFixed(2)} s (${pct}%), ${mib(r.idleRssKiB)} / ${mib(r.rssKiB)} MiB`;
    }),
  ]);

  const memRows = memoryRows(results, resTools);

  const when = started.toISOString().replace(/\.\d+Z$/, "Z");
  const text = [
    `## orzo benchmark, ${when}`,
    "",
    `Kernel ${env.kernel}, ${env.cpus} CPUs; ${env.pasta}; ${env.pastaDeb}; ${env.slirp4netns}; ` +
    `${env.iperf3}; ` +
    `Deno ${env.deno}; orzo ${env.orzoCommit}. iperf3 TCP ${cfg.seconds} s, UDP ` +
    `${cfg.udpSeconds} s at -b ${cfg.udpBw}, after a warm-up of ${cfg.warmupS} s. ` +
    `Run took ${durationS.toFixed(0)} s.`,
    "",
    table(head, rows),
    "",
    "Translator CPU time during the measurement (user+system, share of wall time), RSS idle " +
    "(VmRSS before the warm-up) / after load (VmHWM, the peak, at its end):",
    "",
    table(["", ...resTools], resRows),
    "",
    "Translator memory, MiB: VmRSS (= RssAnon + RssFile) idle (the idle row; without it, the " +
    "median of the values before each measurement) and after load (the largest at a " +
    "measurement's end), and the peak (VmHWM, the largest, start-up included):",
    "",
    table(["", ...resTools], memRows),
    "",
  ].join("\n");
  console.log(text);

  const dir = `${REPO}/bench/results`;
  Deno.mkdirSync(dir, { recursive: true });
  const file = `${dir}/${when.replace(/:/g, "-")}.json`;
  Deno.writeTextFileSync(
    file,
    JSON.stringify(
      { started: started.toISOString(), durationS, config: cfg, tools, env, results, text },
      null,
      2,
    ) + "\n",
  );
  console.error(`bench: results in ${file.slice(REPO.length + 1)} (${durationS.toFixed(0)} s)`);
  const failed = results.filter((r) => r.error).map((r) => `${r.cell}/${r.tool}`);
  if (failed.length) console.error(`bench: ${failed.length} cells n/a: ${failed.join(" ")}`);
  return interrupted ? 130 : 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench: ${lastLine(message(e))}`);
  }
  Deno.exit(code);
}
