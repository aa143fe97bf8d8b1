/**
 * topology.ts - the hermetic test world of DESIGN.md.
 *
 * ```
 *  [remote ns]  veth 198.51.100.1/24, 2001:db8:1::1/64; lo: 203.0.113.10, 2001:db8:2::10
 *       | veth pair ("the internet")
 *  [host ns]    eth0 198.51.100.2/24 + default via .1; 2001:db8:1::2/64 + default via ::1
 *       |  orzo --pasta runs here
 *  [guest ns]   tap created by orzo
 * ```
 *
 * Nothing in it can reach the machine's real network: the host namespace's
 * only link leads to the remote namespace. Every process started through it
 * has a deadline; destroy() removes both namespaces.
 *
 * @module
 */

/** Result of a command. */
export interface RunResult {
  /** exit status */
  code: number;
  /** standard output */
  stdout: string;
  /** standard error */
  stderr: string;
}

/** Absolute path of the repository. */
export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The pinned deno binary. */
export const DENO = `${REPO}/tools/deno/node_modules/.bin/deno`;
/** orzo's entry point. */
export const MAIN = `${REPO}/main.ts`;

/** Permissions of the test helpers (peers, servers) run by {@linkcode denoIn}: all of them. */
export const HELPER_PERMS: readonly string[] = ["-A", "--unstable-net"];
/** Permissions orzo runs with (its entry point, main.ts). */
export const ORZO_PERMS: readonly string[] = ["--allow-ffi"];

/** How {@linkcode denoIn} runs a script. */
export interface DenoInOptions {
  /** Deno's permission flags (default HELPER_PERMS) */
  perms?: readonly string[];
  /** environment variables set for the script only (through env(1)) */
  env?: Record<string, string>;
  /** a nice(1) increment, to run it at a lower priority */
  nice?: number;
}

/**
 * The argv that runs a Deno script (a test helper, or orzo's main.ts) inside
 * a network namespace with the pinned deno.
 * @param ns the namespace's name (ip netns), or null for the test's own
 * @param script the script's path
 * @param args its arguments
 * @param opts permissions, environment, priority
 * @returns the argv, for run(), background() or Deno.Command
 */
export function denoIn(
  ns: string | null,
  script: string,
  args: readonly string[] = [],
  opts: DenoInOptions = {},
): string[] {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return [
    ...(ns === null ? [] : ["ip", "netns", "exec", ns]),
    ...(opts.nice === undefined ? [] : ["nice", "-n", `${opts.nice}`]),
    ...(env.length === 0 ? [] : ["env", ...env]),
    DENO,
    "run",
    ...(opts.perms ?? HELPER_PERMS),
    script,
    ...args,
  ];
}

/**
 * The shell command that runs a Deno script, for `sh -c` scripts (in a
 * namespace already): `${denoSh(TCP_PEER)} serve-echo :: 9000 &`.
 * @param script the script's path (no spaces)
 * @param perms Deno's permission flags
 * @returns the command, arguments to follow
 */
export function denoSh(script: string, perms: readonly string[] = HELPER_PERMS): string {
  return denoIn(null, script, [], { perms }).join(" ");
}

/** The user "nobody". */
export const NOBODY = 65534;

/**
 * The argv prefix that runs a command as an ordinary user (setpriv, no
 * supplementary groups, HOME=/tmp): what an unprivileged caller is.
 * @param uid the user and group id
 * @returns the prefix, the command to follow
 */
export function asUser(uid: number = NOBODY): string[] {
  return ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "env", "HOME=/tmp"];
}

/**
 * The argv that runs orzo inside a network namespace.
 * @param ns the namespace's name, or null for the test's own
 * @param args orzo's arguments (`--pasta` first for pasta mode)
 * @returns the argv
 */
export function orzoIn(ns: string | null, args: readonly string[]): string[] {
  return denoIn(ns, MAIN, args, { perms: ORZO_PERMS });
}

/* Deno's background version check (a DNS query, then HTTPS) runs whenever
 * orzo's loop yields to the runtime: never from a test */
Deno.env.set("DENO_NO_UPDATE_CHECK", "1");

/**
 * Runs a command with a deadline.
 * @param argv program and arguments
 * @param opts timeout in ms (default 30 s), extra environment, stdin text
 * @returns exit status and output
 */
