/**
 * tools.ts - the translators under test, each started fresh for one benchmark
 * cell in the hermetic topology (tests/helpers/topology.ts):
 *
 * - orzo, pasta (PASTA_BIN, upstream built from source), pasta-deb (Debian's /usr/bin/pasta):
 *   the way RootlessKit runs them, as an ordinary user (nobody) attached by PID to the network
 *   namespace of that user's `unshare -Urn sleep T` child (`... --config-net -f ... PID`)
 * - orzo-root (only when BENCH_TOOLS names it): `deno run --allow-ffi main.ts --pasta
 *   --config-net -f ... -- sleep T`, as root, orzo spawning the guest
 * - slirp4netns: `unshare --net sleep T`, then `slirp4netns --configure --mtu=65520 PID tap0`,
 *   inbound ports added over its API socket
 * - veth: a veth pair from the guest to the host namespace, routed (the physical limit)
 *
 * The guest's commands run through `nsenter -t <pid of sleep T> -n` (root in the initial
 * user namespace may enter a network namespace owned by any user namespace).
 *
 * @module
 */

import { DENO, MAIN, run as runQuiet, type Topology } from "../tests/helpers/topology.ts";
import { findProcess, lastLine, must, Proc, run, sleep } from "./proc.ts";
import { ORZO_V8_FLAGS } from "../tools/v8_flags.ts";

/** The address of the "remote" server, reached by the guest through the translator. */
export const REMOTE_ADDR = "203.0.113.10";

/** Ports to forward from the host namespace to the guest. */
export interface Forwards {
  /** TCP ports (`-t`) */
  tcp: number[];
  /** UDP ports (`-u`) */
  udp: number[];
}

/** A guest network namespace behind a tool under test. */
export interface Guest {
  /** the tool's name */
  tool: string;
  /**
   * @param argv a command
   * @returns the argv that runs it in the guest namespace
   */
  exec(argv: string[]): string[];
  /** where the remote namespace connects to reach a server in the guest */
  inboundAddr: string;
  /** where the guest connects to reach a server in the host namespace, null when it cannot */
  hostAddr: string | null;
  /** the translator's PID, for CPU and memory (none for veth) */
  pid: number | null;
  /** seconds from start to a configured guest */
  startupS: number;
  /** @returns "" while the translator runs, else how it ended */
  gone(): string;
  /** stops everything started for this guest (always safe to call) */
  stop(): Promise<void>;
}

/** How a tool is started. */
export type Starter = (t: Topology, fwd: Forwards) => Promise<Guest>;

/** Debian's pasta (the `pasta-deb` column). */
export const DEBIAN_PASTA_BIN = "/usr/bin/pasta";
/** The pasta of the `pasta` column: PASTA_BIN (upstream, built from source), else Debian's. */
export const PASTA_BIN = Deno.env.get("PASTA_BIN") || DEBIAN_PASTA_BIN;

/** The ordinary user the translators run as (nobody). */
const USER = 65534;
/** Runs the rest of a command line as USER, with a home it may write to. */
const AS_USER = [
  "setpriv",
  `--reuid=${USER}`,
  `--regid=${USER}`,
  "--clear-groups",
  "env",
  "HOME=/tmp",
];

let denoDir = "";

/** @returns a DENO_DIR the user nobody may write (Deno caches transpiled modules there) */
function userDenoDir(): string {
  if (!denoDir) {
    denoDir = Deno.makeTempDirSync({ prefix: "orzo-bench-deno-" });
    Deno.chmodSync(denoDir, 0o777);
    addEventListener("unload", () => {
      try {
        Deno.removeSync(denoDir, { recursive: true });
      } catch { /* gone */ }
    });
  }
  return denoDir;
}

let seq = 0;

/** @returns a unique `sleep` argument (GNU sleep takes fractions), to find the process by */
function holderToken(): string {
  return `600.${Deno.pid}${String(++seq).padStart(4, "0")}`;
}

/**
 * @param list ports
 * @returns pasta's port-list option value
 */
function portList(list: number[]): string {
  return list.length ? list.join(",") : "none";
}

