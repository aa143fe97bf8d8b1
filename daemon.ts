/**
 * daemon.ts - going to the background once ready, as pasta does without -f.
 *
 * Deno cannot fork(), so orzo starts itself again as a new session leader
 * with a pipe on fd DAEMON_FD and waits: the background copy does the whole
 * set-up, writes the PID file, moves its standard streams to /dev/null and
 * reports "ready" (or its one-line error) through the pipe. The foreground
 * copy then exits 0 (or prints the error and exits 1), so that callers such
 * as Podman see the network ready when orzo returns.
 *
 * @module
 */

import { libc } from "./ffi/libc.ts";
import { check } from "./ffi/errno.ts";
import { cString, getEnv } from "./ffi/mem.ts";
import { setEnv, spawn } from "./ffi/proc.ts";
import { O_CLOEXEC, O_RDWR } from "./ffi/layout.ts";
import { selfArgv } from "./ns/userns.ts";

/** Environment variable telling the background copy its pipe fd. */
export const DAEMON_ENV = "ORZO_DAEMON_FD";
/** The fd number of the pipe in the background copy. */
export const DAEMON_FD = 3;

/**
 * Whether this process is the background copy.
 * @returns true when started by daemonize()
 */
export function isDaemonChild(): boolean {
  return getEnv(DAEMON_ENV) !== undefined;
}

/**
 * Starts the background copy and waits for its report.
 * @returns the exit code for the foreground copy: 0 when the background copy
 *   is ready, 1 when it failed (its error is printed by the caller)
 */
export function daemonize(): { code: number; error: string } {
  const fds = new Int32Array(2);
  check(libc.symbols.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), "pipe2");
  setEnv(DAEMON_ENV, String(DAEMON_FD));
  const pid = spawn(selfArgv(), { setsid: true, fds: [[DAEMON_FD, fds[1]!]] });
  libc.symbols.close(fds[1]!);
  const buf = new Uint8Array(4096);
  let got = 0;
  for (;;) {
    const n = libc.symbols.read(fds[0]!, buf.subarray(got), buf.length - got);
    if (n <= 0) break;
    got += n;
    if (got === buf.length) break;
  }
  libc.symbols.close(fds[0]!);
  const msg = new TextDecoder().decode(buf.subarray(0, got));
  if (msg === "ready") return { code: 0, error: "" };
  return { code: 1, error: msg || `background process ${pid} exited during set-up` };
}

/**
 * In the background copy: report the outcome of the set-up to the waiting
 * foreground copy, and on success detach the standard streams.
 * @param error null when ready, otherwise the one-line error
 */
export function daemonReport(error: string | null): void {
  if (error === null) {
    const devnull = libc.symbols.open(cString("/dev/null"), O_RDWR | O_CLOEXEC, 0);
    if (devnull >= 0) {
      libc.symbols.dup2(devnull, 0);
      libc.symbols.dup2(devnull, 1);
      libc.symbols.dup2(devnull, 2);
      libc.symbols.close(devnull);
    }
  }
  const b = new TextEncoder().encode(error ?? "ready");
  libc.symbols.write(DAEMON_FD, b, b.length);
  libc.symbols.close(DAEMON_FD);
}
