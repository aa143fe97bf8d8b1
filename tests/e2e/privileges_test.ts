/**
 * End-to-end tests of giving up privileges (isolate/): started as root, orzo
 * becomes `nobody` (or --runas) once set up, keeps only the capabilities the
 * running translation needs, and every thread has no_new_privs and the
 * seccomp filter; descriptors inherited from the caller are closed; and the
 * translation still works afterwards. Read from /proc/PID/task/TID/status.
 */

import assert from "node:assert/strict";
import { installOrzo } from "../helpers/pasta_bin.ts";
import {
  asUser,
  background,
  denoIn,
  NOBODY,
  orzoIn,
  run,
  sh,
  TCP_PEER,
  Topology,
} from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const CAP_KILL = 1n << 5n;
const CAP_NET_BIND_SERVICE = 1n << 10n;
/** Options that forward nothing, so that no port is bound after set-up. */
const NO_FORWARDS = ["-t", "none", "-u", "none", "-T", "none", "-U", "none"];

/** What /proc says about one thread. */
interface ThreadStatus {
  tid: number;
  name: string;
  uid: number[];
  gid: number[];
  groups: string;
  capEff: bigint;
  capPrm: bigint;
  capBnd: bigint;
  noNewPrivs: number;
  seccomp: number;
}

/** Reads the status of every thread of a process. */
async function threads(pid: number): Promise<ThreadStatus[]> {
  const out: ThreadStatus[] = [];
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/status`);
    } catch {
      continue; /* the thread ended */
    }
    const f = (k: string) => new RegExp(`^${k}:[ \\t]*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
    out.push({
      tid: Number(e.name),
      name: f("Name"),
      uid: f("Uid").split(/\s+/).map(Number),
      gid: f("Gid").split(/\s+/).map(Number),
      groups: f("Groups"),
      capEff: BigInt(`0x${f("CapEff")}`),
      capPrm: BigInt(`0x${f("CapPrm")}`),
      capBnd: BigInt(`0x${f("CapBnd")}`),
      noNewPrivs: Number(f("NoNewPrivs")),
      seccomp: Number(f("Seccomp")),
    });
  }
  return out.sort((a, b) => a.tid - b.tid);
}

function show(ts: ThreadStatus[]): string {
  return ts.map((t) =>
    `${t.tid} ${t.name} uid=${t.uid} gid=${t.gid} eff=${t.capEff.toString(16)} ` +
    `prm=${t.capPrm.toString(16)} bnd=${t.capBnd.toString(16)} nnp=${t.noNewPrivs} sec=${t.seccomp}`
  ).join("\n");
}

/**
 * Checks the threads of an isolated orzo.
 * @param uid, gid the user and group every thread must have
 * @param keep the capabilities the main thread keeps (all others: none)
 */
function assertIsolated(pid: number, ts: ThreadStatus[], uid: number, gid: number, keep: bigint) {
  const all = show(ts);
  assert.ok(ts.length >= 3, all);
  const main = ts.find((t) => t.tid === pid);
  assert.ok(main, all);
  for (const t of ts) {
    assert.deepEqual(t.uid, [uid, uid, uid, uid], all);
    assert.deepEqual(t.gid, [gid, gid, gid, gid], all);
    assert.equal(t.groups, "", all);
    assert.equal(t.noNewPrivs, 1, all);
    assert.equal(t.seccomp, 2, all);
    const want: bigint = t === main ? keep : 0n;
    assert.equal(t.capEff, want, all);
    assert.equal(t.capPrm, want, all);
  }
  /* the threads orzo runs its code on: the main thread and its namespace Worker */
  const ours = ts.filter((t) => t === main || /^worker-/.test(t.name));
  assert.equal(ours.length, 2, all);
  for (const t of ours) assert.equal(t.capBnd, 0n, all);
}

