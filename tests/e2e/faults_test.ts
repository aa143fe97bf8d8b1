/**
 * End-to-end tests of faults and hostile conditions (issue 9), in the
 * hermetic topology: a signal in the middle of a transfer, running out of
 * descriptors with connections pending, and a guest that stops
 * acknowledging for a while.
 */

import assert from "node:assert/strict";
import { background, denoIn, orzoIn, run, sh, TCP_PEER, Topology } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;

/** orzo running in the background, in the topology's host namespace. */
interface Orzo {
  child: Deno.ChildProcess;
  /** its PID, from its PID file */
  pid: number;
  /** everything it wrote on standard error, once it exited */
  stderr: Promise<string>;
  /** its exit status */
  status: Promise<Deno.CommandStatus>;
}

async function collect(s: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const dec = new TextDecoder();
  for await (const c of s) text += dec.decode(c, { stream: true });
  return text;
}

/** Starts orzo with `args` (-P pidFile added) and waits for its PID file. */
async function orzoStart(t: Topology, pidFile: string, args: string[]): Promise<Orzo> {
  const [cmd, ...argv] = orzoIn(t.host, ["--pasta", "-P", pidFile, ...args]);
  const child = new Deno.Command(cmd!, {
    args: argv,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = collect(child.stderr);
  const status = child.status;
  const end = performance.now() + 20000;
  for (;;) {
    const text = await Deno.readTextFile(pidFile).catch(() => "");
    if (/^\d+\n$/.test(text)) return { child, pid: Number(text.trim()), stderr, status };
    if (performance.now() > end) {
      child.kill("SIGKILL");
      throw new Error(`orzo wrote no PID file: ${await stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** orzo's standard error, or a note when its children still hold it open after 2 s. */
function stderrSoon(o: Orzo): Promise<string> {
  return Promise.race([
    o.stderr,
    new Promise<string>((r) => setTimeout(() => r("(standard error still open)"), 2000)),
  ]);
}

/** Stops orzo for good (SIGKILL) if it still runs. */
async function orzoKill(o: Orzo | null): Promise<void> {
  if (o === null) return;
  try {
    o.child.kill("SIGKILL");
  } catch { /* gone */ }
  await o.status;
}

/** CPU time of a process (user + system), in clock ticks. */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** PIDs of processes whose command line contains `tag`. */
async function processesWith(tag: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    if (cmd.includes(tag)) out.push(Number(e.name));
  }
  return out;
}

async function until(what: string, ms: number, cond: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`Timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "faults: SIGTERM during a 4-stream transfer: exit within 1 s, PID file gone, pcap whole",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-sig-" });
    /* like /tmp: orzo, no longer root at exit, may remove its own file */
    await Deno.chmod(dir, 0o1777);
    const pidFile = `${dir}/pid`;
    const pcap = `${dir}/capture.pcap`;
    const tag = `orzo-sig-${Deno.pid}`;
    const srv = await background(
      ["ip", "netns", "exec", t.remote, "iperf3", "-s", "-B", "203.0.113.10", "-p", "5210"],
      { timeoutMs: 60000 },
    );
    await new Promise((r) => setTimeout(r, 300));
    let o: Orzo | null = null;
    try {
      o = await orzoStart(t, pidFile, [
        "--config-net",
        "-d",
        "-p",
        pcap,
        "--",
        "iperf3",
        "-c",
        "203.0.113.10",
        "-p",
        "5210",
        "-P",
        "4",
        "-t",
        "30",
        "-b",
        "20M",
        "-T",
        tag,
      ]);
      /* the four streams and the control connection */
      await until("5 connections at the server", 15000, async () => {
        const ss = await run([
          "ip",
          "netns",
          "exec",
          t.remote,
          "ss",
          "-Htn",
          "state",
          "established",
        ]);
        return ss.stdout.split("\n").filter((l) => l.includes(":5210")).length >= 5;
      });
      await new Promise((r) => setTimeout(r, 500));
      const t0 = performance.now();
      Deno.kill(o.pid, "SIGTERM");
      const st = await Promise.race([
        o.status,
        new Promise<null>((r) => setTimeout(() => r(null), 5000)),
      ]);
      const took = performance.now() - t0;
      if (st === null) {
        o.child.kill("SIGKILL");
        assert.fail(`orzo still runs 5 s after SIGTERM: ${await stderrSoon(o)}`);
      }
      assert.ok(took < 1000, `orzo took ${took.toFixed(0)} ms to exit`);
      assert.equal(st.code, 143, await stderrSoon(o));
      await assert.rejects(Deno.stat(pidFile), Deno.errors.NotFound, "PID file left");
      /* the capture reads to its end, and holds the resets sent to the guest */
      const all = await run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.number"]);
      assert.equal(all.code, 0, all.stderr);
      assert.doesNotMatch(all.stderr, /cut short|truncated|corrupt/i);
      assert.ok(all.stdout.trim().split("\n").length > 100, "frames captured");
      const rst = await run([
        "tshark",
        "-r",
        pcap,
        "-Y",
        "tcp.flags.reset == 1 && ip.src == 203.0.113.10",
        "-T",
        "fields",
        "-e",
        "tcp.srcport",
      ]);
      assert.equal(rst.code, 0, rst.stderr);
      assert.ok(rst.stdout.trim().split("\n").length >= 5, `resets to the guest: ${rst.stdout}`);
      /* nothing left running: orzo, nor the command it started */
      await until(
        "the guest's iperf3 gone",
        3000,
        async () => (await processesWith(tag)).length === 0,
      );
      await assert.rejects(Deno.stat(`/proc/${o.pid}`), Deno.errors.NotFound);
    } finally {
      await orzoKill(o);
      for (const pid of await processesWith(tag)) Deno.kill(pid, "SIGKILL");
      await srv.stop();
      await t.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "faults: out of descriptors, 400 concurrent -t connections: the excess refused, no spin",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-emfile-" });
    const pidFile = `${dir}/pid`;
    let o: Orzo | null = null;
    try {
      /* --runas 0:0: prlimit on another user's process needs
       * CAP_SYS_RESOURCE, which these machines' root lacks */
      o = await orzoStart(t, pidFile, [
        "--runas",
        "0:0",
        "--config-net",
        "-d",
        "-t",
        "9110",
        "--",
        ...denoIn(null, TCP_PEER, ["serve-echo", "0.0.0.0", "9110"]),
      ]);
      const remote = (args: string[]) => denoIn(t.remote, TCP_PEER, args);
      await until(
        "the guest's echo server",
        20000,
        async () =>
          (await run(remote(["client-many", "198.51.100.2", "9110", "1", "10"]))).code === 0,
      );
      await sh(["prlimit", "--pid", String(o.pid), "--nofile=256:256"]);
      const hold = remote(["client-hold", "198.51.100.2", "9110", "400", "20000", "3000"]);
      const client = new Deno.Command(hold[0]!, {
        args: hold.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = collect(client.stderr);
      const reader = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      const readTo = async (re: RegExp) => {
        const end = performance.now() + 30000;
        while (!re.test(out)) {
          const r = await Promise.race([
            reader.read(),
            new Promise<null>((res) => setTimeout(() => res(null), end - performance.now())),
          ]);
          if (r === null || r.done) break;
          out += r.value;
        }
        return re.exec(out);
      };
      const held = await readTo(/held (\d+) refused (\d+)/);
      if (held === null) {
        try {
          client.kill("SIGKILL");
        } catch { /* gone */ }
        assert.fail(`client: ${out} ${await stderr}`);
      }
      /* all connections open or refused, none pending: orzo is idle */
      const c0 = await cpuTicks(o.pid);
      await new Promise((r) => setTimeout(r, 2000));
      const cpu = await cpuTicks(o.pid) - c0;
      const done = await readTo(/ok (\d+) refused (\d+)/);
      const st = await client.status;
      assert.equal(st.code, 0, `client: ${out} ${await stderr}`);
      assert.ok(done !== null, out);
      const [okN, refused] = [Number(done[1]), Number(done[2])];
      assert.equal(okN + refused, 400);
      assert.ok(refused > 0, "connections refused");
      assert.ok(okN >= 100, `connections served: ${okN}`);
      assert.ok(cpu <= 20, `orzo used ${cpu} ticks of CPU in 2 s while idle at its limit`);
      Deno.kill(o.pid, "SIGTERM");
      const os = await o.status;
      const log = await stderrSoon(o);
      assert.equal(os.code, 143, log);
      const m = /refused for want of descriptors (\d+)/.exec(log);
      assert.ok(m !== null && Number(m[1]) >= refused, `refusals counted: ${m?.[1]}`);
    } finally {
      await orzoKill(o);
      await t.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "faults: the guest stops acknowledging for 30 s mid-transfer, then resumes: bytes intact",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-pause-" });
    const src = `${dir}/send.bin`;
    const dst = `${dir}/recv.bin`;
    await sh(["sh", "-c", `head -c ${256 << 20} /dev/urandom > ${src}`]);
    const hash = (await sh(["sha256sum", src])).split(" ")[0]!;
    const sender = await background([
      "ip",
      "netns",
      "exec",
      t.remote,
      "socat",
      "-U",
      "TCP-LISTEN:9120,bind=203.0.113.10,reuseaddr",
      `SYSTEM:sleep 1; exec cat ${src}`,
    ], { timeoutMs: 120000 });
    try {
      await new Promise((r) => setTimeout(r, 300));
      /* in the guest: once connected, every frame it sends is dropped (a
       * token bucket smaller than any frame) for 30 s, then let through; the
       * server starts sending 1 s after the connection */
      const script = `socat -u TCP:203.0.113.10:9120 CREATE:${dst} & p=$!; sleep 0.5; ` +
        `tc qdisc add dev eth0 root tbf rate 1kbit burst 10 limit 1 || exit 3; ` +
        `sleep 30; echo paused at $(stat -c %s ${dst}); tc qdisc del dev eth0 root; ` +
        `wait $p; echo socat=$?`;
      /* the RTO doubles from 2 s: orzo resends about 31 s or 63 s in */
      const r = await t.orzo(["--config-net", "-d", "--", "sh", "-c", script], {
        timeoutMs: 110000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /socat=0/, r.stderr);
      assert.equal((await sh(["sha256sum", dst])).split(" ")[0], hash, "bytes received");
      const m = /retransmits (\d+)/.exec(r.stderr);
      const stats = r.stderr.split("\n").filter((l) => /^(orzo: )?(TCP|tap):/.test(l)).join("; ");
      assert.ok(m !== null && Number(m[1]) >= 3, `${r.stdout} ${stats}`);
    } finally {
      await sender.stop();
      await t.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
