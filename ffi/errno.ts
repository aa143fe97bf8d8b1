/**
 * errno.ts - errno of the calling thread, errno names, and SysError.
 *
 * The errno slot is read through an Int32Array laid over
 * `__errno_location()` once, so reading it costs nothing (FFI-NOTES.md §1).
 * Sync FFI calls run on the JS thread, so the slot is the right one; a Worker
 * must build its own.
 *
 * @module
 */

import { libc } from "./libc.ts";

const errnoSlot = new Int32Array(
  Deno.UnsafePointerView.getArrayBuffer(libc.symbols.__errno_location()!, 4),
);

/** Returns errno as left by the last failed libc call on this thread. */
export function errno(): number {
  return errnoSlot[0]!;
}
/* Compiled now, not at its first call: V8 compiles a function lazily when it
 * is first called, between the failed call and the read of its errno, and
 * with --perf-basic-prof it then writes its perf map, which can change
 * errno (`orzo -s PATH` reported a free path as in use). */
errno();

/** Linux errno numbers by name (x86_64 / generic). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  ENODATA: 61,
  ENONET: 64,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EUSERS: 87,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95,
  EPFNOSUPPORT: 96,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENETRESET: 102,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ECANCELED: 125,
} as const;

const ERRNO_NAMES: string[] = [];
for (const [name, num] of Object.entries(ERRNO)) ERRNO_NAMES[num] = name;

/**
 * Returns the symbolic name of an errno value.
 * @param err errno, positive or negative (a `-errno` return)
 * @returns the name, such as `"ECONNREFUSED"`, or `"E<number>"` when unknown
 */
export function errnoName(err: number): string {
  const n = err < 0 ? -err : err;
  return ERRNO_NAMES[n] ?? `E${n}`;
}

/** A failed system call at setup time: carries the errno and its name. */
export class SysError extends Error {
  /** errno value (positive) */
  readonly errno: number;
  /** errno name, such as "EACCES" */
  readonly code: string;
  /** what was attempted, such as "bind" */
  readonly syscall: string;

  /**
   * Makes the error for a failed call.
   * @param syscall what was attempted, used as the message prefix
   * @param err errno value (either sign)
   */
  constructor(syscall: string, err: number) {
    const n = err < 0 ? -err : err;
    super(`${syscall}: ${errnoName(n)}`);
    this.name = "SysError";
    this.errno = n;
    this.code = errnoName(n);
    this.syscall = syscall;
  }
}

/**
 * Turns a libc return value into `-errno` on failure (the data path's convention).
 * @param ret the value the call returned
 * @returns `ret` when not negative, otherwise `-errno`
 */
export function sysRet(ret: number): number {
  return ret < 0 ? -errnoSlot[0]! : ret;
}

/**
 * Throws a SysError when a setup-time call failed.
 * @param ret the value the call returned
 * @param what description of the call, for the message
 * @returns `ret` when not negative
 */
export function check(ret: number, what: string): number {
  if (ret < 0) throw new SysError(what, errnoSlot[0]!);
  return ret;
}
