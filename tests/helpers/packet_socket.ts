/**
 * packet_socket.ts - raw frames onto an interface from inside a namespace
 * (AF_PACKET), for the scripts that feed orzo frames its guest's kernel
 * would never write (inject.ts, flood.ts). Its own small libc table: these
 * scripts run in the guest, apart from orzo.
 *
 * @module
 */

/** The libc calls the frame scripts make. */
export const lib = Deno.dlopen(
  "libc.so.6",
  {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
    sendto: { parameters: ["i32", "buffer", "u32", "i32", "buffer", "u32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    if_nametoindex: { parameters: ["buffer"], result: "u32" },
  } as const,
);

/**
 * An AF_PACKET socket (SOCK_RAW, every EtherType) bound to an interface:
 * each send() is one whole Ethernet frame.
 * @param ifname the interface
 * @returns the socket
 * @throws Error when the interface is missing or the socket cannot be made
 */
export function packetSocket(ifname: string): number {
  const ifindex = lib.symbols.if_nametoindex(new TextEncoder().encode(`${ifname}\0`));
  if (ifindex === 0) throw new Error(`no interface ${ifname}`);
  /* AF_PACKET, SOCK_RAW, htons(ETH_P_ALL) */
  const fd = lib.symbols.socket(17, 3, 0x0300);
  if (fd < 0) throw new Error("socket(AF_PACKET) failed");
  const sll = new Uint8Array(20);
  const dv = new DataView(sll.buffer);
  dv.setUint16(0, 17, true);
  dv.setUint16(2, 0x0003, false);
  dv.setInt32(4, ifindex, true);
  if (lib.symbols.bind(fd, sll, sll.length) < 0) throw new Error("bind(AF_PACKET) failed");
  return fd;
}
