/**
 * fds.ts - closing the file descriptors orzo inherited from its caller, as
 * pasta closes everything above standard error when it starts.
 *
 * orzo cannot close everything above 2: by the time its first line runs,
 * Deno has opened descriptors of its own (epoll and eventfd of its runtime,
 * sockets of its inspector plumbing, SQLite caches, private duplicates of
 * standard output and error), and they sit between inherited ones (measured:
 * with `exec 7</etc/hostname 9</etc/passwd` in the calling shell, Deno's own
 * were 3-6, 8 and 10-22, the inherited ones 7 and 9). But every descriptor
 * Deno opens carries FD_CLOEXEC (Rust and SQLite open with O_CLOEXEC,
 * checked with strace: only transient /dev/urandom reads at start-up do
 * not), and a descriptor that survived execve() cannot have had it. So the
 * inherited descriptors are exactly those above 2 without FD_CLOEXEC, with
 * one exception: V8 opens its profiler output (`--perf-basic-prof`'s
 * /tmp/perf-PID.map, `--perf-prof`'s jit-PID.dump) without it, and closing
 * that left perf with the names of the code compiled before start-up only.
 * A descriptor open on a file of that name for this PID is left open.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { procDirNumbers } from "../ffi/proc_dir.ts";
import { F_GETFD, FD_CLOEXEC } from "../ffi/layout.ts";
import { readLink } from "../ffi/mem.ts";

/**
 * Lists this process's open descriptors (from /proc/self/fd).
 * @returns the descriptor numbers, ascending; empty when /proc is not there
 */
export function openFds(): number[] {
  return procDirNumbers("/proc/self/fd");
}

/**
 * Closes every descriptor above standard error that was inherited across
 * execve(), that is, open without FD_CLOEXEC, except those in `keep`.
 * @param keep descriptors that orzo's own protocol passes (daemon.ts's report pipe)
 * @returns the descriptors closed
 */
export function closeInheritedFds(keep: readonly number[] = []): number[] {
  const closed: number[] = [];
  for (const fd of openFds()) {
    if (fd <= 2 || keep.includes(fd)) continue;
    const flags = libc.symbols.fcntl(fd, F_GETFD, 0);
    if (flags < 0 || (flags & FD_CLOEXEC) !== 0 || isV8ProfilerOutput(fd)) continue;
    if (libc.symbols.close(fd) === 0 || errno() !== 9 /* EBADF */) closed.push(fd);
  }
  return closed;
}

/**
 * Whether a descriptor is open on V8's profiler output for this process
 * (see the module doc).
 * @param fd the descriptor
 * @returns true for /.../perf-PID.map and /.../jit-PID.dump
 */
export function isV8ProfilerOutput(fd: number): boolean {
  const target = readLink(`/proc/self/fd/${fd}`);
  const pid = Deno.pid;
  return target !== null &&
    (target.endsWith(`/perf-${pid}.map`) || target.endsWith(`/jit-${pid}.dump`));
}