/**
 * Waits for the guest's holder process (`sleep TOKEN`) and a default route in its namespace.
 * @param translator the tool's process, checked for an early exit
 * @param holderArgv the holder's exact command line
 * @param ms deadline
 * @returns the holder's PID
 */
async function waitGuest(translator: Proc, holderArgv: string[], ms = 20000): Promise<number> {
  const end = Date.now() + ms;
  let pid = 0;
  while (Date.now() < end) {
    if (translator.exited) {
      throw new Error(`${translator.name()} exited: ${translator.lastWords()}`);
    }
    if (!pid) pid = findProcess(holderArgv);
    if (pid) {
      const r = await run(["nsenter", "-t", String(pid), "-n", "ip", "-4", "route", "show"], 5000);
      if (r.code === 0 && /^default /m.test(r.stdout)) return pid;
    }
    await sleep(50);
  }
  const last = lastLine(translator.err);
  throw new Error(
    `guest not ready within ${ms / 1000} s` + (last ? ` (${translator.name()}: ${last})` : ""),
  );
}

/**
 * Kills the holder (SIGKILL: under pasta it is PID 1 of its own PID namespace and ignores
 * SIGTERM), then stops the translator.
 * @param holderPid PID of the holder, 0 if not found
 * @param procs processes to stop, in order
 */
async function stopAll(holderPid: number, procs: (Proc | null)[]): Promise<void> {
  if (holderPid) {
    try {
      Deno.kill(holderPid, "SIGKILL");
    } catch { /* gone */ }
  }
  for (const p of procs) await p?.stop();
}

/**
 * @param fwd forwarded ports
 * @returns the pasta options common to every pasta-like tool
 */
function pastaOpts(fwd: Forwards): string[] {
  return [
    "--config-net",
    "-f",
    "-t",
    portList(fwd.tcp),
    "-u",
    portList(fwd.udp),
    "-T",
    "none",
    "-U",
    "none",
  ];
}

/**
 * Starts a pasta-like translator as the user nobody, attached by PID to the network namespace
 * of that user's `unshare -Urn` child: what RootlessKit does.
 * @param tool name for messages
 * @param argv the translator's command line up to its options (run as the user)
 * @param t topology
 * @param fwd ports forwarded from the host namespace
 * @returns the guest
 */
async function startByPid(
  tool: string,
  argv: string[],
  t: Topology,
  fwd: Forwards,
): Promise<Guest> {
  const token = holderToken();
  const holderArgv = ["sleep", token];
  const t0 = performance.now();
  const holder = new Proc(
    ["ip", "netns", "exec", t.host, ...AS_USER, "unshare", "-Urn", "--", ...holderArgv],
    900_000,
  );
  let p: Proc | null = null;
  let hpid = 0;
  try {
    for (let i = 0; i < 200 && !hpid; i++) {
      if (holder.exited) throw new Error(`unshare exited: ${holder.lastWords()}`);
      hpid = findProcess(holderArgv);
      if (!hpid) await sleep(25);
    }
    if (!hpid) throw new Error("namespace holder did not start");
    p = new Proc(
      ["ip", "netns", "exec", t.host, ...AS_USER, ...argv, ...pastaOpts(fwd), String(hpid)],
      900_000,
    );
    await waitGuest(p, holderArgv);
  } catch (e) {
    await stopAll(hpid, [p, holder]);
    throw e;
  }
  const translator = p;
  /* pasta maps the gateway's address to the host's loopback */
  return translatorGuest(
    tool,
    translator,
    hpid,
    "198.51.100.1",
    t0,
    () => stopAll(hpid, [translator, holder]),
  );
}

/**
 * The guest of a translator serving the namespace of a holder process.
 * @param tool name for messages
 * @param translator its process
 * @param hpid the holder's PID (its network namespace is the guest's)
 * @param hostAddr where the guest reaches the host namespace, null when it cannot
 * @param t0 when the start began (performance.now())
 * @param stop stops everything started for this guest
 * @returns the guest
 */
