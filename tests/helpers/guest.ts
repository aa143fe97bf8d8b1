/**
 * guest.ts - running servers inside orzo's guest while a test acts from
 * outside (the remote or host namespace).
 *
 * `withGuestServers()` starts orzo with a shell script as its command: the
 * script starts each server in the background (each must print "ready" on
 * standard output once listening), waits until all are ready, signals the
 * test through a file, and then waits for the test to say it is done (or
 * for a deadline). Everything has a deadline; each server runs in its own
 * process group (setsid), killed as a whole when the script ends, and orzo
 * is killed by PID if it outlives the test.
 *
 * @module
 */

import { orzoIn, type RunResult, type Topology } from "./topology.ts";

/** Options of withGuestServers(). */
export interface GuestOptions {
  /** orzo's deadline, ms (default 120 s) */
  timeoutMs?: number;
  /** environment for orzo (and so the guest) */
  env?: Record<string, string>;
}

/**
 * Runs orzo with servers in the guest, calls `fn` once they are ready, then
 * lets orzo exit.
 * @param t the topology
 * @param args orzo's options (after --pasta)
 * @param servers shell commands, each a server that prints "ready"
 * @param fn the test's part, run while the servers listen
 * @param opts deadline and environment
 * @returns fn's result and orzo's result
 */
export async function withGuestServers<T>(
  t: Topology,
  args: string[],
  servers: string[],
  fn: () => Promise<T>,
  opts: GuestOptions = {},
): Promise<{ value: T; orzo: RunResult }> {
  const dir = await Deno.makeTempDir({ prefix: "orzo-guest-" });
  await Deno.chmod(dir, 0o777);
  const deadline = Math.floor((opts.timeoutMs ?? 120000) / 100);
  const lines = ["pids=''"];
  /* each server in its own process group, so that the whole group goes at the end */
  servers.forEach((cmd, i) => {
    const quoted = cmd.replaceAll("'", `'"'"'`);
    lines.push(`setsid sh -c '${quoted}' > ${dir}/s${i}.log 2>&1 & pids="$pids $!"`);
  });
  lines.push(`trap 'for p in $pids; do kill -- -$p 2>/dev/null; done' EXIT`);
  lines.push("i=0");
  const readyTest = servers.map((_, i) => `grep -q ready ${dir}/s${i}.log`).join(" && ");
  lines.push(
    `while ! { ${readyTest || "true"}; } && [ $i -lt ${deadline} ]; do sleep 0.1; i=$((i+1)); done`,
  );
  lines.push(`touch ${dir}/ready`);
  lines.push(
    `while [ ! -e ${dir}/done ] && [ $i -lt ${deadline} ]; do sleep 0.1; i=$((i+1)); done`,
  );
  const script = lines.join("\n");
  const [cmd, ...argv] = orzoIn(t.host, ["--pasta", ...args, "--", "sh", "-c", script]);
  const child = new Deno.Command(cmd!, {
    args: argv,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: opts.env,
  }).spawn();
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, (opts.timeoutMs ?? 120000) + 10000);
  const output = child.output();
  try {
    /* wait for the servers (or for orzo to fail) */
    let exited = false;
    output.then(() => exited = true, () => exited = true);
    for (let i = 0; i < deadline && !exited; i++) {
      try {
        await Deno.stat(`${dir}/ready`);
        break;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (exited) {
      const o = await output;
      const dec = new TextDecoder();
      throw new Error(`orzo exited early (${o.code}): ${dec.decode(o.stderr)}`);
    }
    let logs = "";
    for (let i = 0; i < servers.length; i++) {
      logs += await Deno.readTextFile(`${dir}/s${i}.log`).catch(() => "");
    }
    if (servers.length > 0 && (logs.match(/ready/g) ?? []).length < servers.length) {
      throw new Error(`guest servers not ready: ${logs}`);
    }
    const value = await fn();
    await Deno.writeTextFile(`${dir}/done`, "");
    const o = await output;
    const dec = new TextDecoder();
    return {
      value,
      orzo: { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) },
    };
  } finally {
    await Deno.writeTextFile(`${dir}/done`, "").catch(() => {});
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await output.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
