/**
 * orzo: user-mode networking for containers and virtual machines, after
 * passt/pasta, in TypeScript on Deno.
 *
 * This module is the library surface: option parsing, the execution context,
 * the wire views and checksums, the flow table, the local responders and the
 * pcap writer. The program itself is `main.ts`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { confParse } from "./mod.ts";
 *
 * const conf = confParse(["--config-net", "-m", "1500"], { argv0Pasta: true });
 * assert.equal(conf.mode, "pasta");
 * assert.equal(conf.mtu, 1500);
 * ```
 *
 * @module
 */

export { confParse, USAGE_TEXT, VERSION } from "./conf/conf.ts";
export type { ConfParseOptions } from "./conf/conf.ts";
export type { Config, RunAs } from "./conf/config.ts";
export { ConfError } from "./conf/errors.ts";
export type { EphemeralRange, FwdMode, FwdRule, FwdSpec } from "./conf/ports.ts";
export * from "./conf/addr.ts";
export { ctxNew } from "./ctx.ts";
export type { Ctx, Ip4Ctx, Ip6Ctx, TapStats } from "./ctx.ts";
export { errnoName, SysError } from "./ffi/errno.ts";
export * from "./wire/checksum.ts";
export { arpHandle } from "./local/arp.ts";
export { ndpHandle, ndpRouterAdvert } from "./local/ndp.ts";
export { pcapClose, pcapFrame, pcapOpen } from "./pcap.ts";
export { FlowTable } from "./flow/table.ts";
export { NsSync } from "./ns/ns_sync.ts";
export { TAP_NONE, tapDeviceBackend } from "./tap/backend.ts";
export type { TapBackend } from "./tap/backend.ts";
export { main } from "./main.ts";
