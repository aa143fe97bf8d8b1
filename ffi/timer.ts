/**
 * timer.ts - timerfd helpers (setup and re-arming; no allocation on re-arm).
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check, errno } from "./errno.ts";
import { CLOCK_MONOTONIC, ITIMERSPEC_SIZE, TFD_CLOEXEC, TFD_NONBLOCK } from "./layout.ts";

const spec = new Uint8Array(ITIMERSPEC_SIZE);
const specView = new DataView(spec.buffer);
const expirations = new Uint8Array(8);

/**
 * Creates a non-blocking monotonic timerfd.
 * @returns the fd; throws SysError on failure
 */
export function timerCreate(): number {
  return check(
    libc.symbols.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
    "timerfd_create",
  );
}

/**
 * Arms (or with 0, disarms) a timerfd.
 * @param fd the timerfd
 * @param valueMs first expiry in milliseconds from now (0 disarms)
 * @param intervalMs period in milliseconds, 0 for a one-shot timer
 * @returns 0, or -errno
 */
export function timerSet(fd: number, valueMs: number, intervalMs = 0): number {
  specView.setBigInt64(0, BigInt(Math.floor(intervalMs / 1000)), true);
  specView.setBigInt64(8, BigInt((intervalMs % 1000) * 1000000), true);
  specView.setBigInt64(16, BigInt(Math.floor(valueMs / 1000)), true);
  specView.setBigInt64(24, BigInt((valueMs % 1000) * 1000000), true);
  return libc.symbols.timerfd_settime(fd, 0, spec, null as unknown as Uint8Array<ArrayBuffer>) < 0
    ? -errno()
    : 0;
}

/**
 * A timerfd's period, as the kernel has it.
 * @param fd the timerfd
 * @returns the interval in milliseconds (0 for a one-shot or disarmed
 *   timer), or -errno
 */
export function timerIntervalMs(fd: number): number {
  if (libc.symbols.timerfd_gettime(fd, spec) < 0) return -errno();
  return Number(specView.getBigInt64(0, true)) * 1000 +
    Math.floor(Number(specView.getBigInt64(8, true)) / 1000000);
}

/**
 * Reads (and so acknowledges) a timerfd's expirations.
 * @param fd the timerfd
 * @returns expirations since last read (0 if none)
 */
export function timerAck(fd: number): number {
  const n = libc.symbols.read(fd, expirations, 8);
  if (n !== 8) return 0;
  return expirations[0]! | (expirations[1]! << 8);
}
