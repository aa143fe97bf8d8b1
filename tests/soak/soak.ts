/**
 * soak.ts - `deno task soak` (not in CI; needs root): in the hermetic
 * topology, a guest holds SOAK_POOL (10,000) TCP connections through orzo's
 * tap, opens SOAK_RATE (2,000) new ones a second for SOAK_SECONDS (60 s)
 * with a bulk transfer alongside (at most SOAK_BULK_MIB_S, 50 MiB/s), every
 * byte checked (client.ts, SOAK_CLIENTS processes sharing the churn), against
 * an echo server in the remote namespace. orzo's descriptor count and RSS are
 * sampled before, during (every 5 s) and after the load, and printed.
 *
 * @module
 */

import { background, DENO, MAIN, REPO, run, Topology } from "../helpers/topology.ts";

const POOL = Number(Deno.env.get("SOAK_POOL") ?? 10000);
const RATE = Number(Deno.env.get("SOAK_RATE") ?? 2000);
const SECS = Number(Deno.env.get("SOAK_SECONDS") ?? 60);
/* one Deno client cannot open 2,000 connections a second on 2 CPUs: the
 * churn is shared by CLIENTS processes, the first also holding the pool and
 * the bulk transfer */
const CLIENTS = Number(Deno.env.get("SOAK_CLIENTS") ?? 4);

async function sample(pid: number): Promise<string> {
  try {
    let fds = 0;
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
    const st = await Deno.readTextFile(`/proc/${pid}/status`);
    const rss = /VmRSS:\s+(\d+) kB/.exec(st)?.[1] ?? "?";
    return `fds ${fds}, RSS ${(Number(rss) / 1024).toFixed(1)} MiB`;
  } catch {
    return "(gone)";
  }
}

const t = await Topology.create();
const dir = await Deno.makeTempDir({ prefix: "orzo-soak-" });
const pidFile = `${dir}/pid`;
/* room for the churn's ports and TIME_WAIT sockets on both sides */
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
  await run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
}
const srv = await background(
  [
    "ip",
    "netns",
    "exec",
    t.remote,
    "sh",
    "-c",
    `exec ${DENO} run --allow-net ${REPO}/tests/soak/server.ts 203.0.113.10 9400 ${SECS + 300}`,
  ],
  { ready: "listening", timeoutMs: (SECS + 300) * 1000 },
);
let code = 1;
try {
  const guest = `sysctl -qw net.ipv4.ip_local_port_range="1024 65535"; ` +
    `sysctl -qw net.ipv4.tcp_tw_reuse=1; sleep 3; ` +
    Array.from(
      { length: CLIENTS },
      (_, i) =>
        `PEER_DEADLINE_MS=600000 ${DENO} run --allow-net --allow-env=SOAK_BULK_MIB_S --allow-read=${dir} ` +
        `--allow-write=${dir} ${REPO}/tests/soak/client.ts 203.0.113.10 9400 ` +
        `${i === 0 ? POOL : 0} ${Math.ceil(RATE / CLIENTS)} ${SECS} ` +
        `${i === 0 ? "bulk" : "nobulk"} ${dir}/pool-open & p${i}=$!; `,
    ).join("") +
    `r=0; ${
      Array.from({ length: CLIENTS }, (_, i) => `wait $p${i} || r=1; `).join("")
    }sleep 5; exit $r`;
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
  let pid = 0;
  for (let i = 0; i < 200 && pid === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    pid = Number((await Deno.readTextFile(pidFile).catch(() => "0")).trim()) || 0;
  }
  console.log(`before: ${await sample(pid)}`);
  let done = false;
  const out = orzo.output().then((o) => {
    done = true;
    return o;
  });
  const t0 = performance.now();
  while (!done) {
    await new Promise((r) => setTimeout(r, 5000));
    if (!done) {
      console.log(`t=${((performance.now() - t0) / 1000).toFixed(0)}s: ${await sample(pid)}`);
    }
  }
  const o = await out;
  const stdout = new TextDecoder().decode(o.stdout);
  console.log(stdout.split("\n").filter((l) => /^(pool|result)/.test(l)).join("\n"));
  console.log(`orzo exit ${o.code}; ${new TextDecoder().decode(o.stderr).slice(-2000)}`);
  code = o.code;
} finally {
  await srv.stop();
  await t.destroy();
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(code);
