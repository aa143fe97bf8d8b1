/**
 * userns.ts - getting orzo into a user namespace where it holds the
 * capabilities it needs, as pasta does when started by an ordinary user.
 *
 * A multi-threaded process cannot unshare(CLONE_NEWUSER) or setns() into a
 * user namespace (EINVAL), and Deno always runs several threads. So orzo
 * re-executes itself through util-linux's `unshare` (a new user namespace with
 * our uid mapped to root, like pasta's "0 UID 1" mapping) or `nsenter` (an
 * existing one, for attaching to a rootless container's namespace). The
 * environment variable ORZO_USERNS marks the second start.
 *
 * `nsenter` runs with --preserve-credentials: it only calls setns(), as pasta
 * does, and leaves uids, gids and supplementary groups alone. Without it,
 * nsenter calls setgroups(), which fails (EPERM) in every namespace whose
 * setgroups is denied: those made by `unshare -Ur`, RootlessKit and Podman.
 * Our capabilities there then come from our uid being mapped to root, which
 * userNsCheck() verifies after the re-execution.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { getEnv, readLink } from "../ffi/mem.ts";
import { execvp, procCmdline, setEnv } from "../ffi/proc.ts";
import { ConfError } from "../conf/errors.ts";

/** Set in the environment of the re-executed orzo. */
export const USERNS_ENV = "ORZO_USERNS";

/**
 * The command line that starts this very program again: the runtime's
 * executable (from /proc/self/exe) and the original arguments.
 * @returns argv for exec
 */
export function selfArgv(): string[] {
  const argv = procCmdline("self");
  const exe = readLink("/proc/self/exe");
  if (exe !== null && argv.length > 0) argv[0] = exe.replace(/ \(deleted\)$/, "");
  return argv;
}

/**
 * Whether orzo must change user namespace before it can set up a network.
 * @returns true when not root and not already re-executed
 */
export function needUserns(): boolean {
  return libc.symbols.geteuid() !== 0 && getEnv(USERNS_ENV) === undefined;
}

/**
 * Re-executes orzo in a new user namespace, mapping our uid and gid to root.
 * Does not return on success.
 * @throws SysError when `unshare` cannot be run
 */
export function reexecInNewUserns(): never {
  setEnv(USERNS_ENV, "new");
  execvp(["unshare", "--user", "--map-root-user", "--", ...selfArgv()]);
}

/**
 * Re-executes orzo inside an existing user namespace (as its root).
 * Does not return on success.
 * @param path the user namespace file, such as /proc/PID/ns/user
 * @throws SysError when `nsenter` cannot be run
 */
export function reexecInUserns(path: string): never {
  setEnv(USERNS_ENV, path);
  execvp(["nsenter", "--preserve-credentials", `--user=${path}`, "--", ...selfArgv()]);
}

/**
 * After re-executing into an existing user namespace: orzo holds capabilities
 * there only if our uid is mapped to root in it.
 * @throws ConfError naming the namespace when it maps us to another uid
 */
export function userNsCheck(): void {
  const path = getEnv(USERNS_ENV);
  if (path === undefined || path === "new" || libc.symbols.geteuid() === 0) return;
  throw new ConfError(
    `User namespace ${path} does not map our user to root (uid ${libc.symbols.geteuid()} there)`,
  );
}