function translatorGuest(
  tool: string,
  translator: Proc,
  hpid: number,
  hostAddr: string | null,
  t0: number,
  stop: () => Promise<void>,
): Guest {
  const pidArg = String(hpid);
  return {
    tool,
    exec: (a) => ["nsenter", "-t", pidArg, "-n", "--", ...a],
    inboundAddr: "198.51.100.2",
    hostAddr,
    pid: translator.pid,
    startupS: (performance.now() - t0) / 1000,
    gone: () => translator.exited ? `${tool} exited, ${translator.lastWords()}` : "",
    stop,
  };
}

/**
 * Starts a pasta-compatible translator with a holder command.
 * @param tool name for messages
 * @param argv the translator's command line up to its options
 * @param t topology
 * @param fwd ports forwarded from the host namespace
 * @returns the guest
 */
async function startPastaLike(
  tool: string,
  argv: string[],
  t: Topology,
  fwd: Forwards,
): Promise<Guest> {
  const token = holderToken();
  const holder = ["sleep", token];
  const t0 = performance.now();
  const p = new Proc([
    "ip",
    "netns",
    "exec",
    t.host,
    ...argv,
    ...pastaOpts(fwd),
    "--",
    ...holder,
  ], 900_000);
  let hpid = 0;
  try {
    hpid = await waitGuest(p, holder);
  } catch (e) {
    hpid = findProcess(holder);
    await stopAll(hpid, [p]);
    throw e;
  }
  return translatorGuest(tool, p, hpid, "198.51.100.1", t0, () => stopAll(hpid, [p]));
}

/** Extra `deno run` options for orzo (BENCH_ORZO_FLAGS, e.g. `--v8-flags=--perf-basic-prof`). */
const ORZO_FLAGS = (Deno.env.get("BENCH_ORZO_FLAGS") ?? "").split(/\s+/).filter(Boolean);

/** orzo in pasta mode, as the user nobody, attached by PID. */
export const startOrzo: Starter = (t, fwd) =>
  startByPid(
    "orzo",
    [
      `DENO_DIR=${userDenoDir()}`,
      "DENO_NO_UPDATE_CHECK=1",
      DENO,
      "run",
      "--quiet",
      "--allow-ffi",
      ORZO_V8_FLAGS,
      ...ORZO_FLAGS,
      MAIN,
      "--pasta",
    ],
    t,
    fwd,
  );

/** orzo in pasta mode, as root, spawning the guest's holder command. */
export const startOrzoRoot: Starter = (t, fwd) =>
  startPastaLike(
    "orzo-root",
    [DENO, "run", "--allow-ffi", ORZO_V8_FLAGS, ...ORZO_FLAGS, MAIN, "--pasta"],
    t,
    fwd,
  );

/** pasta (PASTA_BIN), as the user nobody, attached by PID. */
export const startPasta: Starter = (t, fwd) => startByPid("pasta", [PASTA_BIN], t, fwd);

/** Debian's pasta, as the user nobody, attached by PID. */
export const startDebianPasta: Starter = (t, fwd) =>
  startByPid("pasta-deb", [DEBIAN_PASTA_BIN], t, fwd);

/**
 * Sends one request to slirp4netns's API socket.
 * @param path socket path
 * @param req the request
 * @returns the reply
 */
async function slirpApi(path: string, req: unknown): Promise<string> {
  let conn: Deno.UnixConn | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    /* slirp4netns may configure the guest before its API socket listens */
    for (let i = 0;; i++) {
      try {
        conn = await Deno.connect({ transport: "unix", path });
        break;
      } catch (e) {
        const early = e instanceof Deno.errors.NotFound ||
          e instanceof Deno.errors.ConnectionRefused;
        if (!early || i >= 100) throw new Error(`API socket ${path}: ${e}`);
        await sleep(50);
      }
    }
    timer = setTimeout(() => conn?.close(), 5000);
    await conn.write(new TextEncoder().encode(JSON.stringify(req)));
    await conn.closeWrite();
    const buf = new Uint8Array(4096);
    let reply = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      reply += new TextDecoder().decode(buf.subarray(0, n));
    }
    return reply;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}

