/**
 * soak.ts - `deno task soak` (not in CI; needs root and gcc): in the hermetic
 * topology, a guest holds SOAK_POOL (10,000) TCP connections through orzo's
 * tap, opens SOAK_RATE (2,000) new ones a second for SOAK_SECONDS (60 s)
 * with a bulk transfer alongside (SOAK_BULK_MIB_S, 50 MiB/s each way), every
 * byte checked, against an echo server in the remote namespace. Both ends are
 * load.c, built here with gcc: one epoll thread each, so that the load costs
 * a few per cent of a CPU and orzo is what is measured. orzo's descriptor
 * count and RSS are sampled before, during (every 5 s) and after the load
 * (once the descriptors are back at the baseline, at most SETTLE_S after
 * the client ends), and printed; the run fails if any byte differed, any
 * connection failed, orzo still holds more descriptors than before the load
 * (plus 16) SETTLE_S after it, or it is not idle then.
 *
 * @module
 */

import { background, DENO, MAIN, REPO, run, sh, Topology } from "../helpers/topology.ts";

const POOL = Number(Deno.env.get("SOAK_POOL") ?? 10000);
const RATE = Number(Deno.env.get("SOAK_RATE") ?? 2000);
const SECS = Number(Deno.env.get("SOAK_SECONDS") ?? 60);
const BULK_MIB_S = Number(Deno.env.get("SOAK_BULK_MIB_S") ?? 50);
/** How long orzo's descriptors may take to return to the baseline after the load (s). */
const SETTLE_S = 20;

interface Sample {
  fds: number;
  rssMiB: number;
  cpuTicks: number;
}

async function sample(pid: number): Promise<Sample | null> {
  try {
    let fds = 0;
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
    const st = await Deno.readTextFile(`/proc/${pid}/status`);
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(st)?.[1] ?? NaN) / 1024;
    /* utime and stime: fields 14 and 15, counted after the ")" of comm */
    const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
    return { fds, rssMiB: rss, cpuTicks: Number(stat[11]) + Number(stat[12]) };
  } catch {
    return null;
  }
}

const show = (s: Sample | null) =>
  s === null ? "(gone)" : `fds ${s.fds}, RSS ${s.rssMiB.toFixed(1)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const t = await Topology.create();
const dir = await Deno.makeTempDir({ prefix: "orzo-soak-" });
const pidFile = `${dir}/pid`;
const load = `${dir}/load`;
let code = 1;
try {
  await sh(["gcc", "-O2", "-o", load, `${REPO}/tests/soak/load.c`]);
  /* room for the churn's ports on every side */
  for (const ns of [t.host, t.remote]) {
    await run([
      "ip",
      "netns",
      "exec",
      ns,
      "sysctl",
      "-qw",
      "net.ipv4.ip_local_port_range=1024 65535",
    ]);
  }
  const srv = await background(
    ["ip", "netns", "exec", t.remote, load, "server", "203.0.113.10", "9400", `${SECS + 300}`],
    { ready: "listening", timeoutMs: (SECS + 300) * 1000 },
  );
  try {
    const guest = `sysctl -qw net.ipv4.ip_local_port_range="1024 65535"; sleep 3; ` +
      `${load} client 203.0.113.10 9400 ${POOL} ${RATE} ${SECS} ${BULK_MIB_S}; r=$?; ` +
      `touch ${dir}/client-done; sleep ${SETTLE_S + 5}; exit $r`;
    const orzo = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        t.host,
        "sh",
        "-c",
        `exec ${DENO} run --allow-ffi ${MAIN} --pasta --config-net ${
          Deno.env.get("SOAK_ORZO_FLAGS") ?? ""
        } -P ${pidFile} -- sh -c '${guest}'`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = orzo.output();
    let pid = 0;
    for (let i = 0; i < 200 && pid === 0; i++) {
      await sleep(50);
      pid = Number((await Deno.readTextFile(pidFile).catch(() => "0")).trim()) || 0;
    }
    const before = await sample(pid);
    console.log(`before: ${show(before)}`);
    const t0 = performance.now();
    let doneAt = 0;
    let peakFds = 0;
    let peakRss = 0;
    let last = before;
    let lastAt = t0;
    while (doneAt === 0 && performance.now() - t0 < (SECS + 240) * 1000) {
      for (let i = 0; i < 50 && doneAt === 0; i++) {
        await sleep(100);
        if (await Deno.stat(`${dir}/client-done`).then(() => true, () => false)) {
          doneAt = performance.now();
        }
      }
      const s = await sample(pid);
      if (s !== null) {
        peakFds = Math.max(peakFds, s.fds);
        peakRss = Math.max(peakRss, s.rssMiB);
      }
      if (doneAt === 0) {
        const at = performance.now();
        /* USER_HZ is 100: ticks per second are per cent of a core */
        const cpu = s && last ? (s.cpuTicks - last.cpuTicks) / ((at - lastAt) / 1000) : NaN;
        console.log(
          `t=${((at - t0) / 1000).toFixed(0)}s: ${show(s)}, CPU ${cpu.toFixed(0)}% of a core`,
        );
        last = s;
        lastAt = at;
      }
    }
    /* after: the last flows close once their FINs are acknowledged (a FIN
     * lost in the guest's input queue during the close burst of the pool is
     * sent again at 2 s, 6 s, 14 s): wait until the descriptors are back at
     * the baseline, at most SETTLE_S; then 2 s of CPU */
    let after = await sample(pid);
    while (
      before !== null && after !== null && after.fds > before.fds + 16 &&
      performance.now() - doneAt < SETTLE_S * 1000
    ) {
      await sleep(500);
      after = await sample(pid);
    }
    const settledS = (performance.now() - doneAt) / 1000;
    await sleep(2000);
    const after2 = await sample(pid);
    const idleCpu = after && after2
      ? (after2.cpuTicks - after.cpuTicks) / 2 /* % of a core, USER_HZ 100 */
      : NaN;
    console.log(
      `after (${settledS.toFixed(1)} s after the load): ${show(after)}; peak fds ${peakFds}, ` +
        `peak RSS ${peakRss.toFixed(1)} MiB; ` +
        `CPU once idle ${idleCpu.toFixed(1)}% of a core`,
    );
    const o = await out;
    const stdout = new TextDecoder().decode(o.stdout);
    console.log(stdout.split("\n").filter((l) => /^(pool|result|t=)/.test(l)).join("\n"));
    console.log(`orzo exit ${o.code}; ${new TextDecoder().decode(o.stderr).slice(-2000)}`);
    const fdsSettled = before !== null && after !== null && after.fds <= before.fds + 16;
    if (!fdsSettled) console.log("FAIL: orzo's descriptors did not return to the baseline");
    if (!(idleCpu < 5)) console.log("FAIL: orzo is not idle once the load has stopped");
    code = o.code === 0 && fdsSettled && idleCpu < 5 ? 0 : 1;
  } finally {
    await srv.stop();
  }
} finally {
  await t.destroy();
  await Deno.remove(dir, { recursive: true });
}
console.log(code === 0 ? "soak: PASS" : "soak: FAIL");
Deno.exit(code);
