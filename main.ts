/**
 * main.ts - orzo's command-line entry point.
 *
 * `deno run --allow-ffi main.ts --pasta [OPTIONS] [-- CMD...]` runs pasta
 * mode; without `--pasta`, passt mode; `ctl SOCKET ...` talks to a running
 * one's control socket (fwd/ctl_client.ts). A program (or link, or launcher with
 * ORZO_ARGV0) named `pasta` behaves as `--pasta`. Any set-up error ends here
 * as one line on standard error and a non-zero exit status.
 *
 * @module
 */

import { confParse, USAGE_TEXT, VERSION } from "./conf/conf.ts";
import { ConfError } from "./conf/errors.ts";
import { SysError } from "./ffi/errno.ts";
import { getEnv, readLink } from "./ffi/mem.ts";
import { procCmdline } from "./ffi/proc.ts";
import { LOG_DEBUG, LOG_INFO, LOG_TRACE, LOG_WARN, logOpenFile, logSetLevel, warn } from "./log.ts";
import { NsError } from "./ns/ns.ts";
import { unsupported } from "./unsupported.ts";

/**
 * The name this program was started as (pasta or orzo), for messages and the
 * mode choice.
 * @returns the base name of argv[0], or of ORZO_ARGV0 when a launcher set it
 */
function programName(): string {
  const fromEnv = getEnv("ORZO_ARGV0");
  let a0 = fromEnv ?? procCmdline("self")[0] ?? "orzo";
  if (fromEnv === undefined && /deno$/.test(a0)) a0 = readLink("/proc/self/exe") ?? a0;
  const base = a0.slice(a0.lastIndexOf("/") + 1);
  return base;
}

/**
 * Runs orzo with the given arguments.
 * @param args command-line arguments (without the program name)
 * @returns the exit status
 */
export async function main(args: string[]): Promise<number> {
  const prog = programName();
  const name = /pasta/.test(prog) ? "pasta" : "orzo";
  const w = (s: string) => {
    const b = new TextEncoder().encode(s);
    Deno.stdout.writeSync(b);
  };
  if (args[0] === "ctl") {
    /* orzo ctl SOCKET OP ...: a client of a running orzo's control socket */
    const { ctlMain } = await import("./fwd/ctl_client.ts");
    const e = (s: string) => Deno.stderr.writeSync(new TextEncoder().encode(`${name} ctl: ${s}`));
    return ctlMain(args.slice(1), w, e);
  }
  try {
    const conf = confParse(args, { argv0Pasta: name === "pasta" });
    if (conf.help) {
      w(USAGE_TEXT);
      return 0;
    }
    if (conf.version) {
      w(name === "orzo" ? `orzo ${VERSION}\n` : `${name} (orzo) ${VERSION}\n`);
      return 0;
    }
    if (conf.printCapabilities) {
      /* vhost-user's back-end convention: JSON on stdout, exit 0, only from
       * a program that is a vhost-user back-end. orzo is none yet: claiming
       * {"type": "net"} would send the caller on to a --vhost-user start
       * that fails; saying so now lets it pick another back-end. */
      throw new ConfError(
        "--print-capabilities: no vhost-user back-end in this build (--vhost-user is not supported yet)",
      );
    }
    if (conf.trace) logSetLevel(LOG_TRACE);
    else if (conf.debug) logSetLevel(LOG_DEBUG);
    else if (conf.quiet) logSetLevel(LOG_WARN);
    else logSetLevel(LOG_INFO);
    if (conf.logFile !== undefined) logOpenFile(conf.logFile, conf.logSize ?? 1 << 20);
    for (const w of conf.warnings) warn(w);
    unsupported(conf);
    if (conf.mode === "pasta") {
      const { pastaMain } = await import("./pasta.ts");
      return await pastaMain(conf);
    }
    const { passtMain } = await import("./passt.ts");
    return await passtMain(conf);
  } catch (e) {
    const msg = e instanceof ConfError || e instanceof SysError || e instanceof NsError
      ? e.message
      : e instanceof Error
      ? `Internal error: ${e.message}`
      : `Internal error: ${e}`;
    const b = new TextEncoder().encode(`${name}: ${msg}\n`);
    Deno.stderr.writeSync(b);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
