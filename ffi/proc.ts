/**
 * proc.ts - processes: pidfds, exit statuses, exec and spawn from the main thread.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { errno, SysError } from "./errno.ts";
import { cString, readFileBytes } from "./mem.ts";
import { SYS_PIDFD_OPEN } from "./layout.ts";

const WNOHANG = 1;
const statusBuf = new Int32Array(1);

/**
 * Opens a pidfd for a process (readable once it exits).
 * @param pid the process
 * @returns the pidfd, or -errno
 */
export function pidfdOpen(pid: number): number {
  const r = Number(libc.symbols.syscall(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n));
  return r < 0 ? -errno() : r;
}

/**
 * Reaps a child without blocking.
 * @param pid the child
 * @returns its exit code as a shell reports it (128+signal when killed),
 *   or -1 when it has not exited yet
 */
export function reap(pid: number): number {
  const r = libc.symbols.waitpid(pid, new Uint8Array(statusBuf.buffer), WNOHANG);
  if (r <= 0) return -1;
  return exitCodeOf(statusBuf[0]!);
}

/**
 * Turns a wait status into a shell-style exit code.
 * @param status the raw wait status
 * @returns exit code, or 128 + signal number
 */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  if (sig === 0) return (status >> 8) & 0xff;
  return 128 + sig;
}

/**
 * Reads a process's command line (argv) from /proc.
 * @param pid process id, or "self"
 * @returns its arguments
 */
export function procCmdline(pid: number | "self"): string[] {
  const b = readFileBytes(`/proc/${pid}/cmdline`);
  const out: string[] = [];
  const dec = new TextDecoder();
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(dec.decode(b.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < b.length) out.push(dec.decode(b.subarray(start)));
  return out;
}

/**
 * Sets an environment variable of this process (seen by exec and spawn).
 * @param name variable
 * @param value value
 */
export function setEnv(name: string, value: string): void {
  libc.symbols.setenv(cString(name), cString(value), 1);
}

/**
 * Replaces this process with another program, looked up in PATH.
 * @param argv program and arguments
 * @throws SysError when exec fails (it does not return otherwise)
 */
export function execvp(argv: string[]): never {
  const strs = argv.map(cString);
  const ptrs = new BigUint64Array(strs.length + 1);
  for (let i = 0; i < strs.length; i++) {
    ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(strs[i]!)));
  }
  libc.symbols.execvp(strs[0]!, new Uint8Array(ptrs.buffer));
  throw new SysError(`Cannot run "${argv[0]}"`, errno());
}

/** POSIX_SPAWN_SETSID (glibc). */
const POSIX_SPAWN_SETSID = 0x80;
/** POSIX_SPAWN_SETSIGMASK */
const POSIX_SPAWN_SETSIGMASK = 0x08;
/** POSIX_SPAWN_SETSIGDEF */
const POSIX_SPAWN_SETSIGDEF = 0x04;

/**
 * Spawns a program from the main thread (in the host's namespaces).
 * @param argv program (looked up in PATH) and arguments
 * @param opts `setsid` to start a new session; `fds` maps child fd numbers to
 *   our fds (dup2 in the child); `env` the environment (default: ours)
 * @returns the child's PID
 * @throws SysError when it cannot be started
 */
export function spawn(
  argv: string[],
  opts: { setsid?: boolean; fds?: [number, number][]; env?: string[] } = {},
): number {
  const args = cStringArray(argv);
  const env = cStringArray(opts.env ?? environWith());
  const attr = new Uint8Array(336);
  const fa = new Uint8Array(80);
  const sigs = new Uint8Array(128);
  libc.symbols.posix_spawnattr_init(attr);
  libc.symbols.posix_spawn_file_actions_init(fa);
  libc.symbols.posix_spawnattr_setsigmask(attr, sigs);
  sigs.fill(0xff);
  libc.symbols.posix_spawnattr_setsigdefault(attr, sigs);
  libc.symbols.posix_spawnattr_setflags(
    attr,
    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (opts.setsid ? POSIX_SPAWN_SETSID : 0),
  );
  let keep = 2;
  for (const [child, ours] of opts.fds ?? []) {
    libc.symbols.posix_spawn_file_actions_adddup2(fa, ours, child);
    if (child > keep) keep = child;
  }
  /* Deno holds descriptors without FD_CLOEXEC (copies of stdio among them):
   * the child gets none of them, or it would hold our caller's pipes open */
  libc.symbols.posix_spawn_file_actions_addclosefrom_np(fa, keep + 1);
  const pid = new Int32Array(1);
  const rc = libc.symbols.posix_spawnp(
    new Uint8Array(pid.buffer),
    args.keep[0]!,
    fa,
    attr,
    args.ptrs,
    env.ptrs,
  );
  libc.symbols.posix_spawnattr_destroy(attr);
  libc.symbols.posix_spawn_file_actions_destroy(fa);
  if (rc !== 0) throw new SysError(`Cannot start "${argv[0]}"`, rc);
  return pid[0]!;
}

/**
 * The environment this process was started with (/proc/self/environ),
 * with `extra` entries added or replacing ones of the same name. libc's
 * `environ` is not used: a static read through FFI is a snapshot, stale
 * after setenv().
 * @param extra variables to set
 * @param drop a prefix of names to leave out
 * @returns NAME=value strings
 */
export function environWith(extra: Record<string, string> = {}, drop?: string): string[] {
  const raw = new TextDecoder().decode(readFileBytes("/proc/self/environ"));
  const out: string[] = [];
  for (const kv of raw.split("\0")) {
    if (kv === "") continue;
    const name = kv.slice(0, kv.indexOf("="));
    if (name in extra) continue;
    if (drop !== undefined && name.startsWith(drop)) continue;
    out.push(kv);
  }
  for (const [k, v] of Object.entries(extra)) out.push(`${k}=${v}`);
  return out;
}

/**
 * Builds a NULL-terminated `char *[]` from strings.
 * @param strs the strings
 * @returns the pointer array and the C strings it points to (keep both alive)
 */
export function cStringArray(
  strs: string[],
): { ptrs: Uint8Array<ArrayBuffer>; keep: Uint8Array<ArrayBuffer>[] } {
  const keep = strs.map(cString);
  const ptrs = new BigUint64Array(keep.length + 1);
  for (let i = 0; i < keep.length; i++) {
    ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(keep[i]!)));
  }
  return { ptrs: new Uint8Array(ptrs.buffer), keep };
}

/**
 * Counts this process's open file descriptors below `limit` (fcntl probe).
 * @param limit highest fd number to probe, exclusive
 * @returns the number of open fds
 */
export function fdCount(limit = 4096): number {
  let n = 0;
  for (let fd = 0; fd < limit; fd++) if (libc.symbols.fcntl(fd, 1, /* F_GETFD */ 0) >= 0) n++;
  return n;
}
