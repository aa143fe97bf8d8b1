/**
 * flood.ts - floods for the end-to-end tests, run inside the test's
 * namespaces: `deno run --allow-ffi --allow-sys flood.ts MODE ARGS...`.
 * Every mode is bounded in count and in time (FLOOD_DEADLINE_MS, default
 * 45 s), paced so that the guest's own tap queue is not what drops the
 * frames, and prints what it sent.
 *
 * Modes:
 * - syn IFNAME DST4 COUNT PER_MS: COUNT TCP SYNs from the interface's IPv4
 *   address, random source ports and sequence numbers, to DST4 port 80, as
 *   raw frames (AF_PACKET) to orzo's MAC, PER_MS frames per millisecond.
 *   Prints "sent N".
 * - storm IFNAME COUNT SEED PER_MS: COUNT random and mutated frames
 *   (tests/fuzz/frames.ts) from the interface's addresses, towards the
 *   gateway GW4 and GW6 (FLOOD_GW4, FLOOD_GW6). Prints "sent N".
 * - udp DST4 PORT COUNT FIRST_PORT: COUNT datagrams to DST4:PORT, each from
 *   its own source port (FIRST_PORT, FIRST_PORT + 1, ...). Prints "sent N".
 *
 * @module
 */

import { lib, packetSocket } from "./packet_socket.ts";
import { frameAddrsSet, mutate, Prng, randomFrame, SEED_KINDS, seedFrame } from "../fuzz/frames.ts";

const deadline = performance.now() + Number(Deno.env.get("FLOOD_DEADLINE_MS") ?? "45000");

const ORZO_MAC = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];

function parseMac(s: string): number[] {
  return s.split(":").map((x) => parseInt(x, 16));
}

function parse4(s: string): number[] {
  return s.split(".").map(Number);
}

function parse6(s: string): number[] {
  const [head, tail] = s.includes("::") ? s.split("::") : [s, ""];
  const h = head === "" ? [] : head!.split(":");
  const t = tail === "" ? [] : tail!.split(":");
  const words = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  return words.flatMap((w) => {
    const v = parseInt(w, 16);
    return [v >> 8, v & 0xff];
  });
}

/** The interface's MAC and addresses. */
function ifAddrs(ifname: string): { mac: number[]; v4: number[] | null; v6: number[] | null } {
  const all = Deno.networkInterfaces().filter((i) => i.name === ifname);
  if (all.length === 0) throw new Error(`no addresses on ${ifname}`);
  const v4 = all.find((i) => i.family === "IPv4");
  const v6 = all.find((i) => i.family === "IPv6" && !i.address.startsWith("fe80"));
  return {
    mac: parseMac(all[0]!.mac),
    v4: v4 ? parse4(v4.address) : null,
    v6: v6 ? parse6(v6.address) : null,
  };
}

/** Sends `count` frames from gen(), `perMs` per millisecond at most. */
async function paced(
  fd: number,
  count: number,
  perMs: number,
  gen: (buf: Uint8Array, i: number) => number,
): Promise<number> {
  const buf = new Uint8Array(65536);
  let sent = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const len = gen(buf, i);
    /* a full queue (ENOBUFS): wait a little and try again, a bounded number of times */
    for (let tries = 0; len > 0 && tries < 50; tries++) {
      if (lib.symbols.send(fd, buf, len, 0) === len) {
        sent++;
        break;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    if (i % perMs === perMs - 1) {
      const ahead = t0 + (i + 1) / perMs - performance.now();
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      if (performance.now() > deadline) break;
    }
  }
  return sent;
}

const [mode, ...args] = Deno.args;
if (mode === "syn") {
  const [ifname, dst, count, perMs] = args;
  const me = ifAddrs(ifname!);
  if (me.v4 === null) throw new Error(`${ifname} has no IPv4 address`);
  const fd = packetSocket(ifname!);
  const rnd = new Prng(Date.now());
  const d = parse4(dst!);
  const tmpl = new Uint8Array(54);
  tmpl.set(ORZO_MAC, 0);
  tmpl.set(me.mac, 6);
  tmpl.set([0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0], 12);
  tmpl.set(me.v4, 26);
  tmpl.set(d, 30);
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += (tmpl[i]! << 8) | tmpl[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  tmpl[24] = (~s >> 8) & 0xff;
  tmpl[25] = ~s & 0xff;
  tmpl.set([0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0], 34);
  const sent = await paced(fd, Number(count), Number(perMs), (buf, i) => {
    buf.set(tmpl);
    const port = 1024 + (i % 64000);
    buf[34] = port >> 8;
    buf[35] = port & 0xff;
    const seq = rnd.u32();
    buf[38] = seq >>> 24;
    buf[39] = (seq >>> 16) & 0xff;
    buf[40] = (seq >>> 8) & 0xff;
    buf[41] = seq & 0xff;
    /* TCP checksum: pseudo-header and header */
    let c = 6 + 20;
    for (let k = 26; k < 34; k += 2) c += (buf[k]! << 8) | buf[k + 1]!;
    for (let k = 34; k < 54; k += 2) c += (buf[k]! << 8) | buf[k + 1]!;
    while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
    buf[50] = (~c >> 8) & 0xff;
    buf[51] = ~c & 0xff;
    return 54;
  });
  console.log(`sent ${sent}`);
} else if (mode === "storm") {
  const [ifname, count, seed, perMs] = args;
  const me = ifAddrs(ifname!);
  frameAddrsSet({
    guestMac: me.mac,
    guest4: me.v4 ?? [0, 0, 0, 0],
    gw4: parse4(Deno.env.get("FLOOD_GW4") ?? "0.0.0.0"),
    guest6: me.v6 ?? new Array(16).fill(0),
    gw6: parse6(Deno.env.get("FLOOD_GW6") ?? "::"),
  });
  const fd = packetSocket(ifname!);
  const rnd = new Prng(Number(seed));
  const ports = { tcp: 9399, udp: 9399 };
  const sent = await paced(fd, Number(count), Number(perMs), (buf) => {
    /* at least an Ethernet header (what the interface takes), at most its MTU */
    let len = 0;
    for (let tries = 0; len < 14 && tries < 100; tries++) {
      const r = rnd.below(100);
      if (r < 40) len = seedFrame(buf, rnd.below(SEED_KINDS), rnd, ports);
      else if (r < 90) len = mutate(buf, seedFrame(buf, rnd.below(SEED_KINDS), rnd, ports), rnd);
      else len = randomFrame(buf, rnd);
    }
    return len < 14 ? 0 : Math.min(len, 1514);
  });
  console.log(`sent ${sent}`);
} else if (mode === "udp") {
  const [dst, port, count, first] = args;
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, 2, true);
  const payload = new TextEncoder().encode("spoofed?");
  let sent = 0;
  for (let i = 0; i < Number(count) && performance.now() < deadline; i++) {
    const fd = lib.symbols.socket(2, 2, 0);
    if (fd < 0) throw new Error("socket failed");
    sa.fill(0, 2);
    dv.setUint16(2, (Number(first) + i) & 0xffff);
    if (lib.symbols.bind(fd, sa, 16) === 0) {
      dv.setUint16(2, Number(port));
      sa.set(parse4(dst!), 4);
      if (lib.symbols.sendto(fd, payload, payload.length, 0, sa, 16) === payload.length) sent++;
    }
    lib.symbols.close(fd);
  }
  console.log(`sent ${sent}`);
} else {
  console.error("usage: flood.ts syn|storm|udp ...");
  Deno.exit(2);
}
Deno.exit(0);