async function waitForFile(path: string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const s = (await Deno.readTextFile(path)).trim();
      if (s !== "") return s;
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function gone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      await Deno.stat(`/proc/${pid}`);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function stopPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

/** A tcp_peer.ts echo server in a namespace. */
function echoServer(ns: string, addr: string, port: number) {
  return background(
    denoIn(ns, TCP_PEER, ["serve-echo", addr, `${port}`]),
    { ready: "listening" },
  );
}

/** Two connections from a namespace, 1 MB each, echoed and compared byte by byte. */
async function echoClient(ns: string, addr: string, port: number): Promise<string> {
  const r = await run(
    denoIn(ns, TCP_PEER, ["client-many", addr, `${port}`, "2", "1000000"]),
    { timeoutMs: 30000 },
  );
  return r.stdout.trim() + r.stderr.trim();
}

/** Outbound (guest to the remote namespace) and inbound (-t PORT) transfers. */
async function assertTranslates(t: Topology, guest: string, inbound: number): Promise<void> {
  const out = await echoServer(t.remote, "203.0.113.10", 9301);
  const inb = await echoServer(guest, "0.0.0.0", inbound);
  try {
    assert.equal(await echoClient(guest, "203.0.113.10", 9301), "ok 2", "guest to remote");
    /* -t auto opens its listener only once a scan has seen the guest's */
    let got = "";
    for (let i = 0; i < 40 && got !== "ok 2"; i++) {
      got = await echoClient(t.remote, "198.51.100.2", inbound);
      if (got !== "ok 2") await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(got, "ok 2", "remote to guest");
  } finally {
    await out.stop();
    await inb.stop();
  }
}

/**
 * Runs orzo in the background attached to a namespace of its own (made
 * here), with `args` after --config-net (-P and --netns added), and calls
 * `fn` with its PID; then stops it and removes everything.
 */
async function withAttached(
  tag: string,
  args: string[],
  fn: (t: Topology, guest: string, pid: number) => Promise<void>,
): Promise<void> {
  const t = await Topology.create();
  const guest = `orzo-pv-${Deno.pid}-${tag}`;
  const pidFile = await Deno.makeTempFile();
  await sh(["ip", "netns", "add", guest]);
  let pid = -1;
  try {
    const r = await t.orzo(["--config-net", ...args, "-P", pidFile, "--netns", guest]);
    assert.equal(r.code, 0, r.stderr);
    pid = Number(await waitForFile(pidFile, 5000));
    await fn(t, guest, pid);
  } finally {
    if (pid > 0) stopPid(pid);
    await run(["ip", "netns", "del", guest]);
    await Deno.remove(pidFile).catch(() => {});
    await t.destroy();
  }
}

Deno.test({
  name: "privileges: root attaching to --netns (rootful Podman) becomes nobody, keeps nothing, " +
    "filters every thread, and still translates",
  ignore: !isRoot,
  async fn() {
    const args = ["-t", "8080", "-u", "none", "-T", "none", "-U", "none"];
    await withAttached("a", args, async (t, guest, pid) => {
      const ts = await threads(pid);
      assertIsolated(pid, ts, NOBODY, NOBODY, 0n);
      console.log(`threads of orzo after set-up:\n${show(ts)}`);
      await assertTranslates(t, guest, 8080);
      /* still filtered, nobody, and alive after the traffic */
      assertIsolated(pid, await threads(pid), NOBODY, NOBODY, 0n);
    });
  },
});

Deno.test({
  name: "privileges: --runas 1000:1000 with auto forwarding keeps CAP_NET_BIND_SERVICE on the " +
    "main thread only, and forwards a low port bound by the guest later",
  ignore: !isRoot,
  async fn() {
    await withAttached("b", ["--runas", "1000:1000"], async (t, guest, pid) => {
      assertIsolated(pid, await threads(pid), 1000, 1000, CAP_NET_BIND_SERVICE);
      /* port 81: the host listener opened after the drop needs the kept capability */
      await assertTranslates(t, guest, 81);
    });
  },
});

Deno.test({
  name: "privileges: --runas by name, and one clear line for an unknown user or group",
  ignore: !isRoot,
  async fn() {
    const [, , uid, gid] = (await sh(["getent", "passwd", "nobody"])).trim().split(":");
    const group = (await sh(["getent", "group", "nogroup"])).trim().split(":");
    const args = [...NO_FORWARDS, "--runas", `nobody:${group[0]}`];
    await withAttached("c", args, async (t, _guest, pid) => {
      assert.equal(gid, group[2]);
      assertIsolated(pid, await threads(pid), Number(uid), Number(group[2]), 0n);

      for (
        const [arg, want] of [
          ["orzo-no-such-user", /^orzo: Invalid --runas: no user "orzo-no-such-user"\n$/],
          ["nobody:orzo-no-such-group", /^orzo: Invalid --runas: no group "orzo-no-such-group"\n$/],
          ["root", /^orzo: Invalid --runas: user "root" is root\n$/],
        ] as const
      ) {
        const bad = await t.orzo(["--config-net", "--runas", arg, "--", "true"]);
        assert.equal(bad.code, 1, bad.stderr);
        assert.match(bad.stderr, want);
      }
    });
  },
});

Deno.test({
  name: "privileges: inherited descriptors are closed; a command started as root still gets " +
    "SIGTERM from orzo as nobody (CAP_KILL kept)",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const marker = await Deno.makeTempFile({ prefix: "orzo-inherited-" });
    const pidFile = await Deno.makeTempFile();
    await Deno.remove(pidFile);
    /* control: the shell's descriptor 7 does reach a program it starts this way */
    const control = await background([
      "sh",
      "-c",
      `exec 7<${marker}; exec ip netns exec ${t.host} sleep 20`,
    ]);
    let orzo: Awaited<ReturnType<typeof background>> | null = null;
    let pid = -1;
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await Deno.readLink(`/proc/${control.child.pid}/fd/7`), marker);

      orzo = await background([
        "sh",
        "-c",
        `exec 7<${marker} 9<${marker}; exec ` +
        orzoIn(t.host, [
          "--pasta",
          "--config-net",
          ...NO_FORWARDS,
          "-P",
          pidFile,
          "--",
          "sleep",
          "30",
        ])
          .join(" "),
      ]);
      pid = Number(await waitForFile(pidFile, 10000));
      assert.equal(pid, orzo.child.pid);
      const links: string[] = [];
      for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
        links.push(await Deno.readLink(`/proc/${pid}/fd/${e.name}`).catch(() => ""));
      }
      assert.ok(links.length > 5, links.join(" "));
      assert.ok(!links.includes(marker), links.join(" "));

      assertIsolated(pid, await threads(pid), NOBODY, NOBODY, CAP_KILL);
      const kids = (await run(["pgrep", "-P", `${pid}`, "sleep"])).stdout.trim().split("\n");
      assert.equal(kids.length, 1, kids.join(" "));
      const sleeper = Number(kids[0]);
      Deno.kill(pid, "SIGTERM");
      const status = await orzo.child.status;
      assert.equal(status.code, 143);
      assert.ok(await gone(sleeper, 3000), "the command got SIGTERM");
    } finally {
      await control.stop();
      await orzo?.stop();
      await Deno.remove(marker).catch(() => {});
      await Deno.remove(pidFile).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "privileges: an ordinary user's orzo (root of its user namespace) drops every " +
    "capability from the threads it runs on, and filters every thread",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* the checkout may not be readable by others (tests/helpers/pasta_bin.ts) */
    const dir = await Deno.makeTempDir();
    const bin = await installOrzo();
    let orzo: Awaited<ReturnType<typeof background>> | null = null;
    let pid = -1;
    try {
      await Deno.chmod(dir, 0o755);
      await Deno.mkdir(`${dir}/run`, { mode: 0o777 });
      await Deno.chmod(`${dir}/run`, 0o777);
      orzo = await background([
        "ip",
        "netns",
        "exec",
        t.host,
        ...asUser(),
        bin.path,
        "--config-net",
        ...NO_FORWARDS,
        "-P",
        `${dir}/run/pid`,
        "--",
        "sleep",
        "20",
      ]);
      pid = Number(await waitForFile(`${dir}/run/pid`, 15000));
      const ts = await threads(pid);
      const all = show(ts);
      console.log(`threads of an ordinary user's orzo after set-up:\n${all}`);
      const main = ts.find((x) => x.tid === pid)!;
      assert.ok(main, all);
      const ours = ts.filter((x) => x === main || /^worker-/.test(x.name));
      assert.equal(ours.length, 2, all);
      for (const x of ours) {
        assert.equal(x.capEff, 0n, all);
        assert.equal(x.capPrm, 0n, all);
        assert.equal(x.capBnd, 0n, all);
      }
      for (const x of ts) {
        assert.deepEqual(x.uid, [NOBODY, NOBODY, NOBODY, NOBODY], all);
        assert.equal(x.noNewPrivs, 1, all);
        assert.equal(x.seccomp, 2, all);
      }
    } finally {
      if (pid > 0) stopPid(pid);
      await orzo?.stop();
      await Deno.remove(dir, { recursive: true });
      await bin.remove();
      await t.destroy();
    }
  },
});
