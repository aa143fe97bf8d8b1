/**
 * users.ts - which user and group orzo runs as once set up (--runas), as
 * pasta's conf_ugid(): the option when given (IDs, or names looked up through
 * the C library's getpwnam/getgrnam, so NSS sources count as they do for
 * pasta); otherwise `nobody` when started as root in the initial user
 * namespace; otherwise no change (an ordinary user, or root of a user
 * namespace, which has nobody else to become).
 *
 * @module
 */

import type { RunAs } from "../conf/config.ts";
import { ConfError } from "../conf/errors.ts";
import { libc } from "../ffi/libc.ts";
import { cString, readFileText } from "../ffi/mem.ts";

/** A user and group to switch to. */
export interface UserIds {
  /** user ID */
  uid: number;
  /** group ID */
  gid: number;
}

/** The usual IDs of `nobody`, when the user database has no such entry. */
export const NOBODY_ID = 65534;

/** struct passwd: pw_uid at 16, pw_gid at 20 (x86_64). */
function lookUser(name: string): UserIds | null {
  const p = libc.symbols.getpwnam(cString(name));
  if (p === null) return null;
  const v = new Deno.UnsafePointerView(p);
  return { uid: v.getUint32(16), gid: v.getUint32(20) };
}

/** struct group: gr_gid at 16 (x86_64). */
function lookGroup(name: string): number | null {
  const p = libc.symbols.getgrnam(cString(name));
  if (p === null) return null;
  return new Deno.UnsafePointerView(p).getUint32(16);
}

/**
 * Resolves --runas to IDs. A numeric user without a group means the same
 * number as group, a login name its primary group (as pasta).
 * @param r the parsed option
 * @returns the IDs
 * @throws ConfError for an unknown user or group, or a login name of UID 0
 */
export function runasIds(r: RunAs): UserIds {
  let ids: UserIds;
  if (typeof r.user === "number") ids = { uid: r.user, gid: r.user };
  else {
    const u = lookUser(r.user);
    if (u === null) throw new ConfError(`Invalid --runas: no user "${r.user}"`);
    if (u.uid === 0) throw new ConfError(`Invalid --runas: user "${r.user}" is root`);
    ids = u;
  }
  if (typeof r.group === "number") ids.gid = r.group;
  else if (r.group !== undefined) {
    const g = lookGroup(r.group);
    if (g === null) throw new ConfError(`Invalid --runas: no group "${r.group}"`);
    ids.gid = g;
  }
  return ids;
}

/** The lines of /proc/self/uid_map as [inside, outside, count] triples. */
function uidMap(): number[][] {
  try {
    return readFileText("/proc/self/uid_map").trim().split("\n").map((l) =>
      l.trim().split(/\s+/).map(Number)
    );
  } catch {
    return [[0, 0, 4294967295]];
  }
}

/**
 * Whether this process is in the initial user namespace (its uid_map is
 * the identity over every ID).
 * @returns true in the initial user namespace
 */
export function inInitUserns(): boolean {
  const m = uidMap();
  return m.length === 1 && m[0]![0] === 0 && m[0]![1] === 0 && m[0]![2] === 4294967295;
}

/** The user ID outside the user namespace that our effective user ID maps to. */
function outerUid(): number | null {
  const euid = libc.symbols.geteuid();
  for (const [inside, outside, count] of uidMap()) {
    if (euid >= inside! && euid - inside! < count!) return outside! + (euid - inside!);
  }
  return null;
}

/**
 * The user to run as after set-up.
 * @param runas the --runas option, if given
 * @returns the IDs to switch to, or null to stay who we are
 * @throws ConfError for an unknown --runas user or group, or one that cannot
 *   be switched to
 */
export function targetIds(runas: RunAs | undefined): UserIds | null {
  const ids = runas === undefined ? null : runasIds(runas);
  if (!inInitUserns()) {
    /* root of our own user namespace: the only user there is the one we came as */
    if (ids !== null && ids.uid !== outerUid()) {
      throw new ConfError(
        `Cannot switch to UID ${ids.uid} in a user namespace: start orzo as root`,
      );
    }
    return null;
  }
  if (libc.symbols.geteuid() !== 0) {
    if (ids !== null && ids.uid !== libc.symbols.geteuid()) {
      throw new ConfError(`Cannot switch to UID ${ids.uid}: start orzo as root`);
    }
    return null;
  }
  return ids ?? lookUser("nobody") ?? { uid: NOBODY_ID, gid: NOBODY_ID };
}
