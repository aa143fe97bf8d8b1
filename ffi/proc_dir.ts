/**
 * proc_dir.ts - listing the numbered entries of a /proc directory
 * (/proc/self/fd, /proc/self/task) through getdents64(2): orzo runs with
 * --allow-ffi alone, so Deno.readDir is not open to it. Set-up only:
 * allocates.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { addressOf, cString } from "./mem.ts";
import { O_CLOEXEC, O_RDONLY } from "./layout.ts";

/** getdents64(2) on x86_64. */
const SYS_GETDENTS64 = 217;
/** O_DIRECTORY */
const O_DIRECTORY = 0o200000;
/** Bytes read per getdents64() call. */
const DIRENT_BUF = 8192;
/** Most getdents64() calls per listing (a bound: /proc/self/fd of 4096 fds takes about 13). */
const MAX_ROUNDS = 4096;

/**
 * Lists the entries of a directory whose names are decimal numbers.
 * @param path the directory (/proc/self/fd, /proc/self/task)
 * @returns the numbers, ascending, without the descriptor used to read the
 *   directory; empty when it cannot be opened
 */
export function procDirNumbers(path: string): number[] {
  const dir = libc.symbols.open(cString(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dir < 0) return [];
  const out: number[] = [];
  const buf = new Uint8Array(DIRENT_BUF);
  const addr = addressOf(buf);
  const dv = new DataView(buf.buffer);
  const own = path === "/proc/self/fd" ? dir : -1;
  try {
    for (let rounds = 0; rounds < MAX_ROUNDS; rounds++) {
      const n = Number(
        libc.symbols.syscall4(BigInt(SYS_GETDENTS64), BigInt(dir), addr, BigInt(DIRENT_BUF)),
      );
      if (n <= 0) break;
      /* struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name */
      for (let off = 0; off + 19 < n;) {
        const reclen = dv.getUint16(off + 16, true);
        if (reclen === 0) break;
        let num = 0;
        let digits = 0;
        let end = off + 19;
        for (; end < off + reclen && buf[end] !== 0; end++) {
          const d = buf[end]! - 0x30;
          if (d < 0 || d > 9) {
            digits = -1;
            break;
          }
          num = num * 10 + d;
          digits++;
        }
        if (digits > 0 && num !== own) out.push(num);
        off += reclen;
      }
    }
  } finally {
    libc.symbols.close(dir);
  }
  return out.sort((a, b) => a - b);
}
