/**
 * daemon.ts - going to the background once ready, as pasta does without -f.
 *
 * Deno cannot fork(), so orzo starts itself again as a new session leader and
 * waits. The background copy gets /dev/null as standard input and output,
 * and one pipe as both standard error and fd DAEMON_FD: everything it logs
 * during set-up reaches the foreground copy, which relays it to its own
 * standard error. When the network is ready the background copy writes the
 * PID file, then DAEMON_READY on DAEMON_FD, and moves standard error to
 * /dev/null; the foreground copy exits 0. If set-up fails the background copy
 * prints its one-line error and exits, the pipe reaches end-of-file, and the
 * foreground copy exits 1. The pipe must not be the caller's: Deno keeps
 * private duplicates of its standard streams, which would hold a caller's
 * pipe (Podman's, a test's) open after the foreground copy is gone.
 *
 * @module
 */

import { libc } from "./ffi/libc.ts";
import { check, ERRNO, errno } from "./ffi/errno.ts";
import { cString, getEnv } from "./ffi/mem.ts";
import { environWith, spawn } from "./ffi/proc.ts";
import { O_CLOEXEC, O_RDWR } from "./ffi/layout.ts";
import { selfArgv } from "./ns/userns.ts";

/** Environment variable telling the background copy its report fd. */
export const DAEMON_ENV = "ORZO_DAEMON_FD";
/** The fd number of the report pipe in the background copy. */
export const DAEMON_FD = 3;
/** What the background copy writes when ready: cannot occur in log text. */
export const DAEMON_READY = "\0ready\n";

/**
 * Whether this process is the background copy.
 * @returns true when started by daemonize()
 */
export function isDaemonChild(): boolean {
  return getEnv(DAEMON_ENV) !== undefined;
}

function openDevNull(): number {
  return check(libc.symbols.open(cString("/dev/null"), O_RDWR | O_CLOEXEC, 0), "open /dev/null");
}

/**
 * Starts the background copy, relays its set-up messages, waits for its report.
 * @param keep descriptors the background copy inherits as they are (passt's --fd)
 * @returns 0 when the background copy is ready, 1 when it failed (it has
 *   already printed why)
 */
export function daemonize(keep: readonly number[] = []): number {
  const fds = new Int32Array(2);
  check(libc.symbols.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), "pipe2");
  const devnull = openDevNull();
  const env = environWith({ [DAEMON_ENV]: String(DAEMON_FD) });
  try {
    spawn(selfArgv(), {
      setsid: true,
      fds: [
        [0, devnull],
        [1, devnull],
        [2, fds[1]!],
        [DAEMON_FD, fds[1]!],
        ...keep.map((fd): [number, number] => [fd, fd]),
      ],
      env,
    });
  } finally {
    libc.symbols.close(fds[1]!);
    libc.symbols.close(devnull);
  }
  /* log text has no NUL byte: the first one starts DAEMON_READY */
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = libc.symbols.read(fds[0]!, buf, buf.length);
    if (n < 0 && errno() === ERRNO.EINTR) continue;
    if (n <= 0) break;
    const nul = buf.subarray(0, n).indexOf(0);
    const text = nul < 0 ? n : nul;
    if (text > 0) libc.symbols.write(2, buf, text);
    if (nul >= 0) {
      libc.symbols.close(fds[0]!);
      return 0;
    }
  }
  libc.symbols.close(fds[0]!);
  return 1;
}

/**
 * In the background copy, once ready: tell the foreground copy, and move
 * standard error away from the report pipe.
 */
export function daemonReady(): void {
  const b = new TextEncoder().encode(DAEMON_READY);
  libc.symbols.write(DAEMON_FD, b, b.length);
  libc.symbols.close(DAEMON_FD);
  const devnull = openDevNull();
  libc.symbols.dup2(devnull, 2);
  libc.symbols.close(devnull);
}
