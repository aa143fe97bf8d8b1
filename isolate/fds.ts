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
 * inherited descriptors are exactly those above 2 without FD_CLOEXEC.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno } from "../ffi/errno.ts";
import { cString } from "../ffi/mem.ts";
import { F_GETFD, FD_CLOEXEC, O_CLOEXEC, O_RDONLY } from "../ffi/layout.ts";

/** getdents64(2) on x86_64. */
const SYS_GETDENTS64 = 217;
/** O_DIRECTORY */
const O_DIRECTORY = 0o200000;

/**
 * Lists this process's open descriptors (from /proc/self/fd).
 * @returns the descriptor numbers, ascending; empty when /proc is not there
 */
export function openFds(): number[] {
  const dir = libc.symbols.open(cString("/proc/self/fd"), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dir < 0) return [];
  const out: number[] = [];
  const buf = new Uint8Array(8192);
  const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  const dv = new DataView(buf.buffer);
  try {
    for (let rounds = 0; rounds < 4096; rounds++) {
      const n = Number(libc.symbols.syscall4(BigInt(SYS_GETDENTS64), BigInt(dir), addr, 8192n));
      if (n <= 0) break;
      /* struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name */
      for (let off = 0; off + 19 < n;) {
        const reclen = dv.getUint16(off + 16, true);
        if (reclen === 0) break;
        let end = off + 19;
        while (end < off + reclen && buf[end] !== 0) end++;
        const name = new TextDecoder().decode(buf.subarray(off + 19, end));
        if (/^[0-9]+$/.test(name)) {
          const fd = Number(name);
          if (fd !== dir) out.push(fd);
        }
        off += reclen;
      }
    }
  } finally {
    libc.symbols.close(dir);
  }
  return out.sort((a, b) => a - b);
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
    if (flags < 0 || (flags & FD_CLOEXEC) !== 0) continue;
    if (libc.symbols.close(fd) === 0 || errno() !== 9 /* EBADF */) closed.push(fd);
  }
  return closed;
}
