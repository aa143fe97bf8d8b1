/**
 * netns_quit.ts - noticing that an attached network namespace is gone.
 *
 * For `--netns PATH`, an inotify watch on PATH's directory reports its
 * deletion (`ip netns del` unlinks /run/netns/NAME); where inotify cannot be
 * used (procfs, sysfs) a one-second timer checks that PATH still exists. For
 * a PID, the process's pidfd becomes readable when it exits.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { cString } from "../ffi/mem.ts";
import { IN_CLOEXEC, IN_DELETE, IN_MOVED_FROM, IN_NONBLOCK } from "../ffi/layout.ts";
import { timerCreate, timerSet } from "../ffi/timer.ts";

/** What watches the namespace. */
export interface NetnsWatch {
  /** "inotify" or "timer" */
  kind: "inotify" | "timer";
  /** the fd to add to the epoll set */
  fd: number;
  /** the namespace file */
  path: string;
}

/**
 * Starts watching a namespace file.
 * @param path the namespace file, such as /run/netns/NAME
 * @returns the watch
 */
export function netnsWatch(path: string): NetnsWatch {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : "/";
  const onProc = dir.startsWith("/proc") || dir.startsWith("/sys");
  if (!onProc) {
    const fd = libc.symbols.inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0) {
      if (libc.symbols.inotify_add_watch(fd, cString(dir), IN_DELETE | IN_MOVED_FROM) >= 0) {
        return { kind: "inotify", fd, path };
      }
      libc.symbols.close(fd);
    }
  }
  const fd = timerCreate();
  timerSet(fd, 1000, 1000);
  return { kind: "timer", fd, path };
}

/**
 * Handles readiness of the watch fd.
 * @param w the watch
 * @returns true when the namespace file is gone
 */
export function netnsWatchGone(w: NetnsWatch): boolean {
  const buf = new Uint8Array(4096);
  while (libc.symbols.read(w.fd, buf, buf.length) > 0) { /* drain */ }
  return libc.symbols.access(cString(w.path), 0) < 0;
}
