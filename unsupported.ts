/**
 * unsupported.ts - options that orzo parses but whose feature is not built yet.
 *
 * They fail with one line rather than being ignored: a caller relying on them
 * must know. This list shrinks as features land.
 *
 * @module
 */

import type { Config } from "./conf/config.ts";
import type { FwdSpec } from "./conf/ports.ts";
import { ConfError } from "./conf/errors.ts";

/** Options (canonical long names) whose feature is not built yet. */
export const NOT_BUILT: ReadonlySet<string> = new Set([
  "outbound",
  "outbound-if4",
  "outbound-if6",
  "freebind",
  "vhost-user",
  "repair-path",
  "migrate-exit",
  "migrate-no-linger",
]);

/**
 * Port forwarding options (canonical long names) whose protocol and direction
 * is not built yet; each protocol's engineer removes its own.
 */
export const FWD_NOT_BUILT: ReadonlySet<string> = new Set([]);

function forwards(spec: FwdSpec): boolean {
  return spec.mode !== "none" && spec.mode !== "auto";
}

/**
 * Throws a ConfError naming the first explicitly given option whose feature
 * is not built yet.
 * @param conf the parsed configuration
 */
export function unsupported(conf: Config): void {
  for (const name of conf.given) {
    if (NOT_BUILT.has(name)) throw new ConfError(`Option "--${name}" is not supported yet`);
  }
  const specs: [string, FwdSpec][] = [
    ["tcp-ports", conf.tcp],
    ["udp-ports", conf.udp],
    ["tcp-ns", conf.tcpNs],
    ["udp-ns", conf.udpNs],
  ];
  for (const [name, spec] of specs) {
    if (FWD_NOT_BUILT.has(name) && conf.given.has(name) && forwards(spec)) {
      throw new ConfError(`Port forwarding ("--${name}") is not supported yet`);
    }
  }
}