export async function run(
  argv: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; stdin?: string } = {},
): Promise<RunResult> {
  const cmd = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: opts.stdin !== undefined ? "piped" : "null",
    env: opts.env,
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 30000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Runs a command and throws when it fails.
 * @param argv program and arguments
 * @returns its standard output
 */
export async function sh(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) {
    throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

let counter = 0;

/** The host and remote namespaces of one test. */
export class Topology {
  /** name of the "host" namespace where orzo runs */
  readonly host: string;
  /** name of the "remote" namespace (the internet) */
  readonly remote: string;

  private constructor(host: string, remote: string) {
    this.host = host;
    this.remote = remote;
  }

  /**
   * Builds the topology.
   * @param opts `noDefaultRoute` leaves the host without default routes (local mode);
   *   `v4Only` gives the host no IPv6 addresses
   * @returns the topology; call destroy() in a finally block
   */
  static async create(
    opts: { noDefaultRoute?: boolean; v4Only?: boolean } = {},
  ): Promise<Topology> {
    /* /run/netns is shared with processes of other PID namespaces: the PID
     * alone is not unique, and a name that is taken is not ours to delete */
    const id = `${Deno.pid}-${counter++}-${crypto.randomUUID().slice(0, 6)}`;
    const t = new Topology(`orzo-h-${id}`, `orzo-r-${id}`);
    await sh(["ip", "netns", "add", t.host]);
    try {
      await sh(["ip", "netns", "add", t.remote]);
    } catch (e) {
      await run(["ip", "netns", "del", t.host]);
      throw e;
    }
    try {
      const r = (a: string[]) => sh(["ip", "-n", t.remote, ...a]);
      const h = (a: string[]) => sh(["ip", "-n", t.host, ...a]);
      await r(["link", "add", "veth-r", "type", "veth", "peer", "name", "eth0", "netns", t.host]);
      await r(["link", "set", "lo", "up"]);
      await r(["addr", "add", "198.51.100.1/24", "dev", "veth-r"]);
      await r(["addr", "add", "203.0.113.10/32", "dev", "lo"]);
      if (!opts.v4Only) {
        await r(["addr", "add", "2001:db8:1::1/64", "dev", "veth-r", "nodad"]);
        await r(["addr", "add", "2001:db8:2::10/128", "dev", "lo"]);
      }
      await r(["link", "set", "veth-r", "up"]);
      /* link-local addresses usable at once (no duplicate address
       * detection), as translators want one on their template interface */
      await sh([
        "ip",
        "netns",
        "exec",
        t.host,
        "sysctl",
        "-qw",
        "net.ipv6.conf.eth0.accept_dad=0",
      ]);
      await h(["link", "set", "lo", "up"]);
      await h(["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
      if (!opts.v4Only) await h(["addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"]);
      await h(["link", "set", "eth0", "up"]);
      if (!opts.v4Only) {
        /* wait for eth0's link-local address: translators take their
         * IPv6 template only from an interface that has one */
        for (let i = 0; i < 100; i++) {
          const a = await run(["ip", "-n", t.host, "-6", "-o", "addr", "show", "dev", "eth0"]);
          if (/ fe80::\S+ scope link(?! .*tentative)/.test(a.stdout)) break;
          await new Promise((res) => setTimeout(res, 30));
        }
      }
      if (!opts.noDefaultRoute) {
        await h(["route", "add", "default", "via", "198.51.100.1"]);
        if (!opts.v4Only) await h(["-6", "route", "add", "default", "via", "2001:db8:1::1"]);
      }
    } catch (e) {
      await t.destroy();
      throw e;
    }
    return t;
  }

  /**
   * Runs a command in the host namespace.
   * @param argv program and arguments
   * @param opts see run()
   * @returns exit status and output
   */
  inHost(
    argv: string[],
    opts: { timeoutMs?: number; env?: Record<string, string>; stdin?: string } = {},
  ): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.host, ...argv], opts);
  }

  /**
   * Sets a sysctl in the host namespace (`sysctl -qw KEY=VALUE`).
   * @param setting KEY=VALUE
   * @returns exit status and output
   */
  hostSysctl(setting: string): Promise<RunResult> {
    return this.inHost(["sysctl", "-qw", setting]);
  }

  /**
   * Runs orzo (pasta mode) in the host namespace.
   * @param args orzo's arguments after `--pasta`
   * @param opts see run()
   * @returns exit status and output
   */
  orzo(
    args: string[],
    opts: { timeoutMs?: number; stdin?: string; env?: Record<string, string> } = {},
  ): Promise<RunResult> {
    return run(orzoIn(this.host, ["--pasta", ...args]), opts);
  }

  /** Removes both namespaces (and with them the veth pair). */
  async destroy(): Promise<void> {
    await run(["ip", "netns", "del", this.host]);
    await run(["ip", "netns", "del", this.remote]);
  }
}

/** A process started in the background by a test. */
export interface Background {
  /** the child process */
  child: Deno.ChildProcess;
  /** kills it (by its PID) and waits for it */
  stop(): Promise<void>;
}

/**
 * Starts a process in the background and waits until it prints `ready` on
 * standard output (when given). It is killed after `timeoutMs` in any case.
 * @param argv program and arguments
 * @param opts `ready`: text to wait for; `timeoutMs`: deadline (default 60 s)
 * @returns the process handle; call stop() in a finally block
 */
export async function background(
  argv: string[],
  opts: { ready?: string; timeoutMs?: number } = {},
): Promise<Background> {
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: opts.ready !== undefined ? "piped" : "null",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  const timer = setTimeout(() => {
    if (!done) child.kill("SIGKILL");
  }, opts.timeoutMs ?? 60000);
  const stop = async () => {
    clearTimeout(timer);
    if (!done) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await status;
  };
  if (opts.ready !== undefined) {
    const reader = child.stdout.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!text.includes(opts.ready)) {
      const r = await Promise.race([
        reader.read(),
        new Promise<null>((res) => setTimeout(() => res(null), 10000)),
      ]);
      if (r === null || r.done) {
        await stop();
        throw new Error(`${argv.join(" ")} did not print "${opts.ready}"`);
      }
      text += dec.decode(r.value);
    }
    /* keep draining so that the child never blocks on a full pipe */
    (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch { /* closed */ }
    })();
  }
  return { child, stop };
}

/** The TCP test peer script (servers and clients), see tcp_peer.ts. */
export const TCP_PEER = `${REPO}/tests/helpers/tcp_peer.ts`;
/** The UDP test peer script (echo servers, clients), see udp_peer.ts. */
export const UDP_PEER = `${REPO}/tests/helpers/udp_peer.ts`;
/** The script that writes raw frames to an interface (AF_PACKET), see inject.ts. */
export const INJECT = `${REPO}/tests/helpers/inject.ts`;
/** The server that records its peers' addresses, see record_server.ts. */
export const RECORD_SERVER = `${REPO}/tests/helpers/record_server.ts`;