/** slirp4netns with the options Podman uses for speed (MTU 65520, no host loopback). */
export const startSlirp: Starter = async (t, fwd) => {
  const token = holderToken();
  const holderArgv = ["sleep", token];
  const t0 = performance.now();
  const holder = new Proc(
    ["ip", "netns", "exec", t.host, "unshare", "--net", "--", ...holderArgv],
    900_000,
  );
  const sock = `/tmp/orzo-bench-slirp-${Deno.pid}-${seq}.sock`;
  let slirp: Proc | null = null;
  const cleanup = async () => {
    await stopAll(0, [slirp, holder]);
    await Deno.remove(sock).catch(() => {});
  };
  let hpid = 0;
  try {
    for (let i = 0; i < 200 && !hpid; i++) {
      if (holder.exited) throw new Error(`unshare exited: ${holder.lastWords()}`);
      hpid = findProcess(holderArgv);
      if (!hpid) await sleep(25);
    }
    if (!hpid) throw new Error("namespace holder did not start");
    slirp = new Proc([
      "ip",
      "netns",
      "exec",
      t.host,
      "slirp4netns",
      "--configure",
      "--mtu=65520",
      "--disable-host-loopback",
      "--api-socket",
      sock,
      String(hpid),
      "tap0",
    ], 900_000);
    await waitGuest(slirp, holderArgv);
    for (const [proto, ports] of [["tcp", fwd.tcp], ["udp", fwd.udp]] as const) {
      for (const port of ports) {
        const reply = await slirpApi(sock, {
          execute: "add_hostfwd",
          arguments: { proto, "host_addr": "0.0.0.0", "host_port": port, "guest_port": port },
        });
        if (!reply.includes('"return"')) throw new Error(`add_hostfwd ${proto}/${port}: ${reply}`);
      }
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  /* --disable-host-loopback: no way to the host */
  return translatorGuest("slirp4netns", slirp!, hpid, null, t0, cleanup);
};

/**
 * A veth pair between a guest namespace (10.200.0.2/24, default via 10.200.0.1) and the host
 * namespace, which forwards; the remote namespace routes 10.200.0.0/24 back through the host.
 * Inbound traffic goes straight to 10.200.0.2 (routing, no translation).
 */
export const startVeth: Starter = async (t) => {
  const t0 = performance.now();
  const g = `orzo-g-${Deno.pid}-${++seq}`;
  /* not through a Proc: an interrupt must not kill the clean-up */
  const stop = async () => {
    await runQuiet(["ip", "netns", "del", g]);
  };
  try {
    await must(["ip", "netns", "add", g]);
    const h = (a: string[]) => must(["ip", "-n", t.host, ...a]);
    const gg = (a: string[]) => must(["ip", "-n", g, ...a]);
    await h(["link", "add", "veth-g", "type", "veth", "peer", "name", "eth0", "netns", g]);
    await h(["addr", "add", "10.200.0.1/24", "dev", "veth-g"]);
    await h(["link", "set", "veth-g", "up"]);
    await gg(["link", "set", "lo", "up"]);
    await gg(["addr", "add", "10.200.0.2/24", "dev", "eth0"]);
    await gg(["link", "set", "eth0", "up"]);
    await gg(["route", "add", "default", "via", "10.200.0.1"]);
    await must(["ip", "netns", "exec", t.host, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await must(["ip", "-n", t.remote, "route", "add", "10.200.0.0/24", "via", "198.51.100.2"]);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    tool: "veth",
    exec: (a) => ["ip", "netns", "exec", g, ...a],
    inboundAddr: "10.200.0.2",
    hostAddr: "10.200.0.1",
    pid: null,
    startupS: (performance.now() - t0) / 1000,
    gone: () => "",
    stop,
  };
};

/** Every tool, in table order. */
export const TOOLS: Record<string, Starter> = {
  orzo: startOrzo,
  "orzo-root": startOrzoRoot,
  pasta: startPasta,
  "pasta-deb": startDebianPasta,
  slirp4netns: startSlirp,
  veth: startVeth,
};

/** The tools run when BENCH_TOOLS is not set. */
export const DEFAULT_TOOLS: readonly string[] = [
  "orzo",
  "pasta",
  "pasta-deb",
  "slirp4netns",
  "veth",
];
