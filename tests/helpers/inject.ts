/**
 * inject.ts - writes raw Ethernet frames onto an interface (AF_PACKET), to
 * feed orzo malformed input from inside the guest.
 *
 * Usage: deno run --allow-ffi inject.ts IFNAME HEXFRAME...
 * Prints the number of frames sent.
 *
 * @module
 */

const lib = Deno.dlopen(
  "libc.so.6",
  {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
    if_nametoindex: { parameters: ["buffer"], result: "u32" },
  } as const,
);

const [ifname, ...frames] = Deno.args;
const name = new TextEncoder().encode(`${ifname}\0`);
const ifindex = lib.symbols.if_nametoindex(name);
if (ifindex === 0) throw new Error(`no interface ${ifname}`);
/* AF_PACKET, SOCK_RAW, htons(ETH_P_ALL) */
const fd = lib.symbols.socket(17, 3, 0x0300);
if (fd < 0) throw new Error("socket(AF_PACKET) failed");
const sll = new Uint8Array(20);
const dv = new DataView(sll.buffer);
dv.setUint16(0, 17, true);
dv.setUint16(2, 0x0003, false);
dv.setInt32(4, ifindex, true);
if (lib.symbols.bind(fd, sll, sll.length) < 0) throw new Error("bind failed");
let sent = 0;
for (const hex of frames) {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  if (lib.symbols.send(fd, b, b.length, 0) === b.length) sent++;
}
console.log(sent);
