/**
 * orzo: user-mode networking for containers and virtual machines, after
 * passt/pasta, in TypeScript on Deno.
 *
 * This module is the library surface: a network to start and change at run
 * time ({@linkcode startPasta} for a namespace, {@linkcode startPasst} for a
 * virtual machine), and the parts: option parsing, the
 * execution context, the wire views and checksums, the flow table, the local
 * responders and the pcap writer. The program itself is `main.ts`.
 *
 * A network runs in a Worker of its own (its packet loop blocks a thread),
 * so the program's timers and I/O carry on; it needs `--allow-ffi`, read
 * access to orzo's files (the Worker's modules), and root or a user
 * namespace where the program is root.
 *
 * @example A network with a forward added and removed at run time
 * ```ts
 * import assert from "node:assert/strict";
 * import { startPasta } from "./mod.ts";
 *
 * // a new namespace with a tap, nothing forwarded at start, no command
 * const net = await startPasta(["--config-net", "-q", "-t", "none", "-u", "none"]);
 * try {
 *   await net.addForward("tcp", "18080:80");
 *   assert.deepEqual((await net.listForwards()).tcp, ["18080:80"]);
 *   const s = await net.stats();
 *   assert.equal(s.tcp?.opened, 0);
 *   assert.equal(await net.removeForward("tcp", "18080:80"), 1);
 * } finally {
 *   assert.equal(await net.close(), 0);
 * }
 * ```
 *
 * @example A virtual machine's network: the socket qemu connects to
 * ```ts
 * import assert from "node:assert/strict";
 * import { startPasst } from "./mod.ts";
 *
 * const path = `/tmp/orzo-doc-${Deno.pid}.socket`;
 * const net = await startPasst(["-q", "-s", path]);
 * try {
 *   assert.equal(net.socketPath, path);
 *   // qemu would connect here: -netdev stream,addr.type=unix,addr.path=...
 *   const vm = await Deno.connect({ transport: "unix", path: net.socketPath });
 *   // one frame, after its length in 4 bytes: a broadcast ARP request
 *   const frame = new Uint8Array(4 + 42);
 *   const v = new DataView(frame.buffer);
 *   v.setUint32(0, 42);
 *   frame.fill(0xff, 4, 10); // to everyone
 *   frame.set([0x52, 0x54, 0, 0x12, 0x34, 0x56], 10); // from the VM
 *   v.setUint16(16, 0x0806); // ARP
 *   v.setUint32(18, 0x00010800); // Ethernet, IPv4
 *   v.setUint32(22, 0x06040001); // address lengths, request
 *   frame.set(frame.subarray(10, 16), 26); // sender: the VM
 *   await vm.write(frame);
 *   for (let i = 0; i < 100 && (await net.stats()).tap.framesIn === 0; i++) {
 *     await new Promise((r) => setTimeout(r, 20));
 *   }
 *   const s = await net.stats();
 *   assert.equal(s.stream?.clients, 1);
 *   assert.equal(s.tap.framesIn, 1);
 *   vm.close();
 * } finally {
 *   assert.equal(await net.close(), 0);
 * }
 * // the socket is gone with the network
 * assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
 * ```
 *
 * @example Option parsing
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
export { type FlowPrepareFn, FlowTable } from "./flow/table.ts";
export { NsSync } from "./ns/ns_sync.ts";
export { TAP_NONE, tapDeviceBackend } from "./tap/backend.ts";
export type { TapBackend } from "./tap/backend.ts";
export { main } from "./main.ts";
export { Network, PasstNetwork, startPasst, startPasta } from "./lib/net.ts";
export type { FlowEvent, StartOptions } from "./lib/net.ts";
export type { NetCounters } from "./counters.ts";
export type { FwdProto } from "./fwd/runtime.ts";
